"""Callback verification against the emulator's real callback POSTs."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.models import MinerUState
from airflow_provider_mineru.utils.callback_checksum import MinerUCallbackError, callback_checksum, verify_callback


@pytest.fixture
def receiver():
    """A tiny HTTP server that keeps every callback body it receives."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mineru-callback", bodies
    server.shutdown()


def test_real_callback_verifies(mineru_conn, receiver):
    url, bodies = receiver
    sample = mineru_conn.base_url.split("/api/")[0] + "/samples/invoice.pdf"
    task_id = MinerUHook().submit_task(sample, callback=url, seed="s33d_value", data_id="cb")
    deadline = time.time() + 20
    while not bodies and time.time() < deadline:
        time.sleep(0.05)
    assert bodies, "no callback received"
    uid = json.loads(mineru_conn.connection_json())["extra"]["uid"]
    seen: set[str] = set()
    result = verify_callback(bodies[0], uid=uid, seed="s33d_value", seen_checksums=seen)
    assert result.task_id == task_id
    assert result.state is MinerUState.DONE
    with pytest.raises(MinerUCallbackError, match="replay"):
        verify_callback(bodies[0], uid=uid, seed="s33d_value", seen_checksums=seen)
    with pytest.raises(MinerUCallbackError, match="checksum"):
        verify_callback(bodies[0], uid=uid, seed="other_seed")
    with pytest.raises(MinerUCallbackError, match="checksum"):
        verify_callback(bodies[0], uid="someone-else", seed="s33d_value")


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", {"checksum": 1, "content": "{}"}, {"content": "{}"}, {"checksum": "x"}],
)
def test_malformed_payloads(payload):
    with pytest.raises(MinerUCallbackError):
        verify_callback(payload, uid="u", seed="s")


def test_tampered_content_is_refused():
    content = json.dumps({"task_id": "t", "state": "done"})
    payload = {"checksum": callback_checksum("u", "s", content), "content": content.replace("done", "failed")}
    with pytest.raises(MinerUCallbackError, match="checksum"):
        verify_callback(payload, uid="u", seed="s")


def test_content_that_is_not_an_object():
    content = "[1, 2]"
    with pytest.raises(MinerUCallbackError, match="object"):
        verify_callback({"checksum": callback_checksum("u", "s", content), "content": content}, uid="u", seed="s")


def test_comparison_is_constant_time(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    content = "{}"
    with pytest.raises(MinerUCallbackError):
        verify_callback({"checksum": "0" * 64, "content": content}, uid="u", seed="s")
    assert calls


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100k"),
        pytest.param({"checksum": "0" * 64, "content": "[" * 100_000}, id="content-nested-100k"),
        pytest.param({"checksum": "0" * 64, "content": '{"a": "\ud800"}'}, id="lone-surrogate"),
        pytest.param(b'{"checksum": "\xff", "content": "{}"}', id="invalid-utf8"),
        pytest.param(b'"text"', id="string"),
    ],
)
def test_hostile_payloads_raise_our_error(payload):
    """Never a RecursionError or UnicodeEncodeError: the callback endpoint must answer 4xx to all of them."""
    with pytest.raises(MinerUCallbackError):
        verify_callback(payload, uid="u", seed="s")
