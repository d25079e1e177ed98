"""
Receive MinerU's callbacks in the Airflow 3 api-server and turn each one into an asset event.

MinerU POSTs ``{"checksum": sha256(uid + seed + content), "content": "<JSON task state>"}`` to the
``callback`` URL of a task when the task ends. This module serves that URL as an Airflow plugin
(a FastAPI sub-application of the api-server, mounted under :data:`CALLBACK_URL_PREFIX`):

``POST /mineru/callback/{conn_id}``

The endpoint is open (MinerU cannot send Airflow credentials), so an anonymous request costs
little and learns nothing. Cheapest checks first, all before anything is looked up:

- a body over :data:`MAX_BODY_BYTES`: **413**, from the declared length or while streaming;
- a body that is not ``{"checksum": "<str>", "content": "<JSON object as a string>"}`` (not JSON,
  invalid UTF-8, nested too deep, a lone surrogate, not an object): **400**, the same for every
  connection id;
- then the connection's ``uid`` and :data:`CALLBACK_SECRET_EXTRA` from a cache
  (:class:`CredentialCache`, :data:`CREDENTIAL_TTL` seconds), filled by a small dedicated thread
  pool, never the api-server's shared one; too many lookups at once: **503** (MinerU retries);
- an unknown connection id, a connection that is not ``mineru`` or lacks ``uid`` /
  ``callback_secret``, and a checksum that does not verify all get the same **403** (the log says
  which), so the endpoint tells nobody which connections exist;
- a checksum accepted before: **409**; accepted checksums are kept in the metadata database
  (table :data:`REPLAY_TABLE`, created on first use, rows older than :data:`REPLAY_RETENTION`
  deleted), so a replay to another api-server worker or after a restart is refused too;
- otherwise an asset event on :func:`callback_asset` whose ``extra`` is the task state, and
  **200** ``{"status": "ok"}``. When no DAG declares that asset it still answers 200 (MinerU must
  not retry forever) and logs a warning. A database error answers 500, so MinerU retries.

MinerU retries anything but 200 (5 attempts in all), so only a valid callback is ever accepted.
The uid, the secret, the checksum and the body are never logged; the task id and state are.

FastAPI plugins exist from Airflow 3.0 (the api-server). On Airflow 2.11 this module imports and
:class:`MinerUCallbackPlugin` loads, but it serves nothing (its ``fastapi_apps`` is empty).

FastAPI is imported when the first request arrives, not when the module is imported: every Airflow
process that loads plugins (scheduler, workers, triggerer) imports this module, only the
api-server serves it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowPlugin, Asset

from airflow_provider_mineru.connection_form import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_mineru.utils.callback_checksum import MinerUCallbackError, callback_checksum, verify_callback
from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from fastapi import FastAPI

    from airflow_provider_mineru.models import DocumentResult

log = logging.getLogger(__name__)

#: Where the api-server mounts the callback app: ``<api-server>/mineru/callback/<conn_id>``.
CALLBACK_URL_PREFIX = "/mineru"
#: The connection extra holding the callback secret, i.e. the ``seed`` given to the operators.
#: Its name contains ``secret`` so Airflow masks it everywhere (connection form, logs, rendered
#: templates) like a password.
CALLBACK_SECRET_EXTRA = "callback_secret"
#: Checksums remembered per api-server worker (a first, in-memory check before the database's).
REPLAY_WINDOW = 10_000
#: The metadata-database table of accepted checksums (replays refused across workers and restarts).
REPLAY_TABLE = "mineru_callback_checksums"
#: How long an accepted checksum is kept (seconds): 7 days, far past MinerU's retries (minutes).
REPLAY_RETENTION = 7 * 24 * 3600
#: A callback carries one task state; anything larger is refused before parsing.
MAX_BODY_BYTES = 1024 * 1024
#: Seconds a connection's callback settings (or their absence) stay cached by the endpoint.
CREDENTIAL_TTL = 60.0
#: Connections whose settings are cached at once (least recently used forgotten first).
CREDENTIAL_CACHE_SIZE = 1024
#: Threads that look connections up for the endpoint (its own pool, not the api-server's).
LOOKUP_THREADS = 2
#: Lookups queued at once; more answer 503 at once (MinerU retries) instead of queueing.
MAX_PENDING_LOOKUPS = 16
#: The answer to every callback that does not verify, whatever the reason (no existence oracle).
NOT_VERIFIED = {"detail": "the callback does not verify for this connection"}
#: The task-state fields copied into the asset event's ``extra``.
EVENT_FIELDS = ("task_id", "data_id", "state", "full_zip_url", "err_msg")

_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")


def callback_asset(conn_id: str = DEFAULT_CONN_ID) -> Asset:
    """
    The asset the callback endpoint updates for connection ``conn_id``; schedule DAGs on it.

    ``Asset(uri="mineru://callbacks/<conn_id>", name="mineru_callbacks_<conn_id>")``. (On Airflow
    2.11 a ``Dataset`` with that URI, so DAG files import there too; only Airflow 3 serves callbacks.)
    """
    uri = f"mineru://callbacks/{conn_id}"
    if AIRFLOW_V_3_0_PLUS:
        return Asset(uri=uri, name=f"mineru_callbacks_{conn_id}")
    return Asset(uri)  # Airflow 2.11's Dataset has no name


def callback_url(base_url: str, conn_id: str = DEFAULT_CONN_ID) -> str:
    """The ``callback`` URL to give MinerU: ``<base_url>/mineru/callback/<conn_id>``.

    :param base_url: how MinerU reaches the api-server, e.g. ``https://airflow.example.com``
        (with the path prefix a reverse proxy adds, if any).
    """
    return f"{base_url.rstrip('/')}{CALLBACK_URL_PREFIX}/callback/{conn_id}"


def callback_seed_template(conn_id: str = DEFAULT_CONN_ID) -> str:
    """
    A Jinja template for an operator's ``seed=`` that reads the connection's callback secret at run time.

    Reading it through ``extra_dejson`` registers the value with Airflow's secrets masker (the extra's
    name contains ``secret``), so the Rendered Template view and the logs show ``***``.
    """
    return f"{{{{ conn.get({conn_id!r}).extra_dejson.{CALLBACK_SECRET_EXTRA} }}}}"


class RecentChecksums:
    """A bounded, thread-safe set of accepted checksums (oldest forgotten first)."""

    def __init__(self, maxlen: int = REPLAY_WINDOW) -> None:
        self.maxlen = maxlen
        self._items: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def reserve(self, checksum: str) -> bool:
        """Remember ``checksum``; False when it is already remembered (a replay)."""
        with self._lock:
            if checksum in self._items:
                return False
            self._items[checksum] = None
            while len(self._items) > self.maxlen:
                self._items.popitem(last=False)
            return True

    def release(self, checksum: str) -> None:
        """Forget ``checksum`` (its callback could not be recorded, so MinerU's retry must pass)."""
        with self._lock:
            self._items.pop(checksum, None)

    def __contains__(self, checksum: object) -> bool:
        with self._lock:
            return checksum in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class CallbackReplayStore:
    """
    Accepted checksums in the metadata database, shared by every api-server worker and kept across restarts.

    One small table (:data:`REPLAY_TABLE`: ``checksum`` primary key, ``conn_id``, ``received_at``),
    created on first use; the primary key makes a concurrent second claim of one checksum fail.
    Rows older than ``retention`` seconds are deleted, at most every ``purge_every`` seconds.

    :param retention: seconds a checksum is kept.
    :param purge_every: seconds between deletions of old rows (per process).
    """

    def __init__(self, retention: float = REPLAY_RETENTION, purge_every: float = 600.0) -> None:
        self.retention = retention
        self.purge_every = purge_every
        self._table: Any = None
        self._lock = threading.Lock()
        self._last_purge = 0.0

    def table(self) -> Any:
        """The SQLAlchemy table, created in the metadata database when missing."""
        if self._table is not None:
            return self._table
        with self._lock:
            if self._table is None:
                from airflow.utils.session import create_session
                from sqlalchemy import Column, Float, MetaData, String, Table

                table = Table(
                    REPLAY_TABLE,
                    MetaData(),
                    Column("checksum", String(64), primary_key=True),
                    Column("conn_id", String(250), nullable=False),
                    Column("received_at", Float, nullable=False, index=True),
                )
                with create_session() as session:
                    bind = session.get_bind()
                try:
                    table.create(bind, checkfirst=True)
                except Exception:  # another worker created it between the check and the create
                    from sqlalchemy import inspect

                    if not inspect(bind).has_table(REPLAY_TABLE):
                        raise
                self._table = table
        return self._table

    def claim(self, conn_id: str, checksum: str) -> bool:
        """Record ``checksum``; False when some worker recorded it before (a replay)."""
        from airflow.utils.session import create_session
        from sqlalchemy.exc import IntegrityError

        table = self.table()
        now = time.time()
        try:
            with create_session() as session:
                session.execute(table.insert().values(checksum=checksum, conn_id=conn_id, received_at=now))
        except IntegrityError:
            return False
        if now - self._last_purge > self.purge_every:
            self._last_purge = now
            with create_session() as session:
                session.execute(table.delete().where(table.c.received_at < now - self.retention))
        return True

    def release(self, checksum: str) -> None:
        """Forget ``checksum`` (its callback could not be recorded: MinerU's retry must pass)."""
        from airflow.utils.session import create_session

        table = self.table()
        with create_session() as session:
            session.execute(table.delete().where(table.c.checksum == checksum))

    def __contains__(self, checksum: object) -> bool:
        from airflow.utils.session import create_session
        from sqlalchemy import select

        table = self.table()
        with create_session() as session:
            return session.execute(select(table.c.checksum).where(table.c.checksum == checksum)).first() is not None


class LookupsBusyError(Exception):
    """Too many connection lookups are pending: the request is answered 503 at once."""


class CredentialCache:
    """
    ``conn_id -> (uid, secret) | None`` for the endpoint, cached for ``ttl`` seconds.

    Misses are looked up on a dedicated pool of ``threads`` threads (never the api-server's shared
    one), one lookup per connection id at a time; with ``max_pending`` lookups already waiting, a
    miss raises :class:`LookupsBusyError` instead of queueing.

    :param lookup: the blocking lookup (default: the Airflow connection).
    """

    def __init__(
        self,
        lookup: Callable[[str], tuple[str, str] | None] | None = None,
        *,
        ttl: float = CREDENTIAL_TTL,
        maxsize: int = CREDENTIAL_CACHE_SIZE,
        threads: int = LOOKUP_THREADS,
        max_pending: int = MAX_PENDING_LOOKUPS,
    ) -> None:
        self._lookup = lookup or _callback_credentials
        self.ttl = ttl
        self.maxsize = maxsize
        self.max_pending = max_pending
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._entries: OrderedDict[str, tuple[float, tuple[str, str] | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[tuple[str, str] | None]] = {}
        self.lookups = 0

    def clear(self) -> None:
        """Forget every cached setting (the next callback of each connection looks it up again)."""
        self._entries.clear()

    def cached(self, conn_id: str) -> tuple[bool, tuple[str, str] | None]:
        """``(found, value)`` from the cache, without looking anything up."""
        entry = self._entries.get(conn_id)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        self._entries.move_to_end(conn_id)
        return True, entry[1]

    async def get(self, conn_id: str) -> tuple[str, str] | None:
        """The callback settings of ``conn_id`` (None: it cannot take callbacks)."""
        found, value = self.cached(conn_id)
        if found:
            return value
        pending = self._inflight.get(conn_id)
        if pending is None:
            if len(self._inflight) >= self.max_pending:
                raise LookupsBusyError(conn_id)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="mineru-callback-lookup")
            self.lookups += 1
            pending = asyncio.ensure_future(self._fetch(conn_id))
            self._inflight[conn_id] = pending
        return await asyncio.shield(pending)

    async def _fetch(self, conn_id: str) -> tuple[str, str] | None:
        try:
            value = await asyncio.get_running_loop().run_in_executor(self._executor, self._lookup, conn_id)
            self._entries[conn_id] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(conn_id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            return value
        finally:
            self._inflight.pop(conn_id, None)


def _callback_credentials(conn_id: str) -> tuple[str, str] | None:
    """``(uid, callback secret)`` of a ``mineru`` connection, or None when it cannot take callbacks."""
    # The server-side lookup of airflow-core (environment variables, secrets backends, then the
    # metadata DB), as the api-server itself reads connections; the Task SDK's BaseHook is for workers.
    from airflow.models.connection import Connection
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        log.info("MinerU callback for connection %s: no such connection", conn_id)
        return None
    if conn.conn_type != CONN_TYPE:
        log.info("MinerU callback for connection %s: not a %s connection", conn_id, CONN_TYPE)
        return None
    extra = conn.extra_dejson  # masks the sensitive extras (the callback secret) in this process
    uid, secret = extra.get("uid"), extra.get(CALLBACK_SECRET_EXTRA)
    if uid in (None, "") or secret in (None, ""):
        log.warning(
            "MinerU callback for connection %s: set the connection extras uid and %s to accept callbacks",
            conn_id,
            CALLBACK_SECRET_EXTRA,
        )
        return None
    return str(uid), str(secret)


def _record_asset_event(conn_id: str, extra: dict[str, Any]) -> bool:
    """
    Add an asset event on :func:`callback_asset` (``conn_id``), as ``POST /api/v2/assets/events`` does.

    :return: False when no DAG declares the asset (nothing recorded).
    """
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    asset = callback_asset(conn_id)
    with create_session() as session:
        models = session.scalars(select(AssetModel).where(AssetModel.uri == asset.uri)).all()
        if not models:
            return False
        model = next((m for m in models if m.name == asset.name), models[0])
        event = asset_manager.register_asset_change(
            asset=model, extra=extra, source_is_api=True, api_user_teams=set(), session=session
        )
        return event is not None


def _record_asset_event_late(conn_id: str, extra: dict[str, Any]) -> bool:
    """:func:`_record_asset_event`, looked up when called (so it can be replaced at run time)."""
    return _record_asset_event(conn_id, extra)


def event_extra(result: DocumentResult) -> dict[str, Any]:
    """The asset event's ``extra``: the task state MinerU posted (what the download operator takes)."""
    extra: dict[str, Any] = {
        "task_id": result.task_id,
        "data_id": result.data_id,
        "state": result.state.value,
        "full_zip_url": result.full_zip_url,
        "err_msg": result.err_msg,
    }
    if result.file_name:
        extra["file_name"] = result.file_name
    return extra


def _shape_error(body: bytes) -> str | None:
    """
    Why ``body`` is not ``{"checksum": "<hex>", "content": "<JSON object>"}``, or None.

    Never raises: invalid UTF-8, JSON nested too deep and lone surrogates are reasons too.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return "the body is not JSON (or nests too deep)"
    if not isinstance(payload, dict):
        return "the body must be a JSON object with checksum and content"
    checksum, content = payload.get("checksum"), payload.get("content")
    if not isinstance(checksum, str) or not isinstance(content, str):
        return "the body must carry string fields checksum and content"
    if len(checksum) > 128 or not checksum.isascii():
        return "checksum must be a hex SHA-256"
    try:
        content.encode("utf-8")
        state = json.loads(content)
    except UnicodeEncodeError:
        return "content is not valid Unicode (a lone surrogate)"
    except (ValueError, RecursionError):
        return "content is not a JSON string (or nests too deep)"
    if not isinstance(state, dict):
        return "content must be a JSON object (the task state)"
    return None


def _verify(
    conn_id: str, body: bytes, credentials: tuple[str, str] | None
) -> tuple[int, dict[str, Any]] | tuple[DocumentResult, str]:
    """
    The cheap checks (no I/O): ``(status, answer)`` to refuse with, or ``(task state, checksum)``.

    Every reason not to trust the body but its shape (no such connection, no callback settings, a
    wrong checksum) gets the same 403 answer; the log says which.
    """
    if not _CONN_ID.match(conn_id):
        return 403, NOT_VERIFIED
    shape_error = _shape_error(body)
    if shape_error:
        log.info("MinerU callback for connection %s refused (400): %s", conn_id, shape_error)
        return 400, {"detail": shape_error}
    if credentials is None:
        log.info("MinerU callback for connection %s refused (403): the connection cannot take callbacks", conn_id)
        return 403, NOT_VERIFIED
    uid, secret = credentials
    try:
        result = verify_callback(body, uid=uid, seed=secret)
    except MinerUCallbackError:
        log.warning("MinerU callback for connection %s refused (403): the checksum does not verify", conn_id)
        return 403, NOT_VERIFIED
    return result, callback_checksum(uid, secret, json.loads(body)["content"])


def _accept(
    conn_id: str,
    result: DocumentResult,
    checksum: str,
    seen: RecentChecksums,
    *,
    record: Callable[[str, dict[str, Any]], bool],
    store: CallbackReplayStore | None,
) -> tuple[int, dict[str, Any]]:
    """Refuse a replay, then record a verified callback. Blocking (the metadata database)."""
    if not seen.reserve(checksum):
        log.warning("MinerU callback for connection %s, task %s refused (409): replay", conn_id, result.task_id)
        return 409, {"detail": "callback already received"}
    try:
        fresh = store.claim(conn_id, checksum) if store is not None else True
    except Exception:
        seen.release(checksum)
        log.exception("MinerU callback for connection %s, task %s: cannot check for a replay", conn_id, result.task_id)
        return 500, {"detail": "cannot record the callback, retry later"}
    if not fresh:
        log.warning(
            "MinerU callback for connection %s, task %s refused (409): replay (seen by another worker or before a "
            "restart)",
            conn_id,
            result.task_id,
        )
        return 409, {"detail": "callback already received"}
    extra = event_extra(result)
    try:
        recorded = record(conn_id, extra)
    except Exception:
        seen.release(checksum)  # MinerU retries a 500: let the retry through
        if store is not None:
            try:
                store.release(checksum)
            except Exception:
                log.exception("MinerU callback for connection %s: cannot forget the checksum", conn_id)
        log.exception(
            "MinerU callback for connection %s, task %s: cannot record the asset event", conn_id, result.task_id
        )
        return 500, {"detail": "cannot record the callback, retry later"}
    if recorded:
        log.info(
            "MinerU callback for connection %s: task %s is %s; asset event recorded on %s",
            conn_id,
            result.task_id,
            extra["state"],
            callback_asset(conn_id).uri,
        )
    else:
        log.warning(
            "MinerU callback for connection %s: task %s is %s, but no DAG declares the asset %s "
            "(schedule a DAG on callback_asset(%r)); nothing recorded",
            conn_id,
            result.task_id,
            extra["state"],
            callback_asset(conn_id).uri,
            conn_id,
        )
    return 200, {"status": "ok"}


def handle_callback(
    conn_id: str,
    body: bytes,
    seen: RecentChecksums,
    *,
    lookup: Callable[[str], tuple[str, str] | None] | None = None,
    record: Callable[[str, dict[str, Any]], bool] | None = None,
    store: CallbackReplayStore | None = None,
) -> tuple[int, dict[str, Any]]:
    """
    Verify and record one callback; return ``(HTTP status, JSON answer)``. Blocking (DB, secrets).

    The endpoint itself runs the same steps with its cached, off-pool lookup (see :func:`create_app`).

    :param lookup: ``conn_id -> (uid, secret)`` (default: the Airflow connection).
    :param record: ``(conn_id, extra) -> recorded`` (default: an asset event in the metadata DB).
    :param store: the shared replay store (default: none, only ``seen`` is checked).
    """
    lookup = lookup or _callback_credentials
    credentials = lookup(conn_id) if _CONN_ID.match(conn_id) and _shape_error(body) is None else None
    verified = _verify(conn_id, body, credentials)
    if isinstance(verified[0], int):
        return verified  # type: ignore[return-value]
    result, checksum = verified
    return _accept(conn_id, result, checksum, seen, record=record or _record_asset_event, store=store)  # type: ignore[arg-type]


def create_app(
    *,
    replay_window: int = REPLAY_WINDOW,
    max_body_bytes: int = MAX_BODY_BYTES,
    credentials: CredentialCache | None = None,
    store: CallbackReplayStore | None = None,
) -> FastAPI:
    """
    The FastAPI app with ``POST /callback/{conn_id}`` (Airflow 3; mounted under ``/mineru``).

    :param credentials: the connection-settings cache (default: a :class:`CredentialCache`).
    :param store: the replay store in the metadata database (default: a :class:`CallbackReplayStore`).
    """
    if not AIRFLOW_V_3_0_PLUS:
        raise RuntimeError("The MinerU callback endpoint needs Airflow 3 (FastAPI plugins of the api-server)")
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(
        title="MinerU callbacks",
        description="Receives MinerU's task callbacks and records them as asset events.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    seen = RecentChecksums(replay_window)
    app.state.seen_checksums = seen
    cache = credentials or CredentialCache()
    app.state.credentials = cache
    replays = store or CallbackReplayStore()
    app.state.replay_store = replays

    async def read_limited(request: Any) -> bytes | None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def receive_callback(request: Any) -> JSONResponse:
        """MinerU's task callback for the ``mineru`` connection ``conn_id``: 200 only when it verifies."""
        body = await read_limited(request)
        if body is None:
            return JSONResponse({"detail": f"the body is larger than {max_body_bytes} bytes"}, status_code=413)
        conn_id = request.path_params["conn_id"]
        # Unverified work stays cheap and off the api-server's thread pool: shape, cached settings, checksum.
        settings = None
        if _CONN_ID.match(conn_id) and _shape_error(body) is None:
            try:
                settings = await cache.get(conn_id)
            except LookupsBusyError:
                log.warning("MinerU callback for connection %s: too many lookups at once (503)", conn_id)
                return JSONResponse({"detail": "busy, retry later"}, status_code=503)
        verified = _verify(conn_id, body, settings)
        if isinstance(verified[0], int):
            return JSONResponse(verified[1], status_code=verified[0])
        result, checksum = verified
        status, answer = await run_in_threadpool(
            _accept, conn_id, result, checksum, seen, record=_record_asset_event_late, store=replays
        )
        return JSONResponse(answer, status_code=status)

    # A plain Starlette route: the raw body is read here (FastAPI would answer its own 422s).
    app.add_route("/callback/{conn_id}", receive_callback, methods=["POST"], include_in_schema=False)
    return app


_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyCallbackApp:
    """An ASGI app that builds :func:`create_app` at its first request (FastAPI is imported then)."""

    def __init__(self, factory: Callable[[], FastAPI] = create_app) -> None:
        self._factory = factory
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> FastAPI:
        """The FastAPI app, built on first use."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        await self.app(scope, receive, send)


#: The ASGI app the plugin mounts (None on Airflow 2.11).
app: LazyCallbackApp | None = LazyCallbackApp() if AIRFLOW_V_3_0_PLUS else None


class MinerUCallbackPlugin(AirflowPlugin):
    """Serves ``POST <api-server>/mineru/callback/<conn_id>`` for MinerU callbacks (Airflow 3 only)."""

    name = "mineru_callbacks"
    fastapi_apps = (
        [{"app": app, "url_prefix": CALLBACK_URL_PREFIX, "name": "MinerU callbacks"}] if app is not None else []
    )
