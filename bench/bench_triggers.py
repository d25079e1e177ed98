"""
Triggerer scale (targets 1 and 2): many MinerU waits in one event loop, against a naive poller.

Against the emulator (its own process, loopback), this creates ``--tasks`` tasks that stay
``running`` and ``--batches`` upload batches of ``--batch-files`` files that stay
``waiting-file``, then runs, each in a fresh worker process, one event loop holding:

``mineru-task``   ``--tasks`` ``MinerUTaskTrigger.run()`` generators, consumed as the triggerer does;
``naive-task``    the same number of naive pollers: each poll opens a new ``aiohttp.ClientSession``
                  (as ``HttpSensorTrigger`` / ``HttpAsyncHook.run`` do), GETs the same URL with the
                  bearer header, parses the JSON, closes the session;
``httphook-task`` the actual ``HttpSensorTrigger.run`` loop body: a new session per poll, and
                  ``HttpAsyncHook.run`` in it (an ``http`` connection with the token in its extra);
``bare-task``     (not run by default) no provider code: the same GET on one shared ``aiohttp``
                  session with a pool of 64, the floor of any client of this API;
``mineru-batch``  ``--batches`` ``MinerUBatchTrigger.run()`` generators of ``--batch-files`` files;
``mineru-mixed``  both trigger kinds together, the shared-triggerer case.

Each worker warms up (every waiter has polled once, then one more interval), then measures a
``--window`` of seconds: its own CPU time (``time.process_time``, all threads), polls completed,
and, sampled from outside through ``/proc`` every 0.1 s, open sockets and RSS. Requests come
from the emulator's request log. Run::

    python bench/bench_triggers.py                 # defaults: 1000 tasks, 50 x 200-file batches
    python bench/bench_triggers.py --tasks 200 --window 3 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

MODES = ("mineru-task", "naive-task", "httphook-task", "mineru-batch", "mineru-mixed")
#: Also available, not run by default: the floor, plain aiohttp on one shared session.
EXTRA_MODES = ("bare-task",)


# -- worker: one event loop, as the triggerer runs it -------------------------------------------


def _base_mode(mode: str) -> str:
    return next(m for m in (*MODES, *EXTRA_MODES) if mode == m or mode.startswith(m + "-"))


def _worker(mode: str, ids_file: str, poll_interval: float, window: float, result_file: str, limit: int) -> None:
    import resource

    ids = json.loads(Path(ids_file).read_text())
    ids["tasks"] = ids["tasks"][:limit]
    mode = _base_mode(mode)
    conn = json.loads(os.environ["AIRFLOW_CONN_MINERU_DEFAULT"])
    # Both kinds import the same modules so their RSS baselines compare.
    import aiohttp
    from airflow.triggers.base import TriggerEvent  # noqa: F401

    from airflow_provider_mineru.triggers.mineru import MinerUBatchTrigger, MinerUTaskTrigger

    begun: Counter[str] = Counter()  # polls started per kind (requests should not exceed these)
    polls: Counter[str] = Counter()  # polls completed per kind (CPU is divided by these)
    per_waiter: Counter[str] = Counter()

    class CountingTaskTrigger(MinerUTaskTrigger):
        async def _fetch(self, hook: Any, item_id: str) -> Any:
            begun["task"] += 1
            answer = await super()._fetch(hook, item_id)
            polls["task"] += 1
            per_waiter[item_id] += 1
            return answer

    class CountingBatchTrigger(MinerUBatchTrigger):
        async def _fetch(self, hook: Any, item_id: str) -> Any:
            begun["batch"] += 1
            answer = await super()._fetch(hook, item_id)
            polls["batch"] += 1
            per_waiter[item_id] += 1
            return answer

    async def consume(trigger: Any, offset: float) -> None:
        await asyncio.sleep(offset)
        async for event in trigger.run():  # the triggerer's loop; a wait here must not end
            raise RuntimeError(f"trigger fired during the benchmark: {event.payload}")

    async def naive(task_id: str, offset: float) -> None:
        url = f"{conn['host']}/extract/task/{task_id}"
        headers = {"Authorization": f"Bearer {conn['password']}"}
        await asyncio.sleep(offset)
        while True:
            begun["task"] += 1
            async with (
                aiohttp.ClientSession() as session,
                session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as response,
            ):
                data = await response.json()
            if data.get("code") != 0 or data["data"]["state"] in ("done", "failed"):
                raise RuntimeError(f"naive poll got {data}")
            polls["task"] += 1
            per_waiter[task_id] += 1
            await asyncio.sleep(poll_interval)

    async def bare(session: Any, task_id: str, offset: float) -> None:
        # No provider code at all: the same GET on one shared session (the floor of any client).
        url = f"{conn['host']}/extract/task/{task_id}"
        headers = {"Authorization": f"Bearer {conn['password']}"}
        await asyncio.sleep(offset)
        while True:
            begun["task"] += 1
            async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as response:
                data = await response.json()
            if data.get("code") != 0 or data["data"]["state"] in ("done", "failed"):
                raise RuntimeError(f"bare poll got {data}")
            polls["task"] += 1
            per_waiter[task_id] += 1
            await asyncio.sleep(poll_interval)

    async def httphook(task_id: str, offset: float) -> None:
        # HttpSensorTrigger.run's loop body: a new session per poll, HttpAsyncHook.run in it.
        from airflow.providers.http.hooks.http import HttpAsyncHook

        hook = HttpAsyncHook(method="GET", http_conn_id="mineru_http")
        endpoint = f"{conn['host'].split('/', 3)[3]}/extract/task/{task_id}"
        await asyncio.sleep(offset)
        while True:
            begun["task"] += 1
            async with aiohttp.ClientSession() as session:
                response = await hook.run(session=session, endpoint=endpoint)
                data = await response.json()
            if data.get("code") != 0 or data["data"]["state"] in ("done", "failed"):
                raise RuntimeError(f"HttpAsyncHook poll got {data}")
            polls["task"] += 1
            per_waiter[task_id] += 1
            await asyncio.sleep(poll_interval)

    async def main() -> dict[str, Any]:
        end_time = time.time() + 3600
        # Waits start spread over one interval, as deferred tasks reach a triggerer at different times.
        rng = random.Random(5)
        coros = []
        shared = None
        if mode in ("mineru-task", "mineru-mixed"):
            coros += [
                consume(
                    CountingTaskTrigger(mineru_task_id=t, end_time=end_time, poll_interval=poll_interval),
                    rng.uniform(0, poll_interval),
                )
                for t in ids["tasks"]
            ]
        if mode in ("mineru-batch", "mineru-mixed"):
            coros += [
                consume(
                    CountingBatchTrigger(
                        batch_ids=[b],
                        expected_files=[ids["batch_files"]],
                        end_time=end_time,
                        poll_interval=poll_interval,
                    ),
                    rng.uniform(0, poll_interval),
                )
                for b in ids["batches"]
            ]
        if mode == "naive-task":
            coros += [naive(t, rng.uniform(0, poll_interval)) for t in ids["tasks"]]
        if mode == "bare-task":
            shared = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
            coros += [bare(shared, t, rng.uniform(0, poll_interval)) for t in ids["tasks"]]
        if mode == "httphook-task":
            coros += [httphook(t, rng.uniform(0, poll_interval)) for t in ids["tasks"]]
        waiters = len(coros)
        rss_before = _common.proc_status_kb(os.getpid(), "VmRSS")
        started = time.time()
        tasks = [asyncio.ensure_future(c) for c in coros]
        # Warm-up: every waiter has polled once (connection looked up, pool filled), then one interval.
        deadline = time.monotonic() + 60
        while len(per_waiter) < waiters and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            for t in tasks:
                if t.done() and t.exception():
                    raise t.exception()
        warmup = time.time() - started
        await asyncio.sleep(poll_interval)
        t0, cpu0, polls0 = time.time(), time.process_time(), dict(polls)
        waiter0 = dict(per_waiter)
        await asyncio.sleep(window)
        t1, cpu1, polls1 = time.time(), time.process_time(), dict(polls)
        waiter1 = dict(per_waiter)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if shared is not None:
            await shared.close()
        await asyncio.sleep(0.1)  # let closed connections be released
        cycles = [waiter1.get(k, 0) - waiter0.get(k, 0) for k in waiter1]
        return {
            "mode": mode,
            "waiters": waiters,
            "warmup_s": warmup,
            "t0": t0,
            "t1": t1,
            "cpu_s": cpu1 - cpu0,
            "polls_window": {k: polls1.get(k, 0) - polls0.get(k, 0) for k in polls1},
            "polls_total": dict(polls),
            "polls_started": dict(begun),
            "cycles_per_waiter": {"min": min(cycles), "max": max(cycles), "mean": statistics.mean(cycles)},
            "rss_before_kb": rss_before,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }

    result = asyncio.run(main())
    Path(result_file).write_text(json.dumps(result))


# -- orchestrator -------------------------------------------------------------------------------


def _setup(emu: _common.EmulatorProcess, tasks: int, batches: int, batch_files: int) -> dict[str, Any]:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {emu.token}"
    verify = emu.cafile or True  # per request: REQUESTS_CA_BUNDLE in the environment beats session.verify
    emu.stick("running", tasks)
    # The emulator fetches the document from itself over plain HTTP even in TLS mode: the URL only
    # has to be accepted; the task stays `running` whatever the fetch does.
    doc = f"{emu.root_url}/samples/annual_report.pdf"
    task_ids = []
    for _ in range(tasks):
        answer = session.post(f"{emu.base_url}/extract/task", json={"url": doc}, timeout=30, verify=verify).json()
        task_ids.append(answer["data"]["task_id"])
    batch_ids = []
    for b in range(batches):
        files = [{"name": f"doc-{b}-{i}.pdf"} for i in range(batch_files)]
        answer = session.post(
            f"{emu.base_url}/file-urls/batch", json={"files": files}, timeout=30, verify=verify
        ).json()
        batch_ids.append(answer["data"]["batch_id"])
    return {"tasks": task_ids, "batches": batch_ids, "batch_files": batch_files}


def _run_mode(
    emu: _common.EmulatorProcess, mode: str, ids_file: str, poll_interval: float, window: float, limit: int
) -> dict[str, Any]:
    emu.clear_requests()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_file = handle.name
    env = dict(os.environ)
    if emu.cafile:
        # verify=True (the default) with the test CA as the system's: what a user of the cloud has.
        # The "-cafile" modes pass the CA file in the connection's `verify` extra instead.
        env["SSL_CERT_FILE"] = emu.cafile
    extra = {"verify": emu.cafile} if "-cafile" in mode else {}
    env["AIRFLOW_CONN_MINERU_DEFAULT"] = emu.connection_json(**extra)
    # The same API as an `http` connection, for HttpAsyncHook: the token as a header in the extra.
    env["AIRFLOW_CONN_MINERU_HTTP"] = json.dumps(
        {"conn_type": "http", "host": emu.root_url, "extra": {"Authorization": f"Bearer {emu.token}"}}
    )
    command = [sys.executable, __file__, "--worker", mode, ids_file, str(poll_interval), str(window), result_file]
    proc = subprocess.Popen([*command, str(limit)], env=env)
    sampler = _common.Sampler(proc.pid, cpu_pids=(emu.proc.pid,)).start()
    try:
        code = proc.wait(timeout=180)
    finally:
        sampler.stop()
        if proc.poll() is None:
            proc.kill()
    if code != 0:
        raise RuntimeError(f"worker {mode} failed with exit code {code}")
    result = json.loads(Path(result_file).read_text())
    os.unlink(result_file)
    result["mode"] = mode
    result["tls"] = bool(emu.cafile)

    log = emu.requests_log()
    t0, t1 = result["t0"], result["t1"]
    by_endpoint = Counter(r["endpoint"] for r in log if r["endpoint"] != "admin")
    in_window = Counter(r["endpoint"] for r in log if t0 <= r["time"] <= t1 and r["endpoint"] != "admin")
    bad = sum(1 for r in log if r["endpoint"] != "admin" and r["status"] != 200)
    window_samples = sampler.between(t0, t1)
    emu_cpu = [s["cpu"][emu.proc.pid] for s in window_samples]
    polls_window = sum(result["polls_window"].values())
    requests_per_poll = {
        kind: r_total / result["polls_started"][kind]
        for kind, r_total in (
            ("task", by_endpoint.get("get_task", 0)),
            ("batch", by_endpoint.get("get_batch", 0)),
        )
        if result["polls_started"].get(kind)
    }
    result.update(
        {
            "requests_total": dict(by_endpoint),
            "requests_window": dict(in_window),
            "requests_per_poll": requests_per_poll,
            "requests_not_200": bad,
            "sockets_max": max(s["sockets"] for s in window_samples),
            "sockets_mean": statistics.mean(s["sockets"] for s in window_samples),
            "rss_window_max_kb": max(s["rss_kb"] for s in window_samples),
            "threads_max": max(s["threads"] for s in window_samples),
            "cpu_per_1000_polls_s": 1000 * result["cpu_s"] / polls_window,
            "emulator_cpu_per_1000_polls_s": 1000 * (emu_cpu[-1] - emu_cpu[0]) / polls_window
            if len(emu_cpu) > 1
            else None,
            "polls_per_s": polls_window / (t1 - t0),
        }
    )
    _print_mode(result)
    return result


def _pass(args: argparse.Namespace, modes: list[str], tls: bool) -> dict[str, list[dict[str, Any]]]:
    """Every mode of ``modes`` against one emulator; the task/naive pair repeated ``--repeat`` times."""
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="mineru-bench-tls-") as tls_dir:
        options: dict[str, Any] = {"pending": 3600}
        if tls:
            options["tls"] = tls_dir
        with _common.emulator_process(**options) as emu:
            ids = _setup(emu, args.tasks, args.batches if not tls else 0, args.batch_files)
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
                json.dump(ids, handle)
                ids_file = handle.name
            try:
                order = []
                for round_ in range(args.repeat):
                    order += [m for m in modes if round_ == 0 or _repeated(m)]
                for mode in order:
                    limit = args.cafile_tasks if "-cafile" in mode else args.tasks
                    results.setdefault(mode, []).append(
                        _run_mode(emu, mode, ids_file, args.poll_interval, args.window, limit)
                    )
            finally:
                os.unlink(ids_file)
    return results


def _repeated(mode: str) -> bool:
    """The modes ``--repeat`` applies to: the task triggers and the naive poller."""
    return _base_mode(mode) in ("mineru-task", "naive-task", "bare-task") and "-cafile" not in mode


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def run(args: argparse.Namespace) -> dict[str, Any]:
    _common.airflow_home()
    started = time.monotonic()
    out: dict[str, Any] = {
        "benchmark": "triggers",
        "params": {
            "tasks": args.tasks,
            "batches": args.batches,
            "batch_files": args.batch_files,
            "poll_interval_s": args.poll_interval,
            "window_s": args.window,
            "repeat": args.repeat,
        },
        "machine": _common.machine(),
    }
    print("-- plain HTTP on loopback", flush=True)
    out["http"] = _pass(args, args.modes, tls=False)
    if args.tls_modes:
        print("-- HTTPS on loopback (ECDSA P-256 certificate)", flush=True)
        out["https"] = _pass(args, args.tls_modes, tls=True)
    for scheme in ("http", "https"):
        runs = out.get(scheme, {})
        for baseline, key in (("naive-task", "cpu_ratio_naive_over"), ("httphook-task", "cpu_ratio_httphook_over")):
            if baseline not in runs:
                continue
            naive = _median(runs[baseline], "cpu_per_1000_polls_s")
            for mode in [m for m in runs if m.startswith(("mineru-task", "bare-task")) and "-cafile" not in m]:
                mineru = _median(runs[mode], "cpu_per_1000_polls_s")
                out.setdefault(key, {})[f"{scheme}:{mode}"] = naive / mineru
                print(
                    f"{scheme}: CPU per 1000 polls (median of {len(runs[mode])} / {len(runs[baseline])} runs): "
                    f"{mode} {mineru:.3f}s, {baseline} {naive:.3f}s -> {baseline} / {mode} = {naive / mineru:.2f}x",
                    flush=True,
                )
    out["elapsed_s"] = time.monotonic() - started
    return out


def _print_mode(r: dict[str, Any]) -> None:
    req = {k: round(v, 3) for k, v in r["requests_per_poll"].items()}
    print(
        f"{r['mode']:>19}: {r['waiters']} waiters, {sum(r['polls_window'].values())} polls in "
        f"{r['t1'] - r['t0']:.1f}s ({r['polls_per_s']:.0f}/s), CPU {r['cpu_per_1000_polls_s']:.3f}s per 1000 polls "
        f"(emulator {r['emulator_cpu_per_1000_polls_s'] or 0:.3f}s), sockets max {r['sockets_max']} "
        f"mean {r['sockets_mean']:.0f}, RSS {r['rss_window_max_kb'] / 1024:.0f} MB "
        f"(+{(r['rss_window_max_kb'] - r['rss_before_kb']) / 1024:.0f} MB for the waiters), "
        f"requests per poll {req}, non-200 answers {r['requests_not_200']}",
        flush=True,
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, ids_file, interval, window, result_file, limit = sys.argv[2:8]
        _worker(mode, ids_file, float(interval), float(window), result_file, int(limit))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-files", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=3.0, help="seconds measured after the warm-up")
    parser.add_argument("--repeat", type=int, default=2, help="runs of the mineru-task / naive-task pair")
    parser.add_argument(
        "--modes",
        nargs="*",
        default=list(MODES),
        help=f"{', '.join((*MODES, *EXTRA_MODES))}",
    )
    parser.add_argument(
        "--tls-modes",
        nargs="*",
        default=["mineru-task", "naive-task", "mineru-task-cafile"],
        help="modes run against the emulator over HTTPS (none: skip the HTTPS pass); -cafile: the CA file "
        "in the connection's verify extra",
    )
    parser.add_argument("--cafile-tasks", type=int, default=200, help="waiters of the -cafile modes")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    _common.write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
