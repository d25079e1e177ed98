"""Splitting a local PDF into one file per slice, safely and in bounded memory (``long_documents.split``)."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from pypdf import PdfReader, PdfWriter

from airflow_provider_mineru.exceptions import MinerUCannotSplitError
from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages
from airflow_provider_mineru.long_documents.plan import plan_document, plan_slices
from airflow_provider_mineru.long_documents.split import part_file_name, split_pdf
from tests.helpers.pdf_samples import classic_pdf, xref_stream_pdf
from tests.long_documents.emulated import page_lines, text_pdf

MB = 1024 * 1024


def test_parts_hold_exactly_their_pages(tmp_path):
    source = text_pdf(tmp_path / "report.pdf", 45)
    plan = plan_slices("report.pdf", 45, 20)
    parts = split_pdf(source, plan, tmp_path)
    assert [p.path.name for p in parts] == [
        "report.pages-1-20.pdf",
        "report.pages-21-40.pdf",
        "report.pages-41-45.pdf",
    ]
    for part in parts:
        assert part.size == part.path.stat().st_size
        assert count_pdf_pages(part.path) == part.slice.pages
        reader = PdfReader(part.path)
        for offset, page in enumerate(reader.pages):
            number = part.slice.first_page - 1 + offset
            text = [line.strip() for line in (page.extract_text() or "").splitlines() if line.strip()]
            assert text == page_lines(number)
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_an_unsplit_plan_sends_the_source_itself(tmp_path):
    source = text_pdf(tmp_path / "short.pdf", 3)
    (part,) = split_pdf(source, plan_slices("short.pdf", 3, 200), tmp_path / "nowhere")
    assert part.path == source


def test_xref_stream_pdfs_split(tmp_path):
    source = xref_stream_pdf(tmp_path / "modern.pdf", 30)
    parts = split_pdf(source, plan_slices("modern.pdf", 30, 12), tmp_path)
    assert [count_pdf_pages(p.path) for p in parts] == [12, 12, 6]


def test_a_pdf_whose_structure_cannot_be_read_safely_is_not_split(tmp_path):
    source = classic_pdf(tmp_path / "broken.pdf", 30, startxref_delta=None)  # pypdf would rebuild it by a full scan
    with pytest.raises(MinerUCannotSplitError) as caught:
        split_pdf(source, plan_slices("broken.pdf", 30, 12), tmp_path)
    text = str(caught.value)
    assert "broken.pdf is not split into parts of at most 12 pages" in text
    assert "page tree cannot be read with bounded reads" in text
    assert list(tmp_path.iterdir()) == [source]


@pytest.mark.parametrize("delta", [3, -40, 900])
def test_a_startxref_a_little_off_is_corrected_in_a_view_not_by_a_scan(tmp_path, delta):
    # Bytes added or removed before the table: the page count finds it within 1 KiB, so does the split.
    source = classic_pdf(tmp_path / "shifted.pdf", 30, startxref_delta=delta)
    before = source.read_bytes()
    parts = split_pdf(source, plan_slices("shifted.pdf", 30, 12), tmp_path)
    assert [len(PdfReader(p.path, strict=True).pages) for p in parts] == [12, 12, 6]
    assert source.read_bytes() == before  # the source is never rewritten


def test_a_page_tree_that_lies_is_not_split_and_leaves_no_part(tmp_path):
    source = tmp_path / "liar.pdf"
    data = text_pdf(tmp_path / "liar.pdf", 5).read_bytes().replace(b"/Count 5", b"/Count 9")
    source.write_bytes(data)
    assert count_pdf_pages(source) == 9
    with pytest.raises(MinerUCannotSplitError, match=r"liar\.pdf is not split into parts of at most 4 pages"):
        split_pdf(source, plan_slices("liar.pdf", 9, 4), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["liar.pdf"]


def test_an_encrypted_pdf_is_not_split(tmp_path):
    writer = PdfWriter(clone_from=str(text_pdf(tmp_path / "plain.pdf", 6)))
    writer.encrypt("", "owner-secret")
    source = tmp_path / "locked.pdf"
    with open(source, "wb") as out:
        writer.write(out)
    pages = count_pdf_pages(source)
    with pytest.raises(MinerUCannotSplitError, match=r"locked\.pdf is not split"):
        split_pdf(source, plan_slices("locked.pdf", pages or 6, 4), tmp_path)


def test_a_page_count_that_changed_since_planning_is_refused(tmp_path):
    source = text_pdf(tmp_path / "moved.pdf", 10)
    with pytest.raises(MinerUCannotSplitError, match="it has 10 pages now and 12 when planned"):
        split_pdf(source, plan_slices("moved.pdf", 12, 5), tmp_path)
    with pytest.raises(MinerUCannotSplitError, match="page count is unknown"):
        split_pdf(source, plan_document("moved.pdf", None, 5), tmp_path)


def test_memory_is_about_one_part_not_the_whole_file(tmp_path):
    source = classic_pdf(tmp_path / "scan.pdf", 100, image_bytes=40 * MB)
    plan = plan_slices("scan.pdf", 100, 25)
    gc.collect()
    tracemalloc.start()
    try:
        parts = split_pdf(source, plan, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [p.slice.pages for p in parts] == [25] * 4
    assert sum(p.size for p in parts) < 41 * MB
    assert peak < 20 * MB, f"peak {peak / MB:.1f} MB for 10 MB parts of a 40 MB file"


def test_part_file_names():
    piece = plan_slices("x", 10, 5).slices[1]
    assert part_file_name("Annual Report.PDF", piece) == "Annual Report.pages-6-10.pdf"
    assert part_file_name("noext", piece) == "noext.pages-6-10.pdf"
