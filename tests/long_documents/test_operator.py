"""
``MinerUUploadFilesOperator`` with long documents, in real Airflow (``dag.test()``) against the emulator:
split past ``max_pages``, one folder and one XCom row per input, blocking and deferrable, slice
failures re-sent alone on a retry, the refusal kept with ``split_long_documents=False``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator
from airflow_provider_mineru.results.landing import read_marker
from tests.helpers import SAMPLES, TEST_TOKEN, new_dag, run_dag, xcom
from tests.long_documents.emulated import text_pdf

pytestmark = pytest.mark.usefixtures("airflow_db")

MODES = [pytest.param(True, id="deferrable"), pytest.param(False, id="blocking")]


def connect(emulator: Any, monkeypatch: Any, **extra: Any) -> Any:
    conn = json.loads(emulator.connection_json())
    conn.setdefault("extra", {}).update({"retry_backoff": 0.01, "max_retries": 3, "timeout": 5, **extra})
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
    return emulator


@pytest.fixture
def limited(mineru_emulator_factory, monkeypatch):
    """An emulator limited to 20 pages per file and 50 files per request, the connection told so."""
    from mineru_emulator import Timings

    emu = mineru_emulator_factory(
        token=TEST_TOKEN,
        max_pages=20,
        max_batch_files=50,
        page_quota=10**9,
        timings=Timings(pending=0.02, per_page=0.0005, converting=0.02),
    )
    return connect(emu, monkeypatch, max_pages=20, max_batch_files=50)


def page_indices(folder: Path) -> list[int]:
    """``page_idx`` of every page in the result's ``layout.json`` (blank pages have no content-list blocks)."""
    return [page["page_idx"] for page in json.loads((folder / "layout.json").read_text("utf-8"))["pdf_info"]]


def block_pages(folder: Path, name: str) -> set[int]:
    return {block["page_idx"] for block in json.loads((folder / name).read_text("utf-8"))}


