"""
The MinerU API emulator: a local, stdlib-only HTTP server speaking MinerU's v4 API.

One :class:`MinerUEmulator` serves the API under a configurable prefix, presigned-style upload
URLs (``/api-upload/...``), result zips (``/cdn/pdf/<id>.zip``), the bundled sample documents
(``/samples/<name>``) and an admin API (``/__emulator__/...``) for fault injection and request
inspection. Task states are computed lazily from timestamps, so no thread runs per task except
the short-lived ones that fetch a document URL or post a callback.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from airflow_provider_mineru.emulator.cloud import contract
from airflow_provider_mineru.emulator.cloud.contract import ApiError

logger = logging.getLogger("airflow_provider_mineru.emulator")

ENDPOINTS = (
    "submit_task",
    "get_task",
    "file_urls",
    "submit_batch",
    "get_batch",
    "upload",
    "download",
    "sample",
    "admin",
    "other",
)
#: Endpoints a ``Fault(endpoint="*")`` applies to (not the admin API, not the sample files).
WILDCARD_ENDPOINTS = frozenset(
    {"submit_task", "get_task", "file_urls", "submit_batch", "get_batch", "upload", "download", "other"}
)
TERMINAL_STATES = frozenset({"done", "failed"})
_CHUNK = 64 * 1024
_MAX_JSON_BODY = 16 * 1024 * 1024
_CALLBACK_ATTEMPTS = 5
_ADMIN = "/__emulator__"
_HOST_HEADER = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


@dataclass
class Timings:
    """
    How long tasks spend in each state, in seconds (computed lazily from timestamps).

    :param pending: time in ``pending`` after submission (or after the upload arrived).
    :param per_page: time in ``running`` per selected page.
    :param converting: time in ``converting``.
    :param fetch_timeout: timeout of the emulator's fetch of a task URL.
    :param callback_backoff: wait before callback retry *n* is ``callback_backoff * n``.
    """

    pending: float = 0.2
    per_page: float = 0.05
    converting: float = 0.1
    fetch_timeout: float = 5.0
    callback_backoff: float = 0.2

    @classmethod
    def fast(cls) -> Timings:
        """Timings for tests: a 3-page document is done in well under 0.1 s."""
        return cls(pending=0.02, per_page=0.005, converting=0.01, fetch_timeout=2.0, callback_backoff=0.02)


@dataclass
class Fault:
    """
    A scripted misbehaviour: the next ``times`` requests matching ``endpoint`` (and ``match``)
    get this answer instead of (or, for ``delay``/``truncated``, in addition to) the normal one.

    See ``docs/emulator.md`` for each field. ``name`` (optional) is what
    :attr:`RecordedRequest.fault` shows; it defaults to a description of the fault.
    """

    endpoint: str = "*"
    times: int = 1
    http_status: int | None = None
    retry_after: float | None = None
    code: str | int | None = None
    msg: str | dict[str, Any] | None = None
    code_as_string: bool = False
    body: bytes | str | None = None
    content_type: str | None = None
    malformed_json: bool = False
    truncated: bool = False
    reset: bool = False
    delay: float = 0.0
    match: str | None = None
    fired: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        if self.endpoint != "*" and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; one of {', '.join(ENDPOINTS)} or '*'")
        if self.times < 1:
            raise ValueError("times must be at least 1")

    @property
    def label(self) -> str:
        """The fault's name, or a short description such as ``http_503`` or ``code_-60009``."""
        if self.name:
            return self.name
        if self.reset:
            return "reset"
        if self.body is not None:
            return f"body_{self.http_status or 200}"
        if self.malformed_json:
            return "malformed_json"
        if self.code is not None:
            return f"code_{self.code}"
        if self.http_status is not None:
            return f"http_{self.http_status}"
        if self.truncated:
            return "truncated"
        return "delay" if self.delay else "fault"

    def to_dict(self) -> dict[str, Any]:
        """The fault as JSON-able data (``body`` decoded as UTF-8 with replacement)."""
        data = asdict(self)
        if isinstance(self.body, bytes):
            data["body"] = self.body.decode("utf-8", errors="replace")
        data["label"] = self.label
        return data

    def _matches(self, endpoint: str, path: str) -> bool:
        if self.fired >= self.times:
            return False
        if self.endpoint == "*":
            if endpoint not in WILDCARD_ENDPOINTS:
                return False
        elif self.endpoint != endpoint:
            return False
        return self.match is None or self.match in path


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


@dataclass
class _Rule:
    """A pending ``fail_next_tasks`` or ``stick`` instruction."""

    value: str
    remaining: int
    match: str | None

    def applies(self, haystacks: Iterable[str]) -> bool:
        return self.remaining > 0 and (self.match is None or any(self.match in text for text in haystacks))


@dataclass
class _Task:
    task_id: str
    file_name: str
    ext: str
    url: str | None
    batch_id: str | None
    options: dict[str, Any]
    data_id: str | None
    page_ranges: str | None
    zip_id: str
    created: float
    upload_key: str | None = None
    upload_claimed: bool = False
    queued_at: float | None = None  # submit (URL) or upload time; None while waiting for the file
    doc_ready_at: float | None = None  # when the document was fetched/uploaded and inspected
    doc_path: str | None = None
    doc_size: int = 0
    kind: str = "pdf"
    total_pages: int = 0
    selected: list[int] = field(default_factory=list)
    doc_error: str | None = None
    forced_state: str | None = None
    fail_msg: str | None = None
    state: str = "pending"
    running_at: float | None = None
    finished_at: float | None = None
    err_msg: str = ""
    zip_path: str | None = None
    build_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Batch:
    batch_id: str
    task_ids: list[str]


class _Ctx:
    """Per-request state while it is being answered."""

    def __init__(self, handler: _Handler, endpoint: str, arg: str | None) -> None:
        self.h = handler
        self.endpoint = endpoint
        self.arg = arg
        self.status = 0
        self.json: Any | None = None
        self.body_size = 0
        self.fault: str | None = None
        self.truncate = False
        self.extra_headers: dict[str, str] = {}
        self.body_read = False
        self.recorded = False


def _trace_id() -> str:
    return uuid.uuid4().hex


def _err_msg(code: str | int, detail: str | None = None) -> str:
    """A task ``err_msg`` naming the code, e.g. ``-60008: File read timeout, ...: detail``."""
    text = f"{code}: {contract.error_message(code)}"
    return f"{text} ({detail})" if detail else text


