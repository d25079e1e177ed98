"""
The connections' callback settings (``uid``, ``callback_secret``), cached for the endpoint.

A callback is anonymous, so a lookup must stay cheap: settings (and their absence) are cached for
:data:`CREDENTIAL_TTL` seconds, misses are looked up on the endpoint's own small thread pool (never
the api-server's shared one), and when :data:`MAX_PENDING_LOOKUPS` lookups are already waiting a
miss raises :class:`LookupsBusyError` (the endpoint answers 503 at once; MinerU retries).

A connection id Airflow could not hold is never looked up, and every such id shares one cache entry,
so the cache stays bounded whatever ids are posted to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from airflow.models.connection import Connection
from airflow.providers.common.compat.sdk import AirflowNotFoundException

from airflow_provider_mineru.callbacks import CALLBACK_SECRET_EXTRA
from airflow_provider_mineru.connection.form import CONN_TYPE
from airflow_provider_mineru.plugins.callbacks.verification import is_valid_conn_id

log = logging.getLogger(__name__)

#: Seconds a connection's callback settings (or their absence) stay cached by the endpoint.
CREDENTIAL_TTL = 60.0
#: Connections whose settings are cached at once (least recently used forgotten first).
CREDENTIAL_CACHE_SIZE = 1024
#: Threads that look connections up for the endpoint (its own pool, not the api-server's).
LOOKUP_THREADS = 2
#: Lookups queued at once; more answer 503 at once (MinerU retries) instead of queueing.
MAX_PENDING_LOOKUPS = 16

#: The one cache key of every connection id Airflow could not hold (not a valid id itself).
_INVALID_ID = "\x00invalid"

Credentials = tuple[str, str]


class LookupsBusyError(Exception):
    """Too many connection lookups are pending: the request is answered 503 at once."""


def connection_credentials(conn_id: str) -> Credentials | None:
    """``(uid, callback secret)`` of a ``mineru`` connection, or None when it cannot take callbacks."""
    if not is_valid_conn_id(conn_id):
        return None
    # The server-side lookup of airflow-core (environment variables, secrets backends, then the
    # metadata DB), as the api-server itself reads connections; the Task SDK's BaseHook is for workers.
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


class CredentialCache:
    """
    ``conn_id -> (uid, secret) | None`` for the endpoint, cached for ``ttl`` seconds.

    Misses are looked up on a dedicated pool of ``threads`` threads (never the api-server's shared
    one), one lookup per connection id at a time; with ``max_pending`` lookups already waiting, a
    miss raises :class:`LookupsBusyError` instead of queueing.

    :param lookup: the blocking lookup (default: :func:`connection_credentials`).
    """

    def __init__(
        self,
        lookup: Callable[[str], Credentials | None] = connection_credentials,
        *,
        ttl: float = CREDENTIAL_TTL,
        maxsize: int = CREDENTIAL_CACHE_SIZE,
        threads: int = LOOKUP_THREADS,
        max_pending: int = MAX_PENDING_LOOKUPS,
    ) -> None:
        self._lookup = lookup
        self.ttl = ttl
        self.maxsize = maxsize
        self.max_pending = max_pending
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._entries: OrderedDict[str, tuple[float, Credentials | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Credentials | None]] = {}
        self.lookups = 0

    def clear(self) -> None:
        """Forget every cached setting (the next callback of each connection looks it up again)."""
        self._entries.clear()

    def cached(self, conn_id: str) -> tuple[bool, Credentials | None]:
        """``(found, value)`` from the cache, without looking anything up."""
        key = conn_id if is_valid_conn_id(conn_id) else _INVALID_ID
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    async def get(self, conn_id: str) -> Credentials | None:
        """The callback settings of ``conn_id`` (None: it cannot take callbacks)."""
        found, value = self.cached(conn_id)
        if found:
            return value
        key = conn_id if is_valid_conn_id(conn_id) else _INVALID_ID
        pending = self._inflight.get(key)
        if pending is None:
            if len(self._inflight) >= self.max_pending:
                raise LookupsBusyError(key)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="mineru-callback-lookup")
            self.lookups += 1
            pending = asyncio.ensure_future(self._fetch(key))
            self._inflight[key] = pending
        return await asyncio.shield(pending)

    async def _fetch(self, key: str) -> Credentials | None:
        try:
            if key == _INVALID_ID:
                value = None  # never asked of a secrets backend
            else:
                value = await asyncio.get_running_loop().run_in_executor(self._executor, self._lookup, key)
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            return value
        finally:
            self._inflight.pop(key, None)
