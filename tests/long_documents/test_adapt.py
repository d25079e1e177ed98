"""Re-planning what MinerU refused at a lower page limit (``long_documents/adapt.py``), without Airflow."""

from __future__ import annotations

import logging

from airflow_provider_mineru.long_documents.adapt import carry_sent, replan_refused, slice_url_entries
from airflow_provider_mineru.long_documents.plan import LearnedLimits
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.submission.record import Identity, Submission, SubmittedInput
from airflow_provider_mineru.waiting.waits import WaitedDocuments

REFUSED = "-60006: File page count exceeds limit (200 pages), please split the file and try again"


def doc(state: str, err_msg: str = "") -> DocumentResult:
    return DocumentResult(state=MinerUState(state), raw_state=state, err_msg=err_msg or None)


def test_refused_documents_are_re_cut_at_the_stated_limit_and_done_slices_kept(caplog):
    waited = WaitedDocuments(
        ["b1"],
        [doc("failed", REFUSED), doc("done"), doc("failed", REFUSED), doc("done"), doc("failed", "-60010: other")],
        ["b1"] * 5,
        [
            "/in/book.pdf#mineru-pages=1-600",
            "/in/book.pdf#mineru-pages=601-700",
            "/in/manual.pdf",
            "/in/a.pdf",
            "/in/c.pdf",
        ],
    )
    limits = LearnedLimits(600, 200)
    with caplog.at_level(logging.WARNING):
        replan = replan_refused(waited, limits, {"/in/manual.pdf": 450}.get)
    assert replan is not None and replan.pages_per_file == limits.pages_per_file == 200
    assert [s.page_ranges for s in replan.plans["/in/book.pdf"].slices] == ["1-200", "201-400", "401-600", "601-700"]
    assert [s.page_ranges for s in replan.plans["/in/manual.pdf"].slices] == ["1-200", "201-400", "401-450"]
    assert not replan.plans["/in/a.pdf"].is_split and not replan.plans["/in/c.pdf"].is_split
    assert replan.refused == {"/in/book.pdf#mineru-pages=1-600", "/in/manual.pdf"}
    assert caplog.text.count("using 200 for the rest of this task") == 1


def test_nothing_is_re_planned_when_the_refused_part_is_within_the_stated_limit_or_uncounted():
    """A slice of 200 refused "(200 pages)": page_ranges are not what MinerU counts; cutting it again would not help."""
    waited = WaitedDocuments(
        ["b1"],
        [doc("failed", REFUSED), doc("failed", REFUSED)],
        ["b1", "b1"],
        ["https://x/book.pdf#mineru-pages=1-200", "/in/deck.pptx"],
    )
    assert replan_refused(waited, LearnedLimits(200, 200), lambda _: None) is None


def test_carry_sent_keeps_every_earlier_document_but_the_refused_ones():
    def item(source: str, fingerprint: str, slot: list[int] | None) -> SubmittedInput:
        return SubmittedInput(source, source, source, fingerprint, slot)

    identity = Identity("dag", "task", "run", -1)
    earlier = Submission(
        "batch", identity, "o", [item("a", "fa", [0, 0]), item("m", "fm", [0, 1]), item("f", "ff", [0, 2])], ["b1"], [3]
    )
    current = Submission(
        "batch", identity, "o", [item("a", "fa", None), item("m#1", "fm1", None), item("f", "ff", None)]
    )
    carried = carry_sent(earlier, current, {"m"})
    assert carried.ids == ["b1"] and carried.expected_files == [3]
    assert carried.slots() == [[0, 0], None, [0, 2]]  # the failed "f" is carried, not sent again
    assert carried.unsent() == [1]


def test_a_split_url_becomes_page_ranges_entries_of_the_same_url():
    from airflow_provider_mineru.long_documents.plan import SlicePlan, plan_slices

    plans = {"https://x/book.pdf": plan_slices("book.pdf", 45, 20), "https://x/a.pdf": SlicePlan("a.pdf", None, 20, ())}
    entries, sources = slice_url_entries(
        ["https://x/a.pdf", {"url": "https://x/book.pdf", "is_ocr": True}, "gone"], plans
    )
    assert entries[0] == "https://x/a.pdf"
    assert [(e["page_ranges"], e["data_id"], e["is_ocr"]) for e in entries[1:]] == [
        ("1-20", "book.pages-1-20", True),
        ("21-40", "book.pages-21-40", True),
        ("41-45", "book.pages-41-45", True),
    ]
    assert sources == {
        1: "https://x/book.pdf#mineru-pages=1-20",
        2: "https://x/book.pdf#mineru-pages=21-40",
        3: "https://x/book.pdf#mineru-pages=41-45",
    }
