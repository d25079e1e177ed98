"""
HTTP answers we can trust: no redirects followed, bounded reads, a deadline for the whole request.

One home for what every MinerU client (the cloud v4 API and the open-source ``mineru-api``) needs
from a hostile or broken server: :func:`refuse_redirect`, :func:`read_answer` /
:func:`aread_answer` (at most :data:`MAX_ANSWER_BYTES`, error bodies cut at
:data:`MAX_ERROR_BODY_BYTES`), :class:`Deadline` (``timeout`` bounds the whole request, not each
socket read), :func:`check_answer_url` (only http(s) URLs from answers), the log filter that keeps
presigned query strings out of urllib3's debug lines, and the cached SSL options of the async
path.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_mineru.exceptions import MinerUConnectionError, MinerURefusedResponseError

if TYPE_CHECKING:
    import aiohttp

#: The most of a successful JSON answer that is read; a larger one is refused.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: The most of an error body that is read; the rest is cut (its start is quoted in the error).
MAX_ERROR_BODY_BYTES = 64 * 1024
#: Characters of a body quoted in an error message.
BODY_QUOTE_CHARS = 200


def body_excerpt(body: bytes) -> str:
    """The start of a body for an error message, decoded leniently and on one line."""
    text = body[:BODY_QUOTE_CHARS].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text + ("…" if len(body) > BODY_QUOTE_CHARS else "")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def refuse_redirect(what: str, url: str, status: int, headers: Mapping[str, str]) -> None:
    """
    Refuse any redirect of an API call or an upload PUT (nothing is re-sent, to any origin).

    The error names where the redirect pointed (scheme, host and port: no path or query, which may
    carry signatures).
    """
    if not 300 <= status < 400 or status == 304:
        return
    location = headers.get("Location") or headers.get("location")
    if not location:
        target = "(no Location header)"
        same = False
    else:
        absolute = urljoin(url, location)
        scheme, host, port = _origin(absolute)
        target = f"{scheme}://{host}:{port}" if host else repr(location[:100])
        same = _origin(absolute) == _origin(url)
    where = "the same host" if same else "another host"
    error = MinerURefusedResponseError(
        f"{what} was answered with a redirect (HTTP {status}) to {where}, {target}; API calls and uploads do "
        "not follow redirects, so nothing was sent there (set the connection's host to the final URL)",
        http_status=status,
    )
    error.redirect_to = target  # type: ignore[attr-defined]
    raise error


def read_answer(what: str, status: int, headers: Mapping[str, str], iter_content: Callable[[int], Any]) -> bytes:
    """
    Read an answer body up to :data:`MAX_ANSWER_BYTES` (:data:`MAX_ERROR_BODY_BYTES` for an error).

    A larger successful answer is refused (:class:`MinerURefusedResponseError`); a larger error body
    is cut (its start is quoted in the error).
    """
    limit = MAX_ERROR_BODY_BYTES if status >= 300 else MAX_ANSWER_BYTES
    _refuse_declared_size(what, status, headers, limit)
    chunks: list[bytes] = []
    size = 0
    for chunk in iter_content(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return _over_limit(what, status, b"".join(chunks), limit)
    return b"".join(chunks)


async def aread_answer(what: str, response: aiohttp.ClientResponse) -> bytes:
    """Async :func:`read_answer` (aiohttp)."""
    limit = MAX_ERROR_BODY_BYTES if response.status >= 300 else MAX_ANSWER_BYTES
    _refuse_declared_size(what, response.status, response.headers, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return _over_limit(what, response.status, b"".join(chunks), limit)
    return b"".join(chunks)


def _refuse_declared_size(what: str, status: int, headers: Mapping[str, str], limit: int) -> None:
    declared = headers.get("Content-Length") or headers.get("content-length") or ""
    if status < 300 and declared.isdigit() and int(declared) > limit:
        raise MinerURefusedResponseError(
            f"{what}: the answer is {int(declared)} bytes, more than the {limit} bytes read; not read",
            http_status=status,
        )


def _over_limit(what: str, status: int, content: bytes, limit: int) -> bytes:
    if status < 300:
        raise MinerURefusedResponseError(
            f"{what}: the answer is larger than the {limit} bytes read; not read further", http_status=status
        )
    return content[:limit]


def bounded_request(
    session: Any, method: str, url: str, *, what: str, timeout: Any, deadline: float | None, **kwargs: Any
) -> tuple[int, Mapping[str, str], bytes]:
    """
    One sync request as every MinerU client sends it: no redirect followed, the answer read bounded.

    :param session: a ``requests.Session`` whose adapters carry :func:`install_deadline_pools`.
    :param what: how errors name the call (``"GET /extract/task/…"``).
    :param timeout: ``requests``' per-read time-out(s).
    :param deadline: seconds for the whole request (None: the per-read time-outs only, for uploads).
    :param kwargs: the rest of ``session.request``'s arguments (``json``, ``params``, ``data``…).
    :returns: ``(status, headers, body)``.
    """
    with Deadline(deadline) if deadline is not None else contextlib.nullcontext() as guard:
        try:
            response = session.request(method, url, timeout=timeout, allow_redirects=False, stream=True, **kwargs)
            with response:
                refuse_redirect(what, url, response.status_code, response.headers)
                content = read_answer(what, response.status_code, response.headers, response.iter_content)
        except requests.RequestException as exc:
            if guard is not None and guard.expired:
                raise deadline_error(what, deadline) from exc
            raise
    return response.status_code, response.headers, content


def check_answer_url(url: Any, field: str) -> str:
    """A URL from MinerU's answer must be http(s) with a host and no control characters (else refused)."""
    text = url if isinstance(url, str) else ""
    parts = urlsplit(text) if text else None
    scheme = parts.scheme.lower() if parts else ""
    if parts is None or scheme not in ("http", "https") or not parts.netloc or _CONTROL.search(text):
        shown = f"scheme {scheme!r}" if scheme not in ("http", "https") else "a malformed URL"
        raise MinerURefusedResponseError(f"MinerU's {field} has {shown}; only http(s) URLs are used")
    return text


