"""
The 10,000-document day (issue 11): one DAG uploads ``--files`` small PDFs from a folder, waits
deferred, and downloads every result; end to end against the emulator with no processing time.

Mode ``dag-test`` (the one this script runs): ``dag.test()`` in a fresh process on a SQLite
metadata database. ``dag.test()`` runs the deferred wait's trigger inline in the same process, so
the "worker" figures below include the triggerer's work, and there is no separate triggerer
process to measure; the LocalExecutor deployment (PostgreSQL, scheduler, triggerer) is not what
this measures. The DAG::

    MinerUUploadFilesOperator(task_id="parse", paths=<folder>, output_path=<out>,
                              deferrable=True, poll_interval=--poll-interval)

Measured: wall time of ``dag.test()`` and, from the emulator's request log, where the time goes
(checks and the first batch grant, uploads, waiting, downloads); the process's peak RSS
(``VmHWM``) and CPU seconds; the emulator's CPU; requests per document and per endpoint; status
requests per batch per poll; the task's XCom size; results landed (folders with a completion
marker).

Run::

    python bench/bench_day.py                    # 10,000 files
    python bench/bench_day.py --files 1000 --poll-interval 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

WORKER = r"""
import json, os, sys, time, logging
sys.path.insert(0, sys.argv[1])
import _common
folder, out, poll = sys.argv[2], sys.argv[3], float(sys.argv[4])
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator
from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS
logging.getLogger("airflow_provider_mineru").setLevel(logging.WARNING)
with DAG(dag_id="mineru_day", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False) as dag:
    MinerUUploadFilesOperator(task_id="parse", paths=folder, output_path=out, deferrable=True, poll_interval=poll,
                              timeout=3600)
if AIRFLOW_V_3_0_PLUS:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db("dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(),
                                         session=session)
else:
    dag.sync_to_db()
baseline = _common.proc_status_kb(os.getpid(), "VmRSS")
cpu0, t0, wall0 = time.process_time(), time.perf_counter(), time.time()
if os.environ.get("BENCH_PROFILE"):
    import cProfile
    profiler = cProfile.Profile()
    run = profiler.runcall(dag.test)
    profiler.dump_stats(os.environ["BENCH_PROFILE"])
else:
    run = dag.test()
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
ti = run.get_task_instance("parse")
value = ti.xcom_pull(task_ids="parse")
print(json.dumps({"state": str(ti.state), "wall_s": wall, "cpu_s": cpu, "started": wall0,
                  "baseline_rss_mb": baseline / 1024,
                  "peak_rss_mb": _common.proc_status_kb(os.getpid(), "VmHWM") / 1024,
                  "xcom_bytes": len(json.dumps(value)), "xcom_keys": sorted(value) if isinstance(value, dict) else None,
                  "xcom": value if isinstance(value, dict) and "results_path" in value else None}))
"""


def make_files(folder: Path, count: int) -> None:
    from mineru_emulator._pdf import make_pdf

    for i in range(count):
        (folder / f"doc-{i:05d}.pdf").write_bytes(make_pdf([[f"Document {i}", "A line of text."]]))


def phases(log: list[dict[str, Any]], started: float) -> dict[str, Any]:
    def times(endpoint: str) -> list[float]:
        return [r["time"] for r in log if r["endpoint"] == endpoint]

    grants, puts, polls, downloads = times("file_urls"), times("upload"), times("get_batch"), times("download")
    out: dict[str, Any] = {}
    if grants:
        out["checks_until_first_grant_s"] = grants[0] - started
    if puts:
        out["uploads_s"] = puts[-1] - (grants[0] if grants else started)
    if polls and puts:
        last_poll = max(t for t in polls if not downloads or t <= downloads[0]) if downloads else polls[-1]
        out["waiting_s"] = last_poll - puts[-1]
    if downloads:
        out["downloads_s"] = downloads[-1] - downloads[0]
        out["after_last_download_s"] = None  # filled by the caller from the wall time
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    home = _common.airflow_home()
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=900)
    workdir = Path(tempfile.mkdtemp(prefix="mineru-bench-day-", dir=args.workdir))
    results: dict[str, Any] = {"machine": _common.machine(), "mode": "dag.test() (trigger inline)", "files": args.files}
    try:
        folder, out = workdir / "inbox", workdir / "out"
        folder.mkdir()
        make_files(folder, args.files)
        with _common.emulator_process(pending=0, per_page=0, converting=0, max_seconds=7200) as emu:
            env = os.environ.copy()
            env["AIRFLOW_HOME"] = home
            env["AIRFLOW_CONN_MINERU_DEFAULT"] = emu.connection_json(timeout=60)
            cpu_emu0 = emu.cpu_seconds()
            proc = subprocess.run(
                [sys.executable, "-c", WORKER, str(_common.BENCH_DIR), str(folder), str(out), str(args.poll_interval)],
                env=env,
                capture_output=True,
                text=True,
                timeout=7200,
            )
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-5000:])
            worker = json.loads(proc.stdout.strip().splitlines()[-1])
            results["emulator_cpu_s"] = emu.cpu_seconds() - cpu_emu0
            log = emu.requests_log()
        results["worker"] = worker
        counts = Counter(r["endpoint"] for r in log)
        results["requests"] = dict(counts)
        api = sum(n for e, n in counts.items() if e not in ("upload", "download", "admin", "sample"))
        results["requests_per_document"] = {
            "all": sum(n for e, n in counts.items() if e != "admin") / args.files,
            "api": api / args.files,
        }
        batches = -(-args.files // 200)
        polls = counts.get("get_batch", 0)
        results["status_requests"] = {"batches": batches, "get_batch": polls}
        results["phases"] = phases(log, worker["started"])
        results["landed"] = sum(1 for p in out.iterdir() if (p / ".mineru-complete.json").is_file())
        if worker.get("xcom"):
            path = Path(worker["xcom"]["results_path"])
            results["results_jsonl_bytes"] = path.stat().st_size
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = _common.run_timed(run, args)
    w = results["worker"]
    print(
        f"{args.files} files, {results['mode']}: {w['state']} in {w['wall_s']:.1f} s; worker peak RSS "
        f"{w['peak_rss_mb']:.0f} MB (baseline {w['baseline_rss_mb']:.0f}), CPU {w['cpu_s']:.1f} s; emulator CPU "
        f"{results['emulator_cpu_s']:.1f} s"
    )
    print(f"  requests {results['requests']}; per document {results['requests_per_document']}")
    print(f"  status requests: {results['status_requests']}; phases {results['phases']}")
    print(f"  XCom {w['xcom_bytes']} bytes ({w['xcom_keys']}); landed {results['landed']} results")
    _common.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
