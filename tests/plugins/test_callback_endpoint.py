"""
The callback endpoint in Airflow's API server app, receiving the emulator's real callback POSTs.

Every test talks to ``create_app()`` served by uvicorn over loopback (fixture ``api_server``); the
emulator signs and retries its callbacks itself (5 attempts for anything but 200).
"""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS
from tests.plugins.conftest import (
    SECRET,
    UID,
    asset_events,
    declare_callback_asset,
    finished_attempts,
    mineru_connection,
    post,
    set_connection,
    wait_for,
)

pytestmark = [
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="FastAPI plugins (the api-server) are Airflow 3 only"),
    pytest.mark.usefixtures("airflow_db"),
]


def signed(content: dict | str, *, uid: str = UID, secret: str = SECRET) -> dict[str, str]:
    """A callback body signed like MinerU signs it."""
    from airflow_provider_mineru.utils.callback_checksum import callback_checksum

    text = content if isinstance(content, str) else json.dumps(content)
    return {"checksum": callback_checksum(uid, secret, text), "content": text}


@pytest.fixture
def conn(callback_emulator, monkeypatch):
    """``mineru_default`` on the emulator, with the uid and callback secret the endpoint checks."""
    set_connection(monkeypatch, "mineru_default", mineru_connection(callback_emulator, callback_secret=SECRET))
    return callback_emulator


@pytest.fixture(scope="module")
def declared(airflow_db):
    """A DAG (unpaused) scheduled on ``callback_asset("mineru_default")``: the asset exists."""
    if not AIRFLOW_V_3_0_PLUS:
        pytest.skip("Airflow 3 only")
    return declare_callback_asset("mineru_default", paused=False)


def submit(emu, api_server: str, *, seed: str = SECRET, conn_id: str = "mineru_default", name: str = "invoice.pdf"):
    from airflow_provider_mineru.callbacks import callback_url
    from airflow_provider_mineru.hooks.mineru import MinerUHook

    url = callback_url(api_server, conn_id)
    return MinerUHook(mineru_conn_id=conn_id).submit_task(
        emu.sample_url(name), callback=url, seed=seed, data_id="invoice"
    )


