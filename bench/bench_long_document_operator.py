"""
A long PDF through the real ``MinerUUploadFilesOperator`` (``dag.test()``, blocking) on the emulator:
split into slices and stitched, against an unsplit parse of the same pages with a higher limit (the
connection's ``max_pages`` goes up to the contract's 600: the reference is a 600-page PDF, also
parsed at ``max_pages=200``; then the 1,000-page one at 200).

Each run is a child process (its own Airflow home and SQLite database); the emulator runs in this
process. Measured per run: the wall time of ``dag.test()`` (upload, parse, download, stitch) and the
peak RSS it adds over the child's baseline after Airflow, the provider and the DAG are loaded
(``VmHWM`` after ``/proc/self/clear_refs``). Emulator timings: ``pending=0.05 s``,
``per_page=0.005 s``, ``converting=0.05 s`` (slices parse in parallel, as on MinerU).

    python bench/bench_long_document_operator.py                # 1,000 pages at max_pages=200
    python bench/bench_long_document_operator.py --pages 450 --max-pages 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TOKEN = "bench-token-0123456789"
MB = 1024 * 1024


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _child(spec: dict[str, Any]) -> None:
    """Run one upload in real Airflow; print one JSON line."""
    from tests.conftest import register_dag  # first: it points Airflow at a home of its own, replaced here

    home = tempfile.mkdtemp(prefix="bench-airflow-")
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW_CONN_MINERU_DEFAULT": json.dumps(spec["connection"]),
        }
    )
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    import ctypes
    import logging

    import pendulum
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

    logging.disable(logging.DEBUG)
    with DAG(
        dag_id=f"bench_long_{spec['label']}",
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        MinerUUploadFilesOperator(
            task_id="upload", paths=[spec["source"]], output_path=spec["output"], deferrable=False, poll_interval=0.2
        )
    register_dag(dag)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # VmHWM := VmRSS
    baseline = _status("VmRSS")
    started = time.monotonic()
    run = dag.test()
    seconds = time.monotonic() - started
    ti = run.get_task_instance("upload")
    value = ti.xcom_pull(task_ids="upload")
    if not value:
        raise RuntimeError(f"the upload task ended {ti.state} without a result")
    (row,) = value["results"]
    print(
        json.dumps(
            {
                "label": spec["label"],
                "state": row["state"],
                "slices": [p["page_range"] for p in row.get("parts", [])],
                "seconds": round(seconds, 1),
                "peak_rss_added_mb": round((_status("VmHWM") - baseline) / MB, 1),
                "baseline_rss_mb": round(baseline / MB, 1),
            }
        )
    )


def _run(label: str, source: Path, max_pages: int, work: Path) -> dict[str, Any]:
    from mineru_emulator.server import MinerUEmulator, Timings

    emu = MinerUEmulator(
        token=TOKEN,
        timings=Timings(pending=0.05, per_page=0.005, converting=0.05),
        page_quota=10**9,
        max_pages=max_pages,
        max_file_bytes=400 * MB,
        fetch_demo_urls=False,
    ).start()
    try:
        connection = json.loads(emu.connection_json())
        connection["extra"]["max_pages"] = max_pages
        spec = {
            "label": label,
            "source": str(source),
            "output": str(work / label),
            "connection": connection,
        }
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, env=env
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            (work / f"{label}.err").write_text(done.stdout + done.stderr)
            raise RuntimeError(f"{label} failed; its output is in {work / label}.err")
        result = json.loads(lines[-1])
        result["pages_billed"] = emu.pages_used
        return result
    finally:
        emu.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--max-pages", type=int, default=200)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return 0
    from tests.long_documents.emulated import text_pdf

    work = Path(tempfile.mkdtemp(prefix="bench-long-op-"))
    # The connection's max_pages goes up to the contract's 600, so the unsplit reference is a
    # 600-page document; the split runs are the same 600 pages, and the 1,000-page one, at max_pages.
    reference = min(args.pages, 600)
    runs = [("unsplit", reference, reference), ("split", reference, args.max_pages)]
    if args.pages > reference:
        runs.append(("split", args.pages, args.max_pages))
    for label, pages, limit in runs:
        source = text_pdf(work / f"report-{pages}.pdf", pages)
        result = _run(f"{label}-{pages}-at-{limit}", source, limit, work)
        print(json.dumps({"pages": pages, "max_pages": limit, "bytes": source.stat().st_size, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
