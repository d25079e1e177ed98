"""
Run every benchmark of ``bench/`` and print the table of ``docs/performance.md``.

Each benchmark runs in its own process with the interpreter running this script (its Airflow is
the one measured); ``--af2-python`` adds the parse-cost figure of a second interpreter (Airflow
2.11). Results go to ``--out`` (one JSON file per benchmark) and the table to stdout. Run::

    python bench/run_all.py
    python bench/run_all.py --af2-python /path/to/airflow2/venv/bin/python --out bench-results/
    python bench/run_all.py --only parse requests
    python bench/run_all.py --quick          # smaller figures, a smoke test of the scripts

The benchmarks compete for the CPU with anything else running: before each one the script
measures how busy the machine is, waits up to ``--wait-quiet`` seconds for it to calm down, and
records the figure. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402

BENCHMARKS = ("triggers", "uploads", "results", "parse", "requests", "downloads", "pages", "day")
QUICK_ARGS = {
    "triggers": ["--tasks", "200", "--batches", "10", "--window", "2", "--repeat", "1", "--cafile-tasks", "50"],
    "uploads": ["--files", "40", "--big-mb", "50"],
    "results": ["--zip-mb", "50", "--repeat", "2"],
    "parse": ["--runs", "3"],
    "requests": [],
    "downloads": ["--zips", "40", "--big-mb", "1"],
    "pages": ["--mb", "20"],
    "day": ["--files", "300", "--poll-interval", "1"],
}
POOL_LIMIT = 64  # hooks/mineru.py ASYNC_POOL_LIMIT


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over ``seconds`` (from /proc/stat), whoever uses them."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        idle = values[3] + values[4]
        return sum(values), idle

    total0, idle0 = read()
    time.sleep(seconds)
    total1, idle1 = read()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(limit: float, threshold: float = 0.15) -> float:
    deadline = time.monotonic() + limit
    busy = busy_fraction()
    while busy > threshold and time.monotonic() < deadline:
        busy = busy_fraction(2.0)
    return busy


def run_one(name: str, python: str, extra: list[str], out_dir: Path, label: str = "") -> dict[str, Any]:
    result_file = out_dir / f"{label or name}.json"
    command = [python, str(BENCH / f"bench_{name}.py"), "--json", str(result_file), *extra]
    started = time.monotonic()
    subprocess.run(command, check=True)
    data = json.loads(result_file.read_text())
    data["wall_s"] = time.monotonic() - started
    result_file.write_text(json.dumps(data, indent=2, sort_keys=True))
    return data


def _yes(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def table(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows ``(target, goal, measured, met)``."""
    rows: list[tuple[str, str, str, str]] = []
    t = results.get("triggers")
    if t:
        http = t["http"]
        task = http.get("mineru-task", [])
        mixed = (http.get("mineru-mixed") or [None])[0]
        batch = (http.get("mineru-batch") or [None])[0]
        ratio = (t.get("cpu_ratio_naive_over") or {}).get("http:mineru-task")
        if ratio is not None:
            med = statistics.median(r["cpu_per_1000_polls_s"] for r in task)
            naive = statistics.median(r["cpu_per_1000_polls_s"] for r in http["naive-task"])
            pairs = [
                n["cpu_per_1000_polls_s"] / m["cpu_per_1000_polls_s"]
                for m, n in zip(task, http["naive-task"], strict=False)
            ]
            spread = f" (runs: {min(pairs):.2f}–{max(pairs):.2f}×)" if len(pairs) > 1 else ""
            rows.append(
                (
                    f"1. CPU per poll, {t['params']['tasks']} `MinerUTaskTrigger` vs naive poller (HTTP)",
                    "≥ 3× less",
                    f"{med:.3f} s vs {naive:.3f} s per 1,000 polls: **{ratio:.2f}×**{spread}",
                    _yes(ratio >= 3),
                )
            )
        hook_ratio = (t.get("cpu_ratio_httphook_over") or {}).get("http:mineru-task")
        if hook_ratio is not None:
            rows.append(
                (
                    "1. the same vs `HttpSensorTrigger`'s loop (`HttpAsyncHook.run`, new session per poll)",
                    "≥ 3× less",
                    f"{statistics.median(r['cpu_per_1000_polls_s'] for r in http['httphook-task']):.3f} s per "
                    f"1,000 polls: **{hook_ratio:.2f}×**",
                    _yes(hook_ratio >= 3),
                )
            )
        https_ratio = (t.get("cpu_ratio_naive_over") or {}).get("https:mineru-task")
        if https_ratio is not None:
            rows.append(
                (
                    "1. naive poller again, over HTTPS (as the MinerU cloud)",
                    "≥ 3× less",
                    f"{statistics.median(r['cpu_per_1000_polls_s'] for r in t['https']['mineru-task']):.3f} s vs "
                    f"{statistics.median(r['cpu_per_1000_polls_s'] for r in t['https']['naive-task']):.3f} s: "
                    f"**{https_ratio:.2f}×**",
                    _yes(https_ratio >= 3),
                )
            )
        scene = mixed or (task[0] if task else None)
        if scene:
            waiters = scene["waiters"]
            rows.append(
                (
                    f"1. open sockets, {waiters} triggers in one loop",
                    f"bounded (pool of {POOL_LIMIT})",
                    f"max {scene['sockets_max']} (naive: max {http['naive-task'][0]['sockets_max']})"
                    if "naive-task" in http
                    else f"max {scene['sockets_max']}",
                    _yes(scene["sockets_max"] <= POOL_LIMIT + 8),
                )
            )
            per_poll = scene["requests_per_poll"]
            rows.append(
                (
                    f"1. requests per trigger per poll ({waiters} triggers)",
                    "≤ 1",
                    ", ".join(f"{kind}: {value:.3f}" for kind, value in per_poll.items()),
                    _yes(all(v <= 1.0 for v in per_poll.values())),
                )
            )
            rows.append(
                (
                    f"1. CPU and memory, {waiters} triggers, 1 poll/s each",
                    "(figure)",
                    f"{scene['cpu_per_1000_polls_s']:.3f} CPU s per 1,000 polls; "
                    f"RSS {scene['rss_window_max_kb'] / 1024:.0f} MB "
                    f"(+{(scene['rss_window_max_kb'] - scene['rss_before_kb']) / 1024:.0f} MB for the waits); "
                    f"{scene['polls_per_s']:.0f} polls/s",
                    "—",
                )
            )
        https = t.get("https", {})
        for mode in ("mineru-task-cafile",):
            if mode in https:
                r = https[mode][0]
                rows.append(
                    (
                        f"1. open sockets, {r['waiters']} triggers, HTTPS with `verify` = a CA file",
                        f"bounded (pool of {POOL_LIMIT})",
                        f"max {r['sockets_max']}; RSS +{(r['rss_window_max_kb'] - r['rss_before_kb']) / 1024:.0f} MB; "
                        f"{r['cpu_per_1000_polls_s']:.3f} CPU s per 1,000 polls",
                        _yes(r["sockets_max"] <= POOL_LIMIT + 8),
                    )
                )
        if batch:
            rows.append(
                (
                    f"2. requests per poll of a {t['params']['batch_files']}-file batch",
                    "1 (not one per file)",
                    f"{batch['requests_per_poll'].get('batch', 0):.3f}; "
                    f"{batch['cpu_per_1000_polls_s']:.2f} CPU s per 1,000 batch polls",
                    _yes(batch["requests_per_poll"].get("batch", 2) <= 1.0),
                )
            )
    u = results.get("uploads")
    if u:
        p = u["params"]
        for variant, speedup in u["speedup"].items():
            runs = {r["variant"]: r for r in u["runs"]}
            rows.append(
                (
                    f"3. {p['files']} × {p['file_mb']:g} MB uploads, {p['delay_s'] * 1000:.0f} ms per PUT: {variant}",
                    "≥ 4× faster than sequential",
                    f"{runs[variant]['seconds']:.2f} s vs {runs['sequential sample loop']['seconds']:.2f} s: "
                    f"**{speedup:.1f}×**",
                    _yes(speedup >= 4),
                )
            )
        big = u["big_upload"][0]
        rows.append(
            (
                f"3. peak RSS uploading a {big['file_mb']:.0f} MB file",
                "< 100 MB over baseline",
                f"{big['delta_mb']:+.1f} MB (reading it whole: {u['big_upload'][1]['delta_mb']:+.0f} MB)",
                _yes(big["delta_mb"] < 100),
            )
        )
    r = results.get("results")
    if r:
        hook = r["hook"]
        rows.append(
            (
                f"4. peak RSS, download + extract of a {r['zip']['bytes'] / 1e6:.0f} MB result zip",
                "< 100 MB over baseline",
                f"{hook['peak_delta_mb']:+.1f} MB",
                _yes(hook["peak_delta_mb"] < 100),
            )
        )
        ratio = r["ratio_vs_reference"]["MinerUHook.download_and_extract"]
        rows.append(
            (
                f"4. time, download + extract vs `{r['reference']}` of the local file",
                "≤ 2×",
                f"{r['best_s']['MinerUHook.download_and_extract']:.2f} s vs {r['best_s'][r['reference']]:.2f} s: "
                f"**{ratio:.2f}×** (extraction alone "
                f"{r['ratio_vs_reference']['extract_result_zip (local file)']:.2f}×)",
                _yes(ratio <= 2),
            )
        )
    for key in sorted(k for k in results if k.startswith("parse")):
        p = results[key]
        rows.append(
            (
                f"5. import cost of the operators module, Airflow {p['machine'].get('apache-airflow')}",
                "< 50 ms",
                f"{p['provider_ms_median']:.1f} ms over `{p['baseline']}`; {p['over_dag_imports_ms_median']:.1f} ms "
                f"over `{p['dag_baseline']}`",
                _yes(p["provider_ms_median"] < 50) if p["airflow_major"] >= 3 else _af2_verdict(p),
            )
        )
    q = results.get("requests")
    if q:
        flows = q["flows"]
        rows.append(
            (
                "6. requests, one URL task, submit to download",
                "≤ 3 + polls",
                "; ".join(f"{name}: {f['total']} = 2 + {f['polls']} polls" for name, f in flows.items()),
                _yes(q["all_within_bound"]),
            )
        )
    d = results.get("downloads")
    if d:
        for key in ("small", "big"):
            if key not in d:
                continue
            sc, p, s = d[key], d[key]["provider"], d[key]["sequential"]
            what = f"{sc['zips']} × {sc['zip_bytes'] / 1e6:.1f} MB zips, {sc['latency_s'] * 1000:.0f} ms latency"
            rows.append(
                (
                    f"7. downloads, {what}, vs a sequential `requests` loop",
                    "≥ 6× faster",
                    f"{p['wall_s']:.2f} s vs {s['wall_s']:.2f} s: **{sc['speedup']:.1f}×** "
                    f"(max {p['max_in_flight']} in flight)",
                    _yes(sc["speedup"] >= 6),
                )
            )
            if key == "big":
                rows.append(
                    (
                        f"7. peak RSS, {what}",
                        "< 100 MB over baseline",
                        f"{p['rss_over_baseline_mb']:+.1f} MB (sequential loop: {s['rss_over_baseline_mb']:+.1f} MB)",
                        _yes(p["rss_over_baseline_mb"] < 100),
                    )
                )
            rows.append(
                (
                    "7. a second run over complete results (completion markers)",
                    "0 downloads",
                    f"{p['second_run_gets']} downloads, {p['second_run_s']:.2f} s",
                    _yes(p["second_run_gets"] == 0),
                )
            )
    g = results.get("pages")
    if g:
        for name, row in g["counts"].items():
            p, base = row["provider"], row.get("pypdf")
            vs = f" (pypdf: {base['wall_s']:.2f} s, {base['rss_over_baseline_mb']:+.0f} MB)" if base else ""
            rows.append(
                (
                    f"8. page count, {row['bytes'] / 1e6:.0f} MB {name} PDF",
                    "< 1 s, < 20 MB",
                    f"{p['pages']} pages, {p['wall_s']:.3f} s, {p['rss_over_baseline_mb']:+.1f} MB{vs}",
                    _yes(p["wall_s"] < 1 and p["rss_over_baseline_mb"] < 20),
                )
            )
        up = g["upload"]
        rows.append(
            (
                f"8. peak RSS of a {g['mb']} MB broken-xref upload over a 1-page one",
                "< 50 MB",
                f"{up['big_over_small_mb']:+.1f} MB"
                + (
                    f" (with pypdf's count, as before: {g['upload_pypdf']['big_over_small_mb']:+.1f} MB)"
                    if "upload_pypdf" in g
                    else ""
                ),
                _yes(up["big_over_small_mb"] < 50),
            )
        )
    day = results.get("day")
    if day:
        w = day["worker"]
        rows.append(
            (
                f"9. {day['files']:,}-document day, {day['mode']}",
                "< 10 min, worker < 400 MB",
                f"{w['wall_s']:.0f} s; peak RSS {w['peak_rss_mb']:.0f} MB; CPU {w['cpu_s']:.0f} s; "
                f"XCom {w['xcom_bytes']:,} bytes; {day['landed']:,} results landed",
                _yes(w["wall_s"] < 600 and w["peak_rss_mb"] < 400 and w["xcom_bytes"] < 1_000_000),
            )
        )
    return rows


