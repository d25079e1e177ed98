"""
Long documents: which upload strategy is exact and cheaper, and what split and stitch cost.

A 1,000-page PDF at ``max_pages=200`` against the emulator (cloud flavor, in this process; the
client steps whose memory is measured run in child processes):

* **page_ranges**: five ``/file-urls/batch`` entries of the same file, each with its
  ``page_ranges`` (``1-200`` ... ``801-1000``), the whole file PUT to each entry's URL; once against
  an emulator limited to 200 pages per file (as configured), once against one that would take the
  whole file (what a server honouring ``page_ranges`` for its limit would do);
* **split**: :func:`~airflow_provider_mineru.long_documents.split.split_pdf` into five parts, one
  entry and one PUT per part;
* **unsplit**: the whole file once, on an emulator without the limit (the time reference).

Measured: bytes sent in PUTs, pages billed (the emulator's quota counter), the slices' outcome,
wall time from the first request to the last zip downloaded, and for the client steps (split; land
every slice and stitch; land the unsplit zip) the time and the peak RSS they add over the child's
own baseline (``VmHWM`` after ``/proc/self/clear_refs``), for a small text PDF and for a 150 MB
scanned-style one (one image stream per page).

    python bench/bench_long_documents.py                 # both documents (about 3 minutes)
    python bench/bench_long_documents.py --quick         # 1,000 pages, 20 MB scan
    python bench/bench_long_documents.py --json out.json
"""

from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TOKEN = "bench-token-0123456789"
MB = 1024 * 1024


# -- child steps: measured in their own process -----------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _step(args: argparse.Namespace) -> None:
    """Run one client step in this (child) process; print time and peak RSS added as JSON."""
    import gc

    from airflow_provider_mineru.long_documents.plan import plan_slices
    from airflow_provider_mineru.long_documents.split import split_pdf
    from airflow_provider_mineru.long_documents.stitch import part_folder, stitch_parts
    from airflow_provider_mineru.results.landing import land_result_zip

    spec = json.loads(args.step)
    gc.collect()
    # Give memory freed after the imports (Airflow's import peak) back to the system, so the heap it
    # leaves resident cannot hide what the step allocates.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    baseline = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current RSS
    started = time.perf_counter()
    out: dict[str, Any] = {}
    if spec["what"] == "split":
        plan = plan_slices(Path(spec["source"]).name, spec["pages"], spec["max_pages"])
        parts = split_pdf(spec["source"], plan, spec["workdir"])
        out["parts"] = [{"path": str(p.path), "size": p.size, "page_ranges": p.slice.page_ranges} for p in parts]
    elif spec["what"] == "stitch":
        plan = plan_slices(Path(spec["source"]).name, spec["pages"], spec["max_pages"])
        for piece, zip_path in zip(plan.slices, spec["zips"], strict=True):
            land_result_zip(zip_path, str(part_folder(spec["target"], piece)))
        result = stitch_parts(spec["target"], plan, stem=Path(spec["source"]).stem, origin_pdf=spec["source"])
        out["files"] = len(result.files)
    elif spec["what"] == "land":
        land_result_zip(spec["zip"], spec["target"])
    out["seconds"] = round(time.perf_counter() - started, 3)
    out["peak_rss_added_mb"] = round((_status("VmHWM") - baseline) / MB, 1)
    out["baseline_rss_mb"] = round(baseline / MB, 1)
    print(json.dumps(out))


def _run_step(spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, __file__, "--step", json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- HTTP, as plain as the contract ------------------------------------------------------------------


def _call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        envelope = json.loads(response.read())
    if envelope.get("code") != 0:
        raise RuntimeError(f"{path}: {envelope}")
    return envelope["data"]


def _put(url: str, path: str) -> int:
    """PUT a file, streamed, with no Content-Type (presigned URLs refuse one)."""
    size = os.path.getsize(path)
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=600)
    try:
        with open(path, "rb") as handle:
            connection.request(
                "PUT",
                parts.path + ("?" + parts.query if parts.query else ""),
                body=handle,
                headers={"Content-Length": str(size)},
            )
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"PUT {parts.path}: HTTP {response.status}")
    finally:
        connection.close()
    return size


def _send(emu: Any, files: list[tuple[str, str, str | None]], workdir: Path) -> dict[str, Any]:
    """Upload ``(name, path, page_ranges)`` in one batch, wait, download the zips; what it cost."""
    base = emu.base_url
    billed_before = emu.pages_used
    started = time.perf_counter()
    entries = [
        {"name": name, "data_id": f"slice{i}"} | ({"page_ranges": pr} if pr else {})
        for i, (name, _, pr) in enumerate(files)
    ]
    data = _call(base, "POST", "/file-urls/batch", {"files": entries})
    sent = sum(_put(url, path) for url, (_, path, _) in zip(data["file_urls"], files, strict=True))
    while True:
        results = _call(base, "GET", f"/extract-results/batch/{data['batch_id']}")["extract_result"]
        if all(r["state"] in ("done", "failed") for r in results):
            break
        time.sleep(0.05)
    zips: list[str] = []
    for index, row in enumerate(results):
        if row["state"] == "done":
            target = workdir / f"result-{index}.zip"
            with urllib.request.urlopen(row["full_zip_url"], timeout=600) as response, open(target, "wb") as out:
                shutil.copyfileobj(response, out, 1024 * 1024)
            zips.append(str(target))
    return {
        "bytes_sent": sent,
        "pages_billed": emu.pages_used - billed_before,
        "states": [r["state"] for r in results],
        "err_msgs": sorted({r["err_msg"] for r in results if r["err_msg"]}),
        "seconds_to_results": round(time.perf_counter() - started, 2),
        "zips": zips,
    }


