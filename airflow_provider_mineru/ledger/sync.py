"""
Scoped source sync: outputs whose source is gone from a complete listing are tombstoned.

:func:`plan_sync` compares the complete listing of this run's folder, prefix or glob (its
``scope``) with the ledger's outputs read from that scope. An output whose source is missing is
moved to ``<output_path>/.mineru-tombstones/<YYYY-MM-DD>/<folder>/`` and dropped from its entry
(the entry becomes ``deleted`` when no output is left) by :func:`apply_sync`. Two safety rules:

- a failed or partial listing (``Listing.complete`` False) tombstones nothing;
- more than ``max_delete_fraction`` (default 0.2) of the scope's outputs in one run is refused
  unless ``allow_mass_delete=True``: a mistyped prefix or an empty mount lists nothing, and that
  must not look like "everything was deleted".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from airflow_provider_mineru.ledger.entry import EntryState, LedgerEntry
from airflow_provider_mineru.ledger.store import LedgerSnapshot, LedgerStore

__all__ = [
    "DEFAULT_MAX_DELETE_FRACTION",
    "Listing",
    "SyncPlan",
    "Tombstone",
    "TombstoneResult",
    "apply_sync",
    "plan_sync",
]

DEFAULT_MAX_DELETE_FRACTION = 0.2


@dataclass(frozen=True)
class Listing:
    """
    What this run listed.

    :param scope: the folder or prefix listed (``s3://bucket/in/``, ``/data/in``); for a glob, the
        folder it searches (its part before the first wildcard).
    :param sources: every location found there.
    :param complete: False when the listing failed or was cut short: nothing is tombstoned.
    """

    scope: str
    sources: frozenset[str]
    complete: bool = True

    @classmethod
    def of(cls, scope: str, sources: Iterable[str], *, complete: bool = True) -> Listing:
        return cls(scope, frozenset(sources), complete)

    def covers(self, source: str) -> bool:
        """Whether ``source`` lies in this listing's scope."""
        base = self.scope.rstrip("/")
        return source == base or source.startswith(base + "/")


@dataclass(frozen=True)
class Tombstone:
    """One output folder whose sources are all gone, and the entries naming it."""

    folder: str
    sources: tuple[str, ...]
    entries: tuple[LedgerEntry, ...]


@dataclass(frozen=True)
class SyncPlan:
    """
    What a sync would tombstone, or why it refuses.

    :param in_scope: output folders of the scope the ledger knows.
    :param tombstones: those whose sources are gone (empty when refused).
    :param refused: why nothing is tombstoned although sources are gone (None otherwise).
    """

    scope: str
    in_scope: int
    tombstones: tuple[Tombstone, ...]
    refused: str | None = None


def plan_sync(
    listing: Listing,
    snapshot: LedgerSnapshot,
    *,
    max_delete_fraction: float = DEFAULT_MAX_DELETE_FRACTION,
    allow_mass_delete: bool = False,
) -> SyncPlan:
    """The tombstones of ``listing``'s scope, or the refusal (partial listing, too many at once)."""
    folders: dict[str, tuple[set[str], list[LedgerEntry]]] = {}
    for entry in snapshot.entries.values():
        if entry.state is EntryState.DELETED:
            continue
        for output in entry.outputs:
            if listing.covers(output.source):
                sources, entries = folders.setdefault(output.folder, (set(), []))
                sources.add(output.source)
                entries.append(entry)
    gone = tuple(
        Tombstone(folder, tuple(sorted(sources)), tuple(entries))
        for folder, (sources, entries) in sorted(folders.items())
        if not sources & listing.sources
    )
    if not gone:
        return SyncPlan(listing.scope, len(folders), ())
    if not listing.complete:
        return SyncPlan(
            listing.scope,
            len(folders),
            (),
            f"the listing of {listing.scope} failed or is partial; nothing is tombstoned",
        )
    fraction = len(gone) / len(folders)
    if fraction > max_delete_fraction and not allow_mass_delete:
        return SyncPlan(
            listing.scope,
            len(folders),
            (),
            f"{len(gone)} of the {len(folders)} outputs of {listing.scope} ({fraction:.0%}) would be tombstoned, "
            f"more than max_delete_fraction={max_delete_fraction:g}; nothing is tombstoned "
            "(check the path; pass allow_mass_delete=True if the sources really are gone)",
        )
    return SyncPlan(listing.scope, len(folders), gone)


@dataclass(frozen=True)
class TombstoneResult:
    """
    One applied tombstone: the output folder, where it went (None: it was already gone), its
    sources, and the ids and pages of the entries that named it (what its asset event tells).
    """

    folder: str
    moved_to: str | None
    sources: tuple[str, ...]
    ledger_keys: tuple[str, ...] = ()
    pages: int | None = None


def apply_sync(store: LedgerStore, sync: SyncPlan, *, today: dt.date | None = None) -> list[TombstoneResult]:
    """Move each planned tombstone's folder aside and drop it from its entries (one asset event each: ``events.py``)."""
    done: list[TombstoneResult] = []
    for tombstone in sync.tombstones:
        moved_to: str | None = None
        for index, entry in enumerate(tombstone.entries):
            moved = store.tombstone(entry, tombstone.folder, today=today)
            if index == 0:
                moved_to = moved
        keys = tuple(dict.fromkeys(entry.key.id for entry in tombstone.entries))
        pages = next((entry.pages for entry in tombstone.entries if entry.pages is not None), None)
        done.append(TombstoneResult(tombstone.folder, moved_to, tombstone.sources, keys, pages))
    return done
