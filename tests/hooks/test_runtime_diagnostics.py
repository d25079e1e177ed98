"""
Run-time connection errors say what the connection Test says (issue 19): one sentence, the
connection id and the base URL, never the token.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from airflow_provider_mineru.exceptions import MinerUConnectionError, MinerUError
from airflow_provider_mineru.hooks.mineru import MinerUHook

TOKEN = "diagnostics-token-0123456789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _use(monkeypatch, host: str, **extra) -> MinerUHook:
    conn = {
        "conn_type": "mineru",
        "host": host,
        "password": TOKEN,
        "extra": {"retry_backoff": 0.01, "max_retries": 1, "timeout": 5, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DIAG", json.dumps(conn))
    return MinerUHook("mineru_diag")


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("flavor", ["cloud", "mineru-api"])
def test_a_wrong_port_names_the_connection_and_the_refusal(monkeypatch, mode, flavor):
    port = _free_port()
    base = f"http://127.0.0.1:{port}/api/v4" if flavor == "cloud" else f"http://127.0.0.1:{port}"
    hook = _use(monkeypatch, base, api_flavor=flavor)
    started = time.monotonic()
    with pytest.raises(MinerUConnectionError) as info:
        hook.get_task("job_1") if mode == "sync" else asyncio.run(hook.aget_task("job_1"))
    message = str(info.value)
    assert f"cannot reach 127.0.0.1:{port}: connection refused" in message
    assert "connection 'mineru_diag'" in message and f"base URL {base}" in message
    assert "gave up after 2 attempts" in message
    assert "HTTPConnectionPool" not in message and TOKEN not in message
    assert time.monotonic() - started < 5


def test_a_submit_refused_is_still_retried_and_explained(monkeypatch, caplog, capfd):
    """Refused connects are retried (a restarting server refuses for a moment); each retry says why."""
    port = _free_port()
    hook = _use(monkeypatch, f"http://127.0.0.1:{port}/api/v4", max_retries=2)
    with pytest.raises(MinerUConnectionError, match="gave up after 3 attempts"):
        hook.submit_task("https://example.org/a.pdf")
    out, err = capfd.readouterr()
    # this hook's retries only: a thread left by another test may log its own on the same descriptors
    lines = (out + err + caplog.text).splitlines()
    retries = [line for line in lines if "retrying in" in line and f"127.0.0.1:{port}" in line]
    assert len(retries) >= 2 and all("connection refused" in line for line in retries)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_wrong_path_prefix_says_the_base_url_is_not_an_api(mineru_emulator, monkeypatch, mode):
    base = mineru_emulator.base_url.replace("/api/v4", "/api/v9")
    conn = json.loads(mineru_emulator.connection_json())
    conn["host"] = base
    conn["extra"].update({"max_retries": 0})
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DIAG", json.dumps(conn))
    hook = MinerUHook("mineru_diag")
    pdf = "https://example.org/a.pdf"
    calls = (
        [lambda: hook.get_task("t-1"), lambda: hook.submit_task(pdf)]
        if mode == "sync"
        else [lambda: asyncio.run(hook.aget_task("t-1")), lambda: asyncio.run(hook.asubmit_task(pdf))]
    )
    for call in calls:
        with pytest.raises(MinerUError) as info:
            call()
        message = str(info.value)
        assert f"{base} is not the base URL of a MinerU API" in message, message
        assert "connection 'mineru_diag'" in message
        assert conn["password"] not in message


def test_a_task_that_does_not_exist_is_still_not_found(mineru_conn):
    from airflow_provider_mineru.exceptions import MinerUNotFoundError

    with pytest.raises(MinerUNotFoundError) as info:
        MinerUHook().get_task("no-such-task")
    assert "is not the base URL" not in str(info.value)
