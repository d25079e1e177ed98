"""An unchanged input is not read again: its sha256 comes from the sealed content index."""

from __future__ import annotations

import io
import json

from airflow_provider_mineru.ledger import ContentIndex, LedgerStore, local_validator, object_validator
from tests.ledger.conftest import TOKEN


class CountingOpener:
    def __init__(self, data: bytes) -> None:
        self.data, self.opened = data, 0

    def __call__(self) -> io.BytesIO:
        self.opened += 1
        return io.BytesIO(self.data)


def test_an_unchanged_validator_skips_the_read_and_a_changed_one_reads_again(tmp_path) -> None:
    store = LedgerStore(tmp_path, TOKEN)
    opener = CountingOpener(b"bytes of a pdf")
    index = ContentIndex(store.files, TOKEN)
    first = index.sha256("s3://b/in/a.pdf", "etag:v1", opener)
    index.flush()
    again = ContentIndex(store.files, TOKEN)  # the next run
    assert again.sha256("s3://b/in/a.pdf", "etag:v1", opener) == first
    assert opener.opened == 1
    opener.data = b"changed"
    assert again.sha256("s3://b/in/a.pdf", "etag:v2", opener) != first
    assert opener.opened == 2
    assert again.sha256("s3://b/in/b.pdf", None, opener)  # no validator: always read
    assert opener.opened == 3


def test_a_re_check_reads_at_most_one_shard_per_sixteenth(tmp_path) -> None:
    store = LedgerStore(tmp_path, TOKEN)
    index = ContentIndex(store.files, TOKEN)
    for i in range(500):
        index.remember(f"/in/{i}.pdf", f"v{i}", "0" * 64)
    index.flush()
    store.files.reads = 0
    again = ContentIndex(store.files, TOKEN)
    assert all(again.lookup(f"/in/{i}.pdf", f"v{i}") for i in range(500))
    assert store.files.reads <= 16


def test_a_foreign_or_edited_index_is_ignored(tmp_path) -> None:
    store = LedgerStore(tmp_path, TOKEN)
    index = ContentIndex(store.files, "another-token")
    index.remember("/in/a.pdf", "v1", "f" * 64)
    index.flush()
    assert ContentIndex(store.files, TOKEN).lookup("/in/a.pdf", "v1") is None
    shard = next((tmp_path / ".mineru-ledger" / "content").iterdir())
    ours = ContentIndex(store.files, TOKEN)
    ours.remember("/in/a.pdf", "v1", "a" * 64)
    ours.flush()
    data = json.loads(shard.read_text())
    data["items"]["/in/a.pdf"][1] = "b" * 64  # point the file at other content
    shard.write_text(json.dumps(data))
    assert ContentIndex(store.files, TOKEN).lookup("/in/a.pdf", "v1") is None


def test_flush_merges_with_what_another_writer_stored(tmp_path) -> None:
    store = LedgerStore(tmp_path, TOKEN)
    one, two = ContentIndex(store.files, TOKEN), ContentIndex(store.files, TOKEN)
    one.lookup("/in/a.pdf", "v")  # both read the shard before either writes
    two.lookup("/in/a.pdf", "v")
    one.remember("/in/a.pdf", "v", "a" * 64)
    one.flush()
    two.remember("/in/q.pdf", "v", "c" * 64)
    two.flush()
    fresh = ContentIndex(store.files, TOKEN)
    assert fresh.lookup("/in/q.pdf", "v") == "c" * 64
    assert fresh.lookup("/in/a.pdf", "v") == "a" * 64


def test_validators(tmp_path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"x")
    first = local_validator(path.stat())
    path.write_bytes(b"xy")
    assert local_validator(path.stat()) != first
    assert object_validator({"ETag": '"abc"', "size": 3}) == "etag:abc"
    assert object_validator({"size": 3, "LastModified": "2026-01-01"}) == "size-mtime:3:2026-01-01"


def test_prefetch_reads_the_needed_shards_together(tmp_path) -> None:
    store = LedgerStore(tmp_path, TOKEN)
    index = ContentIndex(store.files, TOKEN)
    for i in range(100):
        index.remember(f"/in/{i}.pdf", "v", "0" * 64)
    index.flush()
    again = ContentIndex(store.files, TOKEN)
    store.files.reads = 0
    again.prefetch(f"/in/{i}.pdf" for i in range(100))
    reads = store.files.reads
    assert reads <= 16 and all(again.lookup(f"/in/{i}.pdf", "v") for i in range(100))
    assert store.files.reads == reads
