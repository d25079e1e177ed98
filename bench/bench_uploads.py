"""
Uploads (target 3): ``MinerUUploadFilesOperator`` against the contract's sequential sample loop,
and the memory one large upload costs.

Against the emulator (its own process, loopback) with ``Fault(endpoint="upload", delay=...)``
adding a latency to every PUT:

1. ``--files`` files of ``--file-mb`` MB (random bytes, ``.png`` so nothing parses them):
   - the operator: ``MinerUUploadFilesOperator(wait_for_completion=False).execute()`` with a
     stand-in task context (checks the files, one ``POST /file-urls/batch``, ``upload_concurrency``
     PUTs at a time, streamed, then one ``GET`` of the batch);
   - the contract's sample: the same ``POST`` through the hook, then
     ``requests.put(url, data=open(path, "rb"))`` one file after another.
   Both are timed from the ``POST`` to the last PUT's answer; the emulator's log confirms every
   PUT arrived (HTTP 200).
2. Peak RSS of one ``--big-mb`` MB upload with ``MinerUHook.upload_file``, in a fresh process:
   baseline after the imports and a small warm-up upload, peak from ``VmHWM`` (reset first
   through ``/proc/self/clear_refs``). The same for ``requests.put(url, data=f.read())``, to show
   what reading the file whole would cost.

Run::

    python bench/bench_uploads.py
    python bench/bench_uploads.py --files 50 --concurrency 4 8 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common


def _make_files(directory: Path, count: int, size: int) -> list[Path]:
    block = os.urandom(size)
    paths = []
    for i in range(count):
        path = directory / f"doc-{i:03d}.png"
        with open(path, "wb") as handle:
            handle.write(i.to_bytes(8, "big"))  # every file differs
            handle.write(memoryview(block)[8:])
        paths.append(path)
    return paths


def _uploads_ok(emu: _common.EmulatorProcess, count: int) -> dict[str, Any]:
    log = emu.requests_log()
    uploads = [r for r in log if r["endpoint"] == "upload"]
    statuses = Counter(r["status"] for r in uploads)
    if statuses != Counter({200: count}):
        raise RuntimeError(f"expected {count} uploads answered 200, the emulator saw {dict(statuses)}")
    return {"puts": len(uploads), "bytes": sum(r["body_size"] for r in uploads)}


def _fresh(emu: _common.EmulatorProcess, delay: float) -> None:
    emu.admin("POST", "reset")
    if delay:
        emu.inject(endpoint="upload", delay=delay, times=10**6, name="latency")


def _operator_upload(emu: _common.EmulatorProcess, folder: Path, concurrency: int, delay: float) -> dict[str, Any]:
    from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

    _fresh(emu, delay)
    op = MinerUUploadFilesOperator(
        task_id="upload", paths=str(folder / "*.png"), upload_concurrency=concurrency, wait_for_completion=False
    )
    cpu, emu_cpu = time.process_time(), emu.cpu_seconds()
    started = time.perf_counter()
    # The public path: checks every file, POST /file-urls/batch, the PUTs, then one GET of the batch
    # (the state right after submitting, as a submit that does not wait returns).
    result = op.execute(_common.task_context())
    elapsed = time.perf_counter() - started
    cpu, emu_cpu = time.process_time() - cpu, emu.cpu_seconds() - emu_cpu
    errors = [r for r in result["results"] if r.get("err_msg")]
    if errors:
        raise RuntimeError(f"uploads failed: {errors[:3]}")
    return {
        "variant": f"operator, upload_concurrency={concurrency}",
        "seconds": elapsed,
        "client_cpu_s": cpu,
        "emulator_cpu_s": emu_cpu,
        "peak_rss_mb": _common.peak_rss_mb(),
        **_uploads_ok(emu, len(result["results"])),
    }


def _sequential_upload(emu: _common.EmulatorProcess, paths: list[Path], delay: float) -> dict[str, Any]:
    import requests

    from airflow_provider_mineru.hooks.mineru import MinerUHook

    _fresh(emu, delay)
    hook = MinerUHook()
    cpu, emu_cpu = time.process_time(), emu.cpu_seconds()
    started = time.perf_counter()
    grant = hook.request_upload_urls([p.name for p in paths])
    for path, url in zip(paths, grant.file_urls, strict=True):
        with open(path, "rb") as f:  # the contract's sample, verbatim apart from the time-out
            res = requests.put(url, data=f, timeout=300)
            if res.status_code != 200:
                raise RuntimeError(f"upload of {path.name} answered {res.status_code}")
    elapsed = time.perf_counter() - started
    cpu, emu_cpu = time.process_time() - cpu, emu.cpu_seconds() - emu_cpu
    return {
        "variant": "sequential sample loop",
        "seconds": elapsed,
        "client_cpu_s": cpu,
        "emulator_cpu_s": emu_cpu,
        **_uploads_ok(emu, len(paths)),
    }


# -- peak RSS of one large upload, in a fresh process --------------------------------------------


def _rss_worker(variant: str, small: str, small_url: str, big: str, big_url: str, result_file: str) -> None:
    import requests

    from airflow_provider_mineru.hooks.mineru import MinerUHook

    hook = MinerUHook()
    # Warm-up: a small upload through the same code, so lazily imported modules and the session
    # are part of the baseline, not of the upload's cost.
    if variant == "hook.upload_file":
        hook.upload_file(small_url, small)
    else:
        with open(small, "rb") as f:
            requests.put(small_url, data=f.read(), timeout=300)
    baseline_kb = _common.proc_status_kb(os.getpid(), "VmRSS")
    reset = _common.reset_peak_rss()
    started = time.perf_counter()
    if variant == "hook.upload_file":
        hook.upload_file(big_url, big)
    else:
        with open(big, "rb") as f:
            response = requests.put(big_url, data=f.read(), timeout=300)
            response.raise_for_status()
    elapsed = time.perf_counter() - started
    peak_kb = _common.proc_status_kb(os.getpid(), "VmHWM") if reset else _common.peak_rss_mb() * 1024
    Path(result_file).write_text(
        json.dumps(
            {
                "variant": variant,
                "baseline_mb": baseline_kb / 1024,
                "peak_mb": peak_kb / 1024,
                "delta_mb": (peak_kb - baseline_kb) / 1024,
                "peak_reset": reset,
                "seconds": elapsed,
            }
        )
    )


def _big_upload_rss(emu: _common.EmulatorProcess, workdir: Path, big_mb: int, variant: str) -> dict[str, Any]:
    from airflow_provider_mineru.hooks.mineru import MinerUHook

    _fresh(emu, 0.0)
    small = workdir / "warmup.png"
    big = workdir / "big.png"
    if not small.exists():
        small.write_bytes(os.urandom(1024 * 1024))
    if not big.exists():
        block = os.urandom(1_000_000)
        with open(big, "wb") as handle:
            for _ in range(big_mb):
                handle.write(block)
    grant = MinerUHook().request_upload_urls([small.name, big.name])
    result_file = workdir / "rss.json"
    command = [sys.executable, __file__, "--rss-worker", variant, str(small), grant.file_urls[0], str(big)]
    subprocess.run([*command, grant.file_urls[1], str(result_file)], check=True, env=os.environ.copy())
    result = json.loads(result_file.read_text())
    result["file_mb"] = big.stat().st_size / 1e6
    result["received_mb"] = (_uploads_ok(emu, 2)["bytes"] - small.stat().st_size) / 1e6
    if round(result["received_mb"] * 1e6) != big.stat().st_size:
        raise RuntimeError(f"the emulator received {result['received_mb']} MB of {result['file_mb']} MB")
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    _common.airflow_home()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="mineru-bench-uploads-"))
    out: dict[str, Any] = {
        "benchmark": "uploads",
        "params": {
            "files": args.files,
            "file_mb": args.file_mb,
            "delay_s": args.delay,
            "concurrency": args.concurrency,
            "big_mb": args.big_mb,
        },
        "machine": _common.machine(),
    }
    try:
        folder = workdir / "docs"
        folder.mkdir()
        paths = _make_files(folder, args.files, int(args.file_mb * 1_000_000))
        with _common.emulator_process() as emu:
            os.environ["AIRFLOW_CONN_MINERU_DEFAULT"] = emu.connection_json()
            runs = [_sequential_upload(emu, paths, args.delay)]
            runs += [_operator_upload(emu, folder, c, args.delay) for c in args.concurrency]
            for r in runs:
                r["mb_per_s"] = r["bytes"] / 1e6 / r["seconds"]
                print(
                    f"{r['variant']:>32}: {r['puts']} PUTs, {r['bytes'] / 1e6:.0f} MB in {r['seconds']:.2f}s "
                    f"({r['mb_per_s']:.0f} MB/s); CPU: client {r['client_cpu_s']:.2f}s, "
                    f"emulator {r['emulator_cpu_s']:.2f}s",
                    flush=True,
                )
            out["runs"] = runs
            sequential = runs[0]["seconds"]
            out["speedup"] = {r["variant"]: sequential / r["seconds"] for r in runs[1:]}
            for variant, speedup in out["speedup"].items():
                print(f"{variant} is {speedup:.1f}x faster than the sequential loop", flush=True)
            shutil.rmtree(folder)
            out["big_upload"] = []
            for variant in ("hook.upload_file", "requests.put(data=f.read())"):
                r = _big_upload_rss(emu, workdir, args.big_mb, variant)
                out["big_upload"].append(r)
                print(
                    f"{variant:>32}: {r['file_mb']:.0f} MB upload, peak RSS {r['peak_mb']:.0f} MB, "
                    f"{r['delta_mb']:+.1f} MB over the baseline of {r['baseline_mb']:.0f} MB, {r['seconds']:.2f}s",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out["elapsed_s"] = time.monotonic() - started
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-worker":
        _rss_worker(*sys.argv[2:8])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-mb", type=float, default=5.0, help="size of each file, in MB (10^6 bytes)")
    parser.add_argument("--delay", type=float, default=0.05, help="latency the emulator adds to every PUT, seconds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8], help="upload_concurrency values")
    parser.add_argument("--big-mb", type=int, default=200, help="size of the large upload, in MB (10^6 bytes)")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    _common.write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
