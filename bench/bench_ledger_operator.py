"""
The ledger through the real operator (issue 21): re-runs over ``--docs`` uploaded documents.

``MinerUUploadFilesOperator(output_path=..., deferrable=False).execute()`` against the emulator (in
its own process), over one folder of distinct small PDFs, in this order:

1. **first run** (the baseline, same run): every document uploaded, parsed, landed and recorded;
2. **re-run, unchanged**: must send nothing (0 ``file-urls`` calls, 0 uploads, 0 submits, so 0 pages);
3. **1 % changed**: ``--docs // 100`` files get new bytes; exactly those must be uploaded;
4. **one global option changed** (``language="ch"`` instead of the default): the ledger's plan of
   the run (``LedgerRun.start``, the code that narrows the operator before anything is sent) must
   send every document. Only planned, not paid: paying 10,000 documents again would show the
   emulator, not the ledger.

Printed per step: wall time, the documents named in ``file-urls`` calls (what is paid for), uploads
(PUTs), every request to the emulator, and the XCom's ``counts``. With ``--s3`` the inputs and
``output_path`` are in a bucket of moto's S3 server in its own process, and every request it
serves is counted by kind (GET object, HEAD, LIST, PUT, DELETE) on the server side. Not a test::

    python bench/bench_ledger_operator.py                 # 1,000 documents, local disk
    python bench/bench_ledger_operator.py --docs 10000 --json out.json
    python bench/bench_ledger_operator.py --s3 --docs 1000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common

_common.airflow_home()

SAMPLE = Path(__file__).resolve().parent.parent / "dags" / "sample_documents" / "invoice.pdf"

#: moto's server with a WSGI wrapper that counts every request by kind (served at /__counts__).
_MOTO = """
import json, logging, sys, threading
from collections import Counter
from urllib.parse import parse_qs
from werkzeug.serving import make_server
from moto.server import DomainDispatcherApplication, create_backend_app

counts, lock = Counter(), threading.Lock()
app = DomainDispatcherApplication(create_backend_app)

def kind(environ):
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    key = path.strip("/").partition("/")[2]
    if method == "GET" and (not key or "list-type" in query or "prefix" in query or "delimiter" in query):
        return "LIST"
    return method

def counted(environ, start_response):
    if environ.get("PATH_INFO") == "/__counts__":
        with lock:
            body = json.dumps(counts).encode()
            if environ["REQUEST_METHOD"] == "DELETE":
                counts.clear()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    with lock:
        counts[kind(environ)] += 1
        parts = environ.get("PATH_INFO", "").strip("/").split("/")  # bucket, then the key's first folders
        counts[kind(environ) + " " + "/".join(parts[1 : 4 if ".mineru-ledger" in parts else 2])] += 1
    return app(environ, start_response)

logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = make_server("127.0.0.1", int(sys.argv[1]), counted, threaded=True)
print("ready", flush=True)
server.serve_forever()
"""


class Moto:
    """moto's S3 server in its own process, counting requests by kind."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _MOTO, str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def counts(self, *, reset: bool = False) -> dict[str, int]:
        request = urllib.request.Request(f"{self.url}/__counts__", method="DELETE" if reset else "GET")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1"
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _pdf(i: int, generation: int = 0) -> bytes:
    """A distinct one-page PDF (the sample invoice with its own trailing comment)."""
    return SAMPLE.read_bytes() + f"\n% bench document {i} version {generation}\n".encode()


def _write_inputs(where: Any, docs: int, s3: Any = None) -> None:
    if s3 is None:
        for i in range(docs):
            (where / f"doc-{i:05d}.pdf").write_bytes(_pdf(i))
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket="bench", Key=f"in/doc-{i:05d}.pdf", Body=_pdf(i)), range(docs)))


def _change(where: Any, indices: list[int], s3: Any = None) -> None:
    for i in indices:
        if s3 is None:
            (where / f"doc-{i:05d}.pdf").write_bytes(_pdf(i, 1))
        else:
            s3.put_object(Bucket="bench", Key=f"in/doc-{i:05d}.pdf", Body=_pdf(i, 1))


def _operator(paths: str, output: str, **options: Any) -> Any:
    from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

    return MinerUUploadFilesOperator(
        task_id="parse", paths=paths, output_path=output, deferrable=False, poll_interval=0.5, **options
    )


