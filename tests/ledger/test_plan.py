"""Per input: reuse, copy, parse (and why, in a DAG author's words) or skip."""

from __future__ import annotations

from airflow_provider_mineru.ledger import Action, PlanInput, Reason, plan
from tests.ledger.conftest import file_key, land


def _input(name: str, key, folder: str | None = None) -> PlanInput:
    return PlanInput(name=name, source=f"/in/{name}", key=key, folder=folder or name.rsplit(".", 1)[0])


def _done(store, name: str, key, task_id: str = "t1"):
    item = _input(name, key)
    land(store.root, item.folder, task_id)
    return store.record_done(key, item.folder, source=item.source, name=name, task_id=task_id)


def test_new_unchanged_and_forced(store) -> None:
    key = file_key(b"a")
    [first] = plan([_input("a.pdf", key)], store)
    assert (first.action, first.reason) == (Action.PARSE, Reason.NEW)
    assert first.describe() == "a.pdf: parsed (new)"
    _done(store, "a.pdf", key)
    [again] = plan([_input("a.pdf", key)], store)
    assert (again.action, again.reason, again.copy_from) == (Action.REUSE, Reason.UNCHANGED, "a")
    assert not again.pays and "reused" in again.describe()
    [forced] = plan([_input("a.pdf", key)], store, force=True)
    assert (forced.action, forced.reason) == (Action.PARSE, Reason.FORCED)


def test_content_changed_and_options_changed(store) -> None:
    _done(store, "a.pdf", file_key(b"v1"))
    [changed] = plan([_input("a.pdf", file_key(b"v2"))], store)
    assert (changed.action, changed.reason) == (Action.PARSE, Reason.CONTENT_CHANGED)
    assert changed.describe() == "a.pdf: parsed (content changed)"
    [options] = plan([_input("a.pdf", file_key(b"v1", model_version="vlm"))], store)
    assert (options.action, options.reason) == (Action.PARSE, Reason.OPTIONS_CHANGED)


def test_changing_one_percent_parses_exactly_that(store) -> None:
    keys = [file_key(f"doc {i}".encode()) for i in range(100)]
    for i, key in enumerate(keys):
        _done(store, f"d{i}.pdf", key, task_id=f"t{i}")
    inputs = [_input(f"d{i}.pdf", file_key(b"edited") if i == 42 else key) for i, key in enumerate(keys)]
    items = plan(inputs, store)
    assert [i.input.name for i in items if i.pays] == ["d42.pdf"]
    assert sum(i.action is Action.REUSE for i in items) == 99
    all_new = plan([_input(f"d{i}.pdf", file_key(f"doc {i}".encode(), language="en")) for i in range(100)], store)
    assert all(i.pays and i.reason is Reason.OPTIONS_CHANGED for i in all_new)


def test_an_earlier_failure_is_retried_until_the_attempts_are_used(store) -> None:
    key = file_key()
    for _ in range(2):
        store.record_failure(key, source="/in/a.pdf", name="a.pdf", code="-60005", message="broken pdf")
    [retry] = plan([_input("a.pdf", key)], store, max_attempts=3)
    assert (retry.action, retry.reason) == (Action.PARSE, Reason.EARLIER_FAILURE)
    store.record_failure(key, source="/in/a.pdf", name="a.pdf", code="-60005", message="broken pdf")
    [skip] = plan([_input("a.pdf", key)], store, max_attempts=3)
    assert (skip.action, skip.reason) == (Action.SKIP, Reason.ATTEMPTS_EXHAUSTED)
    assert "failed 3 times (last: broken pdf)" in skip.describe()
    [forced] = plan([_input("a.pdf", key)], store, max_attempts=3, force=True)
    assert forced.action is Action.PARSE
    reset = store.record_failure(key, source="/in/a.pdf", name="a.pdf", code="x", message="again", reset=True)
    assert reset.attempts == 1
    assert plan([_input("a.pdf", key)], store, max_attempts=3)[0].action is Action.PARSE


def test_a_copy_or_a_rename_is_copied_not_parsed(store) -> None:
    key = file_key(b"same bytes")
    _done(store, "a.pdf", key)
    [copy] = plan([_input("b.pdf", key)], store)
    assert (copy.action, copy.reason, copy.copy_from) == (Action.COPY, Reason.SAME_CONTENT, "a")
    assert "0 pages" in copy.describe()
    entry = store.copy_result(copy.entry, copy.copy_from, "b", source="/in/b.pdf", name="b.pdf")
    assert (store.root / "b" / "full.md").exists()
    [now] = plan([_input("b.pdf", key)], store)
    assert now.action is Action.REUSE and now.entry == entry


