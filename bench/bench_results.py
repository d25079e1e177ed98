"""
Results (target 4): download and extract a large result zip, against ``unzip`` on the same file.

Builds a ``--zip-mb`` MB result zip shaped like MinerU's (``full.md``, ``*_content_list.json``,
``layout.json``, ``*_model.json``, ``images/*.jpg``, ``*_origin.pdf``; mostly incompressible
random bytes, deflated as MinerU's zips are), serves it with ``python -m http.server`` on
loopback, then times, best of ``--repeat``:

- ``MinerUHook.download_and_extract(url, target)`` (stream to a temporary file, then the safe
  streaming extraction), in a fresh process, with its peak RSS over a baseline taken after the
  imports and a small warm-up download (``VmHWM``, reset through ``/proc/self/clear_refs``);
- ``extract_result_zip(zip, target)`` alone, on the local file;
- ``unzip -q -o zip -d target`` on the same local file, and ``curl -o zip url && unzip ...``
  (download + extract with the usual tools).

Run::

    python bench/bench_results.py
    python bench/bench_results.py --zip-mb 50 --repeat 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common


def build_result_zip(path: Path, total_mb: int) -> dict[str, Any]:
    """A MinerU-shaped result zip of about ``total_mb`` MB (10^6 bytes), mostly random bytes."""
    stem = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    block = os.urandom(1_000_000)
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "\n\n").encode()
    images = max(1, (total_mb * 45) // 100)  # ~45% in 1 MB images, ~50% the origin PDF, the rest JSON/Markdown
    origin_mb = max(1, total_mb - images - total_mb // 20)
    members = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("full.md", text * 200)
        json_blob = json.dumps(
            [{"type": "text", "text": "x" * 200, "bbox": [1, 2, 3, 4], "page_idx": i} for i in range(5000)]
        ).encode()
        archive.writestr(f"{stem}_content_list.json", json_blob)
        archive.writestr("layout.json", json_blob * 2)
        archive.writestr(f"{stem}_model.json", json_blob * 2)
        # JSON members that do not compress: about 5% of the total.
        for i in range(max(1, total_mb // 20)):
            archive.writestr(f"{stem}_extra_{i}.json", block)
        for i in range(images):
            archive.writestr(f"images/{i:04d}{block[i % 64]:02x}.jpg", bytes([i % 256]) + block[1:])
        with archive.open(f"{stem}_origin.pdf", "w", force_zip64=True) as member:
            for _ in range(origin_mb):
                member.write(block)
        members = len(archive.infolist())
    return {"bytes": path.stat().st_size, "members": members}


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _worker(url: str, small_url: str, zip_path: str, work: str, repeat: int, result_file: str) -> None:
    from airflow_provider_mineru.hooks.mineru import MinerUHook
    from airflow_provider_mineru.utils.safe_zip import extract_result_zip

    hook = MinerUHook()
    hook.download_and_extract(small_url, Path(work) / "warmup")  # lazy imports and the session: baseline
    shutil.rmtree(Path(work) / "warmup")
    baseline_kb = _common.proc_status_kb(os.getpid(), "VmRSS")
    out: dict[str, Any] = {"baseline_mb": baseline_kb / 1024, "download_and_extract": [], "extract_only": []}
    peak_delta = 0.0
    for i in range(repeat):
        target = Path(work) / f"hook-{i}"
        reset = _common.reset_peak_rss()
        started, cpu = time.perf_counter(), time.process_time()
        extracted = hook.download_and_extract(url, target)
        out["download_and_extract"].append(time.perf_counter() - started)
        out.setdefault("download_and_extract_cpu", []).append(time.process_time() - cpu)
        peak_kb = _common.proc_status_kb(os.getpid(), "VmHWM") if reset else _common.peak_rss_mb() * 1024
        peak_delta = max(peak_delta, (peak_kb - baseline_kb) / 1024)
        out["files"], out["total_bytes"] = len(extracted.files), extracted.total_bytes
        shutil.rmtree(target)
    out["peak_delta_mb"] = peak_delta
    out["peak_reset"] = reset
    for i in range(repeat):
        target = Path(work) / f"extract-{i}"
        started = time.perf_counter()
        extract_result_zip(zip_path, target)
        out["extract_only"].append(time.perf_counter() - started)
        shutil.rmtree(target)
    Path(result_file).write_text(json.dumps(out))


def run(args: argparse.Namespace) -> dict[str, Any]:
    _common.airflow_home()
    # The hook needs a connection; downloads go to the URL given, with no token.
    os.environ["AIRFLOW_CONN_MINERU_DEFAULT"] = json.dumps(
        {"conn_type": "mineru", "host": "http://127.0.0.1:9/api/v4", "password": _common.TOKEN}
    )
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="mineru-bench-results-"))
    out: dict[str, Any] = {
        "benchmark": "results",
        "params": {"zip_mb": args.zip_mb, "repeat": args.repeat},
        "machine": _common.machine(),
    }
    server = None
    try:
        served = workdir / "served"
        served.mkdir()
        zip_path = served / "result.zip"
        out["zip"] = build_result_zip(zip_path, args.zip_mb)
        build_result_zip(served / "small.zip", 1)
        port = _common.free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(served)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/result.zip"
        for _ in range(100):  # wait for the server
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/small.zip", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        print(
            f"result zip: {out['zip']['bytes'] / 1e6:.0f} MB, {out['zip']['members']} members",
            flush=True,
        )

        tools: dict[str, list[float]] = {"unzip": [], "curl + unzip": []}
        unzip = shutil.which("unzip")
        curl = shutil.which("curl")
        for i in range(args.repeat):
            if unzip:
                target = workdir / f"unzip-{i}"
                tools["unzip"].append(_time([unzip, "-q", "-o", str(zip_path), "-d", str(target)]))
                shutil.rmtree(target)
            if unzip and curl:
                target, copy = workdir / f"curl-{i}", workdir / "copy.zip"
                started_tool = time.perf_counter()
                subprocess.run([curl, "-s", "-o", str(copy), url], check=True)
                subprocess.run([unzip, "-q", "-o", str(copy), "-d", str(target)], check=True)
                tools["curl + unzip"].append(time.perf_counter() - started_tool)
                shutil.rmtree(target)
                copy.unlink()
        if not unzip:  # fall back to the standard library, and say so
            import zipfile as zf

            tools["zipfile.extractall (no unzip found)"] = []
            for i in range(args.repeat):
                target = workdir / f"py-{i}"
                t0 = time.perf_counter()
                with zf.ZipFile(zip_path) as archive:
                    archive.extractall(target)
                tools["zipfile.extractall (no unzip found)"].append(time.perf_counter() - t0)
                shutil.rmtree(target)

        result_file = workdir / "worker.json"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                url,
                f"http://127.0.0.1:{port}/small.zip",
                str(zip_path),
                str(workdir),
                str(args.repeat),
                str(result_file),
            ],
            check=True,
            env=os.environ.copy(),
        )
        hook = json.loads(result_file.read_text())
        out["hook"] = hook
        out["tools"] = tools
        best = {name: min(times) for name, times in tools.items() if times}
        best["MinerUHook.download_and_extract"] = min(hook["download_and_extract"])
        best["extract_result_zip (local file)"] = min(hook["extract_only"])
        out["best_s"] = best
        out["median_s"] = {name: statistics.median(times) for name, times in tools.items() if times}
        out["median_s"]["MinerUHook.download_and_extract"] = statistics.median(hook["download_and_extract"])
        out["median_s"]["extract_result_zip (local file)"] = statistics.median(hook["extract_only"])
        reference = "unzip" if "unzip" in best else next(iter(best))
        out["reference"] = reference
        out["ratio_vs_reference"] = {name: value / best[reference] for name, value in best.items()}
        for name, value in best.items():
            print(f"{name:>34}: best {value:.2f}s ({out['ratio_vs_reference'][name]:.2f}x {reference})", flush=True)
        print(
            f"peak RSS of download_and_extract: {hook['peak_delta_mb']:+.1f} MB over the baseline of "
            f"{hook['baseline_mb']:.0f} MB ({hook['files']} files, {hook['total_bytes'] / 1e6:.0f} MB written)",
            flush=True,
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    out["elapsed_s"] = time.monotonic() - started
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, small_url, zip_path, work, repeat, result_file = sys.argv[2:8]
        _worker(url, small_url, zip_path, work, int(repeat), result_file)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip-mb", type=int, default=200, help="size of the result zip, in MB (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    _common.write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
