"""
Result downloads (issue 11): the provider's concurrent, atomic downloads against a sequential
``requests`` loop, and the memory 200 large results cost.

A file server in its own process (``ThreadingHTTPServer`` on loopback, ``--latency`` seconds of
delay before each answer, as a CDN far away) serves ``--zips`` MinerU-shaped result zips. Each
side runs in a fresh process, in the same run:

- ``provider``: :func:`~airflow_provider_mineru.waiting.finish.finish_wait` for one batch of
  ``done`` documents with ``output_path`` (what every operator and sensor runs after its wait):
  ``download_concurrency`` downloads at once (the connection extra, default 16), each streamed to a
  temporary file, extracted beside its folder, completion marker, renamed into place; then the
  same call again, which must download nothing (the marker);
- ``sequential``: ``requests.get(url, stream=True)`` to a file, then ``zipfile.extractall``, one
  zip after another (the same work, as a hand-written loop does it).

Measured: wall time, CPU seconds, peak RSS over the process's baseline after its imports and one
warm-up download (``VmHWM`` reset through ``/proc/self/clear_refs``), and the most downloads in
flight at once, as the server saw them.

Run::

    python bench/bench_downloads.py                      # 200 small zips, then 200 x 5 MB
    python bench/bench_downloads.py --zips 50 --zip-kb 100 --big-mb 0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

SERVER = r"""
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
root, delay = sys.argv[1], float(sys.argv[2])
state = {"in_flight": 0, "max_in_flight": 0, "gets": 0}
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/__stats__":
            body = json.dumps(state).encode()
        elif self.path == "/__reset__":
            with lock:
                state.update(max_in_flight=0, gets=0)
            body = b"{}"
        else:
            body = None
        if body is not None:
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        with lock:
            state["in_flight"] += 1; state["gets"] += 1
            state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            time.sleep(delay)
            path = os.path.join(root, os.path.basename(self.path.split("?")[0]))
            size = os.path.getsize(path)
            self.send_response(200); self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(size)); self.end_headers()
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk: break
                    self.wfile.write(chunk)
        finally:
            with lock:
                state["in_flight"] -= 1
