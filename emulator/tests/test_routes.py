"""The emulator's route table, and the HTTP plumbing serving a second flavor's table."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from mineru_emulator import MinerUEmulator
from mineru_emulator.faults import Fault, FaultBook
from mineru_emulator.http import HTTPService, Request, Route, RouteTable, answer_transport_fault


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "arg", "allowed"),
    [
        ("POST", "/api/v4/extract/task", "submit_task", None, True),
        ("POST", "/api/v4/extract/task//", "submit_task", None, True),
        ("GET", "/api/v4/extract/task", "submit_task", None, False),
        ("GET", "/api/v4/extract/task/abc/", "get_task", "abc", True),
        ("POST", "/api/v4/extract/task/batch", "submit_batch", None, True),
        ("GET", "/api/v4/extract/task/batch", "get_task", "batch", True),
        ("PUT", "/api/v4/extract/task/batch", "get_task", "batch", False),
        ("GET", "/api/v4/extract/task/a/b", "other", None, True),
        ("GET", "/api/v4/extract-results/batch/b1", "get_batch", "b1", True),
        ("GET", "/api/v4/file-urls/batch", "file_urls", None, False),
        ("GET", "/api/v4extract/task", "other", None, True),
        ("PUT", "/api-upload/b/k.pdf", "upload", "b/k.pdf", True),
        ("GET", "/cdn/pdf/z1.zip", "download", "z1", True),
        ("GET", "/samples", "sample", None, True),
        ("GET", "/samples//invoice.pdf/", "sample", "invoice.pdf", True),
        ("GET", "/__emulator__/faults/", "admin", "faults", True),
        ("GET", "/__emulator__x", "other", None, True),
    ],
)
def test_cloud_route_table(method: str, path: str, endpoint: str, arg: str | None, allowed: bool) -> None:
    route, found_arg, ok = MinerUEmulator().routes.resolve(method, path)
    assert (route.endpoint, found_arg or None, ok) == (endpoint, arg, allowed)


def test_admin_route_takes_no_faults() -> None:
    routes = MinerUEmulator().routes
    assert [r.endpoint for r in routes.routes if not r.faultable] == ["admin"]


class _Echo(HTTPService):
    """A second flavor in a dozen lines: its own route table and answers, the shared plumbing."""

    server_version = "echo/2"
    idle_timeout = 0.5

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0, threading.RLock())
        self.fault_book = FaultBook(self._lock)
        self.answers = self
        self.routes = RouteTable(
            [
                Route("echo", r"/echo/(?P<arg>[^/]+)", self._echo, frozenset({"POST"})),
                Route("form", r"/form", self._form, frozenset({"POST"}), max_body=1000),
                Route("boom", r"/boom", self._boom),
            ],
            fallback=Route("other", "", lambda request: request.send_text(404, "nothing here")),
        )

    def _echo(self, request: Request) -> None:
        request.send_json({"name": request.arg, "body": request.json})

    def _form(self, request: Request) -> None:
        try:
            parts = request.multipart()
        except ValueError as exc:
            request.send_text(400, str(exc))
            return
        payload = [[p.name, p.filename, p.data.decode()] for p in parts]
        request.send_json({"parts": payload, "query": request.query}, content_type="application/json")

    def _boom(self, request: Request) -> None:
        raise RuntimeError("kaboom")

    def method_not_allowed(self, request: Request, route: Route) -> None:
        request.send_text(405, "POST only")

    def body_too_large(self, request: Request) -> None:
        request.send_text(413, "too large")

    def internal_error(self, request: Request, error: Exception) -> None:
        request.send_text(500, f"oops: {error}")

    def answer_fault(self, request: Request, fault: Fault) -> bool:
        return answer_transport_fault(request, fault)


def test_a_second_flavor_plugs_its_own_route_table() -> None:
    with _Echo().start() as service:
        root = service.root_url
        assert requests.post(f"{root}/echo/a", json={"x": 1}, timeout=5).json() == {"name": "a", "body": {"x": 1}}
        assert requests.get(f"{root}/echo/a", timeout=5).status_code == 405
        assert requests.get(f"{root}/nope", timeout=5).status_code == 404
        service.fault_book.faults.append(Fault(endpoint="other", body="<html>gateway</html>", http_status=502))
        assert requests.get(f"{root}/nope", timeout=5).status_code == 502
        assert [(r.endpoint, r.status, r.fault) for r in service.requests] == [
            ("echo", 200, None),
            ("echo", 405, None),
            ("other", 404, None),
            ("other", 502, "body_502"),
        ]


def test_the_plumbing_reads_multipart_bodies_within_the_route_limit() -> None:
    """A form body (also chunked) is read into ``Request.body`` and split by ``Request.multipart()``."""
    with _Echo().start() as service:
        url = f"{service.root_url}/form?tier=flash"
        files = [("files", ("a.txt", b"alpha")), ("files", ("b.txt", b"beta"))]
        answer = requests.post(url, files=files, data={"note": "n"}, timeout=5)
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json() == {
            "parts": [["note", None, "n"], ["files", "a.txt", "alpha"], ["files", "b.txt", "beta"]],
            "query": "tier=flash",
        }
        prepared = requests.Request("POST", url, files=files).prepare()
        body, ctype = prepared.body, prepared.headers["Content-Type"]
        chunked = requests.post(url, data=iter([body[:10], body[10:]]), headers={"Content-Type": ctype}, timeout=5)
        assert chunked.json()["parts"][1] == ["files", "b.txt", "beta"]
        assert requests.post(url, data=b"x=1", headers={"Content-Type": "text/plain"}, timeout=5).status_code == 400
        too_big = requests.post(url, files=[("files", ("c.txt", b"c" * 2000))], timeout=5)
        assert (too_big.status_code, too_big.text) == (413, "too large")
        assert [r.endpoint for r in service.requests] == ["form"] * 4


def test_a_flavor_sets_its_server_header_and_sees_the_error_it_answers() -> None:
    with _Echo().start() as service:
        answer = requests.get(f"{service.root_url}/boom", timeout=5)
        assert (answer.status_code, answer.text) == (500, "oops: kaboom")
        assert answer.headers["Server"] == "echo/2"
        assert requests.get(f"{service.root_url}/nope", timeout=5).headers["Server"] == "echo/2"


def test_a_flavor_sets_its_idle_timeout() -> None:
    """An idle connection is closed after the flavor's ``idle_timeout`` (0.5 s here, 300 s by default)."""
    with _Echo().start() as service, socket.create_connection(("127.0.0.1", service.port), timeout=5) as conn:
        started = time.monotonic()
        assert conn.recv(1) == b""
        assert time.monotonic() - started < 3
