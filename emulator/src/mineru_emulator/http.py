"""
The emulator's HTTP plumbing, shared by every API flavor: the threaded server, one request's
reading and writing, the request log, and the dispatch from a route table to handlers.

A flavor (the MinerU cloud API in :mod:`~mineru_emulator.cloud`, the
open-source ``mineru-api`` in :mod:`~mineru_emulator.mineru_api`) subclasses
:class:`HTTPService` and supplies a :class:`RouteTable`, an :class:`Answers` (its answers to a
method not allowed, an oversized body, an internal error and a fault) and a
:class:`~mineru_emulator.faults.FaultBook`; it may set its ``Server`` header and
idle timeout. Nothing here knows an endpoint or an envelope.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import logging
import os
import re
import shutil
import socket
import socketserver
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from mineru_emulator.faults import FaultBook, ScriptedFault

logger = logging.getLogger("mineru_emulator")

CHUNK = 64 * 1024
#: The largest request body read into memory by default (uploads stream to disk instead; a
#: route may allow more with :attr:`Route.max_body`).
MAX_JSON_BODY = 16 * 1024 * 1024
_HOST_HEADER = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
#: :func:`parse_range`'s answer for a ``Range`` header that is not one byte range.
WHOLE = (-1, -1)


class BodyTooLarge(Exception):
    """A request body over its route's limit (:attr:`Route.max_body`)."""


