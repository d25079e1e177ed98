"""Slicing rules, learned limits and the sentences for documents that are not split (``long_documents.plan``)."""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_mineru.exceptions import MinerUCannotSplitError, MinerUInvalidRequestError
from airflow_provider_mineru.long_documents.plan import (
    LearnedLimits,
    PageSlice,
    cannot_split_message,
    plan_document,
    plan_slices,
    replan_smaller,
    request_groups,
    stated_limit,
    uncountable_refusal_message,
)


def test_a_1000_page_document_at_200_is_five_slices_numbered_like_page_ranges():
    plan = plan_slices("report.pdf", 1000, 200)
    assert plan.is_split
    assert [s.page_ranges for s in plan.slices] == ["1-200", "201-400", "401-600", "601-800", "801-1000"]
    assert [s.index for s in plan.slices] == [0, 1, 2, 3, 4]
    assert [s.page_offset for s in plan.slices] == [0, 200, 400, 600, 800]
    assert plan.slices[1].folder_name == "1-201-400"


def test_the_last_slice_takes_the_rest_and_a_short_document_is_one_slice():
    assert [s.pages for s in plan_slices("a.pdf", 450, 200).slices] == [200, 200, 50]
    plan = plan_slices("a.pdf", 200, 200)
    assert not plan.is_split
    assert plan.slices == (PageSlice(0, 1, 200),)


@given(st.integers(1, 5000), st.integers(1, 700))
def test_slices_cover_every_page_once_in_order(total, max_pages):
    plan = plan_slices("x.pdf", total, max_pages)
    assert len(plan.slices) == math.ceil(total / max_pages)
    pages = [p for s in plan.slices for p in range(s.first_page, s.last_page + 1)]
    assert pages == list(range(1, total + 1))
    assert all(s.pages == max_pages for s in plan.slices[:-1])
    assert all(1 <= s.pages <= max_pages for s in plan.slices)


def test_a_slice_refuses_impossible_pages():
    with pytest.raises(ValueError, match="not a slice"):
        PageSlice(0, 0, 3)
    with pytest.raises(ValueError, match="not a slice"):
        PageSlice(0, 5, 4)


def test_unknown_page_count_is_sent_whole_and_split_false_restores_the_refusal():
    plan = plan_document("deck.pptx", None, 200)
    assert plan.total_pages is None and plan.slices == () and not plan.is_split
    with pytest.raises(MinerUCannotSplitError, match="split_long_documents is False") as caught:
        plan_document("book.pdf", 900, 600, split=False)
    assert "900 pages" in str(caught.value) and "600 pages per file (-60006)" in str(caught.value)
    assert isinstance(caught.value, MinerUInvalidRequestError)
    assert plan_document("book.pdf", 500, 600, split=False).slices == (PageSlice(0, 1, 500),)


def test_replan_smaller_cuts_only_the_slices_over_the_learned_limit():
    plan = plan_slices("r.pdf", 450, 200)  # 1-200, 201-400, 401-450
    smaller = replan_smaller(plan, 100)
    assert [s.page_ranges for s in smaller.slices] == ["1-100", "101-200", "201-300", "301-400", "401-450"]
    assert [s.index for s in smaller.slices] == [0, 1, 2, 3, 4]
    assert smaller.max_pages == 100 and smaller.total_pages == 450
    with pytest.raises(MinerUCannotSplitError):
        replan_smaller(plan_document("x.docx", None, 200), 100)


def test_learned_limits_halve_or_take_the_stated_lower_limit_and_log_once(caplog):
    limits = LearnedLimits(pages_per_file=600, files_per_request=200)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mineru.long_documents.plan"):
        # The contract's text says 600 pages: not lower than what was tried, so halve.
        assert limits.refused_pages(600, "-60006: File page count exceeds limit (600 pages), please split") == 300
        assert limits.refused_pages(300, "-60006: ... (350 pages, the limit is 200)") == 200
        assert limits.refused_files(200, "-10002: too many files: at most 50 files per request (got 200)") == 50
        assert limits.refused_files(50) == 25
        # A refusal of something larger than what is already known changes nothing and logs nothing.
        assert limits.refused_pages(600) == 200
    assert [r.getMessage() for r in caplog.records] == [
        "MinerU refused 600 pages per file; using 300 for the rest of this task",
        "MinerU refused 300 pages per file; using 200 for the rest of this task",
        "MinerU refused 200 files per request; using 50 for the rest of this task",
        "MinerU refused 50 files per request; using 25 for the rest of this task",
    ]
    assert limits.changes[0] == ("pages_per_file", 600, 300)


def test_a_one_page_refusal_is_not_about_the_page_count():
    with pytest.raises(MinerUCannotSplitError, match="one page at a time"):
        LearnedLimits(1, 1).refused_pages(1, "-60006", name="odd.pdf")
    with pytest.raises(MinerUInvalidRequestError, match="one file"):
        LearnedLimits(1, 1).refused_files(1, "-10002")


def test_stated_limits():
    assert stated_limit("the limit is 200") == 200
    assert stated_limit("at most 50 files per request") == 50
    assert stated_limit("File page count exceeds limit (600 pages)") == 600
    assert stated_limit("parsing failed") is None
    assert stated_limit(None) is None


def test_request_groups():
    assert request_groups(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert request_groups([], 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        request_groups([1], 0)


def test_the_sentences_say_what_to_do():
    text = uncountable_refusal_message("deck.pptx", 200, "-60006: File page count exceeds limit")
    assert "deck.pptx" in text and "-60006" in text and "Convert it to PDF" in text and "200 pages" in text
    text = cannot_split_message("scan.pdf", 200, "it is encrypted")
    assert text.startswith("scan.pdf is not split into parts of at most 200 pages") and "it is encrypted" in text
