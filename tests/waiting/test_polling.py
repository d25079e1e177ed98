"""The poller on its own: what it asks for, when a wait is over, and the outcome it builds."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_mineru.exceptions import MinerUNotFoundError, MinerUTransientError
from airflow_provider_mineru.models import BatchResult, DocumentResult, MinerUState
from airflow_provider_mineru.submission.record import Identity, Submission, SubmittedInput
from airflow_provider_mineru.waiting.events import DONE, ERROR, TIMEOUT, WaitOutcome
from airflow_provider_mineru.waiting.polling import MinerUPoller, poll_once, wait_blocking
from airflow_provider_mineru.waiting.waits import BATCH_WAIT, TASK_WAIT

log = logging.getLogger("test.polling")


def doc(state: str, name: str = "a.pdf", **fields: object) -> DocumentResult:
    return DocumentResult(state=MinerUState(state), raw_state=state, file_name=name, **fields)  # type: ignore[arg-type]


def batch(*documents: DocumentResult) -> BatchResult:
    return BatchResult(batch_id="b", files=tuple(documents))


def test_a_batch_listing_fewer_files_than_sent_is_not_complete():
    poller = MinerUPoller(wait=BATCH_WAIT, ids=["b1"], expected_files=[2])
    poller.record("b1", batch(doc("done")))
    assert not poller.complete and poller.pending_ids() == ["b1"]
    poller.record("b1", batch(doc("done"), doc("failed", "b.pdf", err_msg="bad")))
    assert poller.complete and poller.pending_ids() == []


def test_only_unfinished_batches_are_asked_again():
    poller = MinerUPoller(wait=BATCH_WAIT, ids=["b1", "b2"])
    poller.record("b1", batch(doc("done")))
    poller.record("b2", batch(doc("running")))
    assert poller.pending_ids() == ["b2"]


def test_local_upload_failures_count_as_failed_documents():
    poller = MinerUPoller(wait=BATCH_WAIT, ids=["b1"], failed_files={"b1": {"c.pdf": "disk gone"}})
    poller.record("b1", batch(doc("done"), doc("waiting-file", "c.pdf")))
    assert poller.complete
    failed = [d for d in poller.documents() if d.state is MinerUState.FAILED]
    assert [d.file_name for d in failed] == ["c.pdf"] and "disk gone" in (failed[0].err_msg or "")


def test_slots_pick_each_input_s_latest_submission():
    poller = MinerUPoller(wait=BATCH_WAIT, ids=["old", "new"], slots=[[0, 0], [1, 0]])
    poller.record("old", batch(doc("done", "a.pdf"), doc("failed", "b.pdf")))
    poller.record("new", batch(doc("done", "b.pdf")))
    assert [(i, d.file_name, d.state.value) for i, d in poller.located()] == [
        ("old", "a.pdf", "done"),
        ("new", "b.pdf", "done"),
    ]


def test_a_submission_poller_carries_sizes_failures_and_slots():
    inputs = [SubmittedInput("u", "a.pdf", "a", "f", slot=[0, 0])]
    submission = Submission(
        kind="batch",
        identity=Identity("d", "r", "t"),
        options_fingerprint="o",
        inputs=inputs,
        ids=["b1"],
        expected_files=[1],
        failed_files={"b1": {"a.pdf": "x"}},
    )
    poller = submission.poller(BATCH_WAIT)
    assert (poller.ids, poller.expected_files, poller.failed_files, poller.slots) == (
        ["b1"],
        [1],
        {"b1": {"a.pdf": "x"}},
        [[0, 0]],
    )


def test_outcomes_are_typed_and_round_trip_as_json():
    poller = MinerUPoller(wait=TASK_WAIT, ids=["t1"])
    poller.record("t1", doc("done", task_id="t1"))
    outcome = poller.finished(now=0.0, end_time=1.0)
    assert isinstance(outcome, WaitOutcome) and outcome.status == DONE and outcome.kind == "task"
    assert outcome.batch_of == ("t1",)
    payload = outcome.to_payload()
    assert payload["results"][0]["task_id"] == "t1"
    from airflow_provider_mineru.waiting.events import validate_wait_event

    assert validate_wait_event(payload) == outcome


def test_time_out_says_how_far_each_document_got():
    poller = MinerUPoller(wait=BATCH_WAIT, ids=["b1"])
    poller.record("b1", batch(doc("done"), doc("running", "b.pdf")))
    outcome = poller.finished(now=10.0, end_time=5.0)
    assert outcome is not None and outcome.status == TIMEOUT
    assert "1 of 2 documents finished" in outcome.message and "b.pdf" in outcome.message


def test_a_permanent_error_ends_the_wait_a_transient_one_does_not():
    poller = MinerUPoller(wait=BATCH_WAIT, ids=["b1"])
    assert poller.absorb("b1", MinerUTransientError("busy", code="-60001"), log) is None
    ended = poller.absorb("b1", MinerUNotFoundError("gone", code="-60012"), log)
    assert ended is not None and ended.status == ERROR
    assert ended.error is not None and ended.error["code"] == "-60012"
    assert "polling MinerU batch b1" in ended.error["message"]


def test_poll_once_and_wait_blocking_use_the_fetch_they_are_given():
    answers = iter([batch(doc("running")), batch(doc("done"))])
    asked: list[str] = []

    def fetch(item_id: str) -> BatchResult:
        asked.append(item_id)
        return next(answers)

    poller = MinerUPoller(wait=BATCH_WAIT, ids=["b1"])
    assert poll_once(poller, fetch, end_time=float("inf"), log=log) is None
    outcome = wait_blocking(poller, fetch, poll_interval=0.0, end_time=float("inf"), log=log)
    assert outcome.status == DONE and asked == ["b1", "b1"]


@pytest.mark.parametrize("wait", [TASK_WAIT, BATCH_WAIT])
def test_log_lines_name_the_kind(wait, caplog):
    poller = MinerUPoller(wait=wait, ids=["x1"])
    answer = doc("running", task_id="x1") if wait is TASK_WAIT else batch(doc("running"))
    with caplog.at_level(logging.INFO, logger="test.polling"):
        poller.absorb("x1", answer, log)
    assert caplog.messages and caplog.messages[0].startswith(f"MinerU {wait.name} x1")


def test_a_large_batch_logs_one_summary_line_not_a_line_per_document(caplog):
    """A 10,000-document day logged 10,000 lines in the triggerer: 14.5 CPU s, a 23 s blocked loop."""
    poller = MinerUPoller(wait=BATCH_WAIT, ids=["b1"])
    documents = [doc("done", f"{i}.pdf") for i in range(150)] + [doc("running", f"r{i}.pdf") for i in range(50)]
    with caplog.at_level(logging.INFO, logger="test.polling"):
        poller.absorb("b1", batch(*documents), log)
    assert caplog.messages == ["MinerU batch b1: 200 documents changed state; now 150 done, 50 running"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="test.polling"):
        poller.absorb("b1", batch(*documents[:150], *[doc("done", f"r{i}.pdf") for i in range(50)]), log)
    assert len(caplog.messages) == 51 and caplog.messages[-1].endswith("now 200 done")


def test_in_a_large_batch_each_failure_still_gets_its_line_with_its_error(caplog):
    poller = MinerUPoller(wait=BATCH_WAIT, ids=["b1"])
    documents = [doc("done", f"{i}.pdf") for i in range(40)] + [doc("failed", "bad.pdf", err_msg="encrypted PDF")]
    with caplog.at_level(logging.INFO, logger="test.polling"):
        poller.absorb("b1", batch(*documents), log)
    assert caplog.messages == [
        "MinerU batch b1: bad.pdf: failed — encrypted PDF",
        "MinerU batch b1: 41 documents changed state; now 40 done, 1 failed",
    ]


def test_document_to_dict_is_every_field_in_order():
    """``to_dict`` is spelled out for speed; it must still be ``asdict`` with the state as text."""
    from dataclasses import asdict

    from airflow_provider_mineru.models import ExtractProgress

    document = doc("running", task_id="t", data_id="d", progress=ExtractProgress(1, 3, "2026-01-01 00:00:00"))
    expected = asdict(document)
    expected["state"] = "running"
    assert list(document.to_dict().items()) == list(expected.items())
    assert DocumentResult.from_dict(document.to_dict()) == document