def _af2_verdict(p: dict[str, Any]) -> str:
    # `import airflow` on 2.11 loads no operator machinery; any operator module pays for BaseOperator.
    if p["provider_ms_median"] < 50:
        return "yes"
    if p["over_dag_imports_ms_median"] < 50:
        return "**no** over `import airflow`; yes over `from airflow import DAG`"
    return "**no**"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--af2-python", help="also measure the parse cost with this interpreter (Airflow 2.11)")
    parser.add_argument("--out", help="folder for the JSON results (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smaller runs: a smoke test, not the published figures")
    parser.add_argument("--wait-quiet", type=float, default=60.0, help="seconds to wait for an idle machine")
    args = parser.parse_args()

    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mineru-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {}
    busy: dict[str, float] = {}
    failed: list[str] = []
    for name in args.only:
        busy[name] = wait_quiet(args.wait_quiet)
        note = "  (the machine is busy: figures will suffer)" if busy[name] > 0.15 else ""
        print(f"\n=== {name} (machine busy before it: {busy[name]:.0%}){note}", flush=True)
        extra = QUICK_ARGS[name] if args.quick else []
        try:
            results[name] = run_one(name, sys.executable, extra, out_dir)
            if name == "parse" and args.af2_python:
                results["parse-af2"] = run_one(name, args.af2_python, extra, out_dir, "parse-af2")
        except subprocess.CalledProcessError as error:  # report the others anyway
            failed.append(name)
            print(f"!!! {name} failed: {error}", flush=True)
    elapsed = time.monotonic() - started

    machine = _common.machine()
    print(f"\n## Results ({'quick run, ' if args.quick else ''}{elapsed:.0f} s)\n")
    print(
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gb']} GB RAM, Linux "
        f"{machine['kernel']}, Python {machine['python']}, Airflow {machine.get('apache-airflow')}, aiohttp "
        f"{machine.get('aiohttp')}, requests {machine.get('requests')}.\n"
    )
    print("| target | goal | measured | met? |")
    print("|---|---|---|---|")
    for row in table(results):
        print("| " + " | ".join(row) + " |")
    print()
    for name, data in results.items():
        print(f"- `{name}`: {data['wall_s']:.0f} s (machine busy before it: {busy.get(name.split('-')[0], 0):.0%})")
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (see the output above)")
    print(f"\nJSON results in {out_dir}")
    (out_dir / "summary.json").write_text(
        json.dumps({"elapsed_s": elapsed, "busy_before": busy, "machine": machine, "rows": table(results)}, indent=2)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
