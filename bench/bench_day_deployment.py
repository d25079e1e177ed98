"""
The 10,000-document day in a real deployment (issue 11): LocalExecutor on PostgreSQL, the
scheduler, dag-processor, triggerer and api-server as separate processes (the deployment suite's
harness, ``tests/deployment/harness.py``), the emulator as MinerU with zero processing time.

One run of ``mineru_deploy_upload_deferrable`` (``MinerUUploadFilesOperator(paths=<folder>,
output_path=<out>, deferrable=True, poll_interval=1)``) over ``--files`` one-page PDFs, triggered
through the REST API. While it runs, every process of each Airflow component's process group is
sampled every 0.5 s from ``/proc``: the worker figures are the processes descended from the
scheduler (its LocalExecutor workers and the task processes they start; not the scheduler itself),
the triggerer figures the triggerer and its trigger runner.

The triggerer's baseline is measured in the same run: its CPU rate over an idle window before the
DAG run is triggered (``--idle-before``, no trigger exists yet) and one after the run succeeded
(``--idle-after``, no trigger left). Airflow's own share of the run is that idle rate times the
wall time; what is left is what the run's triggers cost the triggerer (the trigger's own work and
Airflow's handling of it: loading it, its log lines, its event). The ``trigger`` table is read
every 0.5 s, so each trigger's life (created to gone) is known; the emulator's log gives the
polls it sent; its log file gives its log lines; the triggerer's log gives the event loop's
"blocked for" warnings.

Reported: wall time (REST trigger to success) and where it goes (from the emulator's request log),
peak RSS and CPU seconds of the worker and of the triggerer, the triggerer's CPU split into the
idle baseline and the rest (and per process: the supervisor and the trigger runner), requests per
document, status requests per batch per poll, the XCom's size, the load average.

``--triggerer-config airflow-defaults`` starts the triggerer with Airflow's own defaults for its
heartbeat (``[triggerer] job_heartbeat_sec``, 5 s) and health-check threshold (30 s) instead of the
harness's 2 s / 10 s (which make the deployment suite fast); every other process keeps the
harness's settings. ``--trigger-log-level WARNING`` sets ``[logging] namespace_levels`` for the
provider's loggers in the triggerer only (what the per-document log lines cost).

Run (Airflow 3; PostgreSQL from Debian; the ``deployment`` extra)::

    python bench/bench_day_deployment.py --files 10000 --output /tmp/day.json
    python bench/bench_day_deployment.py --files 10000 --triggerer-config airflow-defaults
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import sys
import threading
import time
import traceback
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_day import make_files, phases  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
DAG_ID = "mineru_deploy_upload_deferrable"
#: The harness's triggerer settings that ``--triggerer-config airflow-defaults`` sets back to Airflow's defaults.
TRIGGERER_KEYS = (
    ("triggerer", "job_heartbeat_sec"),
    ("triggerer", "triggerer_health_check_threshold"),
    ("scheduler", "job_heartbeat_sec"),
)
_BLOCKED = re.compile(r"async thread was blocked for ([0-9.]+) seconds")


def _process_table() -> dict[int, tuple[int, float, int]]:
    """``{pid: (parent pid, cpu seconds, rss kB)}`` of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK, int(fields[21]) * _PAGE_KB)
    return table


def _tree_stats(root: int, table: dict[int, tuple[int, float, int]]) -> dict[int, tuple[float, int]]:
    """``{pid: (cpu seconds, rss kB)}`` of ``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found[pid] = table[pid][1:]
        todo.extend(children.get(pid, []))
    return found


def _cmdline(pid: int) -> str:
    """The command line of ``pid`` (shortened), or ``?`` when it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return " ".join(handle.read().replace(b"\0", b" ").decode(errors="replace").split())[:120]
    except OSError:
        return "?"


def _epoch(value: Any) -> float | None:
    """A database timestamp as seconds since the epoch (None stays None)."""
    return value.timestamp() if isinstance(value, datetime) else None


