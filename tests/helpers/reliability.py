"""Shared pieces of the reliability suite: connections, DAG runs, waits, and an outage proxy."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.helpers import SAMPLES, new_dag, run_dag, wait_batch, wait_task

MODES = [("deferrable", True), ("blocking", False)]

#: Fast retries for the suite: 3 retries, 10 ms base backoff (see conftest's ``mineru_conn``).
#: Re-exported for the reliability tests.
__all__ = ["PDFS", "RETRY_ONCE", "SAMPLES", "pdf_paths", "pdf_urls", "wait_batch", "wait_task"]

#: The sample PDFs (by stem) most reliability tests submit.
PDFS = ["annual_report", "research_paper", "invoice"]
#: Operator arguments for one immediate Airflow retry.
RETRY_ONCE = {"retries": 1, "retry_delay": timedelta(seconds=0)}


def pdf_urls(emu: Any, names: list[str] = PDFS) -> list[dict[str, str]]:
    """URL-batch entries for the sample PDFs, each with its stem as ``data_id``."""
    return [{"url": sample_url(emu, f"{name}.pdf"), "data_id": name} for name in names]


def pdf_paths(names: list[str] = PDFS) -> list[dict[str, str]]:
    """Upload entries for the sample PDFs, each with its stem as ``data_id``."""
    return [{"path": str(SAMPLES / f"{name}.pdf"), "data_id": name} for name in names]


FAST_RETRIES = {"retry_backoff": 0.01, "max_retries": 3, "timeout": 5}


def set_conn(monkeypatch: Any, emu: Any, *, base_url: str | None = None, **extra: Any) -> dict[str, Any]:
    """Point ``mineru_default`` at ``emu`` (or at ``base_url``) with fast retries and ``extra``."""
    conn = json.loads(emu.connection_json())
    if base_url is not None:
        conn["host"] = base_url
    conn.setdefault("extra", {}).update({**FAST_RETRIES, **extra})
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
    return conn


def sample_url(emu: Any, name: str, copy: int | None = None) -> str:
    url = emu.sample_url(name)
    return url if copy is None else f"{url}?copy={copy}"


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


# -- DAGs ----------------------------------------------------------------------------------------


def make_dag(**kwargs: Any) -> Any:
    return new_dag(dag_id=f"reliability_{uuid.uuid4().hex[:12]}", **kwargs)


def run(dag: Any, capfd: Any, caplog: Any = None) -> tuple[dict[str, str], str]:
    """Run ``dag`` with ``dag.test()``; return ``{task_id: state}`` and everything it printed or logged."""
    states, output = run_dag(dag, capfd)
    return states, output + (caplog.text if caplog is not None else "")


def xcom(dag: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models import DagRun

    dag_run = max(DagRun.find(dag_id=dag.dag_id), key=lambda run: run.id)
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id, key=key)


def accounted_documents(value: Any, output: str, names: list[str]) -> list[str]:
    """
    The documents of ``names`` that a run accounted for: ``done`` in the XCom with their result
    extracted (``full.md`` under ``output_path``), or ``failed`` in the XCom *and* named with their
    ``err_msg`` in the task's log.
    """
    results = []
    if isinstance(value, dict):
        results = value.get("results") or ([value] if "task_id" in value else [])
    found = []
    for name in names:
        for entry in results:
            label = entry.get("data_id") or entry.get("file_name")
            if label != name:
                continue
            if (
                entry["state"] == "done"
                and entry.get("output_path")
                and (Path(entry["output_path"]) / "full.md").is_file()
            ) or (entry["state"] == "failed" and entry.get("err_msg") and entry["err_msg"] in output):
                found.append(name)
    return found


# -- an outage you can switch off and on -------------------------------------------------------


class OutageProxy:
    """
    A TCP forwarder in front of the emulator, on a fixed port: ``down()`` closes the port and every
    open connection (clients get *connection refused* / reset, like a gateway restart), ``up()``
    listens again on the same port. The emulator behind it keeps all its tasks.
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.outages = 0

    def up(self) -> OutageProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.02)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop = threading.Event()
        threading.Thread(target=self._accept, args=(listener, self._stop), daemon=True).start()
        return self

    def down(self) -> None:
        self.outages += 1
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with self._lock:
                    self._sockets.discard(sock)
