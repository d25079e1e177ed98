"""
The FastAPI app the api-server mounts under ``/mineru``: ``POST /callback/{conn_id}``.

The endpoint is open (MinerU cannot send Airflow credentials), so an anonymous request costs little
and learns nothing. Cheapest checks first, on the event loop:

- a body over :data:`MAX_BODY_BYTES`: **413**, from the declared length or while streaming;
- a body of the wrong shape: **400**, the same for every connection id;
- the connection's settings from the
  :class:`~airflow_provider_mineru.plugins.callbacks.credentials.CredentialCache`; too many lookups
  at once: **503** (MinerU retries);
- the checksum, in constant time: **403**, one answer for every reason;

then, on a thread (the metadata database), a replay: **409**, or the asset event and **200**
(a database error: **500**, MinerU retries). See
:mod:`~airflow_provider_mineru.plugins.callbacks.handling` for the steps.

Imported only when the api-server serves the first callback (Airflow 3); on Airflow 2.11 it imports
and :func:`create_app` refuses.
"""

from __future__ import annotations

import logging
from functools import partial

from airflow_provider_mineru.plugins.callbacks import replays
from airflow_provider_mineru.plugins.callbacks.asset_events import record_asset_event
from airflow_provider_mineru.plugins.callbacks.credentials import CredentialCache, LookupsBusyError
from airflow_provider_mineru.plugins.callbacks.handling import Recorder, accept, refuse_shape
from airflow_provider_mineru.plugins.callbacks.replays import REPLAY_WINDOW, RecentChecksums, ReplayClaims
from airflow_provider_mineru.plugins.callbacks.verification import Answer, loggable, verify
from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

if AIRFLOW_V_3_0_PLUS:  # FastAPI comes with Airflow 3's api-server; Airflow 2.11 has none
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request

log = logging.getLogger(__name__)

#: A callback carries one task state; anything larger is refused before parsing.
MAX_BODY_BYTES = 1024 * 1024


async def read_limited(request: Request, max_bytes: int) -> bytes | None:
    """The request's body, or None once it is (or declares to be) larger than ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    *,
    replay_window: int = REPLAY_WINDOW,
    max_body_bytes: int = MAX_BODY_BYTES,
    credentials: CredentialCache | None = None,
    claims: ReplayClaims | None = None,
) -> FastAPI:
    """
    The FastAPI app with ``POST /callback/{conn_id}`` (Airflow 3; mounted under ``/mineru``).

    Its state holds what a test or an operator may look at: ``seen_checksums`` (this worker's memory)
    and ``credentials`` (the settings cache).

    :param credentials: the connection-settings cache (default: a :class:`CredentialCache`).
    :param claims: the replay claims in the metadata database (default: a :class:`ReplayClaims`).
    """
    if not AIRFLOW_V_3_0_PLUS:
        raise RuntimeError("The MinerU callback endpoint needs Airflow 3 (FastAPI plugins of the api-server)")
    if not replays.SHARED_CLAIMS:
        log.warning(
            "MinerU callbacks: Airflow before 3.3 has no asset state store, so each api-server worker refuses "
            "only the replays it saw itself (see docs/callbacks.md)"
        )
    app = FastAPI(
        title="MinerU callbacks",
        description="Receives MinerU's task callbacks and records them as asset events.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.seen_checksums = seen = RecentChecksums(replay_window)
    app.state.credentials = cache = credentials or CredentialCache()
    record: Recorder = partial(record_asset_event, claims=claims or ReplayClaims())

    async def receive_callback(request: Request) -> JSONResponse:
        """MinerU's task callback for the ``mineru`` connection ``conn_id``: 200 only when it verifies."""
        body = await read_limited(request, max_body_bytes)
        if body is None:
            return JSONResponse({"detail": f"the body is larger than {max_body_bytes} bytes"}, status_code=413)
        conn_id = request.path_params["conn_id"]
        # Unverified work stays cheap and off the api-server's thread pool: shape, cached settings, checksum.
        answer = refuse_shape(conn_id, body)
        if answer is None:
            try:
                settings = await cache.get(conn_id)
            except LookupsBusyError:
                log.warning("MinerU callback for connection %s: too many lookups at once (503)", loggable(conn_id))
                return JSONResponse({"detail": "busy, retry later"}, status_code=503)
            verified = verify(conn_id, body, settings)
            if isinstance(verified, Answer):
                answer = verified
            else:
                answer = await run_in_threadpool(accept, conn_id, verified, seen, record)
        return JSONResponse(answer.body, status_code=answer.status)

    # A plain Starlette route: the raw body is read here (FastAPI would answer its own 422s).
    app.add_route("/callback/{conn_id}", receive_callback, methods=["POST"], include_in_schema=False)
    return app
