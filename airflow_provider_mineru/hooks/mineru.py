"""
MinerUHook: every MinerU API endpoint, synchronous for operators and asynchronous for triggers.

Every endpoint is handed to the API client of the connection's ``api_flavor``
(:mod:`airflow_provider_mineru.clients`, found in its registry), with the connection's
:class:`~airflow_provider_mineru.transport.Transport`: the only code that talks HTTP (sessions, the
whole-request deadline, no redirects, bounded reads, retries, the lost-answer rule), with a sync
face for operators and an async one for triggers. This module reads the connection and keeps the
public API: the endpoints, uploads, downloads and the connection Test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from airflow.providers.common.compat import connection as compat

from airflow_provider_mineru.account.limits import AccountLimits
from airflow_provider_mineru.account.pacing import WaitPacing, pacing_for, wait_pacing
from airflow_provider_mineru.account.timings import TransitionTimes
from airflow_provider_mineru.clients import client_class
from airflow_provider_mineru.clients.v4_wire import ParseOptions
from airflow_provider_mineru.connection.config import MinerUConnectionConfig, token_expiry_warning
from airflow_provider_mineru.connection.form import CONN_FIELDS, CONN_TYPE, DEFAULT_CONN_ID, UI_FIELD_BEHAVIOUR
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.inputs.sources import SourceFile, resolve_sources
from airflow_provider_mineru.models import BatchResult, DocumentResult, UploadGrant
from airflow_provider_mineru.transport import UNPACED, Transport
from airflow_provider_mineru.utils.bounded_http import check_answer_url
from airflow_provider_mineru.version_compat import BaseHook, mask_secret

if TYPE_CHECKING:
    import aiohttp
    from typing_extensions import Unpack

    from airflow_provider_mineru.clients import MinerUClient
    from airflow_provider_mineru.utils.safe_zip import ExtractedResult, ZipLimits


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
    :data:`~airflow_provider_mineru.connection.form.CONN_FIELDS`).

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
        self._client: MinerUClient | None = None
        self._transport: Transport | None = None
        self._account_limits: AccountLimits | None = None
        self._paced_extra: dict[str, Any] = {}

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
        # Here, not at the top: FAB and WTForms exist only where the 2.x/3.0-3.1 webserver runs.
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, PasswordField, StringField

        # lazy: FAB and WTForms exist only in the Airflow 2 webserver, which alone calls this
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

    def _register(self, conn: Any, extra: dict[str, Any] | None = None) -> MinerUConnectionConfig:
        extra = dict(conn.extra_dejson if extra is None else extra)
        default_path = client_class(extra.get("api_flavor")).default_path
        config = MinerUConnectionConfig.from_connection(conn, extra, default_path=default_path)
        self._account_limits = AccountLimits.from_extra(extra)  # budgets, rates, store: named errors
        self._paced_extra = extra
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
            self._register(conn)
        assert self._config is not None
        return self._config

    async def aget_config(self) -> MinerUConnectionConfig:
        """The parsed connection, fetched without blocking the event loop (for triggers)."""
        if self._config is None:
            conn = await compat.get_async_connection(self.mineru_conn_id, self)
            get_extra = getattr(compat, "get_async_extra_dejson", None)  # common-compat 1.23+
            extra = conn.extra_dejson if get_extra is None else await get_extra(conn)
            self._register(conn, extra)
        assert self._config is not None
        return self._config

    @property
    def account_limits(self) -> AccountLimits:
        """The connection's account limits: daily budgets, request rates, the account store."""
        _ = self.config  # reads the connection once
        assert self._account_limits is not None
        return self._account_limits

    async def await_pacing(self) -> WaitPacing:
        """How a trigger's wait on this connection shares the triggerer's polls (see :class:`WaitPacing`)."""
        config = await self.aget_config()
        assert self._account_limits is not None
        # In a thread: the first call makes the process's account store, and an s3:// store reads its AWS
        # connection synchronously (in the triggerer's event loop that deadlocks on Airflow 3: measured).
        return await asyncio.to_thread(
            wait_pacing, self.mineru_conn_id, config.api_flavor, self._account_limits, self._paced_extra
        )

    def state_watcher(self, *, submitted_at: float | None, model: str | None = None) -> TransitionTimes:
        """
        What a poller tells of each state change, to send queue and parse times (``mineru.queue_time``,
        ``mineru.parse_time``).

        :param submitted_at: when the documents were submitted (None: not known where this wait runs).
        :param model: the ``model_version`` (a metric tag).
        """
        return TransitionTimes(
            self.mineru_conn_id, flavor=self.config.api_flavor, model=model or "default", submitted_at=submitted_at
        )

    @property
    def client(self) -> MinerUClient:
        """The API client of the connection's ``api_flavor`` (see :mod:`airflow_provider_mineru.clients`)."""
        return self._client_for(self.config)

    async def aclient(self) -> MinerUClient:
        """:attr:`client`, with the connection fetched without blocking the event loop."""
        return self._client_for(await self.aget_config())

    def _client_for(self, config: MinerUConnectionConfig) -> MinerUClient:
        if self._client is None or self._client.flavor != config.api_flavor:
            self._client = client_class(config.api_flavor)()
        return self._client

    @property
    def transport(self) -> Transport:
        """The connection's :class:`~airflow_provider_mineru.transport.Transport` (made once per hook)."""
        return self._transport_for(self.config)

    async def atransport(self) -> Transport:
        """:attr:`transport`, with the connection fetched without blocking the event loop."""
        return self._transport_for(await self.aget_config())

    def _transport_for(self, config: MinerUConnectionConfig) -> Transport:
        if self._transport is None or self._transport.config is not config:
            limits = self._account_limits  # read with the config (None: a config handed in, not read)
            pacing = (
                UNPACED
                if limits is None
                else pacing_for(
                    self.mineru_conn_id,
                    config.api_flavor,
                    limits,
                    self._paced_extra,
                    self.log,
                    max_penalty=config.retry.max_retry_after,
                )
            )
            self._transport = Transport(config, conn_id=self.mineru_conn_id, log=self.log, pacing=pacing)
        return self._transport

    @property
    def base_url(self) -> str:
        """The connection's base URL, with its path (``https://mineru.net/api/v4``)."""
        return self.config.base_url

    # -- sessions -------------------------------------------------------------------------------

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> Any:
        """The authenticated ``requests`` session (shared by every call of this hook)."""
        return self.transport.sync.api_session

    @contextlib.asynccontextmanager
    async def async_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """
        Hold the event loop's shared ``aiohttp`` session while inside the block.

        Every trigger of a triggerer shares one session and one bounded connection pool; the
        session closes when the last holder leaves.
        """
        # Here, not at the top: aiohttp costs 0.36-0.63 s to import and workers never use it (the
        # triggerer has imported it already).
        from airflow_provider_mineru.transport.aio import SHARED_SESSIONS

        async with SHARED_SESSIONS.held() as session:
            yield session

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
        return self.client.submit_task(
            self.transport, url, parse_options(options), data_id=data_id, page_ranges=page_ranges
        )

    async def asubmit_task(
        self,
        url: str,
        *,
        data_id: str | None = None,
        page_ranges: str | None = None,
        **options: Unpack[ParseOptionKwargs],
    ) -> str:
        """Async :meth:`submit_task`."""
        client, transport = await self.aclient(), await self.atransport()
        return await client.asubmit_task(
            transport, url, parse_options(options), data_id=data_id, page_ranges=page_ranges
        )

    def get_task(self, task_id: str) -> DocumentResult:
        """State of one task (``GET /extract/task/{task_id}``), with progress while running."""
        return self.client.get_task(self.transport, task_id)

    async def aget_task(self, task_id: str) -> DocumentResult:
        """Async :meth:`get_task`."""
        return await (await self.aclient()).aget_task(await self.atransport(), task_id)

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
        return self.client.request_upload_urls(self.transport, files, parse_options(options))

    async def arequest_upload_urls(
        self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]
    ) -> UploadGrant:
        """Async :meth:`request_upload_urls`."""
        return await (await self.aclient()).arequest_upload_urls(await self.atransport(), files, parse_options(options))

    def submit_batch(self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]) -> str:
        """
        Submit many document URLs in one batch (``POST /extract/task/batch``) and return the ``batch_id``.

        :param files: URLs, or dicts ``{"url", "is_ocr", "data_id", "page_ranges"}``; at most the
            connection's ``max_batch_files`` (200). With ``api_flavor="mineru-api"`` the files must fit
            one V1 task (at most 100, one ``is_ocr``); the operator splits larger lists itself.
        """
        return self.client.submit_batch(self.transport, files, parse_options(options))

    async def asubmit_batch(
        self, files: Sequence[str | Mapping[str, Any]], **options: Unpack[ParseOptionKwargs]
    ) -> str:
        """Async :meth:`submit_batch`."""
        return await (await self.aclient()).asubmit_batch(await self.atransport(), files, parse_options(options))

    def get_batch(self, batch_id: str) -> BatchResult:
        """State of every file of a batch (``GET /extract-results/batch/{batch_id}``), in submission order."""
        return self.client.get_batch(self.transport, batch_id)

    async def aget_batch(self, batch_id: str) -> BatchResult:
        """Async :meth:`get_batch`."""
        return await (await self.aclient()).aget_batch(await self.atransport(), batch_id)

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
        :param source: a :class:`~airflow_provider_mineru.inputs.sources.SourceFile`, a local path, an
            object-storage URL or an ``ObjectStoragePath``.
        :return: bytes sent.
        """
        check_answer_url(upload_url, "upload URL")
        if not isinstance(source, SourceFile):
            source = resolve_sources([source], self.config.limits)[0]
        return self.transport.upload(upload_url, source)

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
        limit = self.config.limits.max_result_bytes if max_bytes is None else max_bytes
        return self.transport.download(full_zip_url, Path(destination), max_bytes=limit)

    def download_and_extract(
        self, full_zip_url: str, target: Any, *, limits: ZipLimits | None = None
    ) -> ExtractedResult:
        """
        Download a result zip to a temporary file and extract it safely into ``target``.

        :param target: a local folder or any object-storage path (``ObjectStoragePath``, ``s3://…``).
        :param limits: zip-bomb limits; defaults to :class:`~airflow_provider_mineru.utils.safe_zip.ZipLimits`.
        """
        return self.client.download_and_extract(self.transport, full_zip_url, target, limits=limits)

    # -- connection test -------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """
        The connection form's Test: one request for a made-up task id (no quota), answered in seconds.

        Only MinerU's own answer proves the token (``-60012``, task not found); a plain 404 means
        there is no MinerU API at the base URL. Invalid extras are reported by field and rule. See
        :func:`~airflow_provider_mineru.clients.cloud_check.check_connection`; also reports when the token
        (a JWT) expires within 14 days. For ``api_flavor="mineru-api"``: the server's version
        (``GET /v1/health``) and its API key.
        """
        try:
            client = self.client
        except MinerUValidationError as exc:
            return False, f"The connection is not valid: {exc.message}."
        except Exception as exc:
            return False, f"The connection cannot be read: {type(exc).__name__}: {exc}"
        return client.test_connection(self.transport)