class TriggerTable:
    """Reads the metadata database's ``trigger`` table and the deferred task instances (psycopg2)."""

    def __init__(self, host: str, port: int) -> None:
        """
        :param host: PostgreSQL's address.
        :param port: its port (the harness's cluster, user and database ``airflow``).
        """
        import psycopg2

        self._conn = psycopg2.connect(
            host=host,
            port=port,
            user="airflow",
            dbname="airflow",
            connect_timeout=10,
            options="-c statement_timeout=5000",
        )
        self._conn.autocommit = True

    def read(self) -> tuple[list[tuple[int, str, float | None]], int]:
        """``([(trigger id, classpath, created), ...], task instances deferred)``."""
        with self._conn.cursor() as cursor:
            cursor.execute("SELECT id, classpath, created_date FROM trigger")
            rows = [(row[0], row[1], _epoch(row[2])) for row in cursor.fetchall()]
            cursor.execute("SELECT count(*) FROM task_instance WHERE state = 'deferred'")
            deferred = cursor.fetchone()[0]
        return rows, deferred

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


class Sampler(threading.Thread):
    """
    Samples the process trees of named components (and the trigger table) until stopped.

    :param groups: ``{name: root pid}``; each group is the root and every process descended from it.
    :param exclude: PIDs not counted (the scheduler itself in the worker group).
    :param triggers: the trigger table to read at each sample, or None.
    :param interval: seconds between samples.
    """

    def __init__(
        self, groups: dict[str, int], exclude: set[int], triggers: TriggerTable | None = None, interval: float = 0.5
    ) -> None:
        super().__init__(daemon=True)
        self.groups, self.exclude, self.trigger_table, self.interval = groups, exclude, triggers, interval
        self.cpu: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.peak_rss_kb: dict[str, int] = dict.fromkeys(groups, 0)
        self.first_cpu: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.names: dict[int, str] = {}
        #: ``(time, {group: cumulative cpu s}, {triggerer pid: cumulative cpu s}, deferred TIs)`` per sample.
        self.timeline: list[tuple[float, dict[str, float], dict[int, float], int]] = []
        #: ``{label: index into timeline}``
        self.marks: dict[str, int] = {}
        #: ``{trigger id: {"classpath", "created", "first_seen", "last_seen", "gone"}}``
        self.triggers: dict[int, dict[str, Any]] = {}
        self.table_errors: list[str] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def sample(self) -> int:
        """Take one sample; return its index in :attr:`timeline`."""
        with self._lock:
            table = _process_table()
            now = time.time()
            for name, root in self.groups.items():
                for pid, (cpu, rss) in _tree_stats(root, table).items():
                    if pid in self.exclude:
                        continue
                    if pid not in self.first_cpu[name]:
                        self.first_cpu[name][pid] = cpu
                        self.names[pid] = _cmdline(pid)
                    self.cpu[name][pid] = cpu
                    self.peak_rss_kb[name] = max(self.peak_rss_kb[name], rss)
            deferred = -1
            if self.trigger_table is not None:
                try:
                    rows, deferred = self.trigger_table.read()
                except Exception as error:  # a hiccup of the DB must not end the benchmark
                    self.table_errors.append(repr(error)[:200])
                    rows = None
                if rows is not None:
                    seen = set()
                    for trigger_id, classpath, created in rows:
                        seen.add(trigger_id)
                        record = self.triggers.setdefault(
                            trigger_id, {"classpath": classpath, "created": created, "first_seen": now}
                        )
                        record["last_seen"] = now
                    for trigger_id, record in self.triggers.items():
                        if trigger_id not in seen and "gone" not in record:
                            record["gone"] = now
            cumulative = {name: self._cumulative(name) for name in self.groups}
            firsts = self.first_cpu.get("triggerer", {})
            per_pid = {pid: cpu - firsts[pid] for pid, cpu in self.cpu.get("triggerer", {}).items()}
            self.timeline.append((now, cumulative, per_pid, deferred))
            return len(self.timeline) - 1

    def _cumulative(self, name: str) -> float:
        return sum(cpu - self.first_cpu[name][pid] for pid, cpu in self.cpu[name].items())

    def mark(self, label: str) -> float:
        """Sample now and remember the sample as ``label``; return its time."""
        self.marks[label] = index = self.sample()
        return self.timeline[index][0]

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def cpu_seconds(self, name: str) -> float:
        """CPU spent while sampled (processes that existed before the run count from their first sample)."""
        return self._cumulative(name)

    def at(self, label: str) -> tuple[float, dict[str, float], dict[int, float], int]:
        """The sample marked ``label``."""
        return self.timeline[self.marks[label]]

    def between(self, name: str, first: str, last: str) -> tuple[float, float]:
        """``(seconds, cpu seconds of group name)`` from mark ``first`` to mark ``last``."""
        (t0, c0, _, _), (t1, c1, _, _) = self.at(first), self.at(last)
        return t1 - t0, c1[name] - c0[name]

    def cpu_at(self, name: str, when: float) -> float:
        """Cumulative CPU of group ``name`` at ``when``, interpolated between the samples around it."""
        line = self.timeline
        if when <= line[0][0]:
            return line[0][1][name]
        for (t0, c0, _, _), (t1, c1, _, _) in itertools.pairwise(line):
            if t0 <= when <= t1:
                return c0[name] + (c1[name] - c0[name]) * ((when - t0) / (t1 - t0) if t1 > t0 else 0)
        return line[-1][1][name]


