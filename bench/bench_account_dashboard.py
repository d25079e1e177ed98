"""
A run's metrics as StatsD packets: one deferrable upload through the operator and its trigger,
against the emulator, with Airflow's StatsD client pointed at a UDP listener started here.

    python bench/bench_account_dashboard.py --out docs/img/account-metrics.jsonl
    python bench/render_dashboard.py docs/img/account-metrics.jsonl docs/img/account-metrics.svg

The run (in a fresh interpreter, as a worker and a triggerer would run it): a
``MinerUUploadFilesOperator`` (``deferrable=True``, ``on_budget_exhausted="skip"``,
``model_version="vlm"``) over ``--documents`` PDFs of 1-8 pages, under ``daily_page_budget``
``--budget``. ``execute`` submits what the budget admits and defers; the trigger's ``run()`` is
driven in an event loop (what the triggerer does with it) until its event; ``execute_complete``
finishes the run. The emulator: ``pending`` 6 s, 1 s a page, ``converting`` 0.3 s; two polls
answered 429 (``Retry-After`` 1 s); one document fails (``-60010``). Every packet is written as
one JSON line ``{"t": seconds since the run started, "packet": "..."}``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "emulator" / "src"))

from tests.helpers.pdf_samples import xref_stream_pdf  # noqa: E402

_RUN = textwrap.dedent(
    """
    import asyncio, json, sys
    from types import SimpleNamespace
    from airflow.providers.common.compat.sdk import TaskDeferred
    from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

    class Store(dict):
        def get(self, key):
            return self[key]
        def set(self, key, value):
            self[key] = value
        def delete(self, key):
            self.pop(key, None)

    ti = SimpleNamespace(dag_id="dashboard", run_id="r1", task_id="parse", map_index=-1, try_number=1,
                         xcom_push=lambda key, value: None)
    context = {"ti": ti, "run_id": "r1", "task_state_store": Store()}
    operator = MinerUUploadFilesOperator(task_id="parse", paths=sys.argv[1], output_path=sys.argv[2],
                                         poll_interval=1, on_budget_exhausted="skip", model_version="vlm",
                                         deferrable=True, fail_on_file_error=False)
    try:
        value = operator.execute(context)
    except TaskDeferred as deferred:
        async def wait():
            async for event in deferred.trigger.run():  # what the triggerer runs
                return event
        event = asyncio.run(wait())
        value = getattr(operator, deferred.method_name)(context, event.payload)
    print(json.dumps(value["counts"]))
    """
)


def _jwt(expires: float) -> str:
    """A token shaped like MinerU's (a JWT with ``exp``), so the expiry gauge has something to read."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'exp': int(expires)})}.c2lnbmF0dXJl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=24)
    parser.add_argument("--budget", type=int, default=80)
    parser.add_argument("--out", required=True, help="the packets, one JSON line each")
    args = parser.parse_args()

    from mineru_emulator import Fault, MinerUEmulator, Timings
    from mineru_emulator.cloud.contract import err_msg

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    packets: list[dict] = []
    done = threading.Event()
    started = time.time()

    def listen() -> None:
        while not done.is_set():
            try:
                data = listener.recv(65535)
            except TimeoutError:
                continue
            for line in data.decode().splitlines():
                packets.append({"t": round(time.time() - started, 3), "packet": line})

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    work = Path(tempfile.mkdtemp(prefix="mineru-dashboard-"))
    (work / "in").mkdir()
    for i in range(args.documents):
        xref_stream_pdf(work / "in" / f"doc_{i:02d}.pdf", 1 + (i * 5) % 8, pad_bytes=100 * i)
    token = _jwt(time.time() + 30 * 86400)
    with MinerUEmulator(token=token, timings=Timings(pending=6.0, per_page=1.0, converting=0.3)) as emu:
        emu.inject(Fault(endpoint="get_batch", http_status=429, retry_after=1, times=2))
        emu.fail_next_tasks(err_msg(-60010), match="doc_05")
        conn = json.loads(emu.connection_json())
        conn["extra"].update(
            {"account_store": str(work / "account"), "daily_page_budget": args.budget, "retry_backoff": 0.2}
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "emulator" / "src"), *sys.path]),
            "AIRFLOW_HOME": str(work / "home"),
            "AIRFLOW_CONN_MINERU_DEFAULT": json.dumps(conn),
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(listener.getsockname()[1]),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
        started = time.time()
        run = subprocess.run(
            [sys.executable, "-c", _RUN, str(work / "in"), str(work / "out")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        time.sleep(1.0)
        done.set()
        thread.join()
    if run.returncode:
        raise SystemExit(run.stderr[-3000:])
    mineru = [p for p in packets if ".mineru." in p["packet"]]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("".join(json.dumps(p) + "\n" for p in mineru))
    print(f"counts {run.stdout.strip().splitlines()[-1]}; {len(mineru)} mineru packets -> {args.out}")


if __name__ == "__main__":
    main()