def _fmt_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: MinerUEmulator

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can take
        # seconds on machines without DNS; we do not need the name.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.emulator._track(request, add=True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.emulator._track(request, add=False)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MinerUEmulator/1.0"
    sys_version = ""
    timeout = 300
    server: _Server

    def _go(self) -> None:
        self.server.emulator._dispatch(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _go

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by the emulator itself (without query strings)."""

    def log_message(self, format: str, *args: Any) -> None:
        # The stdlib formats the raw request line (with query strings) into some messages.
        logger.debug("http.server: malformed or aborted request from %s", self.client_address[0])


class MinerUEmulator:
    """
    A local MinerU API server for tests, demos and offline development.

    :param token: the accepted bearer token.
    :param prefix: API path prefix (``/api/v4``, ``/api/v1`` or ``""``).
    :param host: interface to bind; ``port=0`` picks a free port.
    :param timings: state durations.
    :param uid: the account uid used in callback checksums.
    :param page_quota: pages allowed in total (None = unlimited); see ``-60017``.
    :param upload_url_ttl: seconds an upload URL stays valid.
    :param auth_error_style: ``"http401"`` (live: HTTP 401 ``{"msgCode": ..., "success": false}``)
        or ``"envelope"`` (HTTP 200 ``{"code": "A0202", ...}``).
    :param max_file_bytes: largest accepted document.
    :param max_pages: most pages per document.
    :param max_batch_files: most files per batch call.
    :param member_prefix: zip member prefix: ``"stem"`` (the input's stem) or ``"id"``
        (a server-side id, like the live service).
    :param expired_tokens: tokens answered with ``A0211``.
    :param fetch_demo_urls: try the network for MinerU's public demo URLs before falling back
        to the built-in stand-ins (False: always use the stand-ins, deterministic and offline).
    """

    def __init__(
        self,
        token: str = "test-token",
        prefix: str = "/api/v4",
        host: str = "127.0.0.1",
        port: int = 0,
        timings: Timings | None = None,
        uid: str = "emulator-uid",
        page_quota: int | None = None,
        upload_url_ttl: float = 86400.0,
        auth_error_style: str = "http401",
        max_file_bytes: int = 200 * 1024 * 1024,
        max_pages: int = 600,
        max_batch_files: int = 200,
        member_prefix: str = "stem",
        expired_tokens: Iterable[str] = (),
        fetch_demo_urls: bool = True,
    ) -> None:
        if auth_error_style not in ("http401", "envelope"):
            raise ValueError("auth_error_style must be 'http401' or 'envelope'")
        if member_prefix not in ("stem", "id"):
            raise ValueError("member_prefix must be 'stem' or 'id'")
        self.token = token
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.host = host
        self.port = port
        self.timings = timings or Timings()
        self.uid = uid
        self.page_quota = page_quota
        self.upload_url_ttl = upload_url_ttl
        self.auth_error_style = auth_error_style
        self.max_file_bytes = max_file_bytes
        self.max_pages = max_pages
        self.max_batch_files = max_batch_files
        self.member_prefix = member_prefix
        self.expired_tokens = frozenset(expired_tokens)
        self.fetch_demo_urls = fetch_demo_urls

        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._workdir: str | None = None
        self._secret = os.urandom(32)
        self._connections: set[Any] = set()
        self._init_state()

    def _init_state(self) -> None:
        self._tasks: dict[str, _Task] = {}
        self._active: dict[str, _Task] = {}  # not yet terminal, in creation order
        self._batches: dict[str, _Batch] = {}
        self._uploads: dict[tuple[str, str], str] = {}  # (batch_id, key) -> task_id
        self._zips: dict[str, str] = {}  # zip_id -> task_id
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._callbacks: list[dict[str, Any]] = []
        self._fail_rules: list[_Rule] = []
        self._stick_rules: list[_Rule] = []
        self.task_count = 0
        self.batch_count = 0
        self.file_count = 0
        self.pages_used = 0
        self._generation = getattr(self, "_generation", 0) + 1

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> MinerUEmulator:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        self._stop_event.clear()
        server = _Server((self.host, self.port), _Handler)  # may raise OSError (port in use)
        server.emulator = self
        self._workdir = tempfile.mkdtemp(prefix="mineru-emulator-")
        self._server = server
        self.port = server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="mineru-emulator", daemon=True
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

    def __enter__(self) -> MinerUEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: Any, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

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
        """The API base URL, e.g. ``http://127.0.0.1:PORT/api/v4``."""
        return self.root_url + self.prefix

    def sample_url(self, name: str) -> str:
        """URL of a bundled sample document served by this emulator (no auth needed)."""
        return f"{self.root_url}/samples/{quote(name)}"

    def connection_json(self) -> str:
        """JSON for ``AIRFLOW_CONN_MINERU_DEFAULT`` pointing at this emulator."""
        return json.dumps(
            {"conn_type": "mineru", "host": self.base_url, "password": self.token, "extra": {"uid": self.uid}}
        )

    def connection_uri(self) -> str:
        """URI form: ``mineru://:<token>@127.0.0.1:PORT/api%2Fv4?scheme=http&uid=<uid>``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        schema = quote(self.prefix.lstrip("/"), safe="")
        return (
            f"mineru://:{quote(self.token, safe='')}@{self._public_host}:{self.port}/{schema}"
            f"?scheme=http&uid={quote(self.uid, safe='')}"
        )

    # -- inspection and scripting ----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every answered request, in order (a snapshot)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The recorded requests to one endpoint (see :data:`ENDPOINTS`)."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Every callback attempt: ``{url, task_id, attempt, status, error, time}`` (a snapshot)."""
        with self._lock:
            return [dict(item) for item in self._callbacks]

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def inject(self, fault: Fault) -> Fault:
        """Add a fault (checked in order of injection); returns it so tests can read ``fired``."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def fail_next_tasks(self, err_msg: str, count: int = 1, match: str | None = None) -> None:
        """The next ``count`` tasks (URL or file name containing ``match``) end ``failed``."""
        with self._lock:
            self._fail_rules.append(_Rule(err_msg, count, match))

    def stick(self, state: str, count: int = 1, match: str | None = None) -> None:
        """The next ``count`` tasks (matching ``match``) stay in ``state`` forever."""
        if state in TERMINAL_STATES:
            raise ValueError("stick() takes a non-terminal state; use fail_next_tasks() for failures")
        with self._lock:
            self._stick_rules.append(_Rule(state, count, match))

    def reset(self) -> None:
        """Forget all tasks, batches, faults, rules, callbacks and the request log."""
        with self._lock:
            self._init_state()
            workdir = self._workdir
        if workdir:
            for sub in ("docs", "zips"):
                shutil.rmtree(os.path.join(workdir, sub), ignore_errors=True)

    def task_state(self, task_id: str) -> dict[str, Any] | None:
        """The task-state ``data`` of a task (as GET would answer), or None if unknown."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            self._advance(task, time.time())
            return self._task_view(task)

    def batch_task_ids(self, batch_id: str) -> list[str]:
        """The internal task ids of a batch (useful with :meth:`task_state`)."""
        with self._lock:
            batch = self._batches.get(batch_id)
            return list(batch.task_ids) if batch else []

    # -- state machine ---------------------------------------------------------------------------

    def _dir(self, sub: str) -> str:
        if self._workdir is None:
            raise RuntimeError("the emulator is not running")
        path = os.path.join(self._workdir, sub)
        os.makedirs(path, exist_ok=True)
        return path

    def _new_task(
        self,
        *,
        file_name: str,
        ext: str,
        url: str | None,
        batch_id: str | None,
        options: dict[str, Any],
        data_id: str | None,
        page_ranges: str | None,
    ) -> _Task:
        """Create a task (caller holds the lock) and apply pending stick/fail rules."""
        task = _Task(
            task_id=str(uuid.uuid4()),
            file_name=file_name,
            ext=ext,
            url=url,
            batch_id=batch_id,
            options=options,
            data_id=data_id,
            page_ranges=page_ranges,
            zip_id=str(uuid.uuid4()),
            created=time.time(),
        )
        haystacks = [text for text in (url, file_name) if text]
        for rule in self._stick_rules:
            if rule.applies(haystacks):
                rule.remaining -= 1
                task.forced_state = rule.value
                break
        for rule in self._fail_rules:
            if rule.applies(haystacks):
                rule.remaining -= 1
                task.fail_msg = rule.value
                break
        task.state = task.forced_state or ("pending" if url else "waiting-file")
        self._tasks[task.task_id] = task
        self._active[task.task_id] = task
        self._zips[task.zip_id] = task.task_id
        self.file_count += 1
        return task

    def _selected_count(self, task: _Task) -> int:
        return max(1, len(task.selected))

    def _finish(self, task: _Task, state: str, at: float, err_msg: str = "") -> None:
        task.state = state
        task.err_msg = err_msg
        task.finished_at = at
        self._active.pop(task.task_id, None)
        if task.options.get("callback"):
            self._spawn(self._send_callbacks, task.task_id, self._task_view(task))

    def _advance(self, task: _Task, now: float) -> None:
        """Move ``task`` through every transition whose time has come (caller holds the lock)."""
        if task.state in TERMINAL_STATES:
            return
        if task.forced_state is not None:
            task.state = task.forced_state
            return
        if task.queued_at is None:
            task.state = "waiting-file"
            return
        run_at = task.queued_at + self.timings.pending
        if task.doc_ready_at is None or now < run_at:
            task.state = "pending"
            return
        if task.running_at is None:
            start = max(run_at, task.doc_ready_at)
            if task.doc_error is not None:
                self._finish(task, "failed", start, task.doc_error)
                return
            if self.page_quota is not None:
                pages = self._selected_count(task)
                left = self.page_quota - self.pages_used
                if pages > left:
                    detail = f"the task needs {pages} pages, {max(left, 0)} of {self.page_quota} remain"
                    self._finish(task, "failed", start, _err_msg(-60017, detail))
                    return
                self.pages_used += pages
            task.running_at = start
        converting_at = task.running_at + self.timings.per_page * self._selected_count(task)
        if now < converting_at:
            task.state = "running"
            return
        done_at = converting_at + self.timings.converting
        if now < done_at:
            task.state = "converting"
            return
        if task.fail_msg is not None:
            self._finish(task, "failed", done_at, task.fail_msg)
        else:
            self._finish(task, "done", done_at)

    def _advance_for_request(self, tasks: Iterable[_Task]) -> None:
        """Advance the tasks a request looks at (all active ones when a page quota is set)."""
        now = time.time()
        if self.page_quota is not None:
            # Quota is charged as tasks start running: advance everything in start order.
            tasks = sorted(
                self._active.values(),
                key=lambda t: (t.queued_at is None, (t.queued_at or 0.0), t.created),
            )
        for task in list(tasks):
            self._advance(task, now)

    def _next_wakeup(self, task: _Task, now: float) -> float:
        """Seconds until ``task`` may change state next (for callback drivers)."""
        if task.queued_at is None or task.doc_ready_at is None:
            return 0.02
        if task.running_at is None:
            target = task.queued_at + self.timings.pending
        else:
            converting_at = task.running_at + self.timings.per_page * self._selected_count(task)
            target = converting_at if now < converting_at else converting_at + self.timings.converting
        return min(1.0, max(0.002, target - now + 0.001))

    def _task_view(self, task: _Task, *, batch: bool = False, root: str | None = None) -> dict[str, Any]:
        """
        The ``data`` of a task-state answer (or one ``extract_result`` item with ``batch``).

        ``root`` is the ``http://host:port`` for ``full_zip_url`` (the request's Host by default).
        """
        view: dict[str, Any] = {"file_name": task.file_name} if batch else {"task_id": task.task_id}
        if task.data_id is not None:
            view["data_id"] = task.data_id
        view["state"] = task.state
        view["err_msg"] = task.err_msg if task.state == "failed" else ""
        if task.state == "done":
            view["full_zip_url"] = f"{root or self.root_url}/cdn/pdf/{task.zip_id}.zip"
        if task.state == "running":
            started = task.running_at or task.created
            if task.forced_state is not None or task.running_at is None:
                extracted = 0
            else:
                elapsed = time.time() - task.running_at
                per_page = self.timings.per_page or 1e-9
                extracted = min(self._selected_count(task), int(elapsed / per_page))
            view["extract_progress"] = {
                "extracted_pages": extracted,
                "total_pages": task.total_pages,
                "start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            }
        return view

    # -- documents -------------------------------------------------------------------------------

    def _inspect_document(self, task: _Task, path: str, size: int, too_big: bool) -> dict[str, Any]:
        """Check a fetched/uploaded document; returns the fields to set on the task."""
        kind = (
            "pdf"
            if task.ext == ".pdf"
            else "image"
            if task.ext in contract.IMAGE_EXTENSIONS
            else "html"
            if task.ext in contract.HTML_EXTENSIONS
            else "office"
        )
        out: dict[str, Any] = {"doc_path": path, "doc_size": size, "kind": kind, "doc_error": None}
        if too_big:
            out["doc_error"] = _err_msg(-60005, f"the file is over {self.max_file_bytes} bytes")
            return out
        if size == 0:
            out["doc_error"] = _err_msg(-60004)
            return out
        total = 1
        if kind == "pdf":
            try:
                from pypdf import PdfReader

                total = len(PdfReader(path).pages)
                if total < 1:
                    raise ValueError("no pages")
            except Exception as exc:
                out["doc_error"] = _err_msg(-60003, f"not a readable PDF: {type(exc).__name__}")
                return out
        out["total_pages"] = total
        if total > self.max_pages:
            out["doc_error"] = _err_msg(-60006, f"{total} pages, the limit is {self.max_pages}")
            return out
        selected = contract.resolve_page_ranges(task.page_ranges, total) if kind == "pdf" else [0]
        if not selected:
            out["doc_error"] = _err_msg(
                -10002, f"page_ranges {task.page_ranges!r} selects no page of a {total}-page document"
            )
        out["selected"] = selected
        return out

    def _document_ready(self, task_id: str, generation: int, info: dict[str, Any], *, queue: bool) -> None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or generation != self._generation:
                return
            for key, value in info.items():
                setattr(task, key, value)
            now = time.time()
            task.doc_ready_at = now
            if queue:
                task.queued_at = now
                if task.forced_state is None:
                    task.state = "pending"
            needs_driver = bool(task.options.get("callback")) and task.forced_state is None
        if needs_driver:
            self._spawn(self._drive, task_id, generation)

    def _fetch(self, task_id: str, generation: int, url: str, path: str, ext: str) -> None:
        """Fetch a task's URL into ``path`` (background thread) and inspect it."""
        import urllib.error
        import urllib.request

        from airflow_provider_mineru.emulator._samples import demo_document

        demo = demo_document(url)
        error: str | None = None
        size = 0
        too_big = False
        try:
            if demo is not None and not self.fetch_demo_urls:
                raise OSError("built-in demo document")
            request = urllib.request.Request(url, headers={"User-Agent": "MinerU-emulator/1.0"})
            with (
                urllib.request.urlopen(request, timeout=self.timings.fetch_timeout) as response,
                open(path, "wb") as out,
            ):
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > self.max_file_bytes:
                        too_big = True
                        break
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code} fetching {url}"
        except Exception as exc:
            error = f"{type(exc).__name__} fetching {url}"
        if error is not None and demo is not None:
            with open(path, "wb") as out:
                out.write(demo)
            error, size, too_big = None, len(demo), False
        if error is not None:
            info: dict[str, Any] = {"doc_error": _err_msg(-60008, error), "doc_path": None}
        else:
            # Build a throwaway task view of the fields _inspect_document reads.
            with self._lock:
                task = self._tasks.get(task_id)
            if task is None:
                return
            info = self._inspect_document(task, path, size, too_big)
        self._document_ready(task_id, generation, info, queue=False)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        threading.Thread(target=target, args=args, daemon=True, name="mineru-emulator-worker").start()

    # -- callbacks -------------------------------------------------------------------------------

    def _drive(self, task_id: str, generation: int) -> None:
        """Advance a task with a callback until it ends, so the callback fires unpolled."""
        while not self._stop_event.is_set():
            with self._lock:
                task = self._tasks.get(task_id)
                if task is None or generation != self._generation:
                    return
                now = time.time()
                self._advance_for_request([task])
                if task.state in TERMINAL_STATES or task.forced_state is not None:
                    return
                wait = self._next_wakeup(task, now)
            self._stop_event.wait(wait)

    def _send_callbacks(self, task_id: str, view: dict[str, Any]) -> None:
        """POST the terminal state to the task's callback URL, up to 5 attempts."""
        import urllib.error
        import urllib.request

        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return
            generation = self._generation
            url = task.options["callback"]
            seed = task.options.get("seed") or ""
        content = json.dumps(view, ensure_ascii=False)
        checksum = hashlib.sha256((self.uid + seed + content).encode("utf-8")).hexdigest()
        body = json.dumps({"checksum": checksum, "content": content}).encode("utf-8")
        for attempt in range(1, _CALLBACK_ATTEMPTS + 1):
            if generation != self._generation:
                return  # the emulator was reset
            status: int | None = None
            error: str | None = None
            try:
                request = urllib.request.Request(
                    url, data=body, method="POST", headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._callbacks.append(
                    {
                        "url": url,
                        "task_id": task_id,
                        "attempt": attempt,
                        "status": status,
                        "error": error,
                        "time": time.time(),
                    }
                )
            logger.info("callback %s attempt %d -> %s", urlsplit(url).path or "/", attempt, status or error)
            if status == 200:
                return
            if attempt < _CALLBACK_ATTEMPTS and self._stop_event.wait(self.timings.callback_backoff * attempt):
                return

    # -- HTTP plumbing ---------------------------------------------------------------------------

    def _request_root(self, ctx: _Ctx) -> str:
        """``http://<Host header>`` of a request, so URLs we hand out work from where the client is."""
        host = (ctx.h.headers.get("Host") or "").strip()
        if host and _HOST_HEADER.fullmatch(host):
            return f"http://{host}"
        return self.root_url

    def _route(self, method: str, path: str) -> tuple[str, str | None]:
        if path == _ADMIN or path.startswith(_ADMIN + "/"):
            return "admin", path[len(_ADMIN) :].strip("/")
        if path.startswith("/samples/") or path == "/samples":
            return "sample", path[len("/samples") :].strip("/")
        if path.startswith("/api-upload/"):
            return "upload", path[len("/api-upload/") :]
        if path.startswith("/cdn/pdf/") and path.endswith(".zip"):
            return "download", path[len("/cdn/pdf/") : -len(".zip")]
        if self.prefix and not (path == self.prefix or path.startswith(self.prefix + "/")):
            return "other", None
        rest = path[len(self.prefix) :]
        if len(rest) > 1:
            rest = rest.rstrip("/")
        if rest == "/extract/task":
            return "submit_task", None
        if rest == "/extract/task/batch" and method == "POST":
            return "submit_batch", None
        if rest == "/file-urls/batch":
            return "file_urls", None
        if rest.startswith("/extract/task/") and "/" not in rest[len("/extract/task/") :]:
            return "get_task", rest[len("/extract/task/") :]
        if rest.startswith("/extract-results/batch/") and "/" not in rest[len("/extract-results/batch/") :]:
            return "get_batch", rest[len("/extract-results/batch/") :]
        return "other", None

    def _dispatch(self, h: _Handler) -> None:
        """Answer one request: faults first, then the endpoint; record and log it."""
        split = urlsplit(h.path)
        endpoint, arg = self._route(h.command, split.path)
        ctx = _Ctx(h, endpoint, arg)
        body = b""
        try:
            if endpoint != "upload":
                body = self._read_body(ctx)
                ctx.body_size = len(body)
                if body:
                    with contextlib.suppress(ValueError):
                        ctx.json = json.loads(body)
            fault = self._take_fault(endpoint, h.path) if endpoint != "admin" else None
            if fault is not None:
                ctx.fault = fault.label
                ctx.truncate = fault.truncated
                if self._apply_fault(ctx, fault):
                    return
            self._serve(ctx, body)
        except _BodyTooLarge:
            h.close_connection = True
            ctx.body_read = True
            self._send_json(ctx, {"code": -500, "msg": "request body too large", "trace_id": _trace_id()}, 413)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError) as exc:
            h.close_connection = True
            logger.info("%s %s: connection lost (%s)", h.command, split.path, type(exc).__name__)
        except Exception:
            logger.exception("emulator error answering %s %s", h.command, split.path)
            h.close_connection = True
            if ctx.status == 0:
                with contextlib.suppress(OSError):
                    self._send_envelope(ctx, -10001, http_status=500)
        finally:
            self._record(ctx)

    def _record(self, ctx: _Ctx) -> None:
        """Add the request to the log, once; called just before the answer goes on the wire."""
        if ctx.recorded:
            return
        ctx.recorded = True
        h = ctx.h
        record = RecordedRequest(
            time=time.time(),
            method=h.command,
            path=h.path,
            endpoint=ctx.endpoint,
            status=ctx.status,
            json=ctx.json,
            body_size=ctx.body_size,
            has_authorization="Authorization" in h.headers,
            content_type=h.headers.get("Content-Type"),
            fault=ctx.fault,
        )
        with self._lock:
            self._requests.append(record)
        # One line per request: method, path without the query string (upload signatures), status.
        logger.info("%s %s %s", h.command, urlsplit(h.path).path, ctx.status or "no-response")

    # body reading

    def _iter_body(self, h: _Handler) -> Iterable[bytes]:
        """The request body in chunks (Content-Length or chunked transfer encoding)."""
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
                left = size
                while left:
                    chunk = h.rfile.read(min(left, _CHUNK))
                    if not chunk:
                        raise ConnectionResetError("client closed mid-body")
                    left -= len(chunk)
                    yield chunk
                h.rfile.readline(1024)
            return
        left = int(h.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = h.rfile.read(min(left, _CHUNK))
            if not chunk:
                raise ConnectionResetError("client closed mid-body")
            left -= len(chunk)
            yield chunk

    def _read_body(self, ctx: _Ctx) -> bytes:
        parts: list[bytes] = []
        size = 0
        for chunk in self._iter_body(ctx.h):
            size += len(chunk)
            if size > _MAX_JSON_BODY:
                raise _BodyTooLarge
            parts.append(chunk)
        ctx.body_read = True
        return b"".join(parts)

    def _drain(self, ctx: _Ctx) -> None:
        """Consume an unread request body so the connection can be kept alive."""
        if ctx.body_read:
            return
        ctx.body_read = True
        for chunk in self._iter_body(ctx.h):
            ctx.body_size += len(chunk)

    # response writing

    def _head(self, ctx: _Ctx, status: int, headers: dict[str, str]) -> bytes:
        """The status line and headers of an answer, as bytes (Content-Length must be in ``headers``)."""
        h = ctx.h
        reason = h.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"Server: {h.server_version}", f"Date: {h.date_time_string()}"]
        merged = {**headers, **ctx.extra_headers}
        if ctx.truncate:
            merged["Connection"] = "close"
        lines += [f"{key}: {value}" for key, value in merged.items()]
        if merged.get("Connection", "").lower() == "close" or ctx.truncate:
            h.close_connection = True
        ctx.status = status
        self._record(ctx)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")

    def _send(
        self,
        ctx: _Ctx,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a complete answer (always with Content-Length); honours ``ctx.truncate``."""
        h = ctx.h
        self._drain(ctx)
        all_headers: dict[str, str] = {}
        if content_type:
            all_headers["Content-Type"] = content_type
        all_headers["Content-Length"] = str(len(body))
        all_headers.update(headers or {})
        head = self._head(ctx, status, all_headers)
        if h.command == "HEAD":
            body = b""
        data = head + body
        if ctx.truncate:
            # Cut the answer in half: half the body or, when there is none, half the status line.
            data = head + body[: len(body) // 2] if body else head[: head.index(b"\r\n") // 2]
        h.wfile.write(data)
        h.wfile.flush()

    def _send_json(self, ctx: _Ctx, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(ctx, status, data, "application/json; charset=utf-8", headers)

    def _send_envelope(
        self,
        ctx: _Ctx,
        code: str | int,
        msg: str | dict[str, Any] | None = None,
        http_status: int = 200,
        *,
        as_string: bool = False,
    ) -> None:
        value: str | int = str(code) if as_string else contract.code_value(code)
        payload = {
            "code": value,
            "msg": msg if msg is not None else contract.error_message(code),
            "trace_id": _trace_id(),
            "data": None,
        }
        self._send_json(ctx, payload, http_status)

    def _send_ok(self, ctx: _Ctx, data: Any) -> None:
        self._send_json(ctx, {"code": 0, "msg": "ok", "trace_id": _trace_id(), "data": data})

    def _send_text(self, ctx: _Ctx, status: int, text: str) -> None:
        self._send(ctx, status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def _send_oss_error(self, ctx: _Ctx, status: int, code: str, message: str, **extra: str) -> None:
        request_id = uuid.uuid4().hex[:24].upper()
        items = "".join(f"\n  <{key}>{value}</{key}>" for key, value in extra.items())
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n  <RequestId>{request_id}</RequestId>\n"
            f"  <HostId>{self._public_host}</HostId>{items}\n</Error>\n"
        )
        self._send(ctx, status, xml.encode("utf-8"), "application/xml", {"x-oss-request-id": request_id})

    def _reset_connection(self, ctx: _Ctx) -> None:
        """Close the connection without an answer (RST: SO_LINGER 0)."""
        h = ctx.h
        h.close_connection = True
        self._record(ctx)
        with contextlib.suppress(OSError):
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            h.connection.close()

    # faults

    def _take_fault(self, endpoint: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault._matches(endpoint, path):
                    fault.fired += 1
                    return fault
        return None

    def _apply_fault(self, ctx: _Ctx, fault: Fault) -> bool:
        """Answer with ``fault``; False when the normal answer should follow (delay, truncated)."""
        if fault.delay:
            time.sleep(fault.delay)
        if fault.retry_after is not None:
            ctx.extra_headers["Retry-After"] = _fmt_seconds(fault.retry_after)
        if fault.reset:
            self._reset_connection(ctx)
            return True
        if fault.body is not None:
            data = fault.body.encode("utf-8") if isinstance(fault.body, str) else fault.body
            ctype = fault.content_type
            if ctype is None:
                ctype = "text/html; charset=utf-8" if data.lstrip()[:1] == b"<" else "text/plain; charset=utf-8"
            self._send(ctx, fault.http_status or 200, data, ctype)
            return True
        if fault.malformed_json:
            data = b'{"code": 0, "msg": "ok", "trace_id": "' + _trace_id().encode() + b'", "data": {"task_id": '
            self._send(ctx, fault.http_status or 200, data, fault.content_type or "application/json")
            return True
        if fault.code is not None:
            code = str(fault.code)
            if code in ("A0202", "A0211") and fault.http_status == 401:
                self._send_auth_error(ctx, code, style="http401", msg=fault.msg)
            else:
                self._send_envelope(ctx, code, fault.msg, fault.http_status or 200, as_string=fault.code_as_string)
            return True
        if fault.http_status is not None:
            if ctx.endpoint in ("upload", "download"):
                self._send_oss_error(ctx, fault.http_status, "ServiceUnavailable", "Please reduce your request rate.")
            else:
                self._send_envelope(ctx, -10001, fault.msg, fault.http_status, as_string=fault.code_as_string)
            return True
        return False

    # -- endpoints -------------------------------------------------------------------------------

    def _serve(self, ctx: _Ctx, body: bytes) -> None:
        endpoint = ctx.endpoint
        if endpoint == "admin":
            self._admin(ctx, body)
            return
        if endpoint == "sample":
            self._sample(ctx)
            return
        if endpoint == "upload":
            self._upload(ctx)
            return
        if endpoint == "download":
            self._download(ctx)
            return
        if endpoint == "other":
            if self._authorized(ctx):
                self._send_envelope(ctx, -10002, f"no such endpoint: {ctx.h.command} {urlsplit(ctx.h.path).path}", 404)
            return
        expected = "GET" if endpoint in ("get_task", "get_batch") else "POST"
        if ctx.h.command != expected:
            self._send_envelope(ctx, -10002, f"method {ctx.h.command} not allowed here, use {expected}", 405)
            return
        if not self._authorized(ctx):
            return
        try:
            handler = getattr(self, f"_api_{endpoint}")
            handler(ctx, body)
        except ApiError as exc:
            self._send_envelope(ctx, exc.code, exc.message, exc.http_status)

    def _send_auth_error(
        self, ctx: _Ctx, code: str, *, style: str | None = None, msg: str | dict[str, Any] | None = None
    ) -> None:
        message = msg if msg is not None else contract.error_message(code)
        if (style or self.auth_error_style) == "http401":
            payload = {"msgCode": code, "msg": message, "success": False, "data": None, "trace_id": _trace_id()}
            self._send_json(ctx, payload, 401)
        else:
            self._send_envelope(ctx, code, message)

    def _authorized(self, ctx: _Ctx) -> bool:
        header = ctx.h.headers.get("Authorization")
        if header is None:
            self._send_text(ctx, 401, "login required")
            return False
        scheme, _, value = header.strip().partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
        if token and token in self.expired_tokens:
            self._send_auth_error(ctx, "A0211")
            return False
        if not token or not hmac.compare_digest(token.encode(), self.token.encode()):
            self._send_auth_error(ctx, "A0202")
            return False
        return True

    def _json_object(self, ctx: _Ctx, body: bytes) -> dict[str, Any]:
        ctype = (ctx.h.headers.get("Content-Type") or "").lower()
        if "json" not in ctype:
            raise ApiError(-500, "Content-Type must be application/json")
        if not isinstance(ctx.json, dict):
            raise ApiError(-500, "the body must be a JSON object")
        return ctx.json

    def _check_quota(self) -> None:
        if self.page_quota is not None:
            self._advance_for_request([])
            if self.pages_used >= self.page_quota:
                raise ApiError(-60017, f"all {self.page_quota} pages of the quota are used")

    def _api_submit_task(self, ctx: _Ctx, body: bytes) -> None:
        obj = self._json_object(ctx, body)
        url = contract.check_url(obj.get("url"))
        options = contract.check_options(obj)
        name = contract.url_file_name(url)
        ext = contract.check_extension(name, options["model_version"])
        with self._lock:
            self._check_quota()
            task = self._new_task(
                file_name=name,
                ext=ext,
                url=url,
                batch_id=None,
                options=options,
                data_id=options["data_id"],
                page_ranges=options["page_ranges"],
            )
            task.queued_at = task.created
            self.task_count += 1
            self._start_fetch(task)
        self._send_ok(ctx, {"task_id": task.task_id})

    def _start_fetch(self, task: _Task) -> None:
        path = os.path.join(self._dir("docs"), f"{task.task_id}{task.ext}")
        self._spawn(self._fetch, task.task_id, self._generation, task.url, path, task.ext)

    def _batch_options(self, obj: dict[str, Any], key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        options = contract.check_options(obj)
        files = contract.check_batch_files(obj, key, self.max_batch_files)
        for item in files:
            name = item[key] if key == "name" else contract.url_file_name(item[key])
            item["file_name"] = name
            item["ext"] = contract.check_extension(name, options["model_version"])
        return options, files

    def _file_options(self, options: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        merged = dict(options)
        if item.get("is_ocr") is not None:
            merged["is_ocr"] = item["is_ocr"]
        merged["data_id"] = item["data_id"]
        merged["page_ranges"] = item["page_ranges"]
        return merged

    def _api_file_urls(self, ctx: _Ctx, body: bytes) -> None:
        obj = self._json_object(ctx, body)
        options, files = self._batch_options(obj, "name")
        root = self._request_root(ctx)
        expires = int(time.time() + self.upload_url_ttl)
        urls: list[str] = []
        with self._lock:
            self._check_quota()
            batch = _Batch(str(uuid.uuid4()), [])
            for item in files:
                merged = self._file_options(options, item)
                task = self._new_task(
                    file_name=item["file_name"],
                    ext=item["ext"],
                    url=None,
                    batch_id=batch.batch_id,
                    options=merged,
                    data_id=merged["data_id"],
                    page_ranges=merged["page_ranges"],
                )
                key = f"{uuid.uuid4()}{item['ext']}"
                task.upload_key = key
                batch.task_ids.append(task.task_id)
                self._uploads[(batch.batch_id, key)] = task.task_id
                signature = quote(self._sign(batch.batch_id, key, expires), safe="")
                urls.append(
                    f"{root}/api-upload/{batch.batch_id}/{key}"
                    f"?Expires={expires}&OSSAccessKeyId=EMULATOR&Signature={signature}"
                )
            self._batches[batch.batch_id] = batch
            self.batch_count += 1
        self._send_ok(ctx, {"batch_id": batch.batch_id, "file_urls": urls})

    def _api_submit_batch(self, ctx: _Ctx, body: bytes) -> None:
        obj = self._json_object(ctx, body)
        options, files = self._batch_options(obj, "url")
        with self._lock:
            self._check_quota()
            batch = _Batch(str(uuid.uuid4()), [])
            for item in files:
                merged = self._file_options(options, item)
                task = self._new_task(
                    file_name=item["file_name"],
                    ext=item["ext"],
                    url=item["url"],
                    batch_id=batch.batch_id,
                    options=merged,
                    data_id=merged["data_id"],
                    page_ranges=merged["page_ranges"],
                )
                task.queued_at = task.created
                batch.task_ids.append(task.task_id)
                self._start_fetch(task)
            self._batches[batch.batch_id] = batch
            self.batch_count += 1
        self._send_ok(ctx, {"batch_id": batch.batch_id})

    def _api_get_task(self, ctx: _Ctx, body: bytes) -> None:
        with self._lock:
            task = self._tasks.get(ctx.arg or "")
            if task is None:
                raise ApiError(-60012)
            self._advance_for_request([task])
            view = self._task_view(task, root=self._request_root(ctx))
        self._send_ok(ctx, view)

    def _api_get_batch(self, ctx: _Ctx, body: bytes) -> None:
        with self._lock:
            batch = self._batches.get(ctx.arg or "")
            if batch is None:
                raise ApiError(-60012)
            tasks = [self._tasks[task_id] for task_id in batch.task_ids]
            self._advance_for_request(tasks)
            root = self._request_root(ctx)
            items = [self._task_view(task, batch=True, root=root) for task in tasks]
        self._send_ok(ctx, {"batch_id": batch.batch_id, "extract_result": items})

    # uploads

    def _sign(self, batch_id: str, key: str, expires: int) -> str:
        """An OSS V1-style signature of a PUT with no Content-Type."""
        string_to_sign = f"PUT\n\n\n{expires}\n/mineru/api-upload/{batch_id}/{key}"
        digest = hmac.new(self._secret, string_to_sign.encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def _upload(self, ctx: _Ctx) -> None:
        h = ctx.h
        if h.command != "PUT":
            self._send_oss_error(ctx, 405, "MethodNotAllowed", "The specified method is not allowed.")
            return
        batch_id, _, key = (ctx.arg or "").partition("/")
        query = parse_qs(urlsplit(h.path).query)
        expires_text = (query.get("Expires") or [""])[0]
        signature = (query.get("Signature") or [""])[0]
        if not expires_text.isdigit() or not signature or "OSSAccessKeyId" not in query:
            self._send_oss_error(ctx, 403, "AccessDenied", "Anonymous access is forbidden for this operation.")
            return
        expires = int(expires_text)
        if time.time() > expires:
            server_time = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            expired_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires))
            self._send_oss_error(
                ctx, 403, "AccessDenied", "Request has expired.", Expires=expired_at, ServerTime=server_time
            )
            return
        content_type = (h.headers.get("Content-Type") or "").strip()
        expected = self._sign(batch_id, key, expires)
        if content_type or not hmac.compare_digest(signature.encode(), expected.encode()):
            self._send_oss_error(
                ctx,
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                OSSAccessKeyId="EMULATOR",
            )
            return
        if "Content-Length" not in h.headers and "chunked" not in h.headers.get("Transfer-Encoding", "").lower():
            h.close_connection = True
            ctx.body_read = True
            self._send_oss_error(ctx, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
            return
        with self._lock:
            task = self._tasks.get(self._uploads.get((batch_id, key), ""))
            generation = self._generation
            path: str | None = None
            if task is not None and not task.upload_claimed:
                task.upload_claimed = True  # a second PUT to the same URL is accepted and ignored
                path = os.path.join(self._dir("docs"), f"{task.task_id}{task.ext}")
        if task is None:
            self._send_oss_error(ctx, 404, "NoSuchUpload", "The upload URL is unknown (emulator was reset?).")
            return
        if path is None:
            self._send(ctx, 200, b"", None, {"ETag": '"' + "0" * 32 + '"'})
            return
        size, too_big, md5 = self._receive(ctx, path)
        info = self._inspect_document(task, path, size, too_big)
        self._document_ready(task.task_id, generation, info, queue=True)
        self._send(ctx, 200, b"", None, {"ETag": f'"{md5.upper()}"', "x-oss-request-id": uuid.uuid4().hex[:24]})

    def _receive(self, ctx: _Ctx, path: str) -> tuple[int, bool, str]:
        """Stream the PUT body to ``path``; stop writing (but keep reading) past the size limit."""
        size = 0
        too_big = False
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "wb") as out:
            for chunk in self._iter_body(ctx.h):
                size += len(chunk)
                if size > self.max_file_bytes:
                    too_big = True
                    continue
                digest.update(chunk)
                out.write(chunk)
        ctx.body_read = True
        ctx.body_size = size
        return size, too_big, digest.hexdigest()

    # downloads and samples

    def _download(self, ctx: _Ctx) -> None:
        h = ctx.h
        if h.command not in ("GET", "HEAD"):
            self._send_oss_error(ctx, 405, "MethodNotAllowed", "The specified method is not allowed.")
            return
        with self._lock:
            task = self._tasks.get(self._zips.get(ctx.arg or "", ""))
            if task is not None:
                self._advance_for_request([task])
            ready = task is not None and task.state == "done"
        if not ready or task is None:
            self._send_oss_error(ctx, 404, "NoSuchKey", "The specified key does not exist.")
            return
        path = self._ensure_zip(task)
        self._send_file(ctx, path, "application/zip")

    def _ensure_zip(self, task: _Task) -> str:
        """Build the task's result zip once (at first download)."""
        from airflow_provider_mineru.emulator.cloud.result_zip import ResultSpec, build_result_zip, member_stem

        with task.build_lock:
            if task.zip_path and os.path.exists(task.zip_path):
                return task.zip_path
            prefix = task.zip_id if self.member_prefix == "id" else member_stem(task.file_name, task.zip_id)
            spec = ResultSpec(
                source_path=task.doc_path or "",
                kind=task.kind,
                file_name=task.file_name,
                member_prefix=prefix,
                pages=list(task.selected) or [0],
                total_pages=task.total_pages,
                size=task.doc_size,
                extra_formats=list(task.options.get("extra_formats") or []),
                model_version=task.options.get("model_version") or "pipeline",
            )
            path = os.path.join(self._dir("zips"), f"{task.zip_id}.zip")
            build_result_zip(spec, path)
            task.zip_path = path
            return path

    def _send_file(self, ctx: _Ctx, path: str, content_type: str) -> None:
        """Stream a file with Content-Length; honours a single ``Range: bytes=`` request."""
        h = ctx.h
        self._drain(ctx)
        total = os.path.getsize(path)
        start, end, status = 0, total - 1, 200
        headers = {"Content-Type": content_type, "Accept-Ranges": "bytes"}
        wanted = h.headers.get("Range")
        if wanted:
            parsed = _parse_range(wanted, total)
            if parsed is None:
                self._send(ctx, 416, b"", None, {"Content-Range": f"bytes */{total}"})
                return
            if parsed is not _WHOLE:
                start, end = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        length = end - start + 1
        headers["Content-Length"] = str(length)
        h.wfile.write(self._head(ctx, status, headers))
        if h.command == "HEAD":
            return
        to_send = length // 2 if ctx.truncate else length
        with open(path, "rb") as handle:
            handle.seek(start)
            while to_send > 0:
                chunk = handle.read(min(_CHUNK, to_send))
                if not chunk:
                    break
                h.wfile.write(chunk)
                to_send -= len(chunk)
        h.wfile.flush()

    def _sample(self, ctx: _Ctx) -> None:
        from airflow_provider_mineru.emulator._samples import sample_document, sample_names

        name = ctx.arg or ""
        if ctx.h.command not in ("GET", "HEAD"):
            self._send_text(ctx, 405, "method not allowed")
            return
        if not name:
            self._send_json(ctx, {"samples": sample_names()})
            return
        data = sample_document(name)
        if data is None:
            self._send_text(ctx, 404, f"no sample document {name!r}")
            return
        ctype = "application/pdf" if name.endswith(".pdf") else "image/png"
        self._send(ctx, 200, data, ctype)

    # admin API

    def _admin(self, ctx: _Ctx, body: bytes) -> None:
        method = ctx.h.command
        action = ctx.arg or ""
        payload = ctx.json if isinstance(ctx.json, dict) else {}
        try:
            if action == "health" and method == "GET":
                with self._lock:
                    data = {
                        "status": "ok",
                        "base_url": self.base_url,
                        "tasks": len(self._tasks),
                        "batches": len(self._batches),
                    }
                self._send_json(ctx, data)
            elif action == "faults" and method == "POST":
                allowed = {f.name for f in fields(Fault)} - {"fired"}
                unknown = set(payload) - allowed
                if unknown:
                    raise ValueError(f"unknown fault fields: {sorted(unknown)}")
                fault = self.inject(Fault(**payload))
                self._send_json(ctx, fault.to_dict())
            elif action == "faults" and method == "GET":
                self._send_json(ctx, [fault.to_dict() for fault in self.faults])
            elif action == "faults" and method == "DELETE":
                self.clear_faults()
                self._send_json(ctx, {"cleared": True})
            elif action == "requests" and method == "GET":
                self._send_json(ctx, [record.to_dict() for record in self.requests])
            elif action == "requests" and method == "DELETE":
                self.clear_requests()
                self._send_json(ctx, {"cleared": True})
            elif action == "callbacks" and method == "GET":
                self._send_json(ctx, self.callbacks)
            elif action == "reset" and method == "POST":
                self.reset()
                self._send_json(ctx, {"reset": True})
            elif action == "fail-next" and method == "POST":
                err_msg = payload.get("err_msg") or _err_msg(-60010)
                self.fail_next_tasks(str(err_msg), int(payload.get("count", 1)), payload.get("match"))
                self._send_json(ctx, {"ok": True})
            elif action == "stick" and method == "POST":
                state = payload.get("state")
                if not isinstance(state, str) or not state:
                    raise ValueError("state is required")
                self.stick(state, int(payload.get("count", 1)), payload.get("match"))
                self._send_json(ctx, {"ok": True})
            else:
                self._send_json(ctx, {"error": f"no admin action {method} /{action}"}, 404)
        except (TypeError, ValueError) as exc:
            self._send_json(ctx, {"error": str(exc)}, 400)


class _BodyTooLarge(Exception):
    pass


_WHOLE = (-1, -1)


def _parse_range(header: str, total: int) -> tuple[int, int] | None:
    """
    Parse a single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range.

    :return: ``(start, end)`` inclusive; None when unsatisfiable; :data:`_WHOLE` when the header
        is not a single byte range (the whole file is sent then, as servers may).
    """
    spec = header.strip()
    if not spec.lower().startswith("bytes=") or "," in spec:
        return _WHOLE
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
        return _WHOLE
    if start >= total or end < start:
        return None
    return (start, min(end, total - 1))
