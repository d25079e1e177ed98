"""The long-document stage's pure parts (``long_documents.run``): slice sources, refusals, explanations."""

from __future__ import annotations

import pytest

from airflow_provider_mineru.exceptions import MinerUInvalidRequestError
from airflow_provider_mineru.long_documents.plan import PageSlice
from airflow_provider_mineru.long_documents.run import (
    explain_page_refusal,
    fewer_files_per_request,
    group_documents,
    parse_slice_source,
    slice_source,
)
from airflow_provider_mineru.models import DocumentResult, MinerUState


def test_a_slice_source_names_its_input_and_pages_and_reads_back():
    source = slice_source("s3://bucket/in/a#b.pdf", PageSlice(1, 201, 400))
    assert source == "s3://bucket/in/a#b.pdf#mineru-pages=201-400"
    assert parse_slice_source(source) == ("s3://bucket/in/a#b.pdf", 201, 400)
    for other in (None, "", "/data/a.pdf", "/data/a.pdf#mineru-pages=x", "#mineru-pages=1-2", "/a#mineru-pages=3-2"):
        assert parse_slice_source(other) is None


def test_slices_of_one_input_group_together_and_a_new_first_page_starts_another_input():
    sources = [
        "/in/a.pdf",
        "/in/b.pdf#mineru-pages=1-200",
        "/in/b.pdf#mineru-pages=201-250",
        "/in/c.png",
        "/in/b.pdf#mineru-pages=1-200",  # the same file given twice: another input
        "/in/b.pdf#mineru-pages=201-250",
    ]
    found = group_documents(sources, len(sources))
    assert [(g.indices, g.location) for g in found] == [
        ([0], None),
        ([1, 2], "/in/b.pdf"),
        ([3], None),
        ([4, 5], "/in/b.pdf"),
    ]
    assert [p.folder_name for p in found[1].pieces] == ["0-1-200", "1-201-250"]


def refusal(code: str, message: str) -> MinerUInvalidRequestError:
    return MinerUInvalidRequestError(message, code=code)


def test_only_a_refusal_for_the_number_of_files_is_learned():
    assert fewer_files_per_request(refusal("-10002", "too many files: at most 50 files per request (got 66)"), 66) == 50
    assert fewer_files_per_request(refusal("-10002", "too many files per request"), 66) == 33  # half, none stated
    assert fewer_files_per_request(refusal("-10002", "name is required"), 66) is None
    assert fewer_files_per_request(refusal("-60006", "too many files"), 66) is None
    assert fewer_files_per_request(refusal("-10002", "too many files: at most 1 files"), 1) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("deck.pptx", "Convert it to PDF (for example `soffice --headless --convert-to pdf deck.pptx`)"),
        ("report.pdf", "MinerU's page limit (200 pages) is lower than the connection's max_pages (600)"),
    ],
)
def test_a_page_count_refusal_says_what_to_do(name, expected):
    failed = DocumentResult(
        state=MinerUState.FAILED,
        raw_state="failed",
        file_name=name,
        err_msg="-60006: File page count exceeds limit (200 pages), please split the file and try again",
    )
    message = explain_page_refusal(failed, 600).err_msg
    assert message.startswith("-60006") or "-60006" in message
    assert expected in message
    done = DocumentResult(state=MinerUState.DONE, raw_state="done", file_name=name)
    assert explain_page_refusal(done, 600) is done


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "https://example.com/files/deck.pptx",
            "Convert it to PDF (for example `soffice --headless --convert-to pdf deck.pptx`)",
        ),
        ("https://example.com/files/book.pdf", "download it and send the file with MinerUUploadFilesOperator"),
        ("https://example.com/book.pdf#mineru-pages=1-200", "whatever page_ranges selects"),
    ],
)
def test_a_url_refused_for_its_page_count_says_what_to_do(source, expected):
    """A URL MinerU refused that was not sent again in parts (Office, or page_ranges not counted): what to do."""
    failed = DocumentResult(
        state=MinerUState.FAILED, raw_state="failed", err_msg="-60006: File page count exceeds limit"
    )
    message = explain_page_refusal(failed, 200, source).err_msg
    assert message.startswith("-60006") or message.startswith("MinerU refused")
    assert expected in message


def test_lineage_sees_a_split_input_once():
    from airflow_provider_mineru.long_documents.run import input_locations

    sources = ["/in/a.pdf", "/in/b.pdf#mineru-pages=1-200", "/in/b.pdf#mineru-pages=201-250", None]
    assert input_locations(sources) == ["/in/a.pdf", "/in/b.pdf", None]
