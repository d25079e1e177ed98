"""
A hostile HTTP server on loopback: each route answers as a broken or malicious MinerU, CDN or proxy would.

Routes are ``{path: handler}``; a handler gets the ``BaseHTTPRequestHandler`` and writes whatever
it likes (redirects, 300 MiB bodies, a byte every half second). Every request is recorded with its
headers and body so tests can assert what reached the server, and what did not.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class HostileServer:
    """A threaded HTTP server whose answers the test scripts per path (``routes``)."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    read_bodies: bool = True

    def __post_init__(self) -> None:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if (length and server.read_bodies) else b""
                server.requests.append(Seen(self.command, self.path, dict(self.headers.items()), body))
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    send_json(self, 404, {"code": -60012, "msg": "no route", "data": None})
                    return
                with contextlib.suppress(OSError):  # the client stopped reading: what a bounded client does
                    route(self)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def hostport(self) -> str:
        return self.origin.split("://", 1)[1]

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def connection(self, *, timeout: float = 5, max_retries: int = 0, **extra: Any) -> str:
        """The JSON form of a ``mineru`` connection to this server."""
        return json.dumps(
            {
                "conn_type": "mineru",
                "host": f"{self.origin}/api/v4",
                "password": "hostile-test-token-0123",
                "extra": {"timeout": timeout, "max_retries": max_retries, "retry_backoff": 0.01, **extra},
            }
        )


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def ok(data: Any) -> Handler:
    """Answer MinerU's success envelope with ``data``."""
    return lambda h: send_json(h, 200, {"code": 0, "msg": "ok", "trace_id": "t-1", "data": data})


def empty(status: int = 200) -> Handler:
    """An empty answer (what object storage says to a good PUT)."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


def redirect(status: int, location: str) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


def huge(status: int, size: int, *, declare_length: bool) -> Handler:
    """``size`` bytes of a JSON-looking body, declared up front or sent chunked."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        if declare_length:
            h.send_header("Content-Length", str(size))
        else:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        block = b'{"code": 0, "data": "' + b"x" * (1024 * 1024 - 22)
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            if declare_length:
                h.wfile.write(piece)
            else:
                h.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
        if not declare_length:
            h.wfile.write(b"0\r\n\r\n")

    return handle


def trickle(*, interval: float = 0.5, total: int = 40, in_headers: bool = False) -> Handler:
    """One byte every ``interval`` seconds: of the body (headers sent at once) or of the headers."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"code": 0, "data": {"task_id": "t" * total}}).encode()
        if in_headers:
            head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * total + b"\r\n"
            for byte in head:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                time.sleep(interval)
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        for byte in body:
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(interval)

    return handle