def _paid(log: list[dict[str, Any]]) -> dict[str, int]:
    named = sum(len((r.get("json") or {}).get("files") or ()) for r in log if r["endpoint"] == "file_urls")
    return {
        "documents_in_file_urls_calls": named,
        "file_urls_calls": sum(1 for r in log if r["endpoint"] == "file_urls"),
        "uploads": sum(1 for r in log if r["endpoint"] == "upload"),
        "submits": sum(1 for r in log if r["endpoint"] in ("submit_task", "submit_batch")),
        "requests_to_emulator": len(log),
    }


def _run(paths: str, output: str, emu: Any, moto: Moto | None, docs: int) -> dict[str, Any]:
    emu.clear_requests()
    if moto is not None:
        moto.counts(reset=True)
    operator = _operator(paths, output)
    started = time.perf_counter()
    value = operator.execute(_common.task_context())
    seconds = time.perf_counter() - started
    result = {"seconds": round(seconds, 2), **_paid(emu.requests_log()), "counts": value.get("counts")}
    if moto is not None:
        served = moto.counts()
        result["s3_requests"] = served
        result["s3_reads_per_document"] = round((served.get("GET", 0) + served.get("HEAD", 0)) / docs, 4)
    return result


def _planned(paths: str, output: str) -> dict[str, Any]:
    """The plan of a run with ``language="ch"`` (default: unset): how many inputs it would send."""
    from airflow_provider_mineru.ledger.run import LedgerRun

    operator = _operator(paths, output, language="ch")
    operator.prepare()
    started = time.perf_counter()
    run = LedgerRun.start(operator, _common.task_context())
    assert run is not None
    seconds = round(time.perf_counter() - started, 2)
    return {"seconds": seconds, "planned_sends": len(run.sends), "inputs": len(run.items)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--s3", action="store_true", help="inputs and output_path on moto's S3 server")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mineru-bench-ledger-op-"))
    moto = None
    try:
        if args.s3:
            moto = Moto()
            s3 = moto.client()
            s3.create_bucket(Bucket="bench")
            os.environ["AIRFLOW_CONN_AWS_MOTO"] = json.dumps(
                {
                    "conn_type": "aws",
                    "login": "t",
                    "password": "t",
                    "extra": {"endpoint_url": moto.url, "region_name": "us-east-1"},
                }
            )
            where, paths, output = None, "s3://aws_moto@bench/in/", "s3://aws_moto@bench/out"
        else:
            s3, where = None, work / "in"
            where.mkdir()
            paths, output = str(where), str(work / "out")
        _write_inputs(where, args.docs, s3)
        changed = list(range(0, args.docs, 100))  # 1 %
        steps: dict[str, Any] = {}
        with _common.emulator_process(pending=0.05, per_page=0.001, converting=0.05) as emu:
            os.environ["AIRFLOW_CONN_MINERU_DEFAULT"] = emu.connection_json(max_retries=3)
            steps["first_run"] = _run(paths, output, emu, moto, args.docs)
            print("first run", steps["first_run"], flush=True)
            steps["re_run_unchanged"] = _run(paths, output, emu, moto, args.docs)
            print("re-run", steps["re_run_unchanged"], flush=True)
            _change(where, changed, s3)
            steps["one_percent_changed"] = _run(paths, output, emu, moto, args.docs)
            steps["one_percent_changed"]["changed"] = len(changed)
            print("1 % changed", steps["one_percent_changed"], flush=True)
        steps["option_changed_plan"] = _planned(paths, output)
        result = {"documents": args.docs, "store": "s3 (moto server)" if args.s3 else "local disk", **steps}
        result["machine"] = {**_common.machine(), "load_average": os.getloadavg()}
        print(json.dumps(result, indent=2))
        _common.write_json(args.json, result)
        again, one = steps["re_run_unchanged"], steps["one_percent_changed"]
        if again["uploads"] or again["file_urls_calls"] or again["submits"]:
            raise SystemExit("the re-run paid")
        if one["documents_in_file_urls_calls"] != len(changed) or one["uploads"] != len(changed):
            raise SystemExit("the 1 % run did not pay exactly the changed files")
        if steps["option_changed_plan"]["planned_sends"] != args.docs:
            raise SystemExit("a changed option did not re-parse every document")
    finally:
        if moto is not None:
            moto.stop()
        with contextlib.suppress(Exception):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
