"""
The transport's sync face (``requests``): operators and the connection Test.

Two sessions per connection: the API session carries the token and the ``headers`` extras and
follows no redirect; the file session (presigned uploads, CDN downloads) carries no header of ours.
Every decision after a failure is :class:`~airflow_provider_mineru.transport.policy.Attempts`'.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter
from requests_toolbelt.multipart.encoder import MultipartEncoder

from airflow_provider_mineru.exceptions import (
    MinerUConnectionError,
    MinerUError,
    MinerUResultError,
    MinerUValidationError,
)
from airflow_provider_mineru.transport.policy import (
    UNPACED,
    Answer,
    Attempts,
    Origin,
    Pacing,
    Request,
    check_file_response,
    explain,
    safe_url,
    transport_error,
)
from airflow_provider_mineru.utils.bounded_http import (
    bounded_request,
    install_deadline_pools,
    read_answer,
    refuse_redirect,
)

if TYPE_CHECKING:
    from airflow_provider_mineru.connection.config import MinerUConnectionConfig
    from airflow_provider_mineru.inputs.sources import SourceFile

T = TypeVar("T")

#: Bytes read per chunk when streaming uploads and downloads.
CHUNK_SIZE = 1024 * 1024
#: Connections per host of the upload/download session (at least the usual upload concurrency).
FILE_POOL_SIZE = 32


def new_session(
    config: MinerUConnectionConfig, headers: dict[str, str], pool_maxsize: int | None = None
) -> requests.Session:
    """
    A ``requests`` session with TCP keep-alive probes (idle 120 s, every 30 s, 20 times: a long
    upload or a quiet poll survives NAT and load-balancer idle time-outs), ``pool_maxsize``
    connections per host, and pools that report to the whole-request deadline.
    """
    session = requests.Session()
    session.headers.update(headers)
    session.verify = config.verify
    if config.proxy:
        session.proxies = {"http": config.proxy, "https": config.proxy}
    sizes = {} if pool_maxsize is None else {"pool_maxsize": pool_maxsize}
    adapter = TCPKeepAliveAdapter(idle=120, count=20, interval=30, **sizes)
    install_deadline_pools(adapter)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class SyncTransport:
    """
    Every sync request of one connection: bounded, redirect-refusing, retried by the connection's policy.

    :param config: the parsed connection.
    :param origin: how errors name the connection.
    :param log: where retries are announced.
    :param pacing: what every API call waits for first (the account's shared limiters).
    """

    def __init__(
        self, config: MinerUConnectionConfig, origin: Origin, log: logging.Logger, pacing: Pacing = UNPACED
    ) -> None:
        self.config = config
        self.origin = origin
        self.log = log
        self.pacing = pacing
        self._lock = threading.Lock()
        self._api: requests.Session | None = None
        self._files: requests.Session | None = None

    # -- sessions ---------------------------------------------------------------------------------

    @property
    def api_session(self) -> requests.Session:
        """The authenticated session (token and ``headers`` extras); it follows no redirect."""
        with self._lock:
            if self._api is None:
                self._api = new_session(self.config, self.config.auth_headers)
            return self._api

    @property
    def file_session(self) -> requests.Session:
        """
        Uploads go to presigned URLs and results to a CDN: never send the API token there.

        One session per connection, made once even when uploads start on several threads at the
        same time; its pool holds :data:`FILE_POOL_SIZE` connections per host.
        """
        with self._lock:
            if self._files is None:
                self._files = new_session(self.config, {}, pool_maxsize=FILE_POOL_SIZE)
            return self._files

    @property
    def file_timeout(self) -> tuple[float, float]:
        """(connect, read) time-outs for uploads and downloads: reads may take minutes on large files."""
        return (self.config.timeout, max(self.config.timeout, 300.0))

    # -- the retry loop ---------------------------------------------------------------------------

    def retried(self, request: Request, attempt: Callable[[], T], pacing: Pacing = UNPACED) -> T:
        """
        Run ``attempt`` until it succeeds, or :class:`Attempts` gives up.

        :param pacing: asked before each attempt and after each failure that is retried (API calls).
        """
        attempts = Attempts(request, self.config.retry, self.origin, self.log)
        while True:
            pacing.before(request)
            try:
                return attempt()
            except requests.RequestException as exc:
                error: MinerUError = transport_error(exc, request.what, self.origin)
            except MinerUError as exc:
                error = explain(exc, self.origin)
            delay = attempts.after(error)
            pacing.retrying(request, error)
            time.sleep(delay)

    # -- API calls --------------------------------------------------------------------------------

    def send(self, request: Request, decode: Callable[[Answer], T]) -> T:
        """
        Send one API call with the token; ``decode`` turns each answer into data or a typed error.

        The connection's ``timeout`` bounds the whole request (connect, headers and body), except a
        multipart upload, which is bounded per read by the file time-out.
        """

        def attempt() -> T:
            with contextlib.ExitStack() as stack:
                kwargs: dict[str, Any] = {"verify": self.config.verify}
                if request.json is not None:
                    kwargs["json"] = request.json
                if request.params:
                    kwargs["params"] = list(request.params)
                timeout: Any = self.config.timeout
                deadline: float | None = self.config.timeout
                if request.multipart:
                    fields = [
                        ("files", (source.name, stack.enter_context(source.open()), "application/octet-stream"))
                        for source in request.multipart
                    ]
                    encoder = MultipartEncoder(fields=fields)
                    kwargs.update(data=encoder, headers={"Content-Type": encoder.content_type})
                    timeout, deadline = self.file_timeout, None
                answer = Answer(
                    *bounded_request(
                        self.api_session,
                        request.method,
                        request.url,
                        what=request.what,
                        timeout=timeout,
                        deadline=deadline,
                        **kwargs,
                    )
                )
            return decode(answer)

        return self.retried(request, attempt, self.pacing)

    # -- files ------------------------------------------------------------------------------------

    def upload(self, url: str, source: SourceFile) -> int:
        """Stream one file to a presigned URL (``PUT``, no header of ours, no redirect followed)."""
        what = f"upload of {source.name}"

        def attempt() -> int:
            with source.open() as handle:
                source.check_unchanged(handle)
                reader = _ChunkedReader(handle, source.size, source)
                response = self.file_session.put(
                    url,
                    data=reader,
                    headers={"Content-Length": str(source.size)},
                    timeout=self.file_timeout,
                    allow_redirects=False,
                    stream=True,
                    verify=self.config.verify,
                )
                with response:
                    refuse_redirect(what, url, response.status_code, response.headers)
                    content = read_answer(what, response.status_code, response.headers, response.iter_content)
                check_file_response("upload", Answer(response.status_code, response.headers, content))
                source.check_unchanged(handle, after_upload=True)
            return source.size

        return self.retried(Request("PUT", url, what), attempt)

    def download(
        self,
        url: str,
        destination: Path,
        *,
        max_bytes: int,
        authenticated: bool = False,
        refuse: Callable[[Answer], None] | None = None,
    ) -> Path:
        """
        Stream a result to a local file, at most ``max_bytes``, checking it arrived whole.

        :param authenticated: send the token (only to the connection's own server, and then no
            redirect is followed); otherwise the file session sends no header of ours and follows
            a CDN's redirects.
        :param refuse: raises the typed error of an answer that is not the file (default: an object
            store's or CDN's error).
        """
        where = safe_url(url)
        refuse = refuse or (lambda answer: check_file_response("download", answer))

        def too_large(size: str) -> MinerUResultError:
            return MinerUResultError(
                f"result zip {where} is {size}, over the connection's max_result_mb="
                f"{max_bytes / (1024 * 1024):g}; the partial file was removed"
            )

        def attempt() -> Path:
            session = self.api_session if authenticated else self.file_session
            options: dict[str, Any] = {"stream": True, "timeout": self.file_timeout, "verify": self.config.verify}
            if authenticated:
                options.update(allow_redirects=False, headers={"Accept-Encoding": "identity"})
            with session.get(url, **options) as response:
                what = f"download of {where}"
                if authenticated:
                    refuse_redirect(what, url, response.status_code, response.headers)
                if response.status_code >= 300 or (authenticated and response.status_code == 202):
                    body = read_answer(what, max(response.status_code, 300), response.headers, response.iter_content)
                    refuse(Answer(response.status_code, response.headers, body))
                expected = response.headers.get("Content-Length")
                if expected is not None and expected.isdigit() and int(expected) > max_bytes:
                    raise too_large(f"{int(expected)} bytes (Content-Length)")
                written = 0
                try:
                    out = open(destination, "wb")  # noqa: SIM115 - closed below
                except OSError as exc:
                    raise MinerUResultError(f"cannot write result zip {where} to {destination}: {exc}") from exc
                try:
                    with out:
                        for chunk in response.iter_content(CHUNK_SIZE):
                            written += len(chunk)
                            if written > max_bytes:
                                raise too_large(f"more than {max_bytes} bytes")
                            try:
                                out.write(chunk)
                            except OSError as exc:
                                raise MinerUResultError(
                                    f"cannot write result zip {where} to {destination}: {exc}"
                                ) from exc
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(destination)
                    raise
            if expected is not None and expected.isdigit() and written != int(expected):
                raise MinerUConnectionError(f"result download ended after {written} of {expected} bytes: {where}")
            return destination

        return self.retried(Request("GET", url, f"download of {where}"), attempt)

    def head(self, url: str) -> dict[str, str] | None:
        """
        The response headers of one HEAD request to a document URL (the file session: no token, no
        header of ours; a CDN's redirects followed), or None when it fails: the ledger reads the
        ``ETag`` and ``Last-Modified`` a server gives, to tell an unchanged URL without fetching it.
        """
        try:
            with self.file_session.head(
                url, timeout=(self.config.timeout, self.config.timeout), allow_redirects=True
            ) as response:
                return dict(response.headers) if response.status_code < 300 else None
        except requests.RequestException:
            return None

    def close(self) -> None:
        with self._lock:
            for session in (self._api, self._files):
                if session is not None:
                    session.close()
            self._api = self._files = None


class _ChunkedReader:
    """
    A file wrapper ``requests`` streams from in :data:`CHUNK_SIZE` pieces, with a known length.

    Exactly ``size`` bytes are sent (the size checked before the batch was requested): a file that
    grew is not sent past it (and fails afterwards, see :meth:`SourceFile.check_unchanged`); one
    that shrank raises instead of leaving the PUT short of its ``Content-Length``.
    """

    def __init__(self, handle: Any, size: int, source: SourceFile | None = None) -> None:
        self._handle = handle
        self._left = size
        self._source = source
        self.len = size

    def read(self, amount: int = -1) -> bytes:
        want = CHUNK_SIZE if amount is None or amount < 0 else min(amount, CHUNK_SIZE)
        want = min(want, self._left)
        if want <= 0:
            return b""
        chunk = self._handle.read(want)
        if not chunk:
            name = self._source.name if self._source else "the file"
            raise MinerUValidationError(
                f"file {name}",
                f"{self.len - self._left} of {self.len} bytes",
                "the file became shorter while it was uploaded; not uploaded",
            )
        self._left -= len(chunk)
        return chunk

    def __iter__(self) -> Any:
        return iter(lambda: self.read(CHUNK_SIZE), b"")