s = ThreadingHTTPServer(("127.0.0.1", 0), H); s.daemon_threads = True; s.request_queue_size = 256
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def make_zips(folder: Path, count: int, size: int) -> list[str]:
    """MinerU-shaped zips: ``full.md``, a content list, a layout, images (random bytes, stored)."""
    names = []
    image = os.urandom(max(size - 4096, 1024))
    for i in range(count):
        name = f"r{i:04d}.zip"
        with zipfile.ZipFile(folder / name, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("full.md", f"# Document {i}\n\n![](images/p1.jpg)\n" * 20)
            zf.writestr(f"{i:04d}_content_list.json", json.dumps([{"type": "text", "page_idx": 0, "text": "x"}]))
            zf.writestr("layout.json", '{"pdf_info": []}')
            zf.writestr("images/p1.jpg", i.to_bytes(8, "big") + image[8:], compress_type=zipfile.ZIP_STORED)
        names.append(name)
    return names


WORKER = r"""
import json, os, resource, sys, time, zipfile
sys.path.insert(0, sys.argv[1])
import _common
mode, base, names, out, warm = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5], sys.argv[6]
import logging
logging.disable(logging.INFO)
import requests
from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.waiting.finish import ResultDownloader, finish_wait
from airflow_provider_mineru.waiting.waits import BATCH_WAIT, WaitedDocuments
log = logging.getLogger("bench")
def docs(names):
    return [DocumentResult(state=MinerUState.DONE, raw_state="done", task_id=f"t-{n}", file_name=n[:-4] + ".pdf",
                           full_zip_url=f"{base}/{n}?sig=x") for n in names]
def provider(names, target):
    return finish_wait(BATCH_WAIT, WaitedDocuments(["b"], docs(names)), ResultDownloader(MinerUHook(), target, log),
                       fail_on_file_error=True).value
def sequential(names, target):
    session = requests.Session()
    for n in names:
        folder = os.path.join(target, n[:-4]); os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "result.zip")
        with session.get(f"{base}/{n}?sig=x", stream=True, timeout=300) as r:
            r.raise_for_status()
            with open(path, "wb") as f:
                for chunk in r.iter_content(1 << 20): f.write(chunk)
        with zipfile.ZipFile(path) as z: z.extractall(folder)
        os.unlink(path)
run = provider if mode == "provider" else sequential
run([warm], os.path.join(out, "warm"))  # imports, sessions, pools: the baseline includes them
baseline = _common.proc_status_kb(os.getpid(), "VmRSS")
_common.reset_peak_rss()
requests.get(base + "/__reset__")
cpu0, t0 = time.process_time(), time.perf_counter()
run(names, os.path.join(out, "docs"))
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
peak = _common.proc_status_kb(os.getpid(), "VmHWM")
stats = requests.get(base + "/__stats__").json()
result = {"wall_s": wall, "cpu_s": cpu, "baseline_rss_mb": baseline / 1024, "peak_rss_mb": peak / 1024,
          "rss_over_baseline_mb": (peak - baseline) / 1024, "max_in_flight": stats["max_in_flight"],
          "gets": stats["gets"]}
if mode == "provider":
    requests.get(base + "/__reset__")
    t0 = time.perf_counter()
    run(names, os.path.join(out, "docs"))
    result["second_run_s"] = time.perf_counter() - t0
    result["second_run_gets"] = requests.get(base + "/__stats__").json()["gets"]
print(json.dumps(result))
"""


def run_side(mode: str, base: str, names: list[str], warm: str, workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    out = workdir / f"out-{mode}"
    out.mkdir()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", WORKER, str(_common.BENCH_DIR), mode, base, json.dumps(names), str(out), warm],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{mode} worker failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def scenario(count: int, size: int, latency: float, concurrency: int | None, workdir: Path) -> dict[str, Any]:
    zips = workdir / f"zips-{size}"
    zips.mkdir()
    names = make_zips(zips, count + 1, size)
    warm, names = names[-1], names[:-1]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(zips), str(latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        env = os.environ.copy()
        extra: dict[str, Any] = {"timeout": 60}
        if concurrency:
            extra["download_concurrency"] = concurrency
        env["AIRFLOW_CONN_MINERU_DEFAULT"] = json.dumps(
            {"conn_type": "mineru", "host": "http://127.0.0.1:9/api/v4", "password": _common.TOKEN, "extra": extra}
        )
        result = {
            "zips": count,
            "zip_bytes": os.path.getsize(zips / names[0]),
            "latency_s": latency,
            "download_concurrency": concurrency or 16,
            "sequential": run_side("sequential", base, names, warm, workdir, env),
            "provider": run_side("provider", base, names, warm, workdir, env),
        }
        result["speedup"] = result["sequential"]["wall_s"] / result["provider"]["wall_s"]
        return result
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(zips, ignore_errors=True)


def show(name: str, r: dict[str, Any]) -> None:
    p, s = r["provider"], r["sequential"]
    print(
        f"{name}: {r['zips']} zips x {r['zip_bytes'] / 1e6:.2f} MB, {r['latency_s'] * 1000:.0f} ms latency, "
        f"concurrency {r['download_concurrency']}"
    )
    print(
        f"  provider   {p['wall_s']:6.2f} s  cpu {p['cpu_s']:5.2f} s  +{p['rss_over_baseline_mb']:6.1f} MB RSS  "
        f"max in flight {p['max_in_flight']}  second run {p['second_run_s']:.2f} s, {p['second_run_gets']} downloads"
    )
    print(
        f"  sequential {s['wall_s']:6.2f} s  cpu {s['cpu_s']:5.2f} s  +{s['rss_over_baseline_mb']:6.1f} MB RSS  "
        f"max in flight {s['max_in_flight']}"
    )
    print(f"  speed-up {r['speedup']:.1f}x")


def run(args: argparse.Namespace) -> dict[str, Any]:
    _common.airflow_home()
    workdir = Path(tempfile.mkdtemp(prefix="mineru-bench-downloads-", dir=args.workdir))
    try:
        results: dict[str, Any] = {"machine": _common.machine()}
        results["small"] = scenario(args.zips, args.zip_kb * 1024, args.latency, args.concurrency, workdir)
        show("small", results["small"])
        if args.big_mb:
            results["big"] = scenario(args.zips, args.big_mb * 1024 * 1024, args.latency, args.concurrency, workdir)
            show("big", results["big"])
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zips", type=int, default=200)
    parser.add_argument("--zip-kb", type=int, default=200, help="size of each zip of the speed scenario")
    parser.add_argument("--big-mb", type=int, default=5, help="size of each zip of the memory scenario (0: skip)")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=None, help="download_concurrency (default: the extra's 16)")
    parser.add_argument("--workdir", default=None, help="where zips and outputs go (default: the temp folder)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = _common.run_timed(run, args)
    _common.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