def upload_dag(paths: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("poll_interval", 0.1)
    with new_dag() as dag:
        MinerUUploadFilesOperator(task_id="upload", paths=paths, **kwargs)
    return dag


@pytest.mark.parametrize("deferrable", MODES)
def test_a_long_pdf_is_split_sent_with_the_others_and_stitched_into_one_folder(
    limited, capfd, caplog, deferrable, tmp_path
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    text_pdf(inputs / "manual.pdf", 45)
    (inputs / "invoice.pdf").write_bytes((SAMPLES / "invoice.pdf").read_bytes())
    out = tmp_path / "out"
    dag = upload_dag(str(inputs), output_path=str(out), deferrable=deferrable)
    states, output = run_dag(dag, capfd)
    assert states["upload"] == "success", output[-3000:]
    logged = output + caplog.text
    assert "manual.pdf has 45 pages, over MinerU's limit of 20 per file: sent as 3 slices" in logged
    assert "-60006" not in logged

    value = xcom(dag, "upload")
    rows = value["results"]
    assert [r["file_name"] for r in rows] == ["invoice.pdf", "manual.pdf"]
    assert [r["state"] for r in rows] == ["done", "done"]
    assert "parts" not in rows[0]
    parts = rows[1]["parts"]
    assert [(p["page_range"], p["state"], p["err_msg"]) for p in parts] == [
        ("1-20", "done", ""),
        ("21-40", "done", ""),
        ("41-45", "done", ""),
    ]
    assert [p["data_id"] for p in parts] == ["manual.pages-1-20", "manual.pages-21-40", "manual.pages-41-45"]
    assert len(value["batch_ids"]) == 1  # the slices went in the same batch as the other file
    assert [len(r.json["files"]) for r in limited.requests_to("file_urls")] == [4]

    folder = out / "manual"
    assert rows[1]["output_path"] == str(folder)
    assert read_marker(str(folder)) is not None
    assert page_indices(folder) == list(range(45))
    assert block_pages(folder, "manual_content_list.json") <= set(range(45))
    assert max(block_pages(folder, "manual_content_list.json")) > 40
    markdown = (folder / "full.md").read_text("utf-8")
    assert markdown.index("Page 2 line") < markdown.index("Page 21 line") < markdown.index("Page 41 line")
    assert (folder / "manual_origin.pdf").is_file()
    assert sorted(p.name for p in (folder / "parts").iterdir()) == ["0-1-20", "1-21-40", "2-41-45"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["invoice", "manual"]


@pytest.mark.parametrize("deferrable", MODES)
def test_a_stitched_result_is_one_ledger_entry_reused_by_the_next_run(limited, capfd, deferrable, tmp_path):
    """The ledger keys the whole file, not its slices: run 2 sends nothing and reports the stitched folder."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    text_pdf(inputs / "manual.pdf", 45)
    out = tmp_path / "out"
    rows = []
    for _ in range(2):
        dag = upload_dag(str(inputs), output_path=str(out), deferrable=deferrable)
        states, output = run_dag(dag, capfd)
        assert states["upload"] == "success", output[-3000:]
        rows.append(xcom(dag, "upload")["results"])
    assert len(limited.requests_to("file_urls")) == 1  # the three slices, once
    (first,), (second,) = rows
    assert first["reused"] is False and second["reused"] is True
    assert second["output_path"] == first["output_path"] == str(out / "manual")
    assert page_indices(out / "manual") == list(range(45))


def test_split_long_documents_false_refuses_as_before(limited, capfd, tmp_path):
    text_pdf(tmp_path / "manual.pdf", 45)
    dag = upload_dag(str(tmp_path / "manual.pdf"), split_long_documents=False)
    states, output = run_dag(dag, capfd)
    assert states["upload"] == "failed"
    assert "more than MinerU's limit of 20 pages per document (-60006)" in output
    assert limited.requests == []


def test_a_pdf_that_cannot_be_split_safely_fails_before_any_request(limited, capfd, tmp_path):
    from pypdf import PdfWriter

    source = text_pdf(tmp_path / "plain.pdf", 300)
    writer = PdfWriter(clone_from=str(source))
    writer.encrypt("secret", "owner")
    with open(tmp_path / "locked.pdf", "wb") as handle:
        writer.write(handle)
    dag = upload_dag(str(tmp_path / "locked.pdf"))
    states, output = run_dag(dag, capfd)
    assert states["upload"] == "failed"
    assert "locked.pdf is not split into parts of at most 20 pages" in output
    assert limited.requests == []


@pytest.mark.parametrize("deferrable", MODES)
def test_a_failed_slice_fails_the_input_and_only_it_is_sent_again_on_retry(
    limited, capfd, caplog, deferrable, tmp_path
):
    from datetime import timedelta

    text_pdf(tmp_path / "manual.pdf", 45)
    out = tmp_path / "out"
    limited.fail_next_tasks("-60010: Parsing failed, the layout model gave up", match="pages-21-40")
    dag = upload_dag(
        str(tmp_path / "manual.pdf"),
        output_path=str(out),
        deferrable=deferrable,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
    states, output = run_dag(dag, capfd)
    assert states["upload"] == "success", output[-3000:]
    assert "Sending again 1 of 3 documents (failed: manual.pages-21-40.pdf)" in output + caplog.text
    assert [[f["name"] for f in r.json["files"]] for r in limited.requests_to("file_urls")] == [
        ["manual.pages-1-20.pdf", "manual.pages-21-40.pdf", "manual.pages-41-45.pdf"],
        ["manual.pages-21-40.pdf"],
    ]
    assert limited.pages_used == 45 + 20  # the failed slice's 20 pages billed again, nothing else
    rows = xcom(dag, "upload")["results"]
    assert [p["state"] for p in rows[0]["parts"]] == ["done", "done", "done"]
    assert page_indices(out / "manual") == list(range(45))


#: The issue's figure (``MINERU_LONGDOCS_FULL=1``): 200 files of which five 450-page PDFs, 50 files per
#: request. The suite's default is the same shape, smaller: 24 files of which two long, 10 files per request.
FULL = os.environ.get("MINERU_LONGDOCS_FULL") == "1"
SMALL_FILES, LONG_FILES, FILES_LIMIT = (195, 5, 50) if FULL else (22, 2, 10)
#: Pages of each long PDF and MinerU's page limit: the figure's, or a tenth of them (the same three slices).
LONG_PAGES, PAGE_LIMIT = (450, 200) if FULL else (45, 20)


@pytest.fixture
def lower_than_told(mineru_emulator_factory, monkeypatch):
    """An emulator at PAGE_LIMIT pages per file and fewer files per request; the connection knows the page limit."""
    from mineru_emulator import Timings

    emu = mineru_emulator_factory(
        token=TEST_TOKEN,
        max_pages=PAGE_LIMIT,
        max_batch_files=FILES_LIMIT,
        page_quota=10**9,
        timings=Timings(pending=0.02, per_page=0.0005, converting=0.02),
    )
    return connect(emu, monkeypatch, max_pages=PAGE_LIMIT)


def test_a_folder_of_many_files_and_long_pdfs_completes_past_a_lower_files_limit(
    lower_than_told, capfd, caplog, tmp_path
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    invoice = (SAMPLES / "invoice.pdf").read_bytes()
    for number in range(SMALL_FILES):
        (inputs / f"invoice-{number:03d}.pdf").write_bytes(invoice)
    for number in range(LONG_FILES):
        text_pdf(inputs / f"manual-{number}.pdf", LONG_PAGES, seed=number)
    out = tmp_path / "out"
    # identical invoices: the ledger would copy all but one; this test is about MinerU's files limit
    dag = upload_dag(str(inputs), output_path=str(out), upload_concurrency=16, incremental=False)
    started = time.monotonic()
    states, output = run_dag(dag, capfd)
    seconds = time.monotonic() - started
    assert states["upload"] == "success", output[-3000:]
    documents = SMALL_FILES + 3 * LONG_FILES  # each long PDF is three slices
    first = min(documents, 200)  # the connection's max_batch_files (the contract's)
    logged = output + caplog.text
    assert f"MinerU refused {first} files per request; using {FILES_LIMIT} for the rest of this task" in logged
    sizes = [len(r.json["files"]) for r in lower_than_told.requests_to("file_urls")]
    assert sizes[0] == first and all(size <= FILES_LIMIT for size in sizes[1:]) and sum(sizes[1:]) == documents
    rows = xcom(dag, "upload")["results"]
    assert len(rows) == SMALL_FILES + LONG_FILES and {r["state"] for r in rows} == {"done"}  # no error seen
    for number in range(LONG_FILES):
        assert page_indices(out / f"manual-{number}") == list(range(LONG_PAGES))
    print(f"FIGURE {SMALL_FILES + LONG_FILES} files ({documents} documents) in {seconds:.1f}s; requests {sizes}")


def test_a_document_without_a_page_count_refused_for_its_pages_says_what_to_do(limited, capfd, tmp_path):
    deck = tmp_path / "deck.png"  # like an Office file: no page count before parsing, sent whole
    deck.write_bytes((SAMPLES / "scanned_receipt.png").read_bytes())
    limited.fail_next_tasks("-60006: File page count exceeds limit (20 pages), please split the file", match="deck")
    dag = upload_dag(str(deck), output_path=str(tmp_path / "out"))
    states, output = run_dag(dag, capfd)
    assert states["upload"] == "failed"
    (row,) = xcom(dag, "upload")["results"]
    assert row["err_msg"].startswith("MinerU refused deck.png for its page count (-60006: File page count")
    assert "Convert it to PDF (for example `soffice --headless --convert-to pdf deck.png`)" in row["err_msg"]
    assert "parts of at most 20 pages" in row["err_msg"] and "Convert it to PDF" in output


@pytest.fixture
def lower_pages_than_told(mineru_emulator_factory, monkeypatch):
    """An emulator at 20 pages per file; the connection says 60 (the contract's 600 and 2026's 200, scaled down)."""
    from mineru_emulator import Timings

    emu = mineru_emulator_factory(
        token=TEST_TOKEN,
        max_pages=20,
        page_quota=10**9,
        timings=Timings(pending=0.02, per_page=0.0005, converting=0.02),
    )
    return connect(emu, monkeypatch, max_pages=60)


def test_a_pdf_refused_at_a_lower_page_limit_is_split_smaller_and_sent_again(
    lower_pages_than_told, capfd, caplog, tmp_path
):
    """
    45 pages go whole and 70 as 60 + 10 under max_pages=60; MinerU refuses at 20: re-planned, sent again, stitched.
    Deferrable: the round after the first wait runs on the resumed instance, and defers again.
    """
    inputs = tmp_path / "in"
    inputs.mkdir()
    text_pdf(inputs / "manual.pdf", 45)
    text_pdf(inputs / "book.pdf", 70, seed=1)
    (inputs / "invoice.pdf").write_bytes((SAMPLES / "invoice.pdf").read_bytes())
    out = tmp_path / "out"
    dag = upload_dag(str(inputs), output_path=str(out), deferrable=True, min_defer_seconds=0)
    states, output = run_dag(dag, capfd)
    assert states["upload"] == "success", output[-3000:]
    logged = output + caplog.text
    learned = "MinerU refused 60 pages per file; using 20 for the rest of this task"
    assert max(output.count(learned), caplog.text.count(learned)) == 1  # Airflow 2 logs to both
    assert "refused 45 pages" not in logged  # learned once, kept: 45 pages are planned with 20
    sent = [[f["name"] for f in r.json["files"]] for r in lower_pages_than_told.requests_to("file_urls")]
    assert sent == [
        ["book.pages-1-60.pdf", "book.pages-61-70.pdf", "invoice.pdf", "manual.pdf"],
        # the slice 61-70 was done: kept, not sent again
        [
            *["book.pages-1-20.pdf", "book.pages-21-40.pdf", "book.pages-41-60.pdf"],
            *["manual.pages-1-20.pdf", "manual.pages-21-40.pdf", "manual.pages-41-45.pdf"],
        ],
    ]
    assert lower_pages_than_told.pages_used == 70 + 45 + 2  # the refused files are not billed; nothing twice
    rows = xcom(dag, "upload")["results"]
    assert [(r["file_name"], r["state"]) for r in rows] == [
        ("book.pdf", "done"),
        ("invoice.pdf", "done"),
        ("manual.pdf", "done"),
    ]
    assert [p["page_range"] for p in rows[0]["parts"]] == ["1-20", "21-40", "41-60", "61-70"]
    assert [p["page_range"] for p in rows[2]["parts"]] == ["1-20", "21-40", "41-45"]
    assert "-60006" not in json.dumps(rows)
    assert page_indices(out / "book") == list(range(70))
    assert page_indices(out / "manual") == list(range(45))


@pytest.fixture
def honours_page_ranges(mineru_emulator_factory, monkeypatch):
    """An emulator at 20 pages per file that counts the pages ``page_ranges`` selects; the connection says 60."""
    from mineru_emulator import Timings

    emu = mineru_emulator_factory(
        token=TEST_TOKEN,
        max_pages=20,
        page_ranges_count_for_limit=True,
        page_quota=10**9,
        timings=Timings(pending=0.02, per_page=0.0005, converting=0.02),
    )
    return connect(emu, monkeypatch, max_pages=60)


def test_a_url_refused_for_its_page_count_is_sent_again_as_page_ranges_slices(
    honours_page_ranges, capfd, caplog, tmp_path
):
    """The refused URL's pages are counted with one bounded download (no token), then sliced with ``page_ranges``."""
    from airflow_provider_mineru.operators.mineru import MinerUSubmitBatchOperator
    from tests.helpers.selfhosted_samples import file_server

    served = tmp_path / "served"
    served.mkdir()
    text_pdf(served / "long.pdf", 45)
    text_pdf(served / "short.pdf", 3, seed=2)
    out = tmp_path / "out"
    with file_server(served) as root:
        urls = [f"{root}/long.pdf", f"{root}/short.pdf"]
        with new_dag() as dag:
            MinerUSubmitBatchOperator(task_id="parse", urls=urls, output_path=str(out), poll_interval=0.1)
        states, output = run_dag(dag, capfd)
    assert states["parse"] == "success", output[-3000:]
    assert "MinerU refused 45 pages per file; using 20 for the rest of this task" in output + caplog.text
    sent = [r.json["files"] for r in honours_page_ranges.requests_to("submit_batch")]
    assert [[(f["url"].rsplit("/", 1)[1], f.get("page_ranges")) for f in files] for files in sent] == [
        [("long.pdf", None), ("short.pdf", None)],
        [("long.pdf", "1-20"), ("long.pdf", "21-40"), ("long.pdf", "41-45")],
    ]
    assert honours_page_ranges.pages_used == 45 + 3
    rows = xcom(dag, "parse")["results"]
    assert [r["state"] for r in rows] == ["done", "done"]
    assert [p["page_range"] for p in rows[0]["parts"]] == ["1-20", "21-40", "41-45"] and "parts" not in rows[1]
    assert page_indices(Path(rows[0]["output_path"])) == list(range(45))