# -- the run --------------------------------------------------------------------------------------


def _emulator(max_pages: int) -> Any:
    from mineru_emulator.server import MinerUEmulator, Timings

    return MinerUEmulator(
        token=TOKEN,
        timings=Timings(pending=0.05, per_page=0.005, converting=0.05),
        page_quota=10**9,  # counts pages billed; never reached
        max_pages=max_pages,
        max_file_bytes=400 * MB,
        member_prefix="id",
        fetch_demo_urls=False,
    ).start()


def measure(label: str, source: Path, pages: int, max_pages: int, work: Path) -> dict[str, Any]:
    from airflow_provider_mineru.long_documents.plan import plan_slices

    plan = plan_slices(source.name, pages, max_pages)
    size = source.stat().st_size
    out: dict[str, Any] = {"document": label, "pages": pages, "bytes": size, "max_pages": max_pages}
    limited, unlimited = _emulator(max_pages), _emulator(10**6)
    try:
        # Reference: the whole file, once, where the limit does not apply.
        ref = _send(unlimited, [(source.name, str(source), None)], work)
        land = _run_step({"what": "land", "zip": ref["zips"][0], "target": str(work / "unsplit")})
        out["unsplit"] = {
            **_public(ref),
            "client_land": land,
            "total_seconds": ref["seconds_to_results"] + land["seconds"],
        }

        # (a) page_ranges over the same file, once per slice.
        ranged = [(source.name, str(source), s.page_ranges) for s in plan.slices]
        out["page_ranges_limited"] = _public(_send(limited, ranged, work))
        out["page_ranges_if_honoured"] = _public(_send(unlimited, ranged, work))

        # (b) local split: one part per slice.
        parts_dir = work / "parts"
        parts_dir.mkdir()
        split = _run_step(
            {"what": "split", "source": str(source), "pages": pages, "max_pages": max_pages, "workdir": str(parts_dir)}
        )
        sent = _send(limited, [(Path(p["path"]).name, p["path"], None) for p in split["parts"]], work)
        stitch = _run_step(
            {
                "what": "stitch",
                "source": str(source),
                "pages": pages,
                "max_pages": max_pages,
                "zips": sent["zips"],
                "target": str(work / "stitched" / source.stem),
            }
        )
        total = split["seconds"] + sent["seconds_to_results"] + stitch["seconds"]
        out["split"] = {
            **_public(sent),
            "client_split": {k: v for k, v in split.items() if k != "parts"},
            "client_land_and_stitch": stitch,
            "total_seconds": round(total, 2),
            "time_vs_unsplit": round(total / out["unsplit"]["total_seconds"], 2),
        }
        for piece in (work / "stitched").glob("*/parts/*"):
            for zip_file in piece.glob("*.zip"):
                zip_file.unlink()
    finally:
        limited.stop()
        unlimited.stop()
    return out


def _public(sent: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sent.items() if k != "zips"}


def _tree(folder: Path, limit: int = 40) -> str:
    lines = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if len(lines) < limit:
            lines.append(
                ("  " * (len(rel.parts) - 1)) + rel.name + ("/" if path.is_dir() else f"  ({path.stat().st_size} B)")
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a 20 MB scan instead of 150 MB")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--max-pages", type=int, default=200)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and print its tree")
    args = parser.parse_args()
    if args.step:
        _step(args)
        return 0

    import logging

    logging.getLogger("airflow_provider_mineru").setLevel(logging.WARNING)
    from mineru_emulator._pdf import make_pdf
    from tests.helpers.pdf_samples import classic_pdf

    root = Path(tempfile.mkdtemp(prefix="mineru-bench-long-"))
    figures: list[dict[str, Any]] = []
    try:
        text = root / "text" / "report.pdf"
        text.parent.mkdir()
        text.write_bytes(make_pdf([[f"Page {p + 1}", f"Line two of page {p + 1}"] for p in range(args.pages)]))
        scan = root / "scan" / "scan.pdf"
        scan.parent.mkdir()
        classic_pdf(scan, args.pages, image_bytes=(20 if args.quick else 150) * MB)
        for label, source in (("text", text), ("scan", scan)):
            figures.append(measure(label, source, args.pages, args.max_pages, source.parent))
            print(json.dumps(figures[-1], indent=1), flush=True)
        if args.keep:
            print(_tree(root / "text" / "stitched" / "report"))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