def _window(sampler: Sampler, first: str, last: str) -> dict[str, Any]:
    """The triggerer's CPU from mark ``first`` to ``last``: total, rate, per process, load average."""
    seconds, cpu = sampler.between("triggerer", first, last)
    _, _, pids0, _ = sampler.at(first)
    _, _, pids1, _ = sampler.at(last)
    per_process = {
        f"{pid} {sampler.names.get(pid, '?')}": round(pids1[pid] - pids0.get(pid, 0.0), 2) for pid in sorted(pids1)
    }
    return {
        "seconds": round(seconds, 1),
        "cpu_s": round(cpu, 2),
        "cpu_share": round(cpu / seconds, 4) if seconds else None,
        "per_process_cpu_s": per_process,
    }


def _trigger_logs(home: Path, run_id: str) -> dict[str, Any]:
    """Lines of the run's trigger log files: all, the provider's, and when the trigger started and fired."""
    found: dict[str, Any] = {"files": 0, "lines": 0, "provider_lines": 0, "bytes": 0}
    started = fired = None
    first_provider = last_provider = None
    for path in sorted((home / "logs" / f"dag_id={DAG_ID}").glob(f"run_id={run_id}/**/*.trigger.*.log")):
        found["files"] += 1
        found["bytes"] += path.stat().st_size
        for raw in path.read_text(errors="replace").splitlines():
            found["lines"] += 1
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            stamp = line.get("timestamp")
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None
            event = str(line.get("event", ""))
            if str(line.get("logger", "")).startswith("airflow_provider_mineru"):
                found["provider_lines"] += 1
                first_provider = first_provider or when
                last_provider = when
            elif event.endswith("starting") and started is None:
                started = when
            elif event == "Trigger fired event":
                fired = when
    found["started"], found["fired"] = started, fired
    found["provider_lines_span_s"] = (
        round(last_provider - first_provider, 2) if first_provider and last_provider else None
    )
    return found


def _blocked_warnings(log: Path) -> list[float]:
    """The seconds of every "Triggerer's async thread was blocked for" warning in the triggerer's log."""
    try:
        return [float(m.group(1)) for m in _BLOCKED.finditer(log.read_text(errors="replace"))]
    except OSError:
        return []


