"""Entries are written after the completion marker only, sealed, and trusted only while their folder holds them."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_mineru.ledger import EntryState, LedgerStore, MinerULedgerError
from airflow_provider_mineru.ledger.store import LEDGER_DIR
from airflow_provider_mineru.results.landing import MARKER_NAME
from tests.ledger.conftest import TOKEN, file_key, land


def _entry_file(store: LedgerStore, key) -> object:
    return store.root / LEDGER_DIR / "entries" / f"{key.id}.json"


def test_no_done_without_the_completion_marker(store) -> None:
    key = file_key()
    (store.root / "report").mkdir(parents=True)
    (store.root / "report" / "full.md").write_bytes(b"half a result")
    with pytest.raises(MinerULedgerError, match="no complete result"):
        store.record_done(key, "report", source="/in/report.pdf", name="report.pdf", task_id="t1")
    assert store.get(key) is None
    assert not _entry_file(store, key).exists()


def test_no_done_when_the_marker_names_another_task(store) -> None:
    land(store.root, "report", "t1")
    with pytest.raises(MinerULedgerError, match="names task t1"):
        store.record_done(file_key(), "report", source="/in/report.pdf", name="report.pdf", task_id="t2")


def test_a_recorded_result_is_read_back_and_verified(store) -> None:
    key = file_key()
    land(store.root, "report", "t1")
    entry = store.record_done(key, "report", source="/in/report.pdf", name="report.pdf", task_id="t1", pages=3)
    assert entry.state is EntryState.DONE and entry.pages == 3 and entry.attempts == 1
    assert entry.identity == {"task_id": "t1", "url": "https://cdn/t1.zip"}
    assert store.get(key) == entry
    assert store.verify(entry, "report")
    stored = json.loads(_entry_file(store, key).read_text())
    assert stored["state"] == "done" and stored["outputs"][0]["folder"] == "report" and stored["mac"]


def test_an_entry_sealed_with_another_token_is_ignored(store, tmp_path, caplog) -> None:
    key = file_key()
    land(store.root, "report", "t1")
    LedgerStore(store.root, "someone-elses-token").record_done(key, "report", source="/in/r.pdf", name="r.pdf")
    with caplog.at_level(logging.WARNING):
        assert store.get(key) is None
    assert "seal does not match" in caplog.text


def test_a_planted_entry_is_ignored(store, caplog) -> None:
    key, other = file_key(b"a"), file_key(b"b")
    land(store.root, "report", "t1")
    store.record_done(key, "report", source="/in/r.pdf", name="r.pdf")
    # A genuine entry copied under another key's name: claims a result for content it is not of.
    path = _entry_file(store, other)
    path.write_bytes(_entry_file(store, key).read_bytes())
    # A hand-edited entry: the seal no longer holds.
    data = json.loads(_entry_file(store, key).read_text())
    data["pages"] = 1
    _entry_file(store, key).write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        assert store.get(other) is None
        assert store.get(key) is None
    assert "another key's name" in caplog.text and "seal does not match" in caplog.text


def test_an_unreadable_entry_is_ignored(store, caplog) -> None:
    key = file_key()
    path = _entry_file(store, key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{not json")
    with caplog.at_level(logging.WARNING):
        assert store.get(key) is None
    assert "not JSON" in caplog.text


def test_a_stale_entry_does_not_verify(store, caplog) -> None:
    key = file_key()
    land(store.root, "report", "t1")
    entry = store.record_done(key, "report", source="/in/r.pdf", name="r.pdf")
    land(store.root, "report", "t9", b"another document")  # the folder now holds another result
    with caplog.at_level(logging.WARNING):
        assert not store.verify(entry, "report")
    assert "stale" in caplog.text
    (store.root / "report" / MARKER_NAME).unlink()
    assert not store.verify(entry, "report")
    assert not store.verify(entry, "elsewhere")


def test_the_same_result_landed_again_still_verifies(store) -> None:
    key = file_key()
    land(store.root, "report", "t1")
    entry = store.record_done(key, "report", source="/in/r.pdf", name="r.pdf")
    land(store.root, "report", "t1")  # a retry landed the same MinerU result: new marker, same identity
    assert store.verify(entry, "report")


def test_failures_count_attempts_and_force_resets_them(store) -> None:
    key = file_key()
    for expected in (1, 2, 3):
        entry = store.record_failure(key, source="/in/r.pdf", name="r.pdf", code="-60005", message="bad file")
        assert entry.attempts == expected and entry.state is EntryState.FAILED
    assert entry.last_error_code == "-60005" and entry.last_error_message == "bad file"
    assert store.record_failure(key, source="/in/r.pdf", name="r.pdf", code="x", message="y", reset=True).attempts == 1


def test_a_copy_lands_the_same_result_in_its_own_folder(store) -> None:
    key = file_key()
    land(store.root, "report", "t1", b"the result")
    entry = store.record_done(key, "report", source="/in/report.pdf", name="report.pdf", task_id="t1")
    copied = store.copy_result(entry, "report", "report-copy", source="/in/report-copy.pdf", name="report-copy.pdf")
    assert (store.root / "report-copy" / "full.md").read_bytes() == b"the result"
    assert (store.root / "report-copy" / MARKER_NAME).exists()
    assert [o.folder for o in copied.outputs] == ["report", "report-copy"]
    assert store.verify(copied, "report-copy") and store.verify(copied, "report")


def test_a_tombstone_moves_the_folder_and_marks_the_entry_deleted(store) -> None:
    import datetime as dt

    key = file_key()
    land(store.root, "report", "t1")
    entry = store.record_done(key, "report", source="/in/report.pdf", name="report.pdf")
    moved = store.tombstone(entry, "report", today=dt.date(2026, 12, 7))
    assert moved == ".mineru-tombstones/2026-12-07/report"
    assert not (store.root / "report").exists()
    assert (store.root / moved / MARKER_NAME).exists()
    assert store.get(key).state is EntryState.DELETED and store.get(key).outputs == ()


def test_an_entry_records_everything_the_issue_names(store) -> None:
    key = file_key()
    land(store.root, "report", "t1")
    entry = store.record_done(
        key, "report", source="/in/r.pdf", name="r.pdf", task_id="t1", batch_id="b1", trace_id="tr", pages=2
    )
    data = entry.to_dict()
    for field in ("key", "state", "attempts", "last_error_code", "last_error_message", "pages", "task_id"):
        assert field in data
    assert (data["batch_id"], data["trace_id"], entry.output_folder, entry.source_name) == (
        "b1",
        "tr",
        "report",
        "r.pdf",
    )
    assert data["first_seen"] and data["last_seen"]
    assert TOKEN not in json.dumps(data)


def test_a_folder_outside_output_path_is_refused(store) -> None:
    land(store.root, "report", "t1")
    entry = store.record_done(file_key(), "report", source="/in/r.pdf", name="r.pdf")
    for bad in ("../elsewhere", "/etc", ".mineru-ledger", "a/../../b", ""):
        with pytest.raises(MinerULedgerError, match="not a result folder"):
            store.record_done(file_key(), bad, source="/in/r.pdf", name="r.pdf")
        with pytest.raises(MinerULedgerError, match="not a result folder"):
            store.copy_result(entry, "report", bad, source="/in/x.pdf", name="x.pdf")


def test_a_failure_after_a_result_keeps_the_result(store) -> None:
    key = file_key()
    land(store.root, "report", "t1")
    store.record_done(key, "report", source="/in/r.pdf", name="r.pdf")
    after = store.record_failure(key, source="/in/r.pdf", name="r.pdf", code="-1", message="a forced re-parse failed")
    assert after.state is EntryState.DONE and after.attempts == 2 and store.verify(after, "report")


def test_max_attempts_is_checked_against_what_mineru_allows() -> None:
    from airflow_provider_mineru.exceptions import MinerUValidationError
    from airflow_provider_mineru.ledger import validate_max_attempts

    assert validate_max_attempts(3) == 3
    for bad in (0, 6, True, "3", 2.5):
        with pytest.raises(MinerUValidationError, match="max_attempts_per_document"):
            validate_max_attempts(bad)
