"""
The open callback endpoint under attack: existence oracles, malformed bodies, replays across workers
and restarts, and a stream of forged callbacks against a slow secrets backend.

Every test talks to Airflow's own API server app served by uvicorn over loopback (``api_server``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid

import pytest

from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS
from tests.plugins.conftest import SECRET, asset_events, mineru_connection, post, set_connection
from tests.plugins.test_callback_endpoint import signed

pytestmark = [
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="FastAPI plugins (the api-server) are Airflow 3 only"),
    pytest.mark.usefixtures("airflow_db"),
]


@pytest.fixture
def conn(callback_emulator, monkeypatch):
    set_connection(monkeypatch, "mineru_default", mineru_connection(callback_emulator, callback_secret=SECRET))
    return callback_emulator


@pytest.fixture(scope="module")
def declared(airflow_db):
    if not AIRFLOW_V_3_0_PLUS:
        pytest.skip("Airflow 3 only")
    from tests.plugins.conftest import declare_callback_asset

    return declare_callback_asset("mineru_default", paused=True)


def endpoint_app():
    from airflow_provider_mineru.plugins.callbacks import plugin

    assert plugin.app is not None
    return plugin.app.app


MALFORMED = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100k"),
    pytest.param(b'{"checksum": "ab", "content": "' + b"[" * 100_000 + b'"}', id="content-nested-100k"),
    pytest.param(json.dumps({"checksum": "ab", "content": '{"task_id": "\ud800"}'}).encode(), id="lone-surrogate"),
    pytest.param(json.dumps({"checksum": "\ud800", "content": "{}"}).encode(), id="surrogate-checksum"),
    pytest.param(b'"just a string"', id="string"),
    pytest.param(b"12", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b'{"checksum": "\xff\xfe", "content": "{}"}', id="invalid-utf8"),
    pytest.param(b"\xff" * 64, id="binary"),
]


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize("conn_id", ["mineru_default", "no_such_conn"])
def test_malformed_bodies_are_400_for_every_connection(api_server, conn, body, conn_id):
    status, answer = post(f"{api_server}/mineru/callback/{conn_id}", body)
    assert status == 400, answer
    assert answer["detail"]


def test_lone_surrogate_in_a_signed_body_is_400_not_500(api_server, conn, declared):
    """Signed over its UTF-8 with surrogatepass (what a hostile sender can do): still a clean 400."""
    import hashlib

    content = '{"task_id": "x\ud800", "state": "done"}'
    checksum = hashlib.sha256(f"u-123{SECRET}{content}".encode("utf-8", "surrogatepass")).hexdigest()
    body = json.dumps({"checksum": checksum, "content": content}).encode()
    assert post(f"{api_server}/mineru/callback/mineru_default", body)[0] == 400


def test_malformed_body_answer_does_not_depend_on_the_connection(api_server, conn):
    for body in (b"not json", b"[]", json.dumps({"checksum": "ab"}).encode()):
        configured = post(f"{api_server}/mineru/callback/mineru_default", body)
        unknown = post(f"{api_server}/mineru/callback/no_such_conn_{uuid.uuid4().hex[:6]}", body)
        assert configured == unknown
        assert configured[0] == 400


def replay_claims(task_id: str) -> list[dict]:
    """The replay claims in Airflow's asset state store whose value names ``task_id``."""
    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_mineru.plugins.callbacks.replays import REPLAY_KEY_PREFIX

    with create_session() as session:
        rows = session.execute(
            select(AssetStateStoreModel.key, AssetStateStoreModel.value).where(
                AssetStateStoreModel.key.startswith(REPLAY_KEY_PREFIX)
            )
        ).all()
    return [{"key": key, **json.loads(value)} for key, value in rows if json.loads(value)["task_id"] == task_id]


def test_replay_is_refused_after_a_restart_and_on_another_worker(api_server, conn, declared):
    """The claim is in the metadata database: a fresh worker (empty memory) refuses the replay too."""
    from airflow_provider_mineru.plugins.callbacks.handling import handle_callback
    from airflow_provider_mineru.plugins.callbacks.replays import RecentChecksums

    task = f"replayed-{uuid.uuid4().hex[:8]}"
    body = signed({"task_id": task, "state": "done", "full_zip_url": "http://x/r.zip", "err_msg": ""})
    url = f"{api_server}/mineru/callback/mineru_default"
    assert post(url, body) == (200, {"status": "ok"})
    endpoint_app().state.seen_checksums.clear()  # this worker restarted: its memory is empty
    assert post(url, body) == (409, {"detail": "callback already received"})
    # another worker: its own empty memory, the same database
    answer = handle_callback(
        "mineru_default", json.dumps(body).encode(), RecentChecksums(), lookup=lambda _: ("u-123", SECRET)
    )
    assert answer == (409, {"detail": "callback already received"})
    assert [e["task_id"] for e in asset_events()].count(task) == 1
    (claim,) = replay_claims(task)
    assert body["checksum"] not in claim["key"]  # a digest of it, never the checksum itself
    assert claim["state"] == "done"


