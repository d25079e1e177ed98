"""
The long-document core against an emulator with lower limits than the provider is configured for
(the contract's 600 pages and 200 files; the emulator enforces 200 pages per file and 50 files per
request, as 2026 copies of MinerU's documentation say): what MinerU answers is learned, re-planned
and sent again; a failed slice is re-billed alone. Plain HTTP (the operators are not wired yet).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages
from airflow_provider_mineru.long_documents.parts import PartResult, input_state, parts_to_xcom, slices_to_send
from airflow_provider_mineru.long_documents.plan import (
    LearnedLimits,
    PageSlice,
    plan_document,
    replan_smaller,
    request_groups,
)
from airflow_provider_mineru.long_documents.split import split_pdf
from airflow_provider_mineru.long_documents.stitch import landed_page_ranges, part_folder, stitch_parts
from airflow_provider_mineru.results.landing import land_result_zip, read_marker
from tests.long_documents.emulated import load, text_pdf

# The emulator distribution's own tiny test client (emulator/tests is not a package: see its conftest).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "emulator" / "tests"))
from emulator_client import Api

CONTRACT_PAGES, CONTRACT_FILES = 600, 200


@pytest.fixture
def emu(mineru_emulator_factory):
    return mineru_emulator_factory(max_pages=200, max_batch_files=50, page_quota=10**9)


def send(api: Api, parts: list[tuple[str, Path]]) -> list[dict[str, Any]]:
    batch_id = api.upload_batch({name: path.read_bytes() for name, path in parts})
    return api.wait_batch(batch_id)


def land(api: Api, target: Path, piece: PageSlice, row: dict[str, Any], work: Path) -> None:
    zip_path = work / f"{piece.folder_name}.zip"
    zip_path.write_bytes(api.download_zip(row["full_zip_url"]).fp.getvalue())  # type: ignore[union-attr]
    land_result_zip(str(zip_path), str(part_folder(target, piece)))


def test_a_refusal_at_a_lower_page_limit_is_learned_and_the_document_re_planned(emu, tmp_path, caplog):
    api = Api(emu)
    source = text_pdf(tmp_path / "manual.pdf", 450)
    limits = LearnedLimits(CONTRACT_PAGES, CONTRACT_FILES)
    plan = plan_document("manual.pdf", count_pdf_pages(source), limits.pages_per_file)
    assert not plan.is_split  # 450 ≤ 600: sent whole, as configured

    (row,) = send(api, [("manual.pdf", source)])
    assert row["state"] == "failed" and row["err_msg"].startswith("-60006")
    assert emu.pages_used == 0  # refused, not billed
    with caplog.at_level(logging.WARNING):
        plan = replan_smaller(plan, limits.refused_pages(450, row["err_msg"], name="manual.pdf"))
    assert "MinerU refused 450 pages per file; using 200 for the rest of this task" in caplog.text
    assert [s.page_ranges for s in plan.slices] == ["1-200", "201-400", "401-450"]

    work = tmp_path / "work"
    work.mkdir()
    parts = split_pdf(source, plan, work)
    rows = send(api, [(p.path.name, p.path) for p in parts])
    assert [r["state"] for r in rows] == ["done"] * 3
    assert emu.pages_used == 450
    target = tmp_path / "out" / "manual"
    for piece, row in zip(plan.slices, rows, strict=True):
        land(api, target, piece, row, work)
    stitch_parts(target, plan, stem="manual", origin_pdf=source)
    assert [p["page_idx"] for p in load(target, "layout.json")["pdf_info"]] == list(range(450))
    assert read_marker(str(target)) is not None


def test_a_refusal_for_the_number_of_files_is_learned_and_the_batch_cut(emu, tmp_path, caplog):
    api = Api(emu)
    source = text_pdf(tmp_path / "one.pdf", 1)
    limits = LearnedLimits(CONTRACT_PAGES, CONTRACT_FILES)
    names = [f"doc{i:03d}.pdf" for i in range(120)]
    response = api.post("/file-urls/batch", {"files": [{"name": n} for n in names]})
    answer = response.json()
    assert answer["code"] == -10002 and emu.pages_used == 0
    with caplog.at_level(logging.WARNING):
        per_request = limits.refused_files(len(names), answer["msg"])
    assert per_request == 50
    assert "MinerU refused 120 files per request; using 50 for the rest of this task" in caplog.text
    groups = request_groups(names, limits.files_per_request)
    assert [len(g) for g in groups] == [50, 50, 20]
    for group in groups:
        rows = send(api, [(name, source) for name in group])
        assert {r["state"] for r in rows} == {"done"}


def test_a_failed_slice_is_re_billed_alone_and_the_others_are_kept(emu, tmp_path):
    api = Api(emu)
    source = text_pdf(tmp_path / "book.pdf", 250)
    plan = plan_document("book.pdf", count_pdf_pages(source), 50)
    work = tmp_path / "work"
    work.mkdir()
    parts = split_pdf(source, plan, work)
    emu.fail_next_tasks("-60010: Parsing failed, please try again later", match="book.pages-101-150.pdf")
    rows = send(api, [(p.path.name, p.path) for p in parts])
    target = tmp_path / "out" / "book"
    results = []
    for piece, row in zip(plan.slices, rows, strict=True):
        results.append(PartResult.of(piece, row["state"], row["err_msg"], data_id=row.get("data_id")))
        if row["state"] == "done":
            land(api, target, piece, row, work)
    state, err = input_state(results, plan)
    assert state == "failed" and err.startswith("pages 101-150: -60010")
    assert [r["state"] for r in parts_to_xcom(results)] == ["done", "done", "failed", "done", "done"]
    assert landed_page_ranges(target, plan) == ["1-50", "51-100", "151-200", "201-250"]
    assert read_marker(str(target)) is None  # no stitched result, the four slices kept under parts/

    # The retry: only the third slice is sent, and only its 50 pages are billed again.
    again = slices_to_send(plan, results, landed=landed_page_ranges(target, plan))
    assert [s.page_ranges for s in again] == ["101-150"]
    billed = emu.pages_used
    by_range = {p.slice.page_ranges: p for p in parts}
    (row,) = send(api, [(by_range[s.page_ranges].path.name, by_range[s.page_ranges].path) for s in again])
    assert row["state"] == "done"
    assert emu.pages_used - billed == 50
    land(api, target, again[0], row, work)
    stitch_parts(target, plan, stem="book")
    assert [p["page_idx"] for p in load(target, "layout.json")["pdf_info"]] == list(range(250))