def _triggerer_env(args: argparse.Namespace) -> dict[str, str]:
    """The triggerer-only environment of ``--triggerer-config`` and ``--trigger-log-level``."""
    env: dict[str, str] = {}
    if args.triggerer_config == "airflow-defaults":
        from airflow.configuration import conf

        for section, key in TRIGGERER_KEYS:
            env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = str(conf.get_default_value(section, key))
    if args.trigger_log_level:
        env["AIRFLOW__LOGGING__NAMESPACE_LEVELS"] = f"airflow_provider_mineru={args.trigger_log_level}"
    return env


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.deployment.harness import HOST, Deployment

    # No processing time, but each task stays pending for some seconds so the operator's own first
    # poll (after the last upload) finds work left and the wait really defers to the triggerer.
    pending = str(args.pending)
    triggerer_env = _triggerer_env(args)
    deployment = Deployment(
        emulator_args=("--pending", pending, "--per-page", "0", "--converting", "0"), triggerer_env=triggerer_env
    )
    results: dict[str, Any] = {
        "files": args.files,
        "mode": "LocalExecutor deployment (PostgreSQL, REST API)",
        "triggerer_config": args.triggerer_config,
        "triggerer_env": triggerer_env,
        "load_average": {"start": _load()},
    }
    sampler: Sampler | None = None
    try:
        deployment.start()
        deployment.wait_dags([DAG_ID], timeout=300)
        folder, out = deployment.inputs / "day", deployment.output / "day"
        folder.mkdir()
        make_files(folder, args.files)
        deployment.emulator("DELETE", "requests")
        scheduler = deployment.processes["scheduler"].pid
        triggerer = deployment.processes["triggerer"]
        sampler = Sampler(
            {"worker": scheduler, "triggerer": triggerer.pid},
            exclude={scheduler},
            triggers=TriggerTable(HOST, deployment.pg_port),
        )
        sampler.mark("idle_before_start")
        sampler.start()
        results["load_average"]["idle_before"] = _load()
        time.sleep(args.idle_before)
        started = sampler.mark("run_start")
        results["load_average"]["run_start"] = _load()
        run_id = deployment.api.trigger(DAG_ID, {"paths": str(folder), "output_path": str(out)})
        record = deployment.api.wait_run(DAG_ID, run_id, timeout=args.timeout, logs=deployment.where_logs())
        ended = sampler.mark("run_end")
        wall = ended - started
        results["load_average"]["run_end"] = _load()
        time.sleep(args.idle_after)
        sampler.mark("idle_after_end")
        results["load_average"]["idle_after_end"] = _load()
        sampler.stop()
        log = deployment.requests_log()
        by_endpoint = Counter(r["endpoint"] for r in log)
        value = deployment.api.xcom(DAG_ID, run_id, "parse")
        polls = by_endpoint.get("get_batch", 0)
        batches = len(value.get("batch_ids", [])) if isinstance(value, dict) else 0
        results.update(
            state=record["state"],
            wall_s=round(wall, 1),
            phases={k: (None if v is None else round(v, 1)) for k, v in phases(log, started).items()},
            worker_peak_rss_mb=round(sampler.peak_rss_kb["worker"] / 1024, 1),
            worker_cpu_s=round(sampler.between("worker", "run_start", "run_end")[1], 1),
            triggerer_peak_rss_mb=round(sampler.peak_rss_kb["triggerer"] / 1024, 1),
            requests=dict(by_endpoint),
            requests_per_document=round(len(log) / args.files, 3),
            status_requests=polls,
            batches=batches,
            xcom_bytes=len(json.dumps(value)),
            results_landed=sum(1 for _ in out.rglob(".mineru-complete.json")),
        )
        try:
            results["triggerer"] = triggerer_figures(sampler, log, wall, args)
            results["triggerer"]["trigger_logs"] = _trigger_logs(deployment.home, run_id)
            results["triggerer"]["loop_blocked_warnings_s"] = _blocked_warnings(triggerer.log)
        except Exception:  # keep the run's other figures (and the raw samples) when the analysis fails
            results["analysis_error"] = traceback.format_exc()[-3000:]
        if args.samples or "analysis_error" in results:
            raw = {"timeline": sampler.timeline, "marks": sampler.marks, "names": sampler.names}
            raw.update(triggers=sampler.triggers, requests=[(r["time"], r["endpoint"]) for r in log])
            where = Path(args.samples or deployment.root.with_name(deployment.root.name + "-samples.json"))
            where.write_text(json.dumps(raw, default=str))
            results["samples"] = str(where)
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        if sampler is not None and sampler.trigger_table is not None:
            sampler.trigger_table.close()
        deployment.stop()
        results["deployment_root"] = str(deployment.root)
        if not args.keep:
            shutil.rmtree(deployment.root, ignore_errors=True)
    return results


