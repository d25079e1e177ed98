"""The typed outcome of a wait, and the check of a trigger event before the task trusts it."""

from __future__ import annotations

import pytest

from airflow_provider_mineru.events import WaitOutcome, describe_outcome, outcome_event, validate_wait_event
from airflow_provider_mineru.exceptions import MinerUError, MinerUNotFoundError
from airflow_provider_mineru.models import DocumentResult, MinerUState

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


def test_a_payload_without_ids_takes_the_ones_the_task_waited_on():
    outcome = validate_wait_event({"status": "done", "results": [DOC.to_dict()]}, ["t1"])
    assert outcome.ids == ("t1",) and outcome.documents == (DOC,) and outcome.batch_of == ()


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
