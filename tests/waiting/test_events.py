"""The typed outcome of a wait, and the check of a trigger event before the task trusts it."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mineru.exceptions import MinerUError, MinerUNotFoundError
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.waiting.events import WaitOutcome, describe_outcome, outcome_event, validate_wait_event

DOC = DocumentResult(state=MinerUState.DONE, raw_state="done", task_id="t1", full_zip_url="https://cdn/x.zip?sig=s")


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        {"status": "finished"},
        {"status": "done", "results": "nope"},
        {"status": "done", "results": [1]},
        "done",
    ],
)
def test_anything_but_a_wait_outcome_is_refused(event):
    with pytest.raises(MinerUError, match="unexpected event from the MinerU trigger"):
        validate_wait_event(event)


def test_an_error_outcome_raises_the_typed_error_it_carries():
    outcome = WaitOutcome.of("error", "task", ["t1"], message="x", error=MinerUNotFoundError("gone", code="-60012"))
    with pytest.raises(MinerUNotFoundError) as raised:
        validate_wait_event(outcome.to_payload())
    assert raised.value.code == "-60012"


def test_the_outcome_crosses_the_deferral_whole():
    outcome = WaitOutcome.of("done", "task", ["t1"], [("t1", DOC)], sources=["https://h/invoice.pdf"])
    assert outcome.to_payload()["sources"] == ["https://h/invoice.pdf"]
    again = validate_wait_event(json.loads(json.dumps(outcome.to_payload())))
    assert again == outcome
    assert again.waited().source_at(0) == "https://h/invoice.pdf" and again.waited().batch_at(0) == "t1"


@pytest.mark.parametrize(
    "change",
    [
        {"ids": None},  # every field the outcome writes is required
        {"sources": None},
        {"batch_of": []},  # one per document
        {"kind": "dataset"},
        {"ids": [1]},
    ],
)
def test_a_payload_missing_or_mistyping_a_field_is_refused(change):
    payload = {**WaitOutcome.of("done", "task", ["t1"], [("t1", DOC)]).to_payload(), **change}
    with pytest.raises(MinerUError, match="unexpected event from the MinerU trigger"):
        validate_wait_event(payload)


def test_timeout_outcome_gives_the_error_to_raise_after_saving():
    outcome = WaitOutcome.of("timeout", "batch", ["b1"], message="1 of 2 documents finished")
    error = outcome.timeout_error()
    assert error is not None and "1 of 2" in str(error)
    assert WaitOutcome.of("done", "batch", ["b1"]).timeout_error() is None


def test_the_event_logs_one_short_line_without_result_urls():
    outcome = WaitOutcome.of("done", "task", ["t1"], [("t1", DOC)])
    event = outcome_event(outcome)
    assert event.payload == outcome.to_payload()
    assert repr(event) == "TriggerEvent<MinerU task wait done: 1 document, 1 done (task t1)>"
    assert "sig=" not in describe_outcome(event.payload)
