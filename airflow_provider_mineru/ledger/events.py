"""
One asset event per tombstone of a scoped sync.

Airflow emits one event per outlet asset and task run; the way to emit several, each with its own
``extra``, is an asset alias (``AssetAlias`` on Airflow 3, ``DatasetAlias`` on 2.11) among the
task's ``outlets``: ``outlet_events[alias].add(asset, extra)``. For every alias among the outlets,
each tombstone of the run becomes one event on the output's tombstone asset
(:func:`tombstone_asset_uri`: ``<output_path>/.mineru-tombstones`` as a URI), whose ``extra`` names
the folder moved, where it went, its sources and ledger keys (downstream deletes the pages by
:func:`~.documents.document_id`). A consumer schedules on that asset or on the alias::

    outlets=[AssetAlias("mineru-tombstones")]          # the producer
    schedule=[AssetAlias("mineru-tombstones")]         # the consumer: one event per tombstone in
                                                      # triggering_asset_events

Airflow records the events only when the task succeeds: a try that fails keeps its tombstones
(:class:`PendingTombstones`, a sealed file per task instance) and the next try emits them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_mineru.ledger.store import LEDGER_DIR, TOMBSTONE_DIR
from airflow_provider_mineru.utils.storage_paths import is_local_location, local_path_text

if TYPE_CHECKING:
    from airflow_provider_mineru.ledger.store import LedgerStore

__all__ = ["TombstoneEvent", "emit_tombstone_events", "tombstone_asset_uri"]

_PENDING = f"{LEDGER_DIR}/runs"
_KIND = "mineru-ledger/tombstones"


@dataclass(frozen=True)
class TombstoneEvent:
    """
    One tombstone of a scoped sync, as its asset event's ``extra`` tells it.

    :param folder: the output folder moved away, relative to ``output_path``.
    :param moved_to: where it went (relative to ``output_path``); None when it was already gone.
    :param sources: the sources gone from the listing (locations as listed).
    :param ledger_keys: the ids of the ledger keys whose output it was (for ``document_id``).
    :param pages: the pages its entry recorded (None when unknown).
    """

    folder: str
    moved_to: str | None
    sources: tuple[str, ...]
    ledger_keys: tuple[str, ...]
    pages: int | None = None

    def extra(self, output_path: str) -> dict[str, Any]:
        """
        The event's ``extra``: hashable values only (Airflow 2.11 groups alias events by ``frozenset(extra)``).

        :param output_path: the operator's ``output_path`` as written.
        """
        return {
            "tombstone": self.folder,
            "output_path": output_path,
            "moved_to": self.moved_to,
            "sources": tuple(self.sources),
            "ledger_keys": tuple(self.ledger_keys),
            "pages": self.pages,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TombstoneEvent:
        """
        The tombstone :class:`PendingTombstones` kept.

        :param raw: one item of the kept file.
        """
        return cls(
            str(raw["folder"]),
            raw.get("moved_to"),
            tuple(str(s) for s in raw.get("sources") or ()),
            tuple(str(k) for k in raw.get("ledger_keys") or ()),
            raw.get("pages"),
        )


def tombstone_asset_uri(output_path: Any) -> str:
    """
    The URI of the asset a scoped sync's tombstone events go to: ``<output_path>/.mineru-tombstones``
    (``file:///abs/out/.mineru-tombstones``, ``s3://bucket/out/.mineru-tombstones``; an Airflow
    connection id in the URL, ``s3://conn@bucket``, is left out).

    :param output_path: the operator's ``output_path`` (text, path or ``ObjectStoragePath``).
    """
    text = str(output_path) if not isinstance(output_path, os.PathLike) else os.fspath(output_path)
    protocol = getattr(output_path, "protocol", None)
    if protocol and "://" not in text:  # an ObjectStoragePath whose str() has no scheme
        protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
        text = f"{protocol}://{text}"
    if is_local_location(text):
        path = os.path.abspath(os.path.expanduser(local_path_text(text)))
        return f"file://{path.rstrip('/')}/{TOMBSTONE_DIR}"
    parts = urlsplit(text)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, f"{parts.path.rstrip('/')}/{TOMBSTONE_DIR}", "", ""))


def _is_alias(outlet: Any) -> bool:
    """An ``AssetAlias`` (Airflow 3) or ``DatasetAlias`` (2.11): the outlets that take per-event assets."""
    return type(outlet).__name__ in ("AssetAlias", "DatasetAlias")


def emit_tombstone_events(
    context: Mapping[str, Any], outlets: Sequence[Any], output_path: Any, tombstones: Sequence[TombstoneEvent]
) -> int:
    """
    Add one asset event per tombstone through every alias among ``outlets``; return how many were added.

    :param context: the task context (its ``outlet_events``).
    :param outlets: the task's outlets; only aliases take per-tombstone events.
    :param output_path: the operator's ``output_path``.
    :param tombstones: this task instance's tombstones.
    """
    aliases = [outlet for outlet in outlets or () if _is_alias(outlet)]
    events = context.get("outlet_events")
    if not tombstones or not aliases or events is None:
        return 0
    # the asset class of this Airflow line; imported when a sync tombstoned something (not at DAG-parse time)
    from airflow.providers.common.compat.sdk import Asset

    asset = Asset(tombstone_asset_uri(output_path))
    where = str(output_path)
    added = 0
    for alias in aliases:
        for tombstone in tombstones:
            events[alias].add(asset, extra=tombstone.extra(where))
            added += 1
    return added


class PendingTombstones:
    """
    The tombstones of one task instance not yet announced by a successful try (a sealed JSON file).

    :param store: the ledger of ``output_path``.
    :param owner: the task instance (``dag/run/task/map_index``): the same across its tries.
    """

    def __init__(self, store: LedgerStore, owner: str) -> None:
        self.store = store
        self.where = f"{_PENDING}/{hashlib.sha256(owner.encode('utf-8')).hexdigest()}.tombstones.json"

    def load(self) -> list[TombstoneEvent]:
        """The tombstones an earlier try made (none when there is no readable file)."""
        body, _ = self.store.read_sealed(self.where, _KIND)
        return [TombstoneEvent.from_dict(raw) for raw in (body or {}).get("tombstones") or ()]

    def save(self, tombstones: Sequence[TombstoneEvent]) -> None:
        """
        Keep ``tombstones`` until a try succeeds (written right after they are moved).

        :param tombstones: every tombstone of this task instance so far.
        """
        self.store.write_sealed(self.where, {"tombstones": [asdict(t) for t in tombstones]}, _KIND)

    def forget(self) -> None:
        """The events are announced (the try succeeds)."""
        self.store.files.delete(self.where)
