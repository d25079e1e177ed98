"""
Receive MinerU's callbacks in the Airflow 3 api-server and turn each one into an asset event.

MinerU POSTs ``{"checksum": sha256(uid + seed + content), "content": "<JSON task state>"}`` to the
``callback`` URL of a task when the task ends. This module serves that URL as an Airflow plugin
(a FastAPI sub-application of the api-server, mounted under :data:`CALLBACK_URL_PREFIX`):

``POST /mineru/callback/{conn_id}``

- looks up the ``mineru`` connection ``conn_id`` (unknown, not ``mineru``, or without the ``uid``
  and :data:`CALLBACK_SECRET_EXTRA` extras: **404**);
- checks the body's shape (**400**, **413** over :data:`MAX_BODY_BYTES`), then its checksum with
  the connection's ``uid`` and callback secret (the ``seed`` the task was submitted with), in
  constant time (**403**);
- refuses a checksum it accepted before (**409**; this worker's last :data:`REPLAY_WINDOW`);
- records an asset event on :func:`callback_asset` whose ``extra`` is the task state, and answers
  **200** ``{"status": "ok"}``. When no DAG declares that asset it still answers 200 (MinerU
  must not retry forever) and logs a warning. A database error answers 500, so MinerU retries.

MinerU retries anything but 200 (5 attempts in all), so only a valid callback is ever accepted.
The uid, the secret, the checksum and the body are never logged; the task id and state are.

FastAPI plugins exist from Airflow 3.0 (the api-server). On Airflow 2.11 this module imports and
:class:`MinerUCallbackPlugin` loads, but it serves nothing (its ``fastapi_apps`` is empty).

FastAPI is imported when the first request arrives, not when the module is imported: every Airflow
process that loads plugins (scheduler, workers, triggerer) imports this module, only the
api-server serves it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowPlugin, Asset

from airflow_provider_mineru.callbacks import MinerUCallbackError, callback_checksum, verify_callback
from airflow_provider_mineru.connection_fields import CONN_TYPE, DEFAULT_CONN_ID
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
#: Checksums remembered per api-server worker to refuse replays.
REPLAY_WINDOW = 10_000
#: A callback carries one task state; anything larger is refused before parsing.
MAX_BODY_BYTES = 1024 * 1024
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


def _callback_credentials(conn_id: str) -> tuple[str, str] | None:
    """``(uid, callback secret)`` of a ``mineru`` connection, or None when it cannot take callbacks."""
    # The server-side lookup of airflow-core (environment variables, secrets backends, then the
    # metadata DB), as the api-server itself reads connections; the Task SDK's BaseHook is for workers.
    from airflow.models.connection import Connection
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        log.warning("MinerU callback for connection %s: no such connection", conn_id)
        return None
    if conn.conn_type != CONN_TYPE:
        log.warning("MinerU callback for connection %s: not a %s connection", conn_id, CONN_TYPE)
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
    """Why ``body`` is not ``{"checksum": "<hex>", "content": "<JSON object>"}``, or None."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "the body is not JSON"
    if not isinstance(payload, dict):
        return "the body must be a JSON object with checksum and content"
    checksum, content = payload.get("checksum"), payload.get("content")
    if not isinstance(checksum, str) or not isinstance(content, str):
        return "the body must carry string fields checksum and content"
    try:
        state = json.loads(content)
    except ValueError:
        return "content is not a JSON string"
    if not isinstance(state, dict):
        return "content must be a JSON object (the task state)"
    return None


def handle_callback(
    conn_id: str,
    body: bytes,
    seen: RecentChecksums,
    *,
    lookup: Callable[[str], tuple[str, str] | None] | None = None,
    record: Callable[[str, dict[str, Any]], bool] | None = None,
) -> tuple[int, dict[str, Any]]:
    """
    Verify and record one callback; return ``(HTTP status, JSON answer)``. Blocking (DB, secrets).

    :param lookup: ``conn_id -> (uid, secret)`` (default: the Airflow connection).
    :param record: ``(conn_id, extra) -> recorded`` (default: an asset event in the metadata DB).
    """
    lookup = lookup or _callback_credentials
    record = record or _record_asset_event
    if not _CONN_ID.match(conn_id):
        return 404, {"detail": "unknown connection"}
    credentials = lookup(conn_id)
    if credentials is None:
        return 404, {"detail": "unknown connection, or it does not take MinerU callbacks"}
    shape_error = _shape_error(body)
    if shape_error:
        log.warning("MinerU callback for connection %s refused (400): %s", conn_id, shape_error)
        return 400, {"detail": shape_error}
    uid, secret = credentials
    try:
        result = verify_callback(body, uid=uid, seed=secret)
    except MinerUCallbackError:
        log.warning("MinerU callback for connection %s refused (403): the checksum does not verify", conn_id)
        return 403, {"detail": "checksum does not match sha256(uid + seed + content)"}
    checksum = callback_checksum(uid, secret, json.loads(body)["content"])
    if not seen.reserve(checksum):
        log.warning("MinerU callback for connection %s, task %s refused (409): replay", conn_id, result.task_id)
        return 409, {"detail": "callback already received"}
    extra = event_extra(result)
    try:
        recorded = record(conn_id, extra)
    except Exception:
        seen.release(checksum)  # MinerU retries a 500: let the retry through
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


def create_app(*, replay_window: int = REPLAY_WINDOW, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The FastAPI app with ``POST /callback/{conn_id}`` (Airflow 3; mounted under ``/mineru``)."""
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
        status, answer = await run_in_threadpool(handle_callback, conn_id, body, seen)
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
