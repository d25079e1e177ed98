"""
The live suite: the self-hosted flavor against the **real** ``mineru-api`` (mineru 4.0.12).

Skipped unless ``MINERU_LIVE_SERVER=1``. ``tests/live/run_live.sh`` (called by ``.ci/run``)
installs the server into its own virtualenv, starts it with ``--tier flash --api-key`` on a free
loopback port and sets ``MINERU_LIVE_URL`` and ``MINERU_LIVE_KEY``; without them the suite starts
``$MINERU_API_BIN`` (default ``mineru-api``) itself and stops it by its PID afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The committed samples: the self-hosted suites' documents (``tests/helpers/selfhosted_samples.py``
#: says the words each carries), written to disk.
SAMPLES = Path(__file__).resolve().parent / "samples"
#: Seconds the server may take to answer /v1/health after it was started.
START_TIMEOUT = 90.0
#: Seconds between SIGTERM and SIGKILL when stopping it.
STOP_TIMEOUT = 20.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MINERU_LIVE_SERVER") == "1":
        return
    skip = pytest.mark.skip(reason="live suite: set MINERU_LIVE_SERVER=1 (tests/live/run_live.sh does)")
    for item in items:
        if "tests/live/" in item.nodeid:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout: float, process: subprocess.Popen | None = None) -> dict:
    """``GET /v1/health`` until it answers 200 (bounded); the server's answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"mineru-api exited with {process.returncode} before it was healthy")
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(f"{url}/v1/health", timeout=2) as answer:
            return json.loads(answer.read())
        time.sleep(0.5)
    raise RuntimeError(f"mineru-api at {url} was not healthy after {timeout:.0f} s")


def stop_by_pid(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the server, wait (bounded), then SIGKILL; only that PID is signalled."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its end
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            done = 0
        if done:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def live_server() -> Iterator[dict[str, str]]:
    """``{"url", "key"}`` of a running ``mineru-api --tier flash --api-key KEY --allow-http-source``."""
    if os.environ.get("MINERU_LIVE_URL"):
        url = os.environ["MINERU_LIVE_URL"].rstrip("/")
        wait_healthy(url, START_TIMEOUT)
        yield {"url": url, "key": os.environ.get("MINERU_LIVE_KEY", "")}
        return
    key = secrets.token_hex(12)
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="mineru-live-"))
    log = (workdir / "server.log").open("wb")
    command = [
        os.environ.get("MINERU_API_BIN", "mineru-api"),
        *("--host", "127.0.0.1", "--port", str(port), "--tier", "flash", "--api-key", key),
        *("--allow-http-source", "--upload-dir", str(workdir / "uploads")),
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", START_TIMEOUT, process)
        yield {"url": f"http://127.0.0.1:{port}", "key": key}
    finally:
        stop_by_pid(process.pid)
        log.close()


def live_connection(server: dict[str, str], **changes: str) -> str:
    """``AIRFLOW_CONN_MINERU_DEFAULT`` JSON for the live server."""
    return json.dumps(
        {
            "conn_type": "mineru",
            "host": server["url"],
            "password": changes.get("password", server["key"]),
            "extra": {"api_flavor": "mineru-api", "max_retries": 2, "retry_backoff": 0.5, "timeout": 60},
        }
    )


@pytest.fixture
def live_conn(live_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", live_connection(live_server))
    return live_server
