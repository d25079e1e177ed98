"""
MinerUHook: every MinerU API endpoint, synchronous for operators and asynchronous for triggers.

Request bodies, response decoding and the retry decision come from
:mod:`airflow_provider_mineru.protocol`, so the two halves cannot drift apart; this module only
moves bytes (``requests`` through the HTTP provider's session machinery, and one shared
``aiohttp`` session per event loop for triggers).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from airflow.providers.http.hooks.http import HttpHook

from airflow_provider_mineru.connection import MinerUConnectionConfig, token_expiry_warning
from airflow_provider_mineru.connection_fields import CONN_FIELDS, CONN_TYPE, DEFAULT_CONN_ID, UI_FIELD_BEHAVIOUR
from airflow_provider_mineru.exceptions import (
    MinerUAuthError,
    MinerUConnectionError,
    MinerUError,
    MinerUInvalidRequestError,
    MinerUNotFoundError,
    MinerUProtocolError,
    MinerUResultError,
    MinerUTransientError,
    MinerUUploadURLExpiredError,
    MinerUValidationError,
)
from airflow_provider_mineru.models import BatchResult, DocumentResult, UploadGrant
from airflow_provider_mineru.protocol import (
    BATCH_PATH,
    FILE_URLS_PATH,
    SUBMIT_BATCH_PATH,
    SUBMIT_TASK_PATH,
    TASK_PATH,
    ParseOptions,
    body_excerpt,
    build_batch_body,
    build_task_body,
    join_url,
    parse_retry_after,
)
from airflow_provider_mineru.protocol import parse_response as parse_api_response
from airflow_provider_mineru.sources import SourceFile, resolve_sources
from airflow_provider_mineru.version_compat import mask_secret

if TYPE_CHECKING:
    import aiohttp
    import requests
    from typing_extensions import Unpack

    from airflow_provider_mineru.results import ExtractedResult, ZipLimits

T = TypeVar("T")

#: Bytes read per chunk when streaming uploads and downloads.
CHUNK_SIZE = 1024 * 1024
#: Connections per host of the upload/download session (at least the usual upload concurrency).
FILE_POOL_SIZE = 32
#: Simultaneous connections of the shared async session (all triggers of one triggerer).
ASYNC_POOL_LIMIT = 64


class ParseOptionKwargs(TypedDict, total=False):
    """Keyword arguments accepted wherever parsing options are (see :class:`ParseOptions`)."""

    is_ocr: bool
    enable_formula: bool
    enable_table: bool
    language: str
    callback: str
    seed: str
    extra_formats: Sequence[str]
    model_version: str
    no_cache: bool
    cache_tolerance: int


def parse_options(options: Mapping[str, Any]) -> ParseOptions:
    """Build :class:`ParseOptions` from keyword arguments, naming any unknown one."""
    try:
        return ParseOptions(**options)
    except TypeError:
        known = set(ParseOptions.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        raise MinerUValidationError("options", unknown, f"unknown option; known: {sorted(known)}") from None


class MinerUHook(HttpHook):
    """
    Talk to the MinerU API (cloud, self-hosted gateway, or the bundled emulator).

    The connection's ``host`` is the base URL with its path (``https://mineru.net/api/v4``), the
    password is the API token; extras tune time-outs, retries, limits and proxies (see
    :data:`~airflow_provider_mineru.connection_fields.CONN_FIELDS`).

    Transient failures (HTTP 429/5xx, busy-service codes, resets, time-outs, bodies that are not
    JSON) are retried with exponential backoff and jitter, honouring ``Retry-After``; every other
    error is raised at once as a typed :class:`~airflow_provider_mineru.exceptions.MinerUError`.

    :param mineru_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "mineru_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "MinerU"

    def __init__(self, mineru_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(method="GET", http_conn_id=mineru_conn_id, **kwargs)
        self.mineru_conn_id = mineru_conn_id
        self._config: MinerUConnectionConfig | None = None
        self._file_session_lock = threading.Lock()
        self._file_session_instance: requests.Session | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mineru_conn_id={self.mineru_conn_id!r})"

    # -- connection form -------------------------------------------------------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel host as Base URL and password as API token; hide what MinerU does not use."""
        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.x and 3.0-3.1), from ``CONN_FIELDS``."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            kinds = spec["schema"]["type"]
            label = lazy_gettext(spec["label"])
            default = spec["schema"].get("default")
            if "boolean" in kinds:
                widgets[name] = BooleanField(label, default=default, description=spec["description"])
            elif "integer" in kinds:
                widgets[name] = IntegerField(
                    label,
                    validators=[Optional(), NumberRange(min=0)],
                    widget=BS3TextFieldWidget(),
                    default=default,
                    description=spec["description"],
                )
            else:
                widgets[name] = StringField(
                    label, widget=BS3TextFieldWidget(), default=default, description=spec["description"]
                )
        return widgets

    # -- configuration ---------------------------------------------------------------------------

    def _register(self, config: MinerUConnectionConfig) -> MinerUConnectionConfig:
        if config.token:
            mask_secret(config.token)
        warning = token_expiry_warning(config.token)
        if warning:
            self.log.warning("%s", warning)
        self._config = config
        return config

    @property
    def config(self) -> MinerUConnectionConfig:
        """The parsed connection (fetched once, synchronously)."""
        if self._config is None:
            conn = self.get_connection(self.mineru_conn_id)
            self._register(MinerUConnectionConfig.from_connection(conn))
        assert self._config is not None
        return self._config

    async def aget_config(self) -> MinerUConnectionConfig:
        """The parsed connection, fetched without blocking the event loop (for triggers)."""
        if self._config is None:
            from airflow.providers.common.compat import connection as compat

            conn = await compat.get_async_connection(self.mineru_conn_id, self)
            get_extra = getattr(compat, "get_async_extra_dejson", None)  # common-compat 1.23+
            extra = conn.extra_dejson if get_extra is None else await get_extra(conn)
            self._register(MinerUConnectionConfig.from_connection(conn, extra))
        assert self._config is not None
        return self._config

    @property
    def base_url(self) -> str:  # type: ignore[override]
        return self.config.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:  # HttpHook.__init__ assigns it; the connection decides
        pass

    # -- sync transport ---------------------------------------------------------------------------

    @cached_property
    def _api_session(self) -> requests.Session:
        return self._new_session(self.config.auth_headers)

    @property
    def _file_session(self) -> requests.Session:
        """
        Uploads go to presigned URLs and results to a CDN: never send the API token there.

        One session per hook, made once even when uploads start on several threads at the same
        time; its pool holds :data:`FILE_POOL_SIZE` connections per host, so concurrent uploads
        reuse connections instead of opening one each.
        """
        with self._file_session_lock:
            if self._file_session_instance is None:
                from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

                session = self._new_session({})
                adapter = TCPKeepAliveAdapter(idle=120, count=20, interval=30, pool_maxsize=FILE_POOL_SIZE)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                self._file_session_instance = session
            return self._file_session_instance

    def _new_session(self, headers: dict[str, str]) -> requests.Session:
        import requests

        session = requests.Session()
        session.headers.update(headers)
        session.verify = self.config.verify
        if self.config.proxy:
            session.proxies = {"http": self.config.proxy, "https": self.config.proxy}
        # TCP keep-alive adapter from the HTTP provider, mounted as HttpHook mounts it.
        return self._configure_session_from_mount_adapters(session)

    @property
    def _request_options(self) -> dict[str, Any]:
        """Per-request settings: ``verify`` is passed each time, or ``REQUESTS_CA_BUNDLE`` would override it."""
        return {"verify": self.config.verify}

    @property
    def _file_timeout(self) -> tuple[float, float]:
        """(connect, read) time-outs for uploads and downloads: reads may take minutes on large files."""
        return (self.config.timeout, max(self.config.timeout, 300.0))

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> Any:
        """The authenticated ``requests`` session (shared by every call of this hook)."""
        return self._api_session

    def _retry_or_raise(self, attempt: int, error: MinerUError, what: str) -> float:
        """Seconds to wait before the next attempt, or raise ``error`` when it must not be retried."""
        delay = self.config.retry.delay(attempt, error)
        if delay is None:
            raise error
        self.log.warning(
            "%s failed (attempt %d of %d): %s; retrying in %.1fs",
            what,
            attempt + 1,
            self.config.retry.max_retries + 1,
            error,
            delay,
        )
        return delay

    def _with_retries(
        self, what: str, attempt: Callable[[], T], *, method: str = "GET", body: dict[str, Any] | None = None
    ) -> T:
        """Run ``attempt`` until it succeeds, retrying transient failures by the connection's policy."""
        import requests

        tries = 0
        while True:
            try:
                return attempt()
            except requests.RequestException as exc:
                error: MinerUError = _connection_error(exc, method, what, body)
                self._warn_if_ambiguous(error, method, body)
            except MinerUError as exc:
                error = exc
            time.sleep(self._retry_or_raise(tries, error, what))
            tries += 1

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        config = self.config
        url = join_url(config.base_url, path)

        def attempt() -> Any:
            response = self._api_session.request(
                method, url, json=body, timeout=config.timeout, **self._request_options
            )
            return parse_api_response(response.status_code, response.headers, response.content)

        return self._with_retries(f"{method} {path}", attempt, method=method, body=body)

    def _warn_if_ambiguous(self, error: MinerUError, method: str, body: dict[str, Any] | None) -> None:
        if method == "POST" and getattr(error, "ambiguous", False):
            self.log.warning(
                "The submit may have reached MinerU before the time-out; a retry can create a duplicate "
                "task (identify it by data_id %s).",
                _data_ids(body) or "(none set)",
            )

    # -- async transport --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def async_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """
        Hold the event loop's shared ``aiohttp`` session while inside the block.

        Every trigger of a triggerer shares one session and one bounded connection pool; the
        session closes when the last holder leaves.
        """
        session = await _SHARED_SESSIONS.acquire()
        try:
            yield session
        finally:
            await _SHARED_SESSIONS.release()

    async def _acall(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import aiohttp

        config = await self.aget_config()
        url = join_url(config.base_url, path)
        what = f"{method} {path}"
        timeout = aiohttp.ClientTimeout(total=config.timeout)
        ssl = _ssl_option(config.verify)
        attempt = 0
        async with self.async_session() as session:
            while True:
                try:
                    async with session.request(
                        method,
                        url,
                        json=body,
                        headers=config.auth_headers,
                        timeout=timeout,
                        proxy=config.proxy,
                        ssl=ssl,
                    ) as response:
                        content = await response.read()
                    return parse_api_response(response.status, response.headers, content)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    error: MinerUError = _connection_error(exc, method, path, body)
                    self._warn_if_ambiguous(error, method, body)
                except MinerUError as exc:
                    error = exc
                await asyncio.sleep(self._retry_or_raise(attempt, error, what))
                attempt += 1

    # -- endpoints: single task ------------------------------------------------------------------

    def submit_task(
        self,
        url: str,
        *,
        data_id: str | None = None,
        page_ranges: str | None = None,
        **options: Unpack[ParseOptionKwargs],
    ) -> str:
        """
        Submit one document URL for parsing (``POST /extract/task``) and return its ``task_id``.

        :param url: http(s) URL of a .pdf/.doc(x)/.ppt(x)/.png/.jp(e)g that MinerU can fetch.
        :param data_id: your id for the document (1-128 of ``[A-Za-z0-9_.-]``), returned in results.
        :param page_ranges: pages to parse, e.g. ``"2,4-6"``, ``"2--2"``, ``"15-"``.
        :param options: parsing options: ``is_ocr``, ``enable_formula``, ``enable_table``,
            ``language``, ``callback``, ``seed``, ``extra_formats``, ``model_version``, ``no_cache``,
            ``cache_tolerance``.
        """
        body = build_task_body(url, parse_options(options), data_id=data_id, page_ranges=page_ranges)
        return _task_id(self._call("POST", SUBMIT_TASK_PATH, body))

    async def asubmit_task(
        self,
        url: str,
        *,
        data_id: str | None = None,
        page_ranges: str | None = None,
        **options: Unpack[ParseOptionKwargs],
    ) -> str:
        """Async :meth:`submit_task`."""
        body = build_task_body(url, parse_options(options), data_id=data_id, page_ranges=page_ranges)
        return _task_id(await self._acall("POST", SUBMIT_TASK_PATH, body))

    def get_task(self, task_id: str) -> DocumentResult:
        """State of one task (``GET /extract/task/{task_id}``), with progress while running."""
        return _task_result(self._call("GET", _task_path(task_id)), task_id)

    async def aget_task(self, task_id: str) -> DocumentResult:
        """Async :meth:`get_task`."""
        return _task_result(await self._acall("GET", _task_path(task_id)), task_id)

    # -- endpoints: batches ----------------------------------------------------------------------

    def request_upload_urls(
        self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]
    ) -> UploadGrant:
        """
        Ask for one presigned upload URL per file (``POST /file-urls/batch``).

        Parsing starts by itself once each file is uploaded with :meth:`upload_file`.

        :param files: file names, or dicts ``{"name", "is_ocr", "data_id", "page_ranges"}``; at most
            the connection's ``max_batch_files`` (200), names unique.
        """
        body = build_batch_body(files, parse_options(options), key="name", limits=self.config.limits)
        return _upload_grant(self._call("POST", FILE_URLS_PATH, body), len(files))

    async def arequest_upload_urls(
        self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]
    ) -> UploadGrant:
        """Async :meth:`request_upload_urls`."""
        config = await self.aget_config()
        body = build_batch_body(files, parse_options(options), key="name", limits=config.limits)
        return _upload_grant(await self._acall("POST", FILE_URLS_PATH, body), len(files))

    def submit_batch(self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]) -> str:
        """
        Submit many document URLs in one batch (``POST /extract/task/batch``) and return the ``batch_id``.

        :param files: URLs, or dicts ``{"url", "is_ocr", "data_id", "page_ranges"}``; at most the
            connection's ``max_batch_files`` (200).
        """
        body = build_batch_body(files, parse_options(options), key="url", limits=self.config.limits)
        return _batch_id(self._call("POST", SUBMIT_BATCH_PATH, body))

    async def asubmit_batch(
        self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]
    ) -> str:
        """Async :meth:`submit_batch`."""
        config = await self.aget_config()
        body = build_batch_body(files, parse_options(options), key="url", limits=config.limits)
        return _batch_id(await self._acall("POST", SUBMIT_BATCH_PATH, body))

    def get_batch(self, batch_id: str) -> BatchResult:
        """State of every file of a batch (``GET /extract-results/batch/{batch_id}``), in submission order."""
        return BatchResult.from_api(self._call("GET", _batch_path(batch_id)), batch_id)

    async def aget_batch(self, batch_id: str) -> BatchResult:
        """Async :meth:`get_batch`."""
        return BatchResult.from_api(await self._acall("GET", _batch_path(batch_id)), batch_id)

    # -- files -----------------------------------------------------------------------------------

    def resolve_sources(self, paths: Any, *, model_version: str | None = None) -> list[SourceFile]:
        """Expand and check local/object-storage paths against this connection's limits."""
        return resolve_sources(paths, self.config.limits, model_version=model_version)

    def upload_file(self, upload_url: str, source: SourceFile | str | os.PathLike[str] | Any) -> int:
        """
        Stream one file to its presigned upload URL (``PUT``, no Content-Type, no API token).

        The body is read in chunks, never whole; transient failures re-open the source and retry.

        :param upload_url: a URL from :meth:`request_upload_urls`.
        :param source: a :class:`~airflow_provider_mineru.sources.SourceFile`, a local path, an
            object-storage URL or an ``ObjectStoragePath``.
        :return: bytes sent.
        """
        if not isinstance(source, SourceFile):
            source = resolve_sources([source], self.config.limits)[0]

        def attempt() -> int:
            with source.open() as handle:
                response = self._file_session.put(
                    upload_url,
                    data=_ChunkedReader(handle, source.size),
                    headers={"Content-Length": str(source.size)},
                    timeout=self._file_timeout,
                    **self._request_options,
                )
                _check_file_response("upload", response.status_code, response.headers, response.content)
            return source.size

        return self._with_retries(f"upload of {source.name}", attempt, method="PUT")

    def download_result(self, full_zip_url: str, destination: str | os.PathLike[str]) -> Path:
        """
        Stream a result zip to a local file, checking it arrived whole; the API token is not sent.

        :param full_zip_url: the ``full_zip_url`` of a ``done`` document.
        :param destination: local file path to write.
        """
        destination = Path(destination)

        def attempt() -> Path:
            with self._file_session.get(
                full_zip_url, stream=True, timeout=self._file_timeout, **self._request_options
            ) as response:
                if response.status_code >= 300:
                    _check_file_response("download", response.status_code, response.headers, response.content)
                expected = response.headers.get("Content-Length")
                written = 0
                with open(destination, "wb") as out:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        out.write(chunk)
                        written += len(chunk)
            if expected is not None and written != int(expected):
                raise MinerUConnectionError(
                    f"result download ended after {written} of {expected} bytes: {_safe_url(full_zip_url)}"
                )
            return destination

        return self._with_retries(f"download of {_safe_url(full_zip_url)}", attempt)

    def download_and_extract(
        self, full_zip_url: str, target: Any, *, limits: ZipLimits | None = None
    ) -> ExtractedResult:
        """
        Download a result zip to a temporary file and extract it safely into ``target``.

        :param target: a local folder or any object-storage path (``ObjectStoragePath``, ``s3://…``).
        :param limits: zip-bomb limits; defaults to :class:`~airflow_provider_mineru.results.ZipLimits`.
        """
        from airflow_provider_mineru.results import ZipLimits, extract_result_zip

        tmpdir = tempfile.mkdtemp(prefix="mineru-result-")
        try:
            zip_path = self.download_result(full_zip_url, Path(tmpdir) / "result.zip")
            return extract_result_zip(zip_path, target, limits=limits or ZipLimits())
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    # -- connection test -------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """
        Prove the token with a call that costs no quota: a made-up task id must answer ``-60012``.

        Also reports when the token (a JWT) expires within 14 days.
        """
        try:
            config = self.config
            self.get_task(f"connection-test-{uuid.uuid4()}")
        except MinerUNotFoundError:
            warning = token_expiry_warning(config.token)
            message = f"Connected to {config.base_url}; the token is valid."
            return True, f"{message} {warning}" if warning else message
        except MinerUAuthError as exc:
            return False, f"MinerU refused the token: {exc}"
        except MinerUError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to {self.config.base_url}."


# -------------------------------------------------------------------------------------------------
# Shared pieces of the sync and async paths


def _task_path(task_id: str) -> str:
    if not task_id or not isinstance(task_id, str) or "/" in task_id:
        raise MinerUValidationError("task_id", task_id, "must be a MinerU task id")
    return TASK_PATH.format(task_id=task_id)


def _batch_path(batch_id: str) -> str:
    if not batch_id or not isinstance(batch_id, str) or "/" in batch_id:
        raise MinerUValidationError("batch_id", batch_id, "must be a MinerU batch id")
    return BATCH_PATH.format(batch_id=batch_id)


def _require(data: Any, key: str) -> Any:
    if not isinstance(data, dict) or not data.get(key):
        raise MinerUProtocolError(f"MinerU's answer has no {key!r}: {str(data)[:200]!r}")
    return data[key]


def _task_id(data: Any) -> str:
    return str(_require(data, "task_id"))


def _batch_id(data: Any) -> str:
    return str(_require(data, "batch_id"))


def _task_result(data: Any, task_id: str) -> DocumentResult:
    if not isinstance(data, dict):
        raise MinerUProtocolError(f"MinerU's task answer is not an object: {str(data)[:200]!r}")
    return DocumentResult.from_api({"task_id": task_id, **data})


def _upload_grant(data: Any, expected: int) -> UploadGrant:
    urls = data.get("file_urls") or data.get("files") if isinstance(data, dict) else None
    if not isinstance(urls, list) or len(urls) != expected:
        raise MinerUProtocolError(
            f"MinerU returned {len(urls) if isinstance(urls, list) else 'no'} upload URLs for {expected} files"
        )
    return UploadGrant(batch_id=str(_require(data, "batch_id")), file_urls=tuple(str(u) for u in urls))


def _data_ids(body: dict[str, Any] | None) -> str:
    if not body:
        return ""
    if body.get("data_id"):
        return str(body["data_id"])
    return ", ".join(str(f["data_id"]) for f in body.get("files", []) if isinstance(f, dict) and f.get("data_id"))


def _safe_url(url: str) -> str:
    """A URL without its query string (presigned signatures stay out of logs)."""
    return url.split("?", 1)[0]


#: Transport errors that happen before a request is sent: retrying them cannot duplicate anything.
_NOT_SENT_ERRORS = ("ConnectTimeout", "ClientConnectorError", "ConnectionRefused", "NewConnectionError")


def _connection_error(exc: BaseException, method: str, what: str, body: dict[str, Any] | None) -> MinerUError:
    """
    Map a transport exception (requests or aiohttp) to a retryable error.

    Unless the connection itself could not be made, the request may have reached MinerU before the
    answer was lost (a reset, a cut-short body, a read time-out): the error is marked ``ambiguous``
    so a retried submit is logged as a possible duplicate.
    """
    name = type(exc).__name__
    text = _strip_urls(str(exc))
    error = MinerUConnectionError(f"{method} {_safe_url(what)}: {name}: {text}")
    error.ambiguous = not any(marker in name or marker in text for marker in _NOT_SENT_ERRORS)  # type: ignore[attr-defined]
    return error


def _strip_urls(text: str) -> str:
    # Exception texts may quote the full URL; drop query strings that can hold signatures.
    return re.sub(r"\?[^\s'\")]*", "?…", text)[:300]


def _check_file_response(what: str, status: int, headers: Mapping[str, str], content: bytes) -> None:
    """Raise the right error for a failed upload PUT or result download (object storage, XML bodies)."""
    if status < 300:
        return
    retry_after = parse_retry_after(headers.get("Retry-After"))
    excerpt = body_excerpt(content)
    # Object stores (OSS, S3, CDNs) name the failed request in a header or in the XML body.
    request_id = headers.get("x-oss-request-id") or headers.get("x-amz-request-id") or headers.get("x-request-id")
    if not request_id:
        match = re.search(rb"<RequestId>([^<]{1,128})</RequestId>", content[:65536])
        request_id = match.group(1).decode("ascii", "replace") if match else None
    if status == 429 or status >= 500:
        raise MinerUTransientError(
            f"{what} answered HTTP {status}: {excerpt}",
            http_status=status,
            retry_after=retry_after,
            trace_id=request_id,
        )
    if what == "upload" and status == 403 and "expired" in excerpt.lower():
        raise MinerUUploadURLExpiredError(
            f"the upload URL has expired: {excerpt}", http_status=status, trace_id=request_id
        )
    error_class = MinerUInvalidRequestError if what == "upload" else MinerUResultError
    raise error_class(f"{what} answered HTTP {status}: {excerpt}", http_status=status, trace_id=request_id)


class _ChunkedReader:
    """A file wrapper ``requests`` streams from in :data:`CHUNK_SIZE` pieces, with a known length."""

    def __init__(self, handle: Any, size: int) -> None:
        self._handle = handle
        self.len = size

    def read(self, amount: int = -1) -> bytes:
        return self._handle.read(CHUNK_SIZE if amount is None or amount < 0 else min(amount, CHUNK_SIZE))

    def __iter__(self) -> Any:
        return iter(lambda: self._handle.read(CHUNK_SIZE), b"")


def _ssl_option(verify: bool | str) -> Any:
    """aiohttp's ``ssl`` argument; one context per CA file, since aiohttp pools connections by it."""
    if verify is False:
        return False
    if isinstance(verify, str):
        return _ssl_context(verify)
    return None


@functools.lru_cache(maxsize=16)
def _ssl_context(cafile: str) -> Any:
    import ssl

    return ssl.create_default_context(cafile=cafile)


class _SharedSessionRegistry:
    """One ``aiohttp.ClientSession`` per event loop, reference-counted, closed by its last user."""

    def __init__(self) -> None:
        self._sessions: dict[int, tuple[aiohttp.ClientSession, int]] = {}

    async def acquire(self) -> aiohttp.ClientSession:
        import aiohttp

        key = id(asyncio.get_running_loop())
        entry = self._sessions.get(key)
        if entry is None or entry[0].closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=ASYNC_POOL_LIMIT, keepalive_timeout=30),
                skip_auto_headers=("User-Agent",),
            )
            entry = (session, 0)
        self._sessions[key] = (entry[0], entry[1] + 1)
        return entry[0]

    async def release(self) -> None:
        key = id(asyncio.get_running_loop())
        session, users = self._sessions[key]
        if users <= 1:
            del self._sessions[key]
            await session.close()
        else:
            self._sessions[key] = (session, users - 1)

    def open_sessions(self) -> int:
        return len(self._sessions)


_SHARED_SESSIONS = _SharedSessionRegistry()
