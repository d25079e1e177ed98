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

Reported: wall time (REST trigger to success) and where it goes (from the emulator's request log),
peak RSS and CPU seconds of the worker and of the triggerer (and the triggerer's CPU as a share of
the wall time), requests per document, status requests per batch per poll, the XCom's size.

Run (Airflow 3; PostgreSQL from Debian)::

    python bench/bench_day_deployment.py --files 10000 --output /tmp/day.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_day import make_files, phases  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


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


class Sampler(threading.Thread):
    """Samples the process trees of named components until stopped."""

    def __init__(self, groups: dict[str, int], exclude: set[int]) -> None:
        super().__init__(daemon=True)
        self.groups, self.exclude = groups, exclude
        self.cpu: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.peak_rss_kb: dict[str, int] = dict.fromkeys(groups, 0)
        self.first_cpu: dict[str, dict[int, float]] = {name: {} for name in groups}
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def sample(self) -> None:
        table = _process_table()
        for name, root in self.groups.items():
            for pid, (cpu, rss) in _tree_stats(root, table).items():
                if pid in self.exclude:
                    continue
                self.first_cpu[name].setdefault(pid, cpu)
                self.cpu[name][pid] = cpu
                self.peak_rss_kb[name] = max(self.peak_rss_kb[name], rss)

    def stop(self) -> None:
        self.sample()
        self._stop.set()

    def cpu_seconds(self, name: str) -> float:
        """CPU spent while sampled (processes that existed before the run count from their first sample)."""
        return sum(cpu - self.first_cpu[name][pid] for pid, cpu in self.cpu[name].items())


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.deployment.harness import Deployment

    # No processing time, but each task stays pending for a few seconds so the operator's own first
    # poll finds work left and the wait really defers to the triggerer.
    pending = str(args.pending)
    deployment = Deployment(emulator_args=("--pending", pending, "--per-page", "0", "--converting", "0"))
    results: dict[str, Any] = {"files": args.files, "mode": "LocalExecutor deployment (PostgreSQL, REST API)"}
    try:
        deployment.start()
        deployment.wait_dags(["mineru_deploy_upload_deferrable"], timeout=300)
        folder, out = deployment.inputs / "day", deployment.output / "day"
        folder.mkdir()
        make_files(folder, args.files)
        deployment.emulator("DELETE", "requests")
        scheduler = deployment.processes["scheduler"].pid
        sampler = Sampler(
            {"worker": scheduler, "triggerer": deployment.processes["triggerer"].pid}, exclude={scheduler}
        )
        sampler.sample()
        sampler.start()
        started = time.time()
        run_id = deployment.api.trigger(
            "mineru_deploy_upload_deferrable", {"paths": str(folder), "output_path": str(out)}
        )
        record = deployment.api.wait_run(
            "mineru_deploy_upload_deferrable", run_id, timeout=args.timeout, logs=deployment.where_logs()
        )
        wall = time.time() - started
        sampler.stop()
        log = deployment.requests_log()
        by_endpoint = Counter(r["endpoint"] for r in log)
        value = deployment.api.xcom("mineru_deploy_upload_deferrable", run_id, "parse")
        polls = by_endpoint.get("get_batch", 0)
        batches = len(value.get("batch_ids", [])) if isinstance(value, dict) else 0
        results.update(
            state=record["state"],
            wall_s=round(wall, 1),
            phases={k: (None if v is None else round(v, 1)) for k, v in phases(log, started).items()},
            worker_peak_rss_mb=round(sampler.peak_rss_kb["worker"] / 1024, 1),
            worker_cpu_s=round(sampler.cpu_seconds("worker"), 1),
            triggerer_peak_rss_mb=round(sampler.peak_rss_kb["triggerer"] / 1024, 1),
            triggerer_cpu_s=round(sampler.cpu_seconds("triggerer"), 1),
            triggerer_cpu_share=round(sampler.cpu_seconds("triggerer") / wall, 4),
            requests=dict(by_endpoint),
            requests_per_document=round(len(log) / args.files, 3),
            status_requests=polls,
            batches=batches,
            xcom_bytes=len(json.dumps(value)),
            results_landed=sum(1 for _ in out.rglob(".mineru-complete.json")),
        )
    finally:
        deployment.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--pending", type=float, default=5.0, help="seconds each emulated task stays pending")
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args()
    results = run(args)
    print(json.dumps(results, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2))
    return 0 if results.get("state") == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
