"""The ledger on S3 (moto's standalone server): conditional create, claims, trust, the ETag index, tombstones."""

from __future__ import annotations

import threading

from airflow_provider_mineru.ledger import (
    ContentIndex,
    EntryState,
    LedgerStore,
    Listing,
    apply_sync,
    object_validator,
    plan_sync,
)
from airflow_provider_mineru.results.landing import MARKER_NAME
from airflow_provider_mineru.utils.storage_paths import storage_path
from tests.ledger.conftest import TOKEN, file_key, land


def test_s3_create_is_conditional_on_the_server(bucket) -> None:
    store = LedgerStore(bucket.url("out"), TOKEN)
    assert store.atomic_claims
    assert store.files.create("x/claim.json", b"first")
    assert not store.files.create("x/claim.json", b"second")
    assert bucket.read("out/x/claim.json") == b"first"


def _race_on_s3(url: str, key, owners: list[str]) -> dict[str, bool]:
    barrier, results = threading.Barrier(len(owners)), {}

    def run(owner: str) -> None:
        store = LedgerStore(url, TOKEN)
        barrier.wait()
        results[owner] = store.claim(key, owner, ttl=600)

    threads = [threading.Thread(target=run, args=(owner,)) for owner in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_one_of_many_claimers_wins_on_s3(bucket) -> None:
    for round_ in range(3):
        results = _race_on_s3(bucket.url("out"), file_key(f"s3 {round_}".encode()), [f"ti-{i}" for i in range(6)])
        assert list(results.values()).count(True) == 1, results


def test_record_verify_and_stale_on_s3(bucket) -> None:
    store = LedgerStore(bucket.url("out"), TOKEN)
    key = file_key()
    land(store.root, "report", "t1")
    entry = store.record_done(key, "report", source=bucket.url("incoming/report.pdf"), name="report.pdf", task_id="t1")
    assert entry.outputs[0].marker.startswith("etag:")
    assert store.get(key) == entry and store.verify(entry, "report")
    assert LedgerStore(bucket.url("out"), "other").get(key) is None
    land(store.root, "report", "t2", b"other content")
    assert not store.verify(entry, "report")
    bucket.client.delete_object(Bucket=bucket.name, Key=f"out/report/{MARKER_NAME}")
    assert not store.verify(entry, "report")


def test_an_unchanged_object_is_not_read_again(bucket) -> None:
    store = LedgerStore(bucket.url("out"), TOKEN)
    key_name = bucket.keys("incoming/")[0]
    source = storage_path(bucket.url(key_name))
    opened = []

    def open_bytes():
        opened.append(1)
        return source.open("rb")

    validator = object_validator(source.fs.info(source.path))
    index = ContentIndex(store.files, TOKEN)
    digest = index.sha256(str(source), validator, open_bytes)
    index.flush()
    again = ContentIndex(store.files, TOKEN)
    assert again.sha256(str(source), object_validator(source.fs.info(source.path)), open_bytes) == digest
    assert len(opened) == 1
    bucket.client.put_object(Bucket=bucket.name, Key=key_name, Body=b"%PDF-1.4 changed")
    source.fs.invalidate_cache()
    assert again.sha256(str(source), object_validator(source.fs.info(source.path)), open_bytes) != digest
    assert len(opened) == 2


def test_tombstones_and_copies_on_s3(bucket) -> None:
    import datetime as dt

    store = LedgerStore(bucket.url("out"), TOKEN)
    entries = []
    for i in range(5):
        key = file_key(f"doc {i}".encode())
        land(store.root, f"d{i}", f"t{i}")
        entries.append(store.record_done(key, f"d{i}", source=bucket.url(f"incoming/d{i}.pdf"), name=f"d{i}.pdf"))
    copied = store.copy_result(
        entries[0], "d0", "d0-copy", source=bucket.url("incoming/d0-copy.pdf"), name="d0-copy.pdf"
    )
    assert bucket.read("out/d0-copy/full.md") == b"# result" and store.verify(copied, "d0-copy")
    listing = Listing.of(
        bucket.url("incoming/"),
        [bucket.url(f"incoming/d{i}.pdf") for i in range(5)] + [bucket.url("incoming/d0-copy.pdf")],
    )
    assert plan_sync(listing, store.snapshot()).tombstones == ()
    listing = Listing.of(
        bucket.url("incoming/"),
        [bucket.url(f"incoming/d{i}.pdf") for i in range(1, 5)] + [bucket.url("incoming/d0-copy.pdf")],
    )
    sync = plan_sync(listing, store.snapshot())
    [done] = apply_sync(store, sync, today=dt.date(2026, 12, 7))
    assert done.moved_to == ".mineru-tombstones/2026-12-07/d0"
    assert bucket.keys("out/.mineru-tombstones/") == [
        f"out/.mineru-tombstones/2026-12-07/d0/{MARKER_NAME}",
        "out/.mineru-tombstones/2026-12-07/d0/full.md",
    ]
    assert bucket.keys("out/d0/") == []
    after = store.get(entries[0].key)
    assert after.state is EntryState.DONE and [o.folder for o in after.outputs] == ["d0-copy"]


def test_a_re_check_on_s3_reads_one_entry_per_document_and_lists_the_markers_once(bucket, monkeypatch) -> None:
    from airflow_provider_mineru.ledger import Action, PlanInput, plan

    store = LedgerStore(bucket.url("out"), TOKEN)
    inputs = []
    for i in range(6):
        key = file_key(f"doc {i}".encode())
        land(store.root, f"d{i}", f"t{i}")
        store.record_done(key, f"d{i}", source=bucket.url(f"incoming/d{i}.pdf"), name=f"d{i}.pdf")
        inputs.append(PlanInput(f"d{i}.pdf", bucket.url(f"incoming/d{i}.pdf"), key, f"d{i}"))
    fresh = LedgerStore(bucket.url("out"), TOKEN)
    markers = fresh.marker_fingerprints()
    assert sorted(markers) == [f"d{i}" for i in range(6)]
    heads = []
    monkeypatch.setattr(fresh.files, "fingerprint", lambda target: heads.append(target))
    items = plan(inputs, fresh, markers=markers)
    assert all(item.action is Action.REUSE for item in items)
    assert fresh.files.reads == 6 and heads == []
    many = fresh.get_many([inputs[0].key, file_key(b"never recorded"), inputs[1].key])
    assert [bool(e) for e in many.values()] == [True, False, True]
