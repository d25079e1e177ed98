"""Scoped sync: gone sources are tombstoned; a partial listing or a mass delete tombstones nothing."""

from __future__ import annotations

import datetime as dt

from airflow_provider_mineru.ledger import EntryState, Listing, apply_sync, plan_sync
from airflow_provider_mineru.results.landing import MARKER_NAME
from tests.ledger.conftest import file_key, land

DAY = dt.date(2026, 12, 7)


def _corpus(store, n: int, prefix: str = "/data/in") -> list[str]:
    sources = []
    for i in range(n):
        key = file_key(f"{prefix} {i}".encode())
        folder = f"{prefix.rsplit('/', 1)[-1]}-d{i}"
        land(store.root, folder, f"t{i}-{prefix}")
        store.record_done(key, folder, source=f"{prefix}/d{i}.pdf", name=f"d{i}.pdf")
        sources.append(f"{prefix}/d{i}.pdf")
    return sources


def test_outputs_whose_source_is_gone_are_tombstoned(store) -> None:
    sources = _corpus(store, 10)
    listing = Listing.of("/data/in/", sources[:9])
    sync = plan_sync(listing, store.snapshot())
    assert sync.refused is None and sync.in_scope == 10
    assert [t.folder for t in sync.tombstones] == ["in-d9"]
    [done] = apply_sync(store, sync, today=DAY)
    assert done.moved_to == ".mineru-tombstones/2026-12-07/in-d9" and done.sources == ("/data/in/d9.pdf",)
    assert (store.root / done.moved_to / MARKER_NAME).exists() and not (store.root / "in-d9").exists()
    gone = [e for e in store.snapshot().entries.values() if e.state is EntryState.DELETED]
    assert len(gone) == 1
    assert plan_sync(listing, store.snapshot()).tombstones == ()  # a second run has nothing left to do


def test_more_than_the_fraction_is_refused_unless_allowed(store) -> None:
    sources = _corpus(store, 10)
    listing = Listing.of("/data/in", sources[:7])
    refused = plan_sync(listing, store.snapshot())
    assert refused.tombstones == () and "3 of the 10 outputs" in refused.refused
    assert "allow_mass_delete=True" in refused.refused
    assert len(plan_sync(listing, store.snapshot(), max_delete_fraction=0.3).tombstones) == 3
    assert len(plan_sync(listing, store.snapshot(), allow_mass_delete=True).tombstones) == 3
    empty = plan_sync(Listing.of("/data/in", []), store.snapshot())  # a mistyped prefix or an empty mount
    assert empty.tombstones == () and "10 of the 10" in empty.refused


def test_a_partial_listing_deletes_nothing(store) -> None:
    sources = _corpus(store, 10)
    sync = plan_sync(Listing.of("/data/in", sources[:9], complete=False), store.snapshot(), allow_mass_delete=True)
    assert sync.tombstones == () and "partial" in sync.refused
    assert apply_sync(store, sync) == []
    assert (store.root / "in-d9").exists()


def test_only_the_listed_scope_is_compared(store) -> None:
    _corpus(store, 3, "/data/in")
    other = _corpus(store, 3, "/data/other")
    sync = plan_sync(Listing.of("/data/other", other), store.snapshot())
    assert sync.in_scope == 3 and sync.tombstones == ()
    assert plan_sync(Listing.of("/data/inbox", []), store.snapshot()).in_scope == 0  # a sibling prefix is not in scope


def test_a_renamed_source_keeps_its_new_folder(store) -> None:
    key = file_key(b"bytes")
    land(store.root, "a", "t1")
    entry = store.record_done(key, "a", source="/data/in/a.pdf", name="a.pdf")
    entry = store.copy_result(entry, "a", "b", source="/data/in/b.pdf", name="b.pdf")
    for i in range(8):  # enough others that one tombstone stays under the fraction
        k = file_key(f"o{i}".encode())
        land(store.root, f"o{i}", f"o{i}")
        store.record_done(k, f"o{i}", source=f"/data/in/o{i}.pdf", name=f"o{i}.pdf")
    listing = Listing.of("/data/in", ["/data/in/b.pdf", *[f"/data/in/o{i}.pdf" for i in range(8)]])
    sync = plan_sync(listing, store.snapshot())
    assert [t.folder for t in sync.tombstones] == ["a"]
    apply_sync(store, sync, today=DAY)
    after = store.get(key)
    assert after.state is EntryState.DONE and [o.folder for o in after.outputs] == ["b"]
    assert store.verify(after, "b")