def triggerer_figures(sampler: Sampler, log: list[dict[str, Any]], wall: float, args: argparse.Namespace) -> dict:
    """
    The triggerer's CPU over the run split into Airflow's idle share and the rest, and each trigger's life.

    :param sampler: the stopped sampler (marks ``idle_before_start``, ``run_start``, ``run_end``,
        ``idle_after_end``).
    :param log: the emulator's request log.
    :param wall: the run's wall time.
    :param args: the command line (the idle windows' lengths).
    """
    before = _window(sampler, "idle_before_start", "run_start")
    during = _window(sampler, "run_start", "run_end")
    after = _window(sampler, "run_end", "idle_after_end")
    idle_seconds = before["seconds"] + after["seconds"]
    idle_cpu = before["cpu_s"] + after["cpu_s"]
    idle_rate = idle_cpu / idle_seconds if idle_seconds else 0.0
    airflow_cpu = idle_rate * wall
    provider_cpu = during["cpu_s"] - airflow_cpu
    status = ("get_batch", "get_task")
    triggers = []
    for trigger_id, record in sorted(sampler.triggers.items()):
        created = record.get("created") or record["first_seen"]
        gone = record.get("gone", record["last_seen"])
        cpu = sampler.cpu_at("triggerer", gone) - sampler.cpu_at("triggerer", created)
        life = gone - created
        sent = [r for r in log if r["endpoint"] in status and created <= r["time"] <= gone]
        triggers.append(
            {
                "id": trigger_id,
                "classpath": record["classpath"],
                "deferred_s": round(life, 1),
                "polls": len(sent),
                "triggerer_cpu_s": round(cpu, 2),
                "over_idle_cpu_s": round(cpu - idle_rate * life, 2),
            }
        )
    mineru = [t for t in triggers if t["classpath"].startswith("airflow_provider_mineru")]
    deferred_total = sum(t["deferred_s"] for t in triggers)
    trigger_over_idle = sum(t["over_idle_cpu_s"] for t in triggers)
    outside = during["cpu_s"] - sum(t["triggerer_cpu_s"] for t in triggers)
    outside_seconds = wall - deferred_total
    return {
        "idle_before": before,
        "run": during,
        "idle_after": after,
        "idle_rate": round(idle_rate, 4),
        "idle_rate_before": before["cpu_share"],
        "idle_rate_after": after["cpu_share"],
        "cpu_s": during["cpu_s"],
        "cpu_share": round(during["cpu_s"] / wall, 4),
        "airflow_idle_cpu_s": round(airflow_cpu, 2),
        "airflow_idle_share": round(idle_rate, 4),
        "provider_cpu_s": round(provider_cpu, 2),
        "provider_share": round(provider_cpu / wall, 4),
        "triggers": triggers,
        "mineru_triggers": len(mineru),
        "deferred_s_total": round(deferred_total, 1),
        "trigger_polls": sum(t["polls"] for t in triggers),
        "trigger_cpu_over_idle_s": round(trigger_over_idle, 2),
        "cpu_per_poll_over_idle_ms": (
            round(1000 * trigger_over_idle / sum(t["polls"] for t in triggers), 2)
            if sum(t["polls"] for t in triggers)
            else None
        ),
        "run_outside_triggers_cpu_share": round(outside / outside_seconds, 4) if outside_seconds > 0 else None,
        "max_deferred_task_instances": max((s[3] for s in sampler.timeline), default=-1),
        "trigger_table_errors": sampler.table_errors[:5],
        "idle_windows_requested_s": [args.idle_before, args.idle_after],
    }


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table (what ``docs/performance.md`` shows)."""
    t = results.get("triggerer", {})
    logs = t.get("trigger_logs", {})
    load = results.get("load_average", {})
    rows = [
        ("wall time, REST trigger to success", f"{results.get('wall_s')} s", "< 10 min"),
        ("phases", json.dumps(results.get("phases")), ""),
        (
            "worker peak RSS / CPU",
            f"{results.get('worker_peak_rss_mb')} MB / {results.get('worker_cpu_s')} CPU s",
            "< 400 MB",
        ),
        ("triggerer peak RSS", f"{results.get('triggerer_peak_rss_mb')} MB", ""),
        (
            "triggerer CPU over the run",
            f"{t.get('cpu_s')} CPU s = {100 * t.get('cpu_share', 0):.2f} % of the wall time",
            "",
        ),
        (
            "baseline: idle triggerer, same run",
            f"before {t['idle_before']['cpu_s']} CPU s in {t['idle_before']['seconds']} s "
            f"({100 * (t['idle_rate_before'] or 0):.2f} %), after {t['idle_after']['cpu_s']} CPU s in "
            f"{t['idle_after']['seconds']} s ({100 * (t['idle_rate_after'] or 0):.2f} %)",
            "",
        ),
        (
            "Airflow's own share (idle rate x wall)",
            f"{t.get('airflow_idle_cpu_s')} CPU s = {100 * t.get('airflow_idle_share', 0):.2f} %",
            "",
        ),
        (
            "the provider's share ((run - idle rate x wall) / wall)",
            f"{t.get('provider_cpu_s')} CPU s = {100 * t.get('provider_share', 0):.2f} %",
            "< 5 %",
        ),
        (
            "triggers",
            f"{len(t.get('triggers', []))} ({t.get('mineru_triggers')} MinerU), deferred {t.get('deferred_s_total')} s "
            f"in all, {t.get('trigger_polls')} polls",
            "",
        ),
        (
            "triggerer CPU while a trigger ran, over the idle rate",
            f"{t.get('trigger_cpu_over_idle_s')} CPU s ({t.get('cpu_per_poll_over_idle_ms')} ms per poll)",
            "",
        ),
        (
            "trigger log",
            f"{logs.get('lines')} lines ({logs.get('provider_lines')} the provider's, over "
            f"{logs.get('provider_lines_span_s')} s), {logs.get('bytes')} bytes",
            "",
        ),
        ("event loop 'blocked for' warnings", f"{t.get('loop_blocked_warnings_s')} s", "none > 0.05 s"),
        (
            "requests",
            f"{results.get('requests')}: {results.get('requests_per_document')} per document",
            "",
        ),
        ("status requests", f"{results.get('status_requests')} for {results.get('batches')} batches", "1/batch/poll"),
        ("XCom", f"{results.get('xcom_bytes')} bytes", "< 1 MB"),
        ("results landed", str(results.get("results_landed")), ""),
        ("load average (1/5/15 min)", json.dumps(load), ""),
    ]
    if not t.get("mineru_triggers"):
        rows.insert(0, ("NO TRIGGER RAN", "the operator's own poll found every batch done: raise --pending", ""))
    lines = ["| | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1800)
    # 15 s: with 5 s the operator's own poll after the last upload (5.3 s after the last PUT on a
    # loaded machine) found every batch done, so nothing deferred and the triggerer ran no trigger.
    parser.add_argument("--pending", type=float, default=15.0, help="seconds each emulated task stays pending")
    parser.add_argument("--idle-before", type=float, default=45.0, help="idle triggerer window before the run (s)")
    parser.add_argument("--idle-after", type=float, default=45.0, help="idle triggerer window after the run (s)")
    parser.add_argument(
        "--triggerer-config",
        choices=("harness", "airflow-defaults"),
        default="harness",
        help="the triggerer's heartbeat settings: the harness's 2 s / 10 s, or Airflow's defaults",
    )
    parser.add_argument(
        "--trigger-log-level", choices=("WARNING", "ERROR"), help="the provider's log level in the triggerer only"
    )
    parser.add_argument("--keep", action="store_true", help="keep the deployment's folder (logs, inputs, results)")
    parser.add_argument("--samples", help="write the raw CPU timeline here (JSON)")
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args()
    results = run(args)
    print(json.dumps(results, indent=2))
    if "triggerer" in results:
        print(table(results))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2))
    return 0 if results.get("state") == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