def test_the_same_bytes_twice_in_one_run_are_paid_once(store) -> None:
    key = file_key(b"new")
    first, second = plan([_input("a.pdf", key), _input("copy-of-a.pdf", key)], store)
    assert first.action is Action.PARSE
    assert (second.action, second.after) == (Action.COPY, "a.pdf")


def test_a_result_gone_from_its_folder_is_parsed_again(store) -> None:
    import shutil

    key = file_key()
    _done(store, "a.pdf", key)
    shutil.rmtree(store.root / "a")
    [item] = plan([_input("a.pdf", key)], store)
    assert (item.action, item.reason) == (Action.PARSE, Reason.RESULT_GONE)


def test_a_url_without_validators_is_always_parsed(store) -> None:
    from airflow_provider_mineru.ledger import LedgerKey

    key = LedgerKey.for_url("https://example.com/a.pdf", {}, None, "cloud")
    item = PlanInput("https://example.com/a.pdf", "https://example.com/a.pdf", key, "a")
    land(store.root, "a", "t1")
    store.record_done(key, "a", source=item.source, name=item.name)
    [planned] = plan([item], store)
    assert (planned.action, planned.reason) == (Action.PARSE, Reason.UNVERIFIABLE)


def test_a_tombstoned_result_is_parsed_as_new(store) -> None:
    key = file_key()
    entry = _done(store, "a.pdf", key)
    store.tombstone(entry, "a")
    [item] = plan([_input("a.pdf", key)], store)
    assert (item.action, item.reason) == (Action.PARSE, Reason.NEW)


def test_a_plan_reads_one_entry_per_unchanged_input_and_a_snapshot_none(store) -> None:
    keys = [file_key(f"doc {i}".encode()) for i in range(20)]
    for i, key in enumerate(keys):
        _done(store, f"d{i}.pdf", key, task_id=f"t{i}")
    inputs = [_input(f"d{i}.pdf", key) for i, key in enumerate(keys)]
    store.files.reads = 0
    assert all(item.action is Action.REUSE for item in plan(inputs, store))
    assert store.files.reads == 20
    snapshot = store.snapshot()
    store.files.reads = 0
    changed = [*inputs[:19], _input("d19.pdf", file_key(b"edited"))]
    items = plan(changed, store, snapshot)
    assert store.files.reads == 0
    assert [(i.input.name, i.reason) for i in items if i.pays] == [("d19.pdf", Reason.CONTENT_CHANGED)]


def test_a_new_result_in_a_folder_supersedes_the_old_key(store) -> None:
    old, new = file_key(b"v1"), file_key(b"v2")
    _done(store, "a.pdf", old, task_id="t1")
    _done(store, "a.pdf", new, task_id="t2")
    assert store.get(old).outputs == () and store.get(new).output_folder == "a"
    assert store.previous("/in/a.pdf").key == new
    [back] = plan([_input("a.pdf", old)], store)  # the content went back to v1: its folder holds v2 now
    assert (back.action, back.reason) == (Action.PARSE, Reason.CONTENT_CHANGED)


def test_marker_fingerprints_from_one_listing_replace_a_look_per_folder(store, monkeypatch) -> None:
    import shutil

    keys = [file_key(f"doc {i}".encode()) for i in range(5)]
    for i, key in enumerate(keys):
        _done(store, f"d{i}.pdf", key, task_id=f"t{i}")
    (store.root / ".mineru-tombstones" / "x").mkdir(parents=True)  # dot folders are not outputs
    shutil.rmtree(store.root / "d4")
    markers = store.marker_fingerprints()
    assert sorted(markers) == ["d0", "d1", "d2", "d3"]
    looks = []
    monkeypatch.setattr(store.files, "fingerprint", lambda target: looks.append(target))
    items = plan([_input(f"d{i}.pdf", key) for i, key in enumerate(keys)], store, markers=markers)
    assert [i.action for i in items] == [Action.REUSE] * 4 + [Action.PARSE]
    assert items[4].reason is Reason.RESULT_GONE and looks == []
