"""
The connection form's Test against real loopback servers: MinerU's emulator (right and wrong
tokens, wrong path prefix), a plain web server answering 404, a port nobody listens on, and a
socket that accepts connections and never answers. Each answer is one sentence, in time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_mineru.hooks.mineru import MinerUHook

TOKEN = "tok-connection-test"


def _use(monkeypatch, host: str, password: str = TOKEN, **extra) -> MinerUHook:
    conn = {"conn_type": "mineru", "host": host, "password": password, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
    return MinerUHook()


def _timed(hook: MinerUHook) -> tuple[bool, str, float]:
    started = time.monotonic()
    ok, message = hook.test_connection()
    return ok, message, time.monotonic() - started


@pytest.fixture
def plain_404_server():
    """A web server that is not MinerU: every path answers an HTML 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body><h1>404 Not Found</h1></body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_server():
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def refused_url():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there now
    return f"http://127.0.0.1:{port}"


class TestMinerUAnswers:
    def test_right_token_is_valid_and_costs_no_quota(self, monkeypatch):
        from mineru_emulator import MinerUEmulator

        with MinerUEmulator(token=TOKEN) as emu:
            ok, message, seconds = _timed(_use(monkeypatch, emu.base_url))
            assert ok, message
            assert message == f"Connected to MinerU at {emu.base_url}; the token is valid."
            assert emu.task_count == 0
            assert len(emu.requests) == 1  # one attempt
        assert seconds < 5

    def test_wrong_token_is_refused_in_minerus_words(self, monkeypatch):
        from mineru_emulator import MinerUEmulator

        with MinerUEmulator(token=TOKEN, auth_error_style="envelope") as emu:
            base = emu.base_url
            ok, message = _use(monkeypatch, base, password="made-up").test_connection()
        assert not ok
        assert message.startswith(f"MinerU at {base} refused the token (A0202")
        assert "made-up" not in message and "connection-test" not in message

    def test_wrong_token_http401_style_is_refused(self, monkeypatch):
        from mineru_emulator import MinerUEmulator

        with MinerUEmulator(token=TOKEN, auth_error_style="http401") as emu:
            ok, message = _use(monkeypatch, emu.base_url, password="made-up").test_connection()
        assert not ok and "refused the token (A0202" in message

    def test_wrong_prefix_with_made_up_token_is_not_valid(self, monkeypatch):
        """A v4 path against a /api/v1 gateway: MinerU answers, but only to refuse the token."""
        from mineru_emulator import MinerUEmulator

        with MinerUEmulator(token=TOKEN, prefix="/api/v1") as emu:
            ok, message = _use(monkeypatch, emu.root_url, password="made-up").test_connection()
        assert not ok, message

    def test_wrong_prefix_with_right_token_says_not_the_api_path(self, monkeypatch):
        from mineru_emulator import MinerUEmulator

        with MinerUEmulator(token=TOKEN, prefix="/api/v1") as emu:
            root = emu.root_url
            ok, message = _use(monkeypatch, root).test_connection()
        assert not ok
        assert f"{root}/api/v4 is not its API path" in message


class TestNotMinerU:
    def test_plain_404_is_no_minerU_api(self, monkeypatch, plain_404_server):
        ok, message = _use(monkeypatch, plain_404_server, password="made-up").test_connection()
        assert not ok
        assert message.startswith(f"No MinerU API at {plain_404_server}/api/v4: it answered HTTP 404")
        assert "connection-test" not in message and "GET GET" not in message

    def test_refused_port_is_one_sentence_and_fast(self, monkeypatch, refused_url):
        hook = _use(monkeypatch, refused_url, max_retries=5, retry_backoff=2)
        ok, message, seconds = _timed(hook)
        port = refused_url.rsplit(":", 1)[1]
        assert (ok, message) == (False, f"cannot reach 127.0.0.1:{port}: connection refused")
        assert seconds < 2  # no retries, no backoff

    def test_silent_host_answers_within_ten_seconds(self, monkeypatch, silent_server):
        hook = _use(monkeypatch, silent_server, max_retries=5, timeout=60)
        ok, message, seconds = _timed(hook)
        port = silent_server.rsplit(":", 1)[1]
        assert not ok
        assert message == f"127.0.0.1:{port} accepted the connection but sent no answer within 4 s"
        assert seconds < 10

    def test_missing_token(self, monkeypatch, plain_404_server):
        ok, message = _use(monkeypatch, plain_404_server, password="").test_connection()
        assert not ok and "no API token" in message


class TestInvalidExtras:
    @pytest.mark.parametrize(
        ("extra", "expected"),
        [
            ({"max_retries": 2.5}, "invalid connection extra max_retries=2.5: must be a whole number from 0 to 20"),
            ({"max_retries": "-1"}, "invalid connection extra max_retries='-1': must be a whole number from 0 to 20"),
            (
                {"max_batch_files": 5000},
                "invalid connection extra max_batch_files=5000: must be a whole number from 1 to 200",
            ),
            ({"max_pages": 0}, "invalid connection extra max_pages=0: must be a whole number from 1 to 600"),
            ({"max_file_mb": 500}, "invalid connection extra max_file_mb=500: must be a number from 0.001 to 200"),
            ({"timeout": "soon"}, "invalid connection extra timeout='soon': must be a number from 0.1 to 3600"),
            (
                {"callback_secret": "has spaces in it"},
                "invalid connection extra callback_secret='***': must be text matching ^[A-Za-z0-9_]{1,64}$",
            ),
            ({"proxy": "proxy:3128"}, "invalid connection extra proxy='proxy:3128': must be text matching"),
            ({"verify": 3}, "invalid connection extra verify=3: must be true or false"),
        ],
    )
    def test_test_names_field_and_rule_before_any_request(self, monkeypatch, refused_url, extra, expected):
        ok, message = _use(monkeypatch, refused_url, **extra).test_connection()
        assert not ok
        assert message.startswith(f"The connection is not valid: {expected}")
        assert "has spaces" not in message  # the secret is not echoed