_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def deadline_error(what: str, timeout: float) -> MinerUConnectionError:
    error = MinerUConnectionError(f"{what}: no complete answer within the {timeout:g} s time-out")
    error.ambiguous = True  # type: ignore[attr-defined]
    error.deadline = timeout  # type: ignore[attr-defined]
    return error


_deadline_local = threading.local()


class Deadline:
    """
    Shut the socket of the current request down once ``seconds`` have passed.

    ``requests`` (and urllib3) time out each socket read, so a server trickling one byte at a time
    would hold a call forever; this bounds the whole request. Connections are attached by the
    connection pools :func:`install_deadline_pools` installs, on the thread that makes the request.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._timer: threading.Timer | None = None
        self._done = False

    def __enter__(self) -> Deadline:
        _deadline_local.current = self
        self._arm(self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
        _deadline_local.current = None

    def _arm(self, seconds: float) -> None:
        timer = threading.Timer(seconds, self._expire)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def attach(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            pending = False
            for connection in self._connections:
                sock = getattr(connection, "sock", None)
                if sock is None:
                    pending = True  # still connecting (bounded by the connect time-out): look again
                    continue
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            if pending or not self._connections:
                self._arm(0.05)


@functools.cache
def _deadline_pool_classes() -> dict[str, type]:
    def watched(base: type) -> type:
        def _make_request(self: Any, conn: Any, *args: Any, **kwargs: Any) -> Any:
            current = getattr(_deadline_local, "current", None)
            if current is not None:
                current.attach(conn)
            return base._make_request(self, conn, *args, **kwargs)  # type: ignore[attr-defined]

        # Same name as the base: urllib3 quotes it in errors (``HTTPConnectionPool(host=…): …``).
        return type(base.__name__, (base,), {"_make_request": _make_request, "__module__": __name__})

    return {"http": watched(HTTPConnectionPool), "https": watched(HTTPSConnectionPool)}


def install_deadline_pools(adapter: Any) -> None:
    """Make ``adapter``'s pools (also through a proxy) report their connections to :class:`Deadline`."""
    if getattr(adapter, "_mineru_deadline", False) or not hasattr(adapter, "poolmanager"):
        return
    adapter.poolmanager.pool_classes_by_scheme = _deadline_pool_classes()
    original = adapter.proxy_manager_for

    def proxy_manager_for(proxy: str, **kwargs: Any) -> Any:
        manager = original(proxy, **kwargs)
        manager.pool_classes_by_scheme = _deadline_pool_classes()
        return manager

    adapter.proxy_manager_for = proxy_manager_for
    adapter._mineru_deadline = True


def strip_urls(text: str) -> str:
    """``text`` without URL query strings (they can hold presigned signatures), cut to 300 characters."""
    return re.sub(r"\?[^\s'\")]*", "?…", text)[:300]


class _RedactQueries(logging.Filter):
    """
    Drop query strings from URLs urllib3 logs at DEBUG (``"PUT /b/k.pdf?Signature=… HTTP/1.1"``).

    A filter rather than one secrets-masker entry per presigned URL: a batch has hundreds of them,
    and every entry would slow every later log line of the task.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "?" in a for a in record.args):
            record.args = tuple(strip_urls(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = strip_urls(record.msg)
        return True


def install_log_redaction() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactQueries) for f in logger.filters):
        logger.addFilter(_RedactQueries())


install_log_redaction()


def ssl_option(verify: bool | str) -> Any:
    """aiohttp's ``ssl`` argument; one context per CA file, since aiohttp pools connections by it."""
    if verify is False:
        return False
    if isinstance(verify, str):
        return _ssl_context(verify)
    return None


@functools.lru_cache(maxsize=16)
def _ssl_context(cafile: str) -> Any:
    return ssl.create_default_context(cafile=cafile)
