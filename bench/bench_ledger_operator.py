"""
The ledger through the real operator (issue 21): a re-run of ``--docs`` unchanged uploaded documents.

``MinerUUploadFilesOperator(output_path=..., deferrable=False).execute()`` against the emulator (in
its own process), twice over the same folder of distinct small PDFs: the first run uploads, parses
and lands them all (and records the ledger); the second must reuse every one. Printed per run: wall
time, and from the emulator's request log the paid calls (``file-urls/batch``), uploads (PUTs) and
every request to the emulator; for the second run also the XCom's ``counts``. Not a test::

    python bench/bench_ledger_operator.py                 # 1,000 documents
    python bench/bench_ledger_operator.py --docs 200 --json out.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common

_common.airflow_home()


def _pdfs(folder: Path, docs: int) -> None:
    """``docs`` distinct one-page PDFs (each a sample PDF with its own trailing comment)."""
    sample = (Path(__file__).resolve().parent.parent / "dags" / "sample_documents" / "invoice.pdf").read_bytes()
    for i in range(docs):
        (folder / f"doc-{i:05d}.pdf").write_bytes(sample + f"\n% bench document {i}\n".encode())


def _run(folder: Path, output: Path, emu: _common.EmulatorProcess) -> dict:
    from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

    emu.clear_requests()
    operator = MinerUUploadFilesOperator(
        task_id="parse", paths=str(folder), output_path=str(output), deferrable=False, poll_interval=0.5
    )
    started = time.perf_counter()
    value = operator.execute(_common.task_context())
    seconds = time.perf_counter() - started
    log = emu.requests_log()
    return {
        "seconds": round(seconds, 2),
        "file_urls_calls": sum(1 for r in log if r["endpoint"] == "file_urls"),
        "uploads": sum(1 for r in log if r["endpoint"] == "upload"),
        "requests_to_emulator": len(log),
        "counts": value.get("counts"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mineru-bench-ledger-op-"))
    try:
        folder, output = work / "in", work / "out"
        folder.mkdir()
        _pdfs(folder, args.docs)
        with _common.emulator_process(pending=0.05, per_page=0.001, converting=0.05) as emu:
            os.environ["AIRFLOW_CONN_MINERU_DEFAULT"] = emu.connection_json(max_retries=3)
            first = _run(folder, output, emu)
            second = _run(folder, output, emu)
        result = {"documents": args.docs, "first_run": first, "re_run_unchanged": second, **_common.machine()}
        print(result)
        _common.write_json(args.json, result)
        if second["uploads"] or second["file_urls_calls"]:
            raise SystemExit("the re-run paid")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
