"""
Refusing a replayed callback: each worker's memory first, then Airflow's own asset state store.

A verified checksum is claimed twice:

- in :class:`RecentChecksums`, the api-server worker's last :data:`REPLAY_WINDOW` checksums, so a
  repeat to the same worker costs no query;
- in the metadata database, as one row of Airflow's ``asset_state_store`` table (Airflow 3.3+) on
  the callback's own asset: key ``mineru_callback_replay:<sha256 of the checksum>``. The table's
  primary key ``(asset_id, key)`` makes a second claim of one checksum fail, on any worker, replica
  or after a restart, and the claim is written in the transaction that records the asset event
  (:mod:`~airflow_provider_mineru.plugins.callbacks.asset_events`): both are committed, or neither.

No table of ours: ``asset_state_store`` is created and migrated by ``airflow db migrate``, and its
rows go with the asset. Claims older than :data:`REPLAY_RETENTION` are deleted (at most every
``purge_every`` seconds per worker). On Airflow 3.0-3.2 (no asset state store) only each worker's
memory refuses replays; ``docs/callbacks.md`` says what that costs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from airflow_provider_mineru.version_compat import AIRFLOW_V_3_3_PLUS

if AIRFLOW_V_3_3_PLUS:  # the asset state store is new in Airflow 3.3
    from airflow.models.asset_state_store import AssetStateStoreModel

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: Checksums remembered per api-server worker (a first, in-memory check before the database's).
REPLAY_WINDOW = 10_000
#: How long a claimed checksum is kept (seconds): 7 days, far past MinerU's retries (minutes).
REPLAY_RETENTION = 7 * 24 * 3600
#: The asset state store keys of the claims (one per accepted callback).
REPLAY_KEY_PREFIX = "mineru_callback_replay:"
#: Whether replays are refused across workers and restarts (the asset state store exists).
SHARED_CLAIMS = AIRFLOW_V_3_3_PLUS


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

    def clear(self) -> None:
        """Forget every checksum (what a restart of the worker does)."""
        with self._lock:
            self._items.clear()

    def __contains__(self, checksum: object) -> bool:
        with self._lock:
            return checksum in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def replay_key(checksum: str) -> str:
    """The asset state store key of a claim: a digest of the checksum, never the checksum itself."""
    return REPLAY_KEY_PREFIX + hashlib.sha256(checksum.encode()).hexdigest()


class ReplayClaims:
    """
    Claims of accepted checksums in Airflow's ``asset_state_store``, inside the caller's transaction.

    :param retention: seconds a claim is kept.
    :param purge_every: seconds between deletions of old claims (per process).
    """

    def __init__(self, retention: float = REPLAY_RETENTION, purge_every: float = 600.0) -> None:
        self.retention = retention
        self.purge_every = purge_every
        self._last_purge: float | None = None

    def claim(self, session: Session, asset_id: int, checksum: str, *, task_id: str, state: str) -> bool:
        """
        Claim ``checksum`` on the asset in ``session``'s transaction; False when it was claimed before.

        On False the transaction is rolled back (the failed insert spoils it on some databases).
        Always True on Airflow 3.0-3.2 (no asset state store: only the workers' memory refuses replays).
        """
        if not SHARED_CLAIMS:
            return True
        now = datetime.now(timezone.utc)
        value = json.dumps({"task_id": task_id, "state": state})
        try:
            session.execute(
                insert(AssetStateStoreModel).values(
                    asset_id=asset_id, key=replay_key(checksum), value=value, updated_at=now
                )
            )
        except IntegrityError:  # the primary key (asset_id, key): claimed before
            session.rollback()
            return False
        if self._last_purge is None or time.monotonic() - self._last_purge > self.purge_every:
            self._last_purge = time.monotonic()
            session.execute(
                delete(AssetStateStoreModel).where(
                    AssetStateStoreModel.key.startswith(REPLAY_KEY_PREFIX, autoescape=True),
                    AssetStateStoreModel.updated_at < now - timedelta(seconds=self.retention),
                )
            )
        return True
