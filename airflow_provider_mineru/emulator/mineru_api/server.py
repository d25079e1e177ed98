"""
:class:`MinerUApiEmulator`: a local stand-in for the open-source ``mineru-api`` server (V1 API).

An honest second implementation from the server's documented behaviour (it imports nothing from
the provider and nothing from Airflow): bearer API key, flash-tier parsing of Office/HTML/CSV files
and text PDFs, per-file OCR failures for scans and images, ``partial`` tasks, result zips in the
server's own layout, state in memory only (``restart()`` and the retention forget tasks, which then
answer 404), and scripted faults. Versions other than 4.0.x can be pretended (``version="3.1.0"``
serves no ``/v1`` API; ``"4.1.0"`` reports itself in ``/v1/health``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_mineru.emulator.mineru_api import responses, routes
from airflow_provider_mineru.emulator.mineru_api.state import TERMINAL, TaskRecord, Timings

logger = logging.getLogger("airflow_provider_mineru.emulator.mineru_api")

ENDPOINTS = ("health", "tiers", "submit", "get_task", "cancel", "result", "file_content", "other")
_MAX_BODY = 256 * 1024 * 1024


@dataclass
class Fault:
    """
    The next ``times`` requests to ``endpoint`` (``"*"``: any but health) get this answer instead.

    :param http_status: status of the error answer (with ``code``/``message`` in the V1 error body).
    :param retry_after: a ``Retry-After`` header, in seconds.
    :param reset: close the connection without an answer.
    :param body: a raw body (e.g. a proxy's HTML page) instead of the V1 error body.
    :param restart: the server restarts first (every task forgotten), as a crash under load would.
    """

    endpoint: str = "*"
    http_status: int = 503
    code: str | None = "service_unavailable"
    message: str = "emulated fault"
    error_type: str = "api_error"
    retry_after: float | None = None
    reset: bool = False
    body: bytes | None = None
    restart: bool = False
    times: int = 1
    fired: int = 0

    def __post_init__(self) -> None:
        if self.endpoint != "*" and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; one of {', '.join(ENDPOINTS)} or '*'")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: MinerUApiEmulator

    def server_bind(self) -> None:  # no reverse DNS lookup (HTTPServer.server_bind calls getfqdn)
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""
    timeout = 120
    server: _Server

    def _go(self) -> None:
        self.server.emulator._dispatch(self)

    do_GET = do_POST = do_PUT = do_DELETE = _go

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are recorded by the emulator itself."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http.server: malformed or aborted request from %s", self.client_address[0])


class MinerUApiEmulator:
    """
    A running stand-in for ``mineru-api --tier flash --api-key KEY``.

    :param api_key: the ``--api-key`` (empty: no authentication, as without ``--api-key``).
    :param host: interface to bind; ``port=0`` picks a free port.
    :param timings: how long tasks stay queued and files running.
    :param version: what ``/v1/health`` reports (``3.x``: no V1 API at all).
    :param server_tier: ``--tier`` (``flash``: PDFs and images need an explicit ``tier``).
    :param allow_http_source: ``--allow-http-source`` (http:// URL sources).
    :param retention_seconds: ``--retention-seconds``: finished tasks are forgotten after this.
    :param fetch_timeout: seconds to fetch a URL source.
    """

    def __init__(
        self,
        api_key: str = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        timings: Timings | None = None,
        version: str = "4.0.12",
        server_tier: str = "flash",
        allow_http_source: bool = True,
        retention_seconds: float = 86400.0,
        fetch_timeout: float = 5.0,
    ) -> None:
        if server_tier not in routes.TIERS:
            raise ValueError(f"server_tier must be one of {routes.TIERS}")
        self.api_key = api_key
        self.host = host
        self.port = port
        self.timings = timings or Timings()
        self.version = version
        self.server_tier = server_tier
        self.allow_http_source = allow_http_source
        self.retention_seconds = retention_seconds
        self.fetch_timeout = fetch_timeout
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._faults: list[Fault] = []
        self._requests: list[dict[str, Any]] = []
        self.restarts = 0
        self._forget_all()

    def _forget_all(self) -> None:
        self._tasks: dict[str, TaskRecord] = {}
        self._file_ids: dict[str, dict[tuple[int, str], str]] = {}
        self._outputs: dict[str, tuple[str, int, str]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> MinerUApiEmulator:
        if self._server is None:
            server = _Server((self.host, self.port), _Handler)
            server.emulator = self
            self._server, self.port = server, server.server_port
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="mineru-api-emulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        deadline = time.monotonic() + 5
        while stopper.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((self._public_host, self.port), timeout=0.2):
                pass
            stopper.join(0.01)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MinerUApiEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def restart(self) -> None:
        """What a restart of the real server does: every task and file is forgotten (404 afterwards)."""
        with self._lock:
            self._forget_all()
            self.restarts += 1

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def _public_host(self) -> str:
        return "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self._public_host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The connection's Base URL: the server's root (the client adds ``/v1/…``)."""
        return self.root_url

    @property
    def token(self) -> str:
        return self.api_key

    def connection_json(self) -> str:
        """JSON for ``AIRFLOW_CONN_MINERU_DEFAULT``: ``api_flavor`` ``mineru-api``, the key as password."""
        return json.dumps(
            {
                "conn_type": "mineru",
                "host": self.root_url,
                "password": self.api_key,
                "extra": {"api_flavor": "mineru-api"},
            }
        )

    # -- inspection and scripting ------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every answered request: ``{method, path, endpoint, status, authorized}`` (no query strings)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["endpoint"] == endpoint]

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def task_ids(self) -> list[str]:
        with self._lock:
            return list(self._tasks)

    def add_task(self, task: TaskRecord) -> dict[str, Any]:
        with self._lock:
            self._tasks[task.task_id] = task
            ids: dict[tuple[int, str], str] = {}
            for index in range(len(task.files)):
                for fmt in task.output_formats:
                    file_id = f"file-{task.task_id[4:16]}{index:04d}{fmt[:2]}"
                    ids[(index, fmt)] = file_id
                    self._outputs[file_id] = (task.task_id, index, fmt)
            self._file_ids[task.task_id] = ids
            return self._payload(task, time.time())

    def _payload(self, task: TaskRecord, now: float) -> dict[str, Any]:
        return responses.task_payload(task, now, self.timings, self._file_ids.get(task.task_id, {}))

    def _collect_expired(self, now: float) -> None:
        for task_id, task in list(self._tasks.items()):
            if (
                task.status(now, self.timings) in TERMINAL
                and task.finished_at(self.timings) + self.retention_seconds <= now
            ):
                del self._tasks[task_id]
                for file_id in self._file_ids.pop(task_id, {}).values():
                    self._outputs.pop(file_id, None)

    def _task(self, task_id: str, now: float) -> TaskRecord:
        self._collect_expired(now)
        task = self._tasks.get(task_id)
        if task is None:
            raise routes.ApiError(404, "invalid_request_error", "job_not_found", f"Job {task_id} not found")
        return task

    # -- HTTP --------------------------------------------------------------------------------------

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.fired < fault.times and (
                    fault.endpoint == endpoint or (fault.endpoint == "*" and endpoint != "health")
                ):
                    fault.fired += 1
                    return fault
        return None

    def _dispatch(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        if int(self.version.split(".")[0] or 0) < 4:  # a 3.x server has no V1 API
            endpoint = "other"
        else:
            endpoint, arg = routes.route(h.command, path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if 0 < length <= _MAX_BODY else b""
        authorized = not self.api_key or h.headers.get("Authorization", "") == f"Bearer {self.api_key}"
        status, payload, headers = 200, None, {}
        raw: bytes | None = None
        try:
            fault = self._take_fault(endpoint)
            if fault is not None:
                if fault.restart:
                    self.restart()
                if fault.reset:
                    h.close_connection = True
                    with contextlib.suppress(OSError):
                        h.connection.shutdown(socket.SHUT_RDWR)
                    self._record(h.command, path, endpoint, 0, authorized)
                    return
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(int(fault.retry_after))
                if fault.body is not None:
                    raise _Raw(fault.http_status, fault.body)
                raise routes.ApiError(fault.http_status, fault.error_type, fault.code, fault.message)
            if endpoint == "other":
                raise routes.ApiError(404, "invalid_request_error", "invalid_request", "Not Found")
            if path not in routes.PUBLIC_PATHS and not authorized:
                raise routes.ApiError(401, "authentication_error", "invalid_api_key", "Invalid or missing API key")
            now = time.time()
            with self._lock:
                if endpoint == "health":
                    payload = routes.health(self)
                elif endpoint == "tiers":
                    payload = routes.tiers(self)
                elif endpoint == "submit":
                    status = 202
                    payload = None
                elif endpoint == "get_task":
                    payload = self._payload(self._task(arg or "", now), now)
                elif endpoint == "cancel":
                    task = self._task(arg or "", now)
                    if task.status(now, self.timings) in TERMINAL:
                        raise routes.invalid(
                            f"Job is {task.status(now, self.timings)}", code="job_already_terminal", status=409
                        )
                    task.canceled_at = now
                    payload = self._payload(task, now)
                elif endpoint == "result":
                    status, payload, raw, headers = self._result(self._task(arg or "", now), now, parts.query)
                elif endpoint == "file_content":
                    raw = self._file_content(arg or "", now)
                    headers = {"Content-Type": "application/octet-stream"}
            if endpoint == "submit":  # outside the lock: URL sources are fetched while answering
                payload = routes.submit(self, parts.query, h.headers.get("Content-Type", ""), body)
        except routes.ApiError as error:
            status, payload = error.status, error.body
        except _Raw as error:
            status, raw = error.status, error.body
            headers["Content-Type"] = "text/html"
        except Exception as exc:  # an emulator bug answers like the real server's catch-all
            logger.exception("mineru-api emulator error")
            status, payload = 500, responses.error_body("api_error", "internal_error", f"Internal server error: {exc}")
        data = raw if raw is not None else json.dumps(payload).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        self._record(h.command, path, endpoint, status, authorized)

    def _record(self, method: str, path: str, endpoint: str, status: int, authorized: bool) -> None:
        with self._lock:
            self._requests.append(
                {"method": method, "path": path, "endpoint": endpoint, "status": status, "authorized": authorized}
            )
        logger.info("%s %s -> %s", method, path, status)

    def _result(self, task: TaskRecord, now: float, query: str) -> tuple[int, Any, bytes | None, dict[str, str]]:
        response_format = (parse_qs(query).get("response_format") or ["json"])[-1]
        payload = self._payload(task, now)
        status = payload["status"]
        if status not in TERMINAL:
            return 202, payload, None, {}
        if status in ("failed", "canceled"):
            return 409, payload, None, {}
        if response_format == "zip":
            if "zip" not in task.output_formats:
                raise routes.invalid(
                    "Request zip in output_formats when submitting the task", code="unsupported_output_format"
                )
            index = next(i for i, f in enumerate(payload["files"]) if f["status"] == "completed")
            data = responses.file_zip(task, index) if len(task.files) == 1 else responses.combined_zip(task, payload)
            headers = {
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{task.task_id}.zip"',
                "X-MinerU-Task-Id": task.task_id,
                "X-MinerU-Task-Status": status,
            }
            return 200, None, data, headers
        for index, entry in enumerate(payload["files"]):
            entry["content"] = (
                {"markdown": task.files[index].outcome.markdown} if entry["status"] == "completed" else {}
            )
        return 200, payload, None, {}

    def _file_content(self, file_id: str, now: float) -> bytes:
        self._collect_expired(now)
        owner = self._outputs.get(file_id)
        task = self._tasks.get(owner[0]) if owner else None
        if owner is None or task is None or task.file_status(owner[1], now, self.timings) != "completed":
            raise routes.ApiError(404, "invalid_request_error", "file_not_found", f"File {file_id} not found")
        _, index, fmt = owner
        if fmt == "zip":
            return responses.file_zip(task, index)
        return task.files[index].outcome.markdown.encode("utf-8")


class _Raw(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status, self.body = status, body
