"""Each slice's outcome, the XCom ``parts`` list and what a retry sends again (``long_documents.parts``)."""

from __future__ import annotations

from airflow_provider_mineru.long_documents.parts import (
    PartResult,
    input_state,
    parts_from_xcom,
    parts_to_xcom,
    slices_to_send,
)
from airflow_provider_mineru.long_documents.plan import plan_slices, replan_smaller

PLAN = plan_slices("report.pdf", 1000, 200)
ERR = "-60010: Parsing failed, please try again later"


def results(failed_index: int | None = None) -> list[PartResult]:
    return [
        PartResult.of(s, "failed", ERR, data_id=f"d{s.index}")
        if s.index == failed_index
        else PartResult.of(s, "done", task_id=f"t{s.index}")
        for s in PLAN.slices
    ]


def test_the_xcom_parts_list():
    rows = parts_to_xcom(reversed(results(failed_index=2)))
    assert [r["page_range"] for r in rows] == ["1-200", "201-400", "401-600", "601-800", "801-1000"]
    assert rows[0] == {"page_range": "1-200", "state": "done", "err_msg": "", "task_id": "t0"}
    assert rows[2] == {"page_range": "401-600", "state": "failed", "err_msg": ERR, "data_id": "d2"}
    assert parts_from_xcom([*rows, {"not": "a part"}]) == sorted(
        results(2), key=lambda p: int(p.page_range.split("-")[0])
    )


def test_a_failed_slice_is_the_only_one_sent_again():
    assert [s.page_ranges for s in slices_to_send(PLAN, results(failed_index=2))] == ["401-600"]
    assert slices_to_send(PLAN, results()) == []
    assert slices_to_send(PLAN, []) == list(PLAN.slices)


def test_a_done_slice_whose_result_is_not_on_disk_is_sent_again():
    landed = ["1-200", "201-400", "601-800", "801-1000"]
    assert [s.page_ranges for s in slices_to_send(PLAN, results(), landed=landed)] == ["401-600"]


def test_after_a_replan_done_slices_keep_their_results():
    plan = plan_slices("r.pdf", 450, 200)
    earlier = [PartResult.of(plan.slices[0], "done"), PartResult.of(plan.slices[2], "done")]
    smaller = replan_smaller(plan, 100)
    assert [s.page_ranges for s in slices_to_send(smaller, earlier)] == ["1-100", "101-200", "201-300", "301-400"]


def test_the_input_state():
    assert input_state(results()) == ("done", "")
    assert input_state(results(failed_index=2), PLAN) == ("failed", f"pages 401-600: {ERR}")
    running = [*results()[:4], PartResult.of(PLAN.slices[4], "running")]
    assert input_state(running, PLAN) == ("running", "")
    assert input_state(results()[:4], PLAN) == ("pending", "")
    # A failure waits for the slices still running: their results are kept too.
    assert input_state([*results(2)[:4], PartResult.of(PLAN.slices[4], "running")], PLAN) == ("running", "")
