"""
A long PDF through the real ``MinerUUploadFilesOperator`` (``dag.test()``, blocking) on the emulator:
split into slices and stitched, against an unsplit parse of the same file in the same run (an
emulator and a connection whose page limit holds it); with ``--adapt``, also sent whole under the
contract's 600 to an emulator at ``--max-pages`` (refused, re-planned smaller, sent again).

Each run is a child process (its own Airflow home and SQLite database); the emulator runs in this
process. Measured per run: the wall time of ``dag.test()`` (upload, parse, download, stitch) and the
peak RSS it adds over the child's baseline after Airflow, the provider and the DAG are loaded
(``VmHWM`` after ``/proc/self/clear_refs``). Emulator timings: ``pending=0.05 s``,
``per_page=0.005 s``, ``converting=0.05 s`` (slices parse in parallel, as on MinerU).

    python bench/bench_long_document_operator.py                # 1,000 text pages at max_pages=200
    python bench/bench_long_document_operator.py --scan-mb 150 --adapt   # the 150 MB scan
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
            task_id="upload",
            paths=[spec["source"]],
            output_path=spec["output"],
            deferrable=False,
            poll_interval=0.2,
            incremental=False,  # identical small files: the ledger would copy all but one
            upload_concurrency=16,
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
    rows = value["results"]
    states = sorted({r["state"] for r in rows})
    print(
        json.dumps(
            {
                "label": spec["label"],
                "state": states[0] if len(states) == 1 else states,
                "inputs": len(rows),
                "errors_seen": sum(1 for r in rows if r.get("err_msg")),
                "slices": [p["page_range"] for r in rows for p in r.get("parts", [])][:12],
                "seconds": round(seconds, 1),
                "peak_rss_added_mb": round((_status("VmHWM") - baseline) / MB, 1),
                "baseline_rss_mb": round(baseline / MB, 1),
            }
        )
    )


def _run(
    label: str, source: Path, max_pages: int, work: Path, connection_pages: int, **emulator: Any
) -> dict[str, Any]:
    from mineru_emulator.server import MinerUEmulator, Timings

    emu = MinerUEmulator(
        token=TOKEN,
        timings=emulator.pop("timings", None) or Timings(pending=0.05, per_page=0.005, converting=0.05),
        page_quota=10**9,
        max_pages=max_pages,
        max_file_bytes=400 * MB,
        fetch_demo_urls=False,
        **emulator,
    ).start()
    try:
        connection = json.loads(emu.connection_json())
        connection["extra"]["max_pages"] = connection_pages
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
        result["files_per_request"] = [len(r.json["files"]) for r in emu.requests_to("file_urls")]
        return result
    finally:
        emu.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--max-pages", type=int, default=200)
    parser.add_argument("--scan-mb", type=int, default=0, help="a scanned-style PDF of this many MB (0: text)")
    parser.add_argument("--adapt", action="store_true", help="also: the connection says 600, the server --max-pages")
    parser.add_argument("--folder", action="store_true", help="200 files, five of 450 pages; 50 files, 200 pages")
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return 0
    from tests.helpers.pdf_samples import classic_pdf
    from tests.long_documents.emulated import text_pdf

    work = Path(tempfile.mkdtemp(prefix="bench-long-op-"))
    if args.folder:
        return _folder(work)
    source = work / f"report-{args.pages}.pdf"
    if args.scan_mb:
        classic_pdf(source, args.pages, image_bytes=args.scan_mb * MB)
    else:
        text_pdf(source, args.pages)
    # The same pages, in the same run. The connection's max_pages extra is at most the contract's
    # 600, so the unsplit reference is the same file with its startxref offset zeroed: the provider
    # cannot count its pages (bounded reads find no table there) and sends it whole; the emulator
    # (pypdf, not strict) rebuilds the table and parses all pages at a page limit that holds them.
    # Then the file split at --max-pages, and (--adapt) sent whole under the contract's 600 to an
    # emulator at --max-pages (refused, re-planned smaller, sent again).
    uncounted = _uncountable_copy(source, work / f"whole-{args.pages}.pdf")
    print(json.dumps({"emulator_page_count_seconds": _emulator_count_seconds(source, uncounted)}))
    runs = [("unsplit", uncounted, args.pages, 600), ("split", source, args.max_pages, args.max_pages)]
    if args.adapt:
        runs.append(("adapt", source, args.max_pages, max(600, args.max_pages)))
    results = []
    for label, path, server_limit, connection_limit in runs:
        result = _run(f"{label}-{args.pages}", path, server_limit, work, connection_limit)
        results.append(result)
        print(json.dumps({"pages": args.pages, "bytes": path.stat().st_size, "max_pages": connection_limit, **result}))
    base = results[0]
    for result in results[1:]:
        print(
            f"{result['label']}: {result['seconds'] / base['seconds']:.2f}x the unsplit time, "
            f"peak RSS {result['peak_rss_added_mb'] - base['peak_rss_added_mb']:+.1f} MB over the unsplit run"
        )
    return 0


def _uncountable_copy(source: Path, target: Path) -> Path:
    """``source`` with its last ``startxref`` offset written as 0 (same length, padded): pages not countable."""
    import shutil

    shutil.copyfile(source, target)
    with open(target, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - 1024))
        tail = handle.read()
        at = tail.rindex(b"startxref") + len(b"startxref")
        digits = tail[at:].split(b"%%EOF", 1)[0]
        offset = digits.strip()
        handle.seek(max(0, size - 1024) + at + digits.index(offset))
        handle.write(b"0".rjust(len(offset)))
    from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages

    if count_pdf_pages(target) is not None:
        raise RuntimeError("the copy's pages are still countable")
    return target


def _emulator_count_seconds(source: Path, uncounted: Path) -> dict[str, float]:
    """What the emulator's page count (pypdf, not strict) costs on each file: the rebuild is the reference's extra."""
    from pypdf import PdfReader

    out = {}
    for label, path in (("countable", source), ("rebuilt", uncounted)):
        started = time.monotonic()
        len(PdfReader(str(path)).pages)
        out[label] = round(time.monotonic() - started, 2)
    return out


def _folder(work: Path) -> int:
    """A 200-file folder with five 450-page PDFs; the emulator at 50 files per request and 200 pages per
    file, the connection at the contract's 200 files and 600 pages: it learns both limits."""
    from mineru_emulator.server import Timings
    from tests.helpers import SAMPLES
    from tests.long_documents.emulated import text_pdf

    folder = work / "folder"
    folder.mkdir()
    invoice = (SAMPLES / "invoice.pdf").read_bytes()
    for number in range(195):
        (folder / f"invoice-{number:03d}.pdf").write_bytes(invoice)
    for number in range(5):
        text_pdf(folder / f"manual-{number}.pdf", 450, seed=number)
    timings = Timings(pending=0.02, per_page=0.0005, converting=0.02)
    result = _run("folder", folder, 200, work, 600, max_batch_files=50, timings=timings)
    print(json.dumps(result))
    return 0 if result["errors_seen"] == 0 and result["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