@dataclass(frozen=True)
class FormPart:
    """
    One part of a ``multipart/form-data`` body.

    :param name: the form field's name (``""`` when the part has none).
    :param filename: the file name of a file field, or None.
    :param data: the part's bytes (transfer encodings decoded).
    """

    name: str
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator answered (the token itself is never stored)."""

    time: float
    method: str
    path: str
    endpoint: str
    status: int
    json: Any | None
    body_size: int
    has_authorization: bool
    content_type: str | None
    fault: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_range(header: str, total: int) -> tuple[int, int] | None:
    """
    Parse a single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range.

    :param header: the ``Range`` header.
    :param total: the size of the file.
    :return: ``(start, end)`` inclusive; None when unsatisfiable; :data:`WHOLE` when the header
        is not a single byte range (the whole file is sent then, as servers may).
    """
    spec = header.strip()
    if not spec.lower().startswith("bytes=") or "," in spec:
        return WHOLE
    first, _, last = spec[6:].strip().partition("-")
    try:
        if first == "":
            length = int(last)
            if length <= 0 or total == 0:
                return None
            return (max(0, total - length), total - 1)
        start = int(first)
        end = int(last) if last else total - 1
    except ValueError:
        return WHOLE
    if start >= total or end < start:
        return None
    return (start, min(end, total - 1))


class Request:
    """
    One request while it is being answered: what was routed, what was read, what was sent.

    :param handler: the stdlib request handler (socket, headers, ``rfile``/``wfile``).
    :param endpoint: the endpoint name the route table chose.
    :param arg: the path argument the route captured (a task id, a file key...), if any.
    :param record: called once, just before the answer goes on the wire, to log the request.
    """

    def __init__(
        self, handler: BaseHTTPRequestHandler, endpoint: str, arg: str | None, record: Callable[[Request], None]
    ) -> None:
        self.h = handler
        self.endpoint = endpoint
        self.arg = arg
        self.status = 0
        self.json: Any | None = None
        #: The body, when the plumbing read it (routes that do not stream their body).
        self.body = b""
        self.body_size = 0
        self.fault: str | None = None
        self.truncate = False
        self.extra_headers: dict[str, str] = {}
        self.body_read = False
        self.recorded = False
        self._record = record

    @property
    def method(self) -> str:
        return self.h.command

    @property
    def headers(self) -> Any:
        return self.h.headers

    @property
    def query(self) -> str:
        """The raw query string (without ``?``)."""
        return urlsplit(self.h.path).query

    def record(self) -> None:
        """Add the request to the log, once."""
        if not self.recorded:
            self.recorded = True
            self._record(self)

    def root(self, default: str) -> str:
        """
        ``http://<Host header>`` of the request, so URLs handed out work from where the client is.

        :param default: the answer when the Host header is missing or not a plain host[:port].
        """
        host = (self.headers.get("Host") or "").strip()
        if host and _HOST_HEADER.fullmatch(host):
            return f"http://{host}"
        return default

    # body reading

    def iter_body(self) -> Iterator[bytes]:
        """The request body in chunks (Content-Length or chunked transfer encoding)."""
        h = self.h
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = h.rfile.readline(1024)
                if not line:
                    raise ConnectionResetError("client closed mid-body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield from self._read_exactly(size)
                h.rfile.readline(1024)
        yield from self._read_exactly(int(h.headers.get("Content-Length") or 0))

    def _read_exactly(self, left: int) -> Iterator[bytes]:
        while left > 0:
            chunk = self.h.rfile.read(min(left, CHUNK))
            if not chunk:
                raise ConnectionResetError("client closed mid-body")
            left -= len(chunk)
            yield chunk

    def read_body(self, limit: int = MAX_JSON_BODY) -> bytes:
        """
        The whole body.

        :param limit: the most bytes accepted; a larger body raises :class:`BodyTooLarge`.
        """
        parts: list[bytes] = []
        size = 0
        for chunk in self.iter_body():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            parts.append(chunk)
        self.body_read = True
        return b"".join(parts)

    def multipart(self) -> list[FormPart]:
        """
        The parts of a ``multipart/form-data`` :attr:`body`, in order.

        :raises ValueError: the Content-Type is not multipart or the body is not a multipart message.
        """
        content_type = self.headers.get("Content-Type") or ""
        if not content_type.lower().startswith("multipart/"):
            raise ValueError(f"Content-Type {content_type!r} is not multipart")
        head = b"Content-Type: " + content_type.encode("latin-1", errors="replace") + b"\r\n\r\n"
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        if not message.is_multipart():
            raise ValueError("the body is not a multipart message")
        parts = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            parts.append(FormPart(str(name or ""), part.get_filename(), part.get_payload(decode=True) or b""))
        return parts

    def drain(self) -> None:
        """Consume an unread request body so the connection can be kept alive."""
        if self.body_read:
            return
        self.body_read = True
        for chunk in self.iter_body():
            self.body_size += len(chunk)

    # response writing

    def head(self, status: int, headers: dict[str, str]) -> bytes:
        """The status line and headers of an answer, as bytes (Content-Length must be in ``headers``)."""
        h = self.h
        reason = h.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"Server: {h.server_version}", f"Date: {h.date_time_string()}"]
        merged = {**headers, **self.extra_headers}
        if self.truncate:
            merged["Connection"] = "close"
        lines += [f"{key}: {value}" for key, value in merged.items()]
        if merged.get("Connection", "").lower() == "close" or self.truncate:
            h.close_connection = True
        self.status = status
        self.record()
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")

    def send(self, status: int, body: bytes, content_type: str | None, headers: dict[str, str] | None = None) -> None:
        """
        Send a complete answer (always with Content-Length); honours :attr:`truncate`.

        :param status: the HTTP status.
        :param body: the body (not sent for HEAD).
        :param content_type: the Content-Type, or None for none.
        :param headers: more headers.
        """
        h = self.h
        self.drain()
        all_headers: dict[str, str] = {}
        if content_type:
            all_headers["Content-Type"] = content_type
        all_headers["Content-Length"] = str(len(body))
        all_headers.update(headers or {})
        head = self.head(status, all_headers)
        if h.command == "HEAD":
            body = b""
        data = head + body
        if self.truncate:
            # Cut the answer in half: half the body or, when there is none, half the status line.
            data = head + body[: len(body) // 2] if body else head[: head.index(b"\r\n") // 2]
        h.wfile.write(data)
        h.wfile.flush()

    def send_json(
        self,
        payload: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        """
        Send ``payload`` as UTF-8 JSON.

        :param payload: any JSON-able value.
        :param status: the HTTP status.
        :param headers: more headers.
        :param content_type: the Content-Type (a flavor may send it without the charset).
        """
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send(status, data, content_type, headers)

    def send_text(self, status: int, text: str) -> None:
        self.send(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def send_file(self, path: str, content_type: str) -> None:
        """Stream a file with Content-Length; honours a single ``Range: bytes=`` request."""
        h = self.h
        self.drain()
        total = os.path.getsize(path)
        start, end, status = 0, total - 1, 200
        headers = {"Content-Type": content_type, "Accept-Ranges": "bytes"}
        wanted = h.headers.get("Range")
        if wanted:
            parsed = parse_range(wanted, total)
            if parsed is None:
                self.send(416, b"", None, {"Content-Range": f"bytes */{total}"})
                return
            if parsed is not WHOLE:
                start, end = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        length = end - start + 1
        headers["Content-Length"] = str(length)
        h.wfile.write(self.head(status, headers))
        if h.command == "HEAD":
            return
        to_send = length // 2 if self.truncate else length
        with open(path, "rb") as handle:
            handle.seek(start)
            while to_send > 0:
                chunk = handle.read(min(CHUNK, to_send))
                if not chunk:
                    break
                h.wfile.write(chunk)
                to_send -= len(chunk)
        h.wfile.flush()

    def reset_connection(self) -> None:
        """Close the connection without an answer (RST: SO_LINGER 0)."""
        h = self.h
        h.close_connection = True
        self.record()
        with contextlib.suppress(OSError):
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            h.connection.close()


Handler = Callable[[Request], None]


@dataclass(frozen=True)
class Route:
    """
    One row of a route table.

    :param endpoint: the endpoint name (what faults and the request log use).
    :param pattern: a regular expression the whole path must match; a group named ``arg``, when
        present and matched, becomes :attr:`Request.arg`.
    :param handler: answers the request.
    :param methods: the methods served; None for any (the handler checks). A path that matches
        with another method is answered by :meth:`Answers.method_not_allowed`, unless a later
        route matches both.
    :param streams_body: the handler reads the body itself (uploads); otherwise it is read into
        :attr:`Request.body`, and parsed as JSON when it is JSON, before faults and the handler run.
    :param faultable: faults may apply (False for the admin API).
    :param max_body: the largest body read into memory (a larger one is answered by
        :meth:`Answers.body_too_large`); not used with ``streams_body``.
    """

    endpoint: str
    pattern: str
    handler: Handler
    methods: frozenset[str] | None = None
    streams_body: bool = False
    faultable: bool = True
    max_body: int = MAX_JSON_BODY
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def match(self, path: str) -> re.Match[str] | None:
        return self._compiled.fullmatch(path)


class RouteTable:
    """
    Routes checked in order; the first whose path and method match answers.

    :param routes: the routes.
    :param fallback: the route of a path no route matches (its pattern is not used).
    """

    def __init__(self, routes: Sequence[Route], fallback: Route) -> None:
        self.routes = tuple(routes)
        self.fallback = fallback

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoint names, in table order (the fallback last), without repeats."""
        return tuple(dict.fromkeys([route.endpoint for route in self.routes] + [self.fallback.endpoint]))

    def resolve(self, method: str, path: str) -> tuple[Route, str | None, bool]:
        """
        :param method: the request method.
        :param path: the request path (no query string).
        :return: the route, its path argument, and whether the method is allowed there (when no
            route allows it, the first route whose path matched).
        """
        first: tuple[Route, str | None] | None = None
        for route in self.routes:
            found = route.match(path)
            if found is None:
                continue
            arg = found.groupdict().get("arg")
            if route.methods is None or method in route.methods:
                return route, arg, True
            if first is None:
                first = (route, arg)
        if first is not None:
            return first[0], first[1], False
        return self.fallback, None, True


