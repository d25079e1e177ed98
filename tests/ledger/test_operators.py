"""
The ledger wired into the real operators, against the emulator (``dag.test()``, both Airflow lines):
a second run pays nothing, a change is paid, ``force``, copies, ``max_attempts_per_document``, the
deferrable path, and a planted entry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mineru.operators.mineru import (
    MinerUSubmitBatchOperator,
    MinerUSubmitTaskOperator,
    MinerUUploadFilesOperator,
)
from tests.helpers import SAMPLES, parse_dag, run_dag, sample_url, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

MODES = [pytest.param(True, id="deferrable"), pytest.param(False, id="blocking")]


def _inbox(tmp_path: Path, *names: str) -> Path:
    inbox = tmp_path / "in"
    inbox.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(SAMPLES / name, inbox / name)
    return inbox


def _paid(emu: Any) -> dict[str, int]:
    """Requests that cost: submits of tasks and batches, upload-URL batches and uploads."""
    return {name: len(emu.requests_to(name)) for name in ("submit_task", "submit_batch", "file_urls", "upload")}


def _upload(emu: Any, capfd: Any, inbox: Path, out: Path, **kwargs: Any) -> tuple[dict[str, Any], str]:
    kwargs.setdefault("deferrable", False)
    dag = parse_dag(MinerUUploadFilesOperator, paths=str(inbox), output_path=str(out), **kwargs)
    states, output = run_dag(dag, capfd)
    assert states["parse"] == "success", output[-4000:]
    return xcom(dag, "parse"), output


def _by_name(value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["file_name"]: row for row in value["results"]}


@pytest.mark.parametrize("deferrable", MODES)
def test_second_run_reuses_everything(mineru_conn, capfd, tmp_path, deferrable):
    inbox, out = _inbox(tmp_path, "invoice.pdf", "research_paper.pdf"), tmp_path / "out"
    first, _ = _upload(mineru_conn, capfd, inbox, out, deferrable=deferrable)
    assert first["counts"] == {"parsed": 2, "reused": 0, "failed": 0, "skipped_attempts": 0, "tombstoned": 0}
    assert all(row["reused"] is False and row["state"] == "done" for row in first["results"])
    paid = _paid(mineru_conn)
    assert paid["file_urls"] == 1 and paid["upload"] == 2

    second, output = _upload(mineru_conn, capfd, inbox, out, deferrable=deferrable)
    assert _paid(mineru_conn) == paid  # no request that costs, no upload
    assert second["counts"] == {"parsed": 0, "reused": 2, "failed": 0, "skipped_attempts": 0, "tombstoned": 0}
    assert second["batch_ids"] == []
    for row in second["results"]:
        assert row["reused"] is True and row["state"] == "done"
        assert row["output_path"] == str(out / Path(row["file_name"]).stem)
        assert (Path(row["output_path"]) / "full.md").is_file()
    assert "invoice.pdf: reused, unchanged since" in output
    assert "0 of 2 inputs are sent to MinerU" in output


def test_changed_content_and_new_files_are_parsed(mineru_conn, capfd, tmp_path):
    inbox, out = _inbox(tmp_path, "invoice.pdf", "research_paper.pdf"), tmp_path / "out"
    _upload(mineru_conn, capfd, inbox, out)
    shutil.copy(SAMPLES / "annual_report.pdf", inbox / "research_paper.pdf")  # other bytes, same name
    shutil.copy(SAMPLES / "scanned_receipt.png", inbox / "scanned_receipt.png")  # new
    before = _paid(mineru_conn)
    value, output = _upload(mineru_conn, capfd, inbox, out)
    assert _paid(mineru_conn)["upload"] - before["upload"] == 2
    rows = _by_name(value)
    assert rows["invoice.pdf"]["reused"] is True
    assert rows["research_paper.pdf"]["reused"] is False and rows["scanned_receipt.png"]["reused"] is False
    assert value["counts"]["parsed"] == 2 and value["counts"]["reused"] == 1
    assert "research_paper.pdf: parsed (content changed)" in output
    assert "scanned_receipt.png: parsed (new)" in output
    # input order is kept
    assert [r["file_name"] for r in value["results"]] == ["invoice.pdf", "research_paper.pdf", "scanned_receipt.png"]


def test_changed_option_and_force_are_parsed(mineru_conn, capfd, tmp_path):
    inbox, out = _inbox(tmp_path, "invoice.pdf"), tmp_path / "out"
    _upload(mineru_conn, capfd, inbox, out)
    value, output = _upload(mineru_conn, capfd, inbox, out, language="en")
    assert value["counts"]["parsed"] == 1
    assert "invoice.pdf: parsed (options changed)" in output
    value, output = _upload(mineru_conn, capfd, inbox, out, language="en", force=True)
    assert value["counts"]["parsed"] == 1
    assert "invoice.pdf: parsed (forced)" in output
    assert _paid(mineru_conn)["upload"] == 3
    value, _ = _upload(mineru_conn, capfd, inbox, out, language="en")
    assert value["counts"]["reused"] == 1


def test_same_bytes_under_a_new_name_are_copied(mineru_conn, capfd, tmp_path):
    inbox, out = _inbox(tmp_path, "invoice.pdf"), tmp_path / "out"
    _upload(mineru_conn, capfd, inbox, out)
    (inbox / "invoice.pdf").rename(inbox / "bill.pdf")
    before = _paid(mineru_conn)
    value, output = _upload(mineru_conn, capfd, inbox, out)
    assert _paid(mineru_conn) == before
    row = _by_name(value)["bill.pdf"]
    assert row["reused"] is True and row["output_path"] == str(out / "bill")
    assert (out / "bill" / "full.md").read_bytes() == (out / "invoice" / "full.md").read_bytes()
    assert (out / "bill" / ".mineru-complete.json").is_file()
    assert "bill.pdf: same content as invoice" in output
    value, _ = _upload(mineru_conn, capfd, inbox, out)  # and it is an ordinary reuse from then on
    assert value["counts"]["reused"] == 1 and _paid(mineru_conn) == before


def test_two_inputs_with_the_same_bytes_pay_once(mineru_conn, capfd, tmp_path):
    inbox, out = _inbox(tmp_path, "invoice.pdf"), tmp_path / "out"
    shutil.copy(SAMPLES / "invoice.pdf", inbox / "copy.pdf")
    value, _ = _upload(mineru_conn, capfd, inbox, out)
    assert _paid(mineru_conn)["upload"] == 1
    rows = _by_name(value)
    assert rows["copy.pdf"]["reused"] is False or rows["invoice.pdf"]["reused"] is False
    assert all((Path(r["output_path"]) / "full.md").is_file() for r in rows.values())


def test_failures_past_max_attempts_are_skipped_until_forced(mineru_conn, capfd, tmp_path):
    inbox, out = _inbox(tmp_path, "invoice.pdf"), tmp_path / "out"
    for _ in range(2):
        mineru_conn.fail_next_tasks("damaged beyond repair")
        value, _ = _upload(mineru_conn, capfd, inbox, out, fail_on_file_error=False, max_attempts_per_document=2)
        assert value["counts"]["failed"] == 1
    value, output = _upload(mineru_conn, capfd, inbox, out, fail_on_file_error=False, max_attempts_per_document=2)
    assert _paid(mineru_conn)["upload"] == 2
    assert value["counts"]["skipped_attempts"] == 1
    row = value["results"][0]
    assert row["state"] == "failed" and row["skipped"] == "max_attempts_per_document"
    assert "skipped, it failed 2 times (last: damaged beyond repair)" in output
    value, output = _upload(mineru_conn, capfd, inbox, out, max_attempts_per_document=2, force=True)
    assert value["counts"]["parsed"] == 1 and _paid(mineru_conn)["upload"] == 3


def test_planted_entry_is_ignored(mineru_conn, capfd, caplog, tmp_path):
    inbox, out = _inbox(tmp_path, "invoice.pdf"), tmp_path / "out"
    _upload(mineru_conn, capfd, inbox, out)
    (entry,) = (out / ".mineru-ledger" / "entries").iterdir()
    data = json.loads(entry.read_text())
    data["mac"] = "0" * 64  # written by hand, or by another account's token
    entry.write_text(json.dumps(data))
    value, output = _upload(mineru_conn, capfd, inbox, out)
    assert value["counts"]["parsed"] == 1 and _paid(mineru_conn)["upload"] == 2
    assert "Ignoring the MinerU ledger entry" in output + caplog.text


def test_incremental_off_pays_every_run(mineru_conn, capfd, tmp_path):
    inbox, out = _inbox(tmp_path, "invoice.pdf"), tmp_path / "out"
    for _ in range(2):
        value, _ = _upload(mineru_conn, capfd, inbox, out, incremental=False)
        assert "counts" not in value
    assert _paid(mineru_conn)["upload"] == 2


def test_bad_max_attempts_is_refused_before_any_request(mineru_conn, capfd, tmp_path):
    inbox = _inbox(tmp_path, "invoice.pdf")
    dag = parse_dag(
        MinerUUploadFilesOperator, paths=str(inbox), output_path=str(tmp_path / "out"), max_attempts_per_document=9
    )
    states, output = run_dag(dag, capfd)
    assert states["parse"] == "failed"
    assert "max_attempts_per_document" in output
    assert sum(_paid(mineru_conn).values()) == 0


@pytest.mark.parametrize("deferrable", MODES)
def test_urls_task_and_batch_reuse(mineru_conn, capfd, tmp_path, deferrable):
    url = sample_url(mineru_conn, "invoice.pdf")
    for _ in range(2):
        dag = parse_dag(MinerUSubmitTaskOperator, url=url, output_path=str(tmp_path / "task"), deferrable=deferrable)
        states, output = run_dag(dag, capfd)
        assert states["parse"] == "success", output[-3000:]
    value = xcom(dag, "parse")
    assert value["reused"] is True and value["state"] == "done"
    assert value["output_path"] == str(tmp_path / "task" / "invoice")
    assert len(mineru_conn.requests_to("submit_task")) == 1

    urls = [url, sample_url(mineru_conn, "research_paper.pdf")]
    for _ in range(2):
        dag = parse_dag(
            MinerUSubmitBatchOperator, urls=urls, output_path=str(tmp_path / "batch"), deferrable=deferrable
        )
        states, output = run_dag(dag, capfd)
        assert states["parse"] == "success", output[-3000:]
    value = xcom(dag, "parse")
    assert value["counts"]["reused"] == 2
    assert len(mineru_conn.requests_to("submit_batch")) == 1


def _race_one(task_id: str, inbox: str, out: str, start: Any, results: Any) -> None:
    """One task instance of the race, in its own process (forked: the emulator stays in the parent)."""
    from types import SimpleNamespace

    class StateStore(dict):  # what Airflow 3.3 gives a task to keep across tries; no database needed
        def set(self, key: str, value: Any) -> None:
            self[key] = value

        def delete(self, key: str) -> None:
            self.pop(key, None)

        def get(self, key: str) -> Any:
            return self[key]

    operator = MinerUUploadFilesOperator(
        task_id=task_id, paths=inbox, output_path=out, deferrable=False, poll_interval=0.05
    )
    ti = SimpleNamespace(
        dag_id="race", run_id="run_1", task_id=task_id, map_index=-1, try_number=1, xcom_push=lambda **_: None
    )
    start.wait()
    try:
        results.put((task_id, operator.execute({"ti": ti, "run_id": "run_1", "task_state_store": StateStore()})))
    except BaseException as exc:
        results.put((task_id, repr(exc)))


def test_two_task_instances_meeting_the_same_new_files_pay_once(mineru_conn, tmp_path):
    """Two task instances (processes) over the same folder at the same moment: each file is uploaded once (claims)."""
    import multiprocessing

    inbox, out = _inbox(tmp_path, "invoice.pdf", "research_paper.pdf"), tmp_path / "out"
    fork = multiprocessing.get_context("fork")
    start, results = fork.Barrier(2), fork.Queue()
    workers = [fork.Process(target=_race_one, args=(name, str(inbox), str(out), start, results)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    values = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(30)
    assert all(isinstance(v, dict) for v in values.values()), values
    assert _paid(mineru_conn)["upload"] == 2  # each file once, not once per task instance
    counts = [values[name]["counts"] for name in ("a", "b")]
    # each file parsed by one instance (whichever claimed it first) and reused by the other, even
    # when each holds a file the other needs (neither waits for the other before sending its own)
    assert sum(c["parsed"] for c in counts) == 2, counts
    assert all(c["parsed"] + c["reused"] == 2 for c in counts), counts
    for value in values.values():
        assert all((Path(row["output_path"]) / "full.md").is_file() for row in value["results"])


def test_documents_have_ids_stable_across_runs(mineru_conn, capfd, tmp_path):
    from airflow_provider_mineru.operators.mineru import MinerUDocumentsOperator
    from tests.helpers import new_dag

    inbox, out = _inbox(tmp_path, "annual_report.pdf"), tmp_path / "out"
    ids = []
    for _ in range(2):
        with new_dag() as dag:
            parse = MinerUUploadFilesOperator(
                task_id="parse", paths=str(inbox), output_path=str(out), poll_interval=0.1, deferrable=False
            )
            MinerUDocumentsOperator(task_id="documents", results=parse.output)
        states, output = run_dag(dag, capfd)
        assert states == {"parse": "success", "documents": "success"}, output[-3000:]
        ids.append([page["metadata"]["document_id"] for page in xcom(dag, "documents")])
    assert xcom(dag, "parse")["counts"]["reused"] == 1
    assert ids[0] == ids[1] and len(set(ids[0])) == 3 and all(len(i) == 32 for i in ids[0])


def test_scoped_sync_tombstones_what_is_gone_within_the_valve(mineru_conn, capfd, caplog, tmp_path):
    import datetime as dt

    inbox, out = _inbox(tmp_path, "invoice.pdf", "research_paper.pdf", "annual_report.pdf"), tmp_path / "out"
    _upload(mineru_conn, capfd, inbox, out, sync="scoped")
    (inbox / "invoice.pdf").unlink()
    value, output = _upload(mineru_conn, capfd, inbox, out, sync="scoped")  # 1 of 3 is over 0.2: refused
    assert value["counts"]["tombstoned"] == 0 and (out / "invoice" / "full.md").is_file()
    assert "more than max_delete_fraction=0.2; nothing is tombstoned" in output + caplog.text
    value, _ = _upload(mineru_conn, capfd, inbox, out, sync="scoped", max_delete_fraction=0.5)
    assert value["counts"] == {"parsed": 0, "reused": 2, "failed": 0, "skipped_attempts": 0, "tombstoned": 1}
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert not (out / "invoice").exists()
    assert (out / ".mineru-tombstones" / day / "invoice" / "full.md").is_file()
    assert _paid(mineru_conn)["upload"] == 3


def test_sync_on_urls_is_a_validation_error(mineru_conn, capfd, tmp_path):
    dag = parse_dag(
        MinerUSubmitBatchOperator,
        urls=[sample_url(mineru_conn, "invoice.pdf")],
        output_path=str(tmp_path),
        sync="scoped",
    )
    states, output = run_dag(dag, capfd)
    assert states["parse"] == "failed"
    assert "sync" in output and "a list of URLs has no listing" in output
    assert sum(_paid(mineru_conn).values()) == 0


def test_scoped_sync_emits_one_asset_event_per_tombstone(mineru_conn, capfd, tmp_path):
    """Through an AssetAlias (DatasetAlias on 2.11) among the outlets: one event per tombstone, its folder in extra."""
    from airflow.providers.common.compat.sdk import Asset, AssetAlias

    from airflow_provider_mineru.ledger.events import tombstone_asset_uri
    from tests.e2e.test_assets import asset_events

    inbox, out = _inbox(tmp_path, "invoice.pdf", "research_paper.pdf", "annual_report.pdf"), tmp_path / "out"
    outlets = [AssetAlias("mineru-tombstones"), Asset(f"file://{out}")]
    _upload(mineru_conn, capfd, inbox, out, sync="scoped", outlets=outlets)
    (inbox / "invoice.pdf").unlink()
    (inbox / "research_paper.pdf").unlink()
    value, _ = _upload(mineru_conn, capfd, inbox, out, sync="scoped", allow_mass_delete=True, outlets=outlets)
    assert value["counts"]["tombstoned"] == 2
    events = asset_events(tombstone_asset_uri(out))
    assert sorted(e["tombstone"] for e in events) == ["invoice", "research_paper"], events
    for event in events:
        assert event["sources"] == [str(inbox / f"{event['tombstone']}.pdf")]
        assert len(event["ledger_keys"]) == 1 and event["moved_to"].endswith(f"/{event['tombstone']}")
        assert event["output_path"] == str(out)
    run_events = asset_events(f"file://{out}")  # the run's own event lists them too
    assert run_events[-1]["tombstones"] == ["invoice", "research_paper"]


def test_claims_of_a_failed_try_are_released_at_once(mineru_conn, capfd, tmp_path):
    """A try that raises after claiming (its upload-URL request refused) leaves no claim for others to wait on."""
    from airflow_provider_mineru.ledger import LedgerKey, LedgerStore
    from mineru_emulator import Fault
    from tests.helpers import TEST_TOKEN

    inbox, out = _inbox(tmp_path, "invoice.pdf"), tmp_path / "out"
    mineru_conn.inject(Fault(endpoint="file_urls", http_status=400, times=20))
    dag = parse_dag(MinerUUploadFilesOperator, paths=str(inbox), output_path=str(out), deferrable=False)
    states, output = run_dag(dag, capfd)
    assert states["parse"] == "failed", output[-3000:]
    assert "this try failed; its 1 claims are released" in output
    store = LedgerStore(out, TEST_TOKEN)
    (plan_file,) = (out / ".mineru-ledger" / "runs").glob("*.json")  # the kept plan names the claimed key
    body, why = store.read_sealed(f".mineru-ledger/runs/{plan_file.name}", "mineru-ledger/run")
    assert body is not None, why
    key = LedgerKey.from_dict(body["items"][0]["key"])
    assert store.claim(key, "another/run/task/-1", 60)  # without the release: held for timeout + 10 minutes
