"""
The steps of one callback, in order, and the answer each outcome gets.

1. the body's shape (400), 2. the connection's settings, 3. the checksum (403 for every reason,
:mod:`~airflow_provider_mineru.plugins.callbacks.verification`), 4. this worker's memory of accepted
checksums (409), 5. the claim and the asset event in one transaction (409 for a replay, 500 on a
database error, 200 otherwise). The endpoint runs steps 1-3 on the event loop with its cached,
off-pool lookup, and :func:`accept` (4-5) on a thread; :func:`handle_callback` runs them all,
blocking, the way another api-server worker would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from airflow_provider_mineru.callbacks import callback_asset
from airflow_provider_mineru.plugins.callbacks.asset_events import Recorded, event_extra, record_asset_event
from airflow_provider_mineru.plugins.callbacks.credentials import Credentials, connection_credentials
from airflow_provider_mineru.plugins.callbacks.replays import RecentChecksums, ReplayClaims
from airflow_provider_mineru.plugins.callbacks.verification import Answer, Verified, loggable, shape_error, verify

log = logging.getLogger(__name__)

#: ``(conn_id, extra, checksum) -> Recorded``: claim the checksum and record the event, one transaction.
Recorder = Callable[[str, dict[str, Any], str], Recorded]

OK = Answer(200, {"status": "ok"})
REPLAYED = Answer(409, {"detail": "callback already received"})
RETRY_LATER = Answer(500, {"detail": "cannot record the callback, retry later"})


def refuse_shape(conn_id: str, body: bytes) -> Answer | None:
    """The 400 for a body of the wrong shape (the same for every connection id), or None."""
    reason = shape_error(body)
    if reason is None:
        return None
    log.info("MinerU callback for connection %s refused (400): %s", loggable(conn_id), reason)
    return Answer(400, {"detail": reason})


def accept(conn_id: str, verified: Verified, seen: RecentChecksums, record: Recorder) -> Answer:
    """Refuse a replay, then record a verified callback. Blocking (the metadata database)."""
    task_id, checksum = verified.result.task_id, verified.checksum
    if not seen.reserve(checksum):
        log.warning("MinerU callback for connection %s, task %s refused (409): replay", conn_id, task_id)
        return REPLAYED
    extra = event_extra(verified.result)
    try:
        recorded = record(conn_id, extra, checksum)
    except Exception:
        seen.release(checksum)  # nothing was committed, and MinerU retries a 500: let the retry through
        log.exception("MinerU callback for connection %s, task %s: cannot record the asset event", conn_id, task_id)
        return RETRY_LATER
    uri = callback_asset(conn_id).uri
    if recorded is Recorded.REPLAY:
        log.warning(
            "MinerU callback for connection %s, task %s refused (409): replay (seen by another worker or before a "
            "restart)",
            conn_id,
            task_id,
        )
        return REPLAYED
    if recorded is Recorded.EVENT:
        log.info(
            "MinerU callback for connection %s: task %s is %s; asset event recorded on %s",
            conn_id,
            task_id,
            extra["state"],
            uri,
        )
    else:
        log.warning(
            "MinerU callback for connection %s: task %s is %s, but no DAG declares the asset %s "
            "(schedule a DAG on callback_asset(%r)); nothing recorded",
            conn_id,
            task_id,
            extra["state"],
            uri,
            conn_id,
        )
    return OK


def handle_callback(
    conn_id: str,
    body: bytes,
    seen: RecentChecksums,
    *,
    lookup: Callable[[str], Credentials | None] = connection_credentials,
    claims: ReplayClaims | None = None,
) -> Answer:
    """
    Verify and record one callback, blocking (database, secrets): what a worker of the endpoint does.

    :param seen: this worker's memory of accepted checksums.
    :param lookup: ``conn_id -> (uid, secret)`` (default: the Airflow connection).
    :param claims: the replay claims in the metadata database (default: a :class:`ReplayClaims`).
    """
    refused = refuse_shape(conn_id, body)
    if refused is not None:
        return refused
    verified = verify(conn_id, body, lookup(conn_id))
    if isinstance(verified, Answer):
        return verified
    return accept(conn_id, verified, seen, partial(record_asset_event, claims=claims or ReplayClaims()))