def test_concurrent_replays_on_many_workers_record_one_event(api_server, conn, declared):
    from airflow_provider_mineru.plugins.callbacks.handling import handle_callback
    from airflow_provider_mineru.plugins.callbacks.replays import RecentChecksums

    task = f"raced-{uuid.uuid4().hex[:8]}"
    body = json.dumps(signed({"task_id": task, "state": "done", "full_zip_url": "http://x/r.zip"})).encode()
    statuses: list[int] = []

    def worker() -> None:  # each with its own memory, like separate api-server workers
        statuses.append(
            handle_callback("mineru_default", body, RecentChecksums(), lookup=lambda _: ("u-123", SECRET))[0]
        )

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] + [409] * 5
    assert [e["task_id"] for e in asset_events()].count(task) == 1


def test_no_table_of_ours(api_server, conn, declared):
    """The replay claims live in Airflow's asset state store; the endpoint creates no table."""
    from airflow.utils.session import create_session
    from sqlalchemy import inspect

    task = f"no-table-{uuid.uuid4().hex[:8]}"
    assert post(f"{api_server}/mineru/callback/mineru_default", signed({"task_id": task, "state": "done"}))[0] == 200
    with create_session() as session:
        tables = set(inspect(session.get_bind()).get_table_names())
    assert "mineru_callback_checksums" not in tables
    assert not {t for t in tables if "mineru" in t}
    assert len(replay_claims(task)) == 1


def test_replay_claims_are_kept_for_their_retention_only(api_server, conn, declared):
    from airflow_provider_mineru.plugins.callbacks.handling import handle_callback
    from airflow_provider_mineru.plugins.callbacks.replays import REPLAY_RETENTION, RecentChecksums, ReplayClaims

    assert REPLAY_RETENTION == 7 * 24 * 3600

    def send(task: str, claims: ReplayClaims) -> int:
        body = json.dumps(signed({"task_id": task, "state": "done"})).encode()
        return handle_callback(
            "mineru_default", body, RecentChecksums(), lookup=lambda _: ("u-123", SECRET), claims=claims
        )[0]

    old = f"old-{uuid.uuid4().hex[:8]}"
    keep = ReplayClaims(retention=3600, purge_every=0)
    assert send(old, keep) == 200
    assert send(old, keep) == 409
    assert len(replay_claims(old)) == 1
    time.sleep(0.05)
    assert (
        send(f"new-{uuid.uuid4().hex[:8]}", ReplayClaims(retention=0.01, purge_every=0)) == 200
    )  # purges older claims
    assert replay_claims(old) == []
    assert send(old, keep) == 200  # past its retention, a replay is recorded again
    assert [e["task_id"] for e in asset_events()].count(old) == 2


def test_settings_are_cached_so_forged_callbacks_do_not_look_the_connection_up(api_server, conn):
    cache = None
    url = f"{api_server}/mineru/callback/mineru_default"
    forged = signed({"task_id": "t", "state": "done"}, secret="wrong_secret")
    assert post(url, forged)[0] == 403
    cache = endpoint_app().state.credentials
    before = cache.lookups
    for _ in range(30):
        assert post(url, forged)[0] == 403
    assert cache.lookups == before  # 30 forged requests, no lookup


def test_forged_stream_with_a_slow_secrets_backend_leaves_the_api_server_responsive(api_server, conn, monkeypatch):
    """
    80 forged callbacks to unknown connection ids while each lookup takes 1 s: Airflow's own
    (thread-pool) health endpoint still answers at once, and surplus lookups get 503 at once.
    """
    from airflow.models.connection import Connection
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    def slow_lookup(conn_id):
        time.sleep(1.0)
        raise AirflowNotFoundException(conn_id)

    monkeypatch.setattr(Connection, "get_connection_from_secrets", staticmethod(slow_lookup))
    statuses: list[int] = []

    def forge() -> None:
        statuses.append(post(f"{api_server}/mineru/callback/x_{uuid.uuid4().hex}", signed({"task_id": "t"}))[0])

    threads = [threading.Thread(target=forge) for _ in range(80)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    with urllib.request.urlopen(f"{api_server}/api/v2/monitor/health", timeout=30) as response:
        assert response.status == 200
    health = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=60)
    assert health < 0.5, f"health took {health:.2f}s"
    assert set(statuses) <= {403, 503}
    assert statuses.count(503) >= 40  # not queued: answered at once, MinerU retries
