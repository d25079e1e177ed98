"""
MinerUHook: every MinerU API endpoint, synchronous for operators and asynchronous for triggers.

Request bodies and response decoding come from the connection's API client
(:mod:`airflow_provider_mineru.clients`, the cloud v4 wire in
:mod:`airflow_provider_mineru.clients.v4_wire`), the retry policy from
:mod:`airflow_provider_mineru.utils.retries`, and the transport's safety rules from
:mod:`airflow_provider_mineru.utils.bounded_http`, so the sync and async halves cannot drift
apart. This module owns the sessions (``requests`` for operators, one shared ``aiohttp`` session
per event loop for triggers), the retry loop, uploads and downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from airflow_provider_mineru.clients import client_for
from airflow_provider_mineru.clients.v4_wire import (
    ParseOptions,
    body_excerpt,
    join_url,
    retry_may_duplicate,
)
from airflow_provider_mineru.connection import MinerUConnectionConfig, token_expiry_warning
from airflow_provider_mineru.connection_form import CONN_FIELDS, CONN_TYPE, DEFAULT_CONN_ID, UI_FIELD_BEHAVIOUR
from airflow_provider_mineru.exceptions import (
    MinerUAmbiguousSubmitError,
    MinerUConnectionError,
    MinerUError,
    MinerUInvalidRequestError,
    MinerUResultError,
    MinerUTransientError,
    MinerUUploadURLExpiredError,
    MinerUValidationError,
)
from airflow_provider_mineru.models import BatchResult, DocumentResult, UploadGrant
from airflow_provider_mineru.sources import SourceFile, resolve_sources
from airflow_provider_mineru.utils.bounded_http import (
    aread_answer,
    bounded_request,
    check_answer_url,
    install_deadline_pools,
    read_answer,
    refuse_redirect,
    ssl_option,
    strip_urls,
)
from airflow_provider_mineru.utils.retries import parse_retry_after
from airflow_provider_mineru.version_compat import BaseHook, mask_secret

if TYPE_CHECKING:
    import aiohttp
    import requests
    from typing_extensions import Unpack

    from airflow_provider_mineru.clients import MinerUClient
    from airflow_provider_mineru.utils.safe_zip import ExtractedResult, ZipLimits

T = TypeVar("T")

#: Bytes read per chunk when streaming uploads and downloads.
CHUNK_SIZE = 1024 * 1024
#: Connections per host of the upload/download session (at least the usual upload concurrency).
FILE_POOL_SIZE = 32
#: Simultaneous connections of the shared async session (all triggers of one triggerer).
ASYNC_POOL_LIMIT = 64


class ParseOptionKwargs(TypedDict, total=False):
    """
    Keyword arguments accepted wherever parsing options are (see :class:`ParseOptions`).

    Spelled out for type checkers; ``tests/hooks/test_hook_base.py`` keeps it equal to
    :data:`~airflow_provider_mineru.clients.v4_wire.OPTION_NAMES`, the one list.
    """

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
    tier: str


def parse_options(options: Mapping[str, Any]) -> ParseOptions:
    """Build :class:`ParseOptions` from keyword arguments, naming any unknown one."""
    try:
        return ParseOptions(**options)
    except TypeError:
        known = set(ParseOptions.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        raise MinerUValidationError("options", unknown, f"unknown option; known: {sorted(known)}") from None


class MinerUHook(BaseHook):
    """
    Talk to the MinerU API (cloud, self-hosted gateway, or the bundled emulator).

    The connection's ``host`` is the base URL with its path (``https://mineru.net/api/v4``), the
    password is the API token; extras tune time-outs, retries, limits and proxies (see
    :data:`~airflow_provider_mineru.connection_form.CONN_FIELDS`).

    Transient failures (HTTP 429/5xx, busy-service codes, resets, time-outs, bodies that are not
    JSON) are retried with exponential backoff and jitter, honouring ``Retry-After``; every other
    error is raised at once as a typed :class:`~airflow_provider_mineru.exceptions.MinerUError`.

    It derives from :class:`~airflow.hooks.base.BaseHook`, as the HTTP provider's own
    ``HttpAsyncHook`` does, not from ``HttpHook``: every request goes through the policy of
    :mod:`airflow_provider_mineru.utils.bounded_http` (no redirects to another host, bounded reads,
    a whole-request deadline, typed errors), which ``HttpHook.run()`` and its siblings would bypass.

    :param mineru_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "mineru_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "MinerU"

    def __init__(self, mineru_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mineru_conn_id = mineru_conn_id
        self._config: MinerUConnectionConfig | None = None
        self._file_session_lock = threading.Lock()
        self._file_session_instance: requests.Session | None = None
        self._client: MinerUClient | None = None

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
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, PasswordField, StringField
        from wtforms.validators import NumberRange, Optional, Regexp

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            schema = spec["schema"]
            kinds = schema["type"]
            label = lazy_gettext(spec["label"])
            default = schema.get("default")
            checks: list[Any] = [Optional()]
            if schema.get("pattern"):
                checks.append(Regexp(schema["pattern"], message=f"{spec['label']}: must match {schema['pattern']}"))
            if "boolean" in kinds:
                widgets[name] = BooleanField(label, default=default, description=spec["description"])
            elif "integer" in kinds:
                bounds = NumberRange(min=schema.get("minimum"), max=schema.get("maximum"))
                widgets[name] = IntegerField(
                    label,
                    validators=[*checks, bounds],
                    widget=BS3TextFieldWidget(),
                    default=default,
                    description=spec["description"],
                )
            elif schema.get("format") == "password":
                widgets[name] = PasswordField(
                    label, validators=checks, widget=BS3PasswordFieldWidget(), description=spec["description"]
                )
            else:
                widgets[name] = StringField(
                    label,
                    validators=checks,
                    widget=BS3TextFieldWidget(),
                    default=default,
                    description=spec["description"],
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
    def client(self) -> MinerUClient:
        """The API client of the connection's ``api_flavor`` (see :mod:`airflow_provider_mineru.clients`)."""
        return self._client_for(self.config)

    async def aclient(self) -> MinerUClient:
        """:attr:`client`, with the connection fetched without blocking the event loop."""
        return self._client_for(await self.aget_config())

    def _client_for(self, config: MinerUConnectionConfig) -> MinerUClient:
        if self._client is None or self._client.flavor != config.api_flavor:
            self._client = client_for(config.api_flavor)
        return self._client

    @property
    def base_url(self) -> str:
        """The connection's base URL, with its path (``https://mineru.net/api/v4``)."""
        return self.config.base_url

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
                self._file_session_instance = self._new_session({}, pool_maxsize=FILE_POOL_SIZE)
            return self._file_session_instance

    def _new_session(self, headers: dict[str, str], pool_maxsize: int | None = None) -> requests.Session:
        """
        A ``requests`` session with TCP keep-alive probes (idle 120 s, every 30 s, 20 times: a long
        upload or a quiet poll survives NAT and load-balancer idle time-outs) and ``pool_maxsize``
        connections per host.
        """
        import requests
        from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

        session = requests.Session()
        session.headers.update(headers)
        session.verify = self.config.verify
        if self.config.proxy:
            session.proxies = {"http": self.config.proxy, "https": self.config.proxy}
        sizes = {} if pool_maxsize is None else {"pool_maxsize": pool_maxsize}
        adapter = TCPKeepAliveAdapter(idle=120, count=20, interval=30, **sizes)
        install_deadline_pools(adapter)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

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
        self,
        what: str,
        attempt: Callable[[], T],
        *,
        method: str = "GET",
        body: dict[str, Any] | None = None,
        path: str | None = None,
    ) -> T:
        """
        Run ``attempt`` until it succeeds, retrying transient failures by the connection's policy.

        A paid submit whose answer was lost is never re-sent (see :func:`_raise_if_answer_lost`).
        """
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
                self._warn_if_ambiguous(error, method, body)  # e.g. the whole-request deadline passed
            _raise_if_answer_lost(error, method, path, body)
            time.sleep(self._retry_or_raise(tries, error, what))
            tries += 1

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        config = self.config
        url = join_url(config.base_url, path)
        what = f"{method} {path}"

        def attempt() -> Any:
            # ``timeout`` bounds the whole request (connect, headers and body), not each socket read.
            status, headers, content = bounded_request(
                self._api_session,
                method,
                url,
                what=what,
                timeout=config.timeout,
                deadline=config.timeout,
                json=body,
                **self._request_options,
            )
            return self._client_for(config).decode(status, headers, content)

        return self._with_retries(what, attempt, method=method, body=body, path=path)

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
        ssl = ssl_option(config.verify)
        attempt = 0
        async with self.async_session() as session:
            while True:
                try:
                    # ClientTimeout(total=...) bounds the whole request, body included.
                    async with session.request(
                        method,
                        url,
                        json=body,
                        headers=config.auth_headers,
                        timeout=timeout,
                        proxy=config.proxy,
                        ssl=ssl,
                        allow_redirects=False,
                    ) as response:
                        refuse_redirect(what, url, response.status, response.headers)
                        content = await aread_answer(what, response)
                    return self._client_for(config).decode(response.status, response.headers, content)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    error: MinerUError = _connection_error(exc, method, path, body)
                    self._warn_if_ambiguous(error, method, body)
                except MinerUError as exc:
                    error = exc
                _raise_if_answer_lost(error, method, path, body)
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
            ``cache_tolerance``; ``tier`` for ``api_flavor="mineru-api"``.
        """
        return self.client.submit_task(self, url, parse_options(options), data_id=data_id, page_ranges=page_ranges)

    async def asubmit_task(
        self,
        url: str,
        *,
        data_id: str | None = None,
        page_ranges: str | None = None,
        **options: Unpack[ParseOptionKwargs],
    ) -> str:
        """Async :meth:`submit_task`."""
        client = await self.aclient()
        return await client.asubmit_task(self, url, parse_options(options), data_id=data_id, page_ranges=page_ranges)

    def get_task(self, task_id: str) -> DocumentResult:
        """State of one task (``GET /extract/task/{task_id}``), with progress while running."""
        return self.client.get_task(self, task_id)

    async def aget_task(self, task_id: str) -> DocumentResult:
        """Async :meth:`get_task`."""
        return await (await self.aclient()).aget_task(self, task_id)

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
        return self.client.request_upload_urls(self, files, parse_options(options))

    async def arequest_upload_urls(
        self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]
    ) -> UploadGrant:
        """Async :meth:`request_upload_urls`."""
        return await (await self.aclient()).arequest_upload_urls(self, files, parse_options(options))

    def submit_batch(self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]) -> str:
        """
        Submit many document URLs in one batch (``POST /extract/task/batch``) and return the ``batch_id``.

        :param files: URLs, or dicts ``{"url", "is_ocr", "data_id", "page_ranges"}``; at most the
            connection's ``max_batch_files`` (200). With ``api_flavor="mineru-api"`` the files must fit
            one V1 task (at most 100, one ``is_ocr``); the operator splits larger lists itself.
        """
        return self.client.submit_batch(self, files, parse_options(options))

    async def asubmit_batch(
        self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]
    ) -> str:
        """Async :meth:`submit_batch`."""
        return await (await self.aclient()).asubmit_batch(self, files, parse_options(options))

    def get_batch(self, batch_id: str) -> BatchResult:
        """State of every file of a batch (``GET /extract-results/batch/{batch_id}``), in submission order."""
        return self.client.get_batch(self, batch_id)

    async def aget_batch(self, batch_id: str) -> BatchResult:
        """Async :meth:`get_batch`."""
        return await (await self.aclient()).aget_batch(self, batch_id)

    # -- files -----------------------------------------------------------------------------------

    def resolve_sources(
        self, paths: Any, *, model_version: str | None = None, follow_symlinks: bool = False
    ) -> list[SourceFile]:
        """
        Expand and check local/object-storage paths against this connection's limits.

        :param follow_symlinks: use symbolic links that leave a searched folder (refused by default).
        """
        return resolve_sources(paths, self.config.limits, model_version=model_version, follow_symlinks=follow_symlinks)

    def upload_file(self, upload_url: str, source: SourceFile | str | os.PathLike[str] | Any) -> int:
        """
        Stream one file to its presigned upload URL (``PUT``, no Content-Type, no API token).

        The body is read in chunks, never whole; transient failures re-open the source and retry.

        :param upload_url: a URL from :meth:`request_upload_urls`.
        :param source: a :class:`~airflow_provider_mineru.sources.SourceFile`, a local path, an
            object-storage URL or an ``ObjectStoragePath``.
        :return: bytes sent.
        """
        check_answer_url(upload_url, "upload URL")
        if not isinstance(source, SourceFile):
            source = resolve_sources([source], self.config.limits)[0]
        what = f"upload of {source.name}"

        def attempt() -> int:
            with source.open() as handle:
                source.check_unchanged(handle)
                reader = _ChunkedReader(handle, source.size, source)
                response = self._file_session.put(
                    upload_url,
                    data=reader,
                    headers={"Content-Length": str(source.size)},
                    timeout=self._file_timeout,
                    allow_redirects=False,
                    stream=True,
                    **self._request_options,
                )
                with response:
                    refuse_redirect(what, upload_url, response.status_code, response.headers)
                    content = read_answer(what, response.status_code, response.headers, response.iter_content)
                _check_file_response("upload", response.status_code, response.headers, content)
                source.check_unchanged(handle, after_upload=True)
            return source.size

        return self._with_retries(f"upload of {source.name}", attempt, method="PUT")

    def download_result(
        self, full_zip_url: str, destination: str | os.PathLike[str], *, max_bytes: int | None = None
    ) -> Path:
        """
        Stream a result zip to a local file, checking it arrived whole; the API token is not sent.

        Redirects are followed (CDNs use them) with no header of ours: the file session carries
        neither the token nor the connection's ``headers``.

        :param full_zip_url: the ``full_zip_url`` of a ``done`` document.
        :param destination: local file path to write.
        :param max_bytes: stop at this many bytes (default: the connection's ``max_result_mb``),
            remove the partial file and raise :class:`MinerUResultError`.
        :raises MinerUResultError: over ``max_bytes``, or the local file could not be written.
        """
        check_answer_url(full_zip_url, "full_zip_url")
        destination = Path(destination)
        limit = self.config.limits.max_result_bytes if max_bytes is None else max_bytes
        where = _safe_url(full_zip_url)

        def too_large(size: str) -> MinerUResultError:
            return MinerUResultError(
                f"result zip {where} is {size}, over the connection's max_result_mb="
                f"{limit / (1024 * 1024):g}; the partial file was removed"
            )

        def attempt() -> Path:
            with self._file_session.get(
                full_zip_url, stream=True, timeout=self._file_timeout, **self._request_options
            ) as response:
                if response.status_code >= 300:
                    _check_file_response("download", response.status_code, response.headers, response.content)
                expected = response.headers.get("Content-Length")
                if expected is not None and expected.isdigit() and int(expected) > limit:
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
                            if written > limit:
                                raise too_large(f"more than {limit} bytes")
                            try:
                                out.write(chunk)
                            except OSError as exc:
                                raise MinerUResultError(
                                    f"cannot write result zip {where} to {destination}: {exc}"
                                ) from exc
                except BaseException:
                    with contextlib.suppress(OSError):
                        destination.unlink()
                    raise
            if expected is not None and written != int(expected):
                raise MinerUConnectionError(
                    f"result download ended after {written} of {expected} bytes: {_safe_url(full_zip_url)}"
                )
            return destination

        return self._with_retries(f"download of {where}", attempt)

    def download_and_extract(
        self, full_zip_url: str, target: Any, *, limits: ZipLimits | None = None
    ) -> ExtractedResult:
        """
        Download a result zip to a temporary file and extract it safely into ``target``.

        :param target: a local folder or any object-storage path (``ObjectStoragePath``, ``s3://…``).
        :param limits: zip-bomb limits; defaults to :class:`~airflow_provider_mineru.utils.safe_zip.ZipLimits`.
        """
        return self.client.download_and_extract(self, full_zip_url, target, limits=limits)

    # -- connection test -------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """
        The connection form's Test: one request for a made-up task id (no quota), answered in seconds.

        Only MinerU's own answer proves the token (``-60012``, task not found); a plain 404 means
        there is no MinerU API at the base URL. Invalid extras are reported by field and rule. See
        :func:`~airflow_provider_mineru.connection.check_connection`; also reports when the token
        (a JWT) expires within 14 days. For ``api_flavor="mineru-api"``: the server's version
        (``GET /v1/health``) and its API key.
        """
        try:
            client = self.client
        except MinerUValidationError as exc:
            return False, f"The connection is not valid: {exc.message}."
        except Exception as exc:
            return False, f"The connection cannot be read: {type(exc).__name__}: {exc}"
        return client.test_connection(self)


# -------------------------------------------------------------------------------------------------
# Shared pieces of the sync and async paths


def _data_ids(body: dict[str, Any] | None) -> str:
    if not body:
        return ""
    if body.get("data_id"):
        return str(body["data_id"])
    return ", ".join(str(f["data_id"]) for f in body.get("files", []) if isinstance(f, dict) and f.get("data_id"))


def _submitted_names(body: dict[str, Any] | None) -> list[str]:
    """Per document of a submit body, its ``data_id``, else the file name of its URL."""
    if not body:
        return []
    entries = body.get("files") if isinstance(body.get("files"), list) else [body]
    names = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        url = str(entry.get("url") or entry.get("name") or "")
        names.append(str(entry.get("data_id") or _safe_url(url).rstrip("/").rsplit("/", 1)[-1] or url))
    return names


def _raise_if_answer_lost(error: MinerUError, method: str, path: str | None, body: dict[str, Any] | None) -> None:
    """
    Raise :class:`MinerUAmbiguousSubmitError` instead of re-sending a paid submit whose request was
    sent and whose answer was lost: MinerU may have accepted it, and a retry could pay again.
    """
    if not retry_may_duplicate(method, path, error):
        return
    names = _submitted_names(body)
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    raise MinerUAmbiguousSubmitError(
        f"Submit to {path}: the request was sent but its answer was lost ({error.message}). MinerU may "
        f"have accepted it, so it is not sent again; a retry of the Airflow task submits once more, so "
        f"at most one duplicate task may exist for: {shown or '(unnamed)'}",
        documents=names,
        code=error.code,
        trace_id=error.trace_id,
        http_status=error.http_status,
    ) from error


def _safe_url(url: str) -> str:
    """A URL without its query string (presigned signatures stay out of logs)."""
    return url.split("?", 1)[0]


#: Transport errors that happen before a request is sent: retrying them cannot duplicate anything.
_NOT_SENT_ERRORS = (
    "ConnectTimeout",
    "ConnectionTimeoutError",
    "ClientConnectorError",
    "ConnectionRefused",
    "NewConnectionError",
    "NameResolutionError",
    "Failed to resolve",
    "Name or service not known",
    "nodename nor servname",
)


def _connection_error(exc: BaseException, method: str, what: str, body: dict[str, Any] | None) -> MinerUError:
    """
    Map a transport exception (requests or aiohttp) to a retryable error.

    Unless the connection itself could not be made, the request may have reached MinerU before the
    answer was lost (a reset, a cut-short body, a read time-out): the error is marked ``ambiguous``
    so a retried submit is logged as a possible duplicate.
    """
    name = type(exc).__name__
    text = strip_urls(str(exc))
    request = _safe_url(what)
    if not request.startswith(f"{method} "):  # `what` may already name the method ("POST file-urls/batch")
        request = f"{method} {request}"
    error = MinerUConnectionError(f"{request}: {name}: {text}")
    error.ambiguous = not any(marker in name or marker in text for marker in _NOT_SENT_ERRORS)  # type: ignore[attr-defined]
    return error


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
