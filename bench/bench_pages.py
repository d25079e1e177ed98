"""
Page counting and the memory of a large upload (issue 11), against pypdf's naive count.

Inputs (written once, in bounded memory, by ``tests/helpers/pdf_samples.py``):

- ``broken``: ``--mb`` MB, 300 pages of large image streams (a scan) and a ``startxref`` pointing
  nowhere: a reader must rebuild the cross-reference table, which pypdf does by reading the
  whole file;
- ``scanned``: ``--mb`` MB, 300 pages, one large image stream per page, a correct table;
- ``xref-stream``: ``--mb`` MB, 3,000 pages, a compressed cross-reference stream and the page
  tree in an object stream (PDF 1.5+ writers).

Each count runs in a fresh process: wall time, CPU time and peak RSS over the process's
baseline after its imports (``VmHWM`` reset through ``/proc/self/clear_refs``), for
:func:`airflow_provider_mineru.inputs.pdf_pages.count_pdf_pages` and for
``len(pypdf.PdfReader(path, strict=False).pages)``.

Then the upload of the ``broken`` file through ``MinerUUploadFilesOperator`` (resolve, page
count, ``POST /file-urls/batch``, streamed PUT) against the emulator, in a fresh process, beside
the same upload of a one-page PDF: the peak RSS the large file adds to the task; then the same
with the page count the provider used before (pypdf), in the same run.

Run::

    python bench/bench_pages.py
    python bench/bench_pages.py --mb 20 --skip-pypdf
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

sys.path.insert(0, str(_common.REPO))

from tests.helpers.pdf_samples import classic_pdf, xref_stream_pdf

COUNT_WORKER = r"""
import json, os, sys, time, logging
sys.path.insert(0, sys.argv[1])
import _common
logging.disable(logging.CRITICAL)
how, path = sys.argv[2], sys.argv[3]
if how == "provider":
    from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages
    count = count_pdf_pages
else:
    from pypdf import PdfReader
    def count(p):
        try:
            return len(PdfReader(p, strict=False).pages)
        except Exception as exc:
            return f"{type(exc).__name__}"
baseline = _common.proc_status_kb(os.getpid(), "VmRSS")
_common.reset_peak_rss()
cpu0, t0 = time.process_time(), time.perf_counter()
pages = count(path)
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
peak = _common.proc_status_kb(os.getpid(), "VmHWM")
print(json.dumps({"pages": pages, "wall_s": wall, "cpu_s": cpu, "rss_over_baseline_mb": (peak - baseline) / 1024}))
"""

UPLOAD_WORKER = r"""
import json, os, sys, time, logging
sys.path.insert(0, sys.argv[1])
import _common
logging.disable(logging.WARNING)
small, big, counter = sys.argv[2], sys.argv[3], sys.argv[4]
from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator
if counter == "pypdf":  # what the provider did before: pypdf's reader, which may read the whole file
    import airflow_provider_mineru.inputs.sources as sources
    from pypdf import PdfReader
    def naive(path):
        try:
            with open(path, "rb") as handle:
                return len(PdfReader(handle, strict=False).pages)
        except Exception:
            return None
    sources.count_pdf_pages = naive
def upload(path, task_id):
    op = MinerUUploadFilesOperator(task_id=task_id, paths=[path], wait_for_completion=False)
    return op.execute(_common.task_context())
upload(small, "warm")
baseline = _common.proc_status_kb(os.getpid(), "VmRSS")
_common.reset_peak_rss()
t0 = time.perf_counter()
upload(small, "small")
small_peak = _common.proc_status_kb(os.getpid(), "VmHWM")
small_wall = time.perf_counter() - t0
_common.reset_peak_rss()
t0 = time.perf_counter()
upload(big, "big")
big_peak = _common.proc_status_kb(os.getpid(), "VmHWM")
print(json.dumps({"baseline_rss_mb": baseline / 1024, "small_peak_mb": small_peak / 1024,
                  "big_peak_mb": big_peak / 1024,
                  "big_over_small_mb": (big_peak - small_peak) / 1024, "small_wall_s": small_wall,
                  "big_wall_s": time.perf_counter() - t0}))
"""


def _worker(code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", code, str(_common.BENCH_DIR), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    _common.airflow_home()
    workdir = Path(tempfile.mkdtemp(prefix="mineru-bench-pages-", dir=args.workdir))
    mb = 1024 * 1024
    results: dict[str, Any] = {"machine": _common.machine(), "mb": args.mb, "counts": {}}
    try:
        inputs = {
            "broken": classic_pdf(workdir / "broken.pdf", 300, image_bytes=args.mb * mb, startxref_delta=None),
            "scanned": classic_pdf(workdir / "scanned.pdf", 300, image_bytes=args.mb * mb),
            "xref-stream": xref_stream_pdf(workdir / "xref-stream.pdf", 3000, pad_bytes=args.mb * mb),
        }
        for name, path in inputs.items():
            row: dict[str, Any] = {"bytes": path.stat().st_size}
            row["provider"] = _worker(COUNT_WORKER, "provider", str(path))
            if not args.skip_pypdf:
                row["pypdf"] = _worker(COUNT_WORKER, "pypdf", str(path))
            results["counts"][name] = row
            line = f"{name:12s} {row['bytes'] / 1e6:6.1f} MB  provider {row['provider']['pages']!s:>5} pages "
            line += f"{row['provider']['wall_s']:.3f} s +{row['provider']['rss_over_baseline_mb']:.1f} MB"
            if "pypdf" in row:
                p = row["pypdf"]
                line += f" | pypdf {p['pages']!s:>5} pages {p['wall_s']:.2f} s (cpu {p['cpu_s']:.2f}) "
                line += f"+{p['rss_over_baseline_mb']:.1f} MB"
            print(line, flush=True)

        small = classic_pdf(workdir / "small.pdf", 1)
        with _common.emulator_process() as emu:
            env = os.environ.copy()
            env["AIRFLOW_CONN_MINERU_DEFAULT"] = emu.connection_json()
            for counter in ("provider", "pypdf"):
                upload = _worker(UPLOAD_WORKER, str(small), str(inputs["broken"]), counter, env=env)
                results["upload" if counter == "provider" else "upload_pypdf"] = upload
                print(
                    f"upload via MinerUUploadFilesOperator, {counter} page count: 1-page PDF peak "
                    f"{upload['small_peak_mb']:.1f} MB, {inputs['broken'].stat().st_size / 1e6:.0f} MB broken-xref "
                    f"PDF peak {upload['big_peak_mb']:.1f} MB: +{upload['big_over_small_mb']:.1f} MB "
                    f"({upload['big_wall_s']:.2f} s)"
                )
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=150)
    parser.add_argument("--skip-pypdf", action="store_true")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = _common.run_timed(run, args)
    _common.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
