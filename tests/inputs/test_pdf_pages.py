"""
Page counting from the trailer and page tree only (``airflow_provider_mineru.inputs.pdf_pages``).

Crafted PDFs (``tests/helpers/pdf_samples.py``): classic tables, cross-reference streams with the
catalog in an object stream, incremental updates, a slightly wrong and a wild ``startxref``,
large scanned-style files. Every count is bounded in time and memory; what cannot be read
cheaply is ``None`` ("unknown": MinerU judges), never a scan of the file.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages, count_pdf_pages_in
from airflow_provider_mineru.inputs.sources import SourceFile
from airflow_provider_mineru.inputs.validation import count_pdf_pages as validation_count
from tests.helpers.pdf_samples import classic_pdf, incremental_pdf, xref_stream_pdf

MB = 1024 * 1024


def timed(path: Path) -> tuple[int | None, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        pages = count_pdf_pages(path)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return pages, elapsed, peak


@pytest.mark.parametrize(
    ("build", "pages"),
    [
        (lambda p: classic_pdf(p, 7), 7),
        (lambda p: classic_pdf(p, 9, count_as_ref=True), 9),
        (lambda p: classic_pdf(p, 5, startxref_delta=-37), 5),  # a few bytes off: looked for nearby
        (lambda p: classic_pdf(p, 5, startxref_delta=+12), 5),
        (lambda p: xref_stream_pdf(p, 11), 11),  # catalog and page tree in a compressed object stream
        (lambda p: incremental_pdf(p, 3, 4), 7),  # the newest /Count, through /Prev
        (lambda p: classic_pdf(p, 1), 1),
    ],
    ids=["classic", "count-ref", "startxref-early", "startxref-late", "xref-stream", "incremental", "one-page"],
)
def test_counts_crafted_pdfs(tmp_path: Path, build, pages: int) -> None:
    path = build(tmp_path / "doc.pdf")
    assert count_pdf_pages(path) == pages
    assert validation_count(path) == pages  # the old public name, same answer


def test_agrees_with_pypdf_on_every_sample_it_can_read(tmp_path: Path) -> None:
    from pypdf import PdfReader

    for i, build in enumerate(
        [lambda p: classic_pdf(p, 30), lambda p: xref_stream_pdf(p, 40), lambda p: incremental_pdf(p, 10, 2)]
    ):
        path = build(tmp_path / f"{i}.pdf")
        assert count_pdf_pages(path) == len(PdfReader(path).pages)


def test_a_wild_startxref_gives_unknown_at_once_instead_of_a_rebuild(tmp_path: Path) -> None:
    # pypdf rebuilds the table of this file by reading all of it (seconds for 60 MB).
    path = classic_pdf(tmp_path / "broken.pdf", 20, pad_bytes=60 * MB, startxref_delta=None)
    pages, elapsed, peak = timed(path)
    assert pages is None
    assert elapsed < 0.5
    assert peak < 2 * MB


def test_a_large_scanned_pdf_counts_in_bounded_time_and_memory(tmp_path: Path) -> None:
    path = classic_pdf(tmp_path / "scan.pdf", 40, image_bytes=80 * MB)
    pages, elapsed, peak = timed(path)
    assert pages == 40
    assert elapsed < 0.5
    assert peak < 2 * MB


def test_a_large_xref_stream_pdf_counts_in_bounded_time(tmp_path: Path) -> None:
    path = xref_stream_pdf(tmp_path / "big.pdf", 3000, pad_bytes=60 * MB)
    pages, elapsed, peak = timed(path)
    assert pages == 3000
    assert elapsed < 0.5
    assert peak < 4 * MB


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a pdf at all",
        b"%PDF-1.4\n%%EOF\n",
        b"%PDF-1.4\nstartxref\n5\n%%EOF\n",
        b"%PDF-1.4\nxref\n0 1\n0000000000 65535 f \ntrailer\n<< /Root 9 0 R >>\nstartxref\n9\n%%EOF\n",
        b"%PDF-1.4\n1 0 obj\n<< /Type /XRef /W [1 2] /Size 1 >>\nstream\nxx\nendstream\nendobj\nstartxref\n9\n%%EOF",
    ],
    ids=["empty", "text", "no-startxref", "points-to-nothing", "root-missing", "bad-xref-stream"],
)
def test_what_cannot_be_read_cheaply_is_unknown(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(content)
    assert count_pdf_pages(path) is None


def test_a_missing_file_is_unknown(tmp_path: Path) -> None:
    assert count_pdf_pages(tmp_path / "missing.pdf") is None


def test_a_self_referencing_prev_chain_ends(tmp_path: Path) -> None:
    path = classic_pdf(tmp_path / "loop.pdf", 3)
    data = path.read_bytes()
    xref = int(data.rsplit(b"startxref", 1)[1].split()[0])
    path.write_bytes(data.replace(b"/Root 1 0 R", b"/Root 1 0 R /Prev %d" % xref))
    assert count_pdf_pages(path) == 3


def test_source_file_page_count_uses_the_bounded_reader(tmp_path: Path) -> None:
    path = classic_pdf(tmp_path / "broken.pdf", 3, pad_bytes=20 * MB, startxref_delta=None)
    source = SourceFile(location=str(path), name=path.name, size=path.stat().st_size)
    started = time.perf_counter()
    assert source.page_count() is None
    assert time.perf_counter() - started < 0.5


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=4000),
    flip=st.integers(min_value=0, max_value=4000),
    byte=st.binary(min_size=1, max_size=1),
)
def test_damaged_files_never_raise_and_stay_bounded(tmp_path: Path, cut: int, flip: int, byte: bytes) -> None:
    import io

    base = tmp_path / "base.pdf"
    if not base.exists():
        xref_stream_pdf(base, 12)
    data = bytearray(base.read_bytes())
    if flip < len(data):
        data[flip] = byte[0]
    data = data[: max(0, len(data) - cut)]
    started = time.perf_counter()
    pages = count_pdf_pages_in(io.BytesIO(bytes(data)))
    assert pages is None or (isinstance(pages, int) and pages >= 0)
    assert time.perf_counter() - started < 0.5