def test_emulator_callback_records_asset_event(api_server, conn, declared, caplog):
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    caplog.set_level(logging.INFO, logger="airflow_provider_mineru.plugins.callbacks")
    task_id = submit(conn, api_server)
    attempts = wait_for(lambda: finished_attempts(conn, task_id))
    assert [a["status"] for a in attempts] == [200], attempts
    assert attempts[0]["url"] == f"{api_server}/mineru/callback/mineru_default"

    events = [e for e in asset_events() if e["task_id"] == task_id]
    assert len(events) == 1
    event = events[0]
    assert event["state"] == "done"
    assert event["data_id"] == "invoice"
    assert event["full_zip_url"].endswith(".zip")
    assert event["err_msg"] is None
    assert conn.task_state(task_id)["full_zip_url"] == event["full_zip_url"]
    # the event queued a run of the DAG scheduled on the asset (what the scheduler picks up)
    with create_session() as session:
        assert session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == declared).count() >= 1

    # logs name the task and its state, never the uid, the secret, the checksum or the body
    assert f"task {task_id} is done" in caplog.text
    for secret in (SECRET, UID, '"checksum"'):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("extra", "seed"),
    [
        pytest.param({"callback_secret": "another_secret_value"}, SECRET, id="wrong-secret"),
        pytest.param({"callback_secret": SECRET, "uid": "u-999"}, SECRET, id="wrong-uid"),
        pytest.param({"callback_secret": SECRET}, "seed_the_task_was_not_sent_with", id="wrong-seed"),
    ],
)
def test_forged_callbacks_are_refused_and_retried(api_server, callback_emulator, declared, monkeypatch, extra, seed):
    set_connection(monkeypatch, "mineru_default", mineru_connection(callback_emulator, **extra))
    before = len(asset_events())
    task_id = submit(callback_emulator, api_server, seed=seed)
    attempts = wait_for(lambda: finished_attempts(callback_emulator, task_id))
    assert [a["status"] for a in attempts] == [403] * 5
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5]
    assert len(asset_events()) == before
    assert all(e["task_id"] != task_id for e in asset_events())


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b"", id="empty"),
        pytest.param({"checksum": 1, "content": "{}"}, id="checksum-not-a-string"),
        pytest.param({"checksum": "ab"}, id="no-content"),
        pytest.param({"content": "{}"}, id="no-checksum"),
        pytest.param(signed("[1, 2]"), id="content-not-an-object"),
        pytest.param(signed("not json"), id="content-not-json"),
    ],
)
def test_malformed_body_is_400(api_server, conn, declared, body):
    before = len(asset_events())
    status, answer = post(f"{api_server}/mineru/callback/mineru_default", body)
    assert status == 400, answer
    assert answer["detail"]
    assert len(asset_events()) == before


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_413(api_server, conn, chunked):
    """Refused from the declared length, or once the streamed body passes 1 MiB."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(api_server)
    size = 1024 * 1024 + 1
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = f"POST /mineru/callback/mineru_default HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        head += "Content-Type: application/json\r\nConnection: close\r\n"
        if chunked:
            head += "Transfer-Encoding: chunked\r\n\r\n"
            sock.sendall(head.encode())
            try:
                for _ in range(size // 65536 + 1):
                    sock.sendall(b"10000\r\n" + b"x" * 65536 + b"\r\n")
            except OSError:
                pass  # the server answered and closed before the whole body was sent
        else:
            sock.sendall(f"{head}Content-Length: {size}\r\n\r\n".encode())  # no body: refused from the header
        answer = sock.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]


def test_replay_of_a_valid_body_is_409(api_server, conn, declared):
    body = signed({"task_id": "replayed-task", "state": "done", "full_zip_url": "http://x/r.zip", "err_msg": ""})
    url = f"{api_server}/mineru/callback/mineru_default"
    assert post(url, body) == (200, {"status": "ok"})
    assert post(url, body)[0] == 409
    assert post(url, body)[0] == 409
    assert [e["task_id"] for e in asset_events()].count("replayed-task") == 1


def test_tampered_content_is_403(api_server, conn, declared):
    body = signed({"task_id": "tampered", "state": "failed", "err_msg": "-60010: parsing failed"})
    body["content"] = body["content"].replace("failed", "done")
    status, _ = post(f"{api_server}/mineru/callback/mineru_default", body)
    assert status == 403
    assert all(e["task_id"] != "tampered" for e in asset_events())


def test_failed_task_is_recorded_with_its_error(api_server, conn, declared):
    conn.fail_next_tasks("-60010: parsing failed", count=1)
    task_id = submit(conn, api_server)
    assert [a["status"] for a in wait_for(lambda: finished_attempts(conn, task_id))] == [200]
    (event,) = [e for e in asset_events() if e["task_id"] == task_id]
    assert event["state"] == "failed"
    assert event["err_msg"].startswith("-60010")
    assert event["full_zip_url"] is None


CANNOT_TAKE_CALLBACKS = [
    pytest.param("no_such_conn", None, id="unknown"),
    pytest.param("a:b", None, id="colon"),
    pytest.param("bad%20id", None, id="space"),
    pytest.param("x" * 300, None, id="too-long"),
    pytest.param("http_conn", {"conn_type": "http", "host": "x", "extra": {"uid": UID, "callback_secret": SECRET}}),
    pytest.param("mineru_no_secret", {"conn_type": "mineru", "host": "http://x", "extra": {"uid": UID}}),
    pytest.param("mineru_no_uid", {"conn_type": "mineru", "host": "http://x", "extra": {"callback_secret": SECRET}}),
    pytest.param("mineru_no_extras", {"conn_type": "mineru", "host": "http://x"}),
]

#: Bodies of every kind: each gets one answer, whichever connection that cannot take callbacks it is sent to.
BODIES = {
    "forged": signed({"task_id": "t", "state": "done"}, secret="not_the_secret"),
    "signed-with-the-secret": signed({"task_id": "t", "state": "done"}),
    "not-json": b"not json",
    "no-content": {"checksum": "ab"},
    "content-not-an-object": signed("[1, 2]"),
}


@pytest.mark.parametrize(("conn_id", "conn_"), CANNOT_TAKE_CALLBACKS)
def test_connection_that_cannot_take_callbacks_answers_like_a_forgery(api_server, conn, monkeypatch, conn_id, conn_):
    """Unknown, an id with ``:`` or too long, not ``mineru``, without settings: one answer per body (no oracle)."""
    if conn_:
        set_connection(monkeypatch, conn_id, conn_)
    forged = post(f"{api_server}/mineru/callback/mineru_default", BODIES["forged"])
    assert forged == (403, {"detail": "the callback does not verify for this connection"})
    for name, body in BODIES.items():
        expected = post(f"{api_server}/mineru/callback/no_such_conn", body)
        assert post(f"{api_server}/mineru/callback/{conn_id}", body) == expected, name
        assert expected[0] == (403 if "signed" in name or name == "forged" else 400), name
    assert all(e["task_id"] != "t" for e in asset_events())


def test_undeclared_asset_still_answers_200(api_server, callback_emulator, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="airflow_provider_mineru.plugins.callbacks")
    conn = mineru_connection(callback_emulator, callback_secret=SECRET)
    set_connection(monkeypatch, "mineru_undeclared", conn)
    task_id = submit(callback_emulator, api_server, conn_id="mineru_undeclared")
    attempts = wait_for(lambda: finished_attempts(callback_emulator, task_id))
    assert [a["status"] for a in attempts] == [200]  # MinerU must not retry a callback nobody consumes
    assert asset_events("mineru_undeclared") == []
    assert "no DAG declares the asset mineru://callbacks/mineru_undeclared" in caplog.text


def test_database_error_is_500_and_the_retry_is_accepted(api_server, conn, declared, monkeypatch):
    """The event fails after the replay claim was written: both roll back, and MinerU's retry is accepted."""
    from airflow_provider_mineru.plugins.callbacks import asset_events as module

    real = module.asset_manager.register_asset_change
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs["extra"]["task_id"])
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return real(**kwargs)

    monkeypatch.setattr(module.asset_manager, "register_asset_change", flaky)
    task_id = submit(conn, api_server)
    attempts = wait_for(lambda: finished_attempts(conn, task_id))
    assert [a["status"] for a in attempts] == [500, 200]  # not 409: the failed try's claim was rolled back
    assert [e["task_id"] for e in asset_events()].count(task_id) == 1


def test_only_post(api_server):
    status, _ = post(f"{api_server}/mineru/callback/mineru_default", b"", method="GET")
    assert status == 405