class Answers(Protocol):
    """A flavor's answers to what the plumbing detects before, or instead of, a handler."""

    def method_not_allowed(self, request: Request, route: Route) -> None: ...

    def body_too_large(self, request: Request) -> None: ...

    def internal_error(self, request: Request, error: Exception) -> None: ...

    def answer_fault(self, request: Request, fault: Any) -> bool:
        """Answer with ``fault``; False when the normal answer should follow (delay, truncated)."""
        ...


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    service: HTTPService

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can take
        # seconds on machines without DNS; we do not need the name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.service._track(request, add=True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.service._track(request, add=False)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MinerUEmulator/1.0"
    sys_version = ""
    server: EmulatorHTTPServer

    def setup(self) -> None:
        # The flavor's Server header and idle timeout (StreamRequestHandler.setup applies the timeout).
        service = self.server.service
        self.server_version = service.server_version
        self.timeout = service.idle_timeout
        super().setup()

    def _go(self) -> None:
        self.server.service._dispatch(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _go

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by the emulator itself (without query strings)."""

    def log_message(self, format: str, *args: Any) -> None:
        # The stdlib formats the raw request line (with query strings) into some messages.
        logger.debug("http.server: malformed or aborted request from %s", self.client_address[0])


class HTTPService:
    """
    A threaded HTTP server answering through a route table; the base of an emulator flavor.

    A subclass sets :attr:`routes`, :attr:`answers` and :attr:`fault_book` before :meth:`start`
    (and may change :attr:`server_version`, :attr:`idle_timeout` and :attr:`thread_name`).
    It gets the lifecycle (``start``/``stop``/``with``), a temporary directory while running
    (:meth:`_dir`), the addresses and the request log.

    :param host: interface to bind; ``port=0`` picks a free port.
    :param port: the port.
    :param lock: the lock guarding the request log (and, by the subclass's choice, its state).
    """

    routes: RouteTable
    answers: Answers
    fault_book: FaultBook[ScriptedFault]
    #: Name of the serving thread and prefix of the temporary directory.
    thread_name = "mineru-emulator"
    #: The ``Server`` header of every answer.
    server_version = "MinerUEmulator/1.0"
    #: Seconds a connection may stay idle (or a body stall) before it is closed.
    idle_timeout: float = 300

    def __init__(self, host: str, port: int, lock: threading.RLock) -> None:
        self.host = host
        self.port = port
        self._lock = lock
        self._stop_event = threading.Event()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._workdir: str | None = None
        self._connections: set[Any] = set()
        self._requests: list[RecordedRequest] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Any:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        self._stop_event.clear()
        server = EmulatorHTTPServer((self.host, self.port), _Handler)  # may raise OSError (port in use)
        server.service = self
        self._workdir = tempfile.mkdtemp(prefix=f"{self.thread_name}-")
        self._server = server
        self.port = server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        logger.info("MinerU emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and remove the emulator's temporary files."""
        server = self._server
        if server is None:
            return
        self._stop_event.set()
        # shutdown() waits for the accept loop's next poll; wake it with throwaway connections.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        address = (self._public_host.strip("[]"), self.port)
        while stopper.is_alive():
            with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.2):
                pass
            stopper.join(0.005)
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: Any, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _dir(self, sub: str) -> str:
        """A subdirectory of the running emulator's temporary directory (created)."""
        if self._workdir is None:
            raise RuntimeError("the emulator is not running")
        path = os.path.join(self._workdir, sub)
        os.makedirs(path, exist_ok=True)
        return path

    # -- addresses -------------------------------------------------------------------------------

    @property
    def _public_host(self) -> str:
        return "127.0.0.1" if self.host in ("", "0.0.0.0") else ("[::1]" if self.host == "::" else self.host)

    @property
    def root_url(self) -> str:
        """``http://host:port`` of the running emulator."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host = self._public_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL (the root URL here; a flavor may add its path prefix)."""
        return self.root_url

    # -- the request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every answered request, in order (a snapshot)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The recorded requests to one endpoint."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: Request) -> None:
        h = request.h
        record = RecordedRequest(
            time=time.time(),
            method=h.command,
            path=h.path,
            endpoint=request.endpoint,
            status=request.status,
            json=request.json,
            body_size=request.body_size,
            has_authorization="Authorization" in h.headers,
            content_type=h.headers.get("Content-Type"),
            fault=request.fault,
        )
        with self._lock:
            self._requests.append(record)
        # One line per request: method, path without the query string (upload signatures), status.
        logger.info("%s %s %s", h.command, urlsplit(h.path).path, request.status or "no-response")

    # -- dispatch --------------------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        """Answer one request: faults first, then the route's handler; record and log it."""
        path = urlsplit(h.path).path
        route, arg, allowed = self.routes.resolve(h.command, path)
        request = Request(h, route.endpoint, arg, self._record)
        try:
            if not route.streams_body:
                body = request.body = request.read_body(route.max_body)
                request.body_size = len(body)
                if body:
                    with contextlib.suppress(ValueError):
                        request.json = json.loads(body)
            fault = self.fault_book.take(route.endpoint, h.path) if route.faultable else None
            if fault is not None:
                request.fault = fault.label
                request.truncate = fault.truncated
                if self.answers.answer_fault(request, fault):
                    return
            if allowed:
                route.handler(request)
            else:
                self.answers.method_not_allowed(request, route)
        except BodyTooLarge:
            h.close_connection = True
            request.body_read = True
            self.answers.body_too_large(request)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError) as exc:
            h.close_connection = True
            logger.info("%s %s: connection lost (%s)", h.command, path, type(exc).__name__)
        except Exception as exc:
            logger.exception("emulator error answering %s %s", h.command, path)
            h.close_connection = True
            if request.status == 0:
                with contextlib.suppress(OSError):
                    self.answers.internal_error(request, exc)
        finally:
            request.record()


def _fmt_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def answer_transport_fault(request: Request, fault: ScriptedFault) -> bool:
    """
    Apply a fault's delay and ``Retry-After``; answer its connection reset or literal body.

    :param request: the request being answered.
    :param fault: the fault taken for it.
    :return: True when the request is answered; False when the flavor answers the rest.
    """
    if fault.delay:
        time.sleep(fault.delay)
    if fault.retry_after is not None:
        request.extra_headers["Retry-After"] = _fmt_seconds(fault.retry_after)
    if fault.reset:
        request.reset_connection()
        return True
    if fault.body is not None:
        data = fault.body.encode("utf-8") if isinstance(fault.body, str) else fault.body
        ctype = fault.content_type
        if ctype is None:
            ctype = "text/html; charset=utf-8" if data.lstrip()[:1] == b"<" else "text/plain; charset=utf-8"
        request.send(fault.http_status or 200, data, ctype)
        return True
    return False
