"""Results faithful enough for split and stitch: titles by layout, per-page indexes, images, page_idx."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from typing import Any

import pytest
import requests
from emulator_client import Api

from mineru_emulator import results
from mineru_emulator.results import ResultSpec, build_result_zip, make_pdf, mineru_image_name

#: A 6-page document: a title on page 1, a heading on page 4, plain lines elsewhere.
PAGES = [[f"Line {line} of page {page + 1}, some words to read." for line in range(3)] for page in range(6)]
PAGES[0][0] = "Annual Report"
PAGES[3][0] = "Part Two"
HEADINGS = [(3, 0)]


def pdf_bytes(pages: list[list[str]] = PAGES, headings: list[tuple[int, int]] = HEADINGS) -> bytes:
    return make_pdf(pages, headings=headings)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def content_list(files: dict[str, bytes]) -> list[dict[str, Any]]:
    (name,) = [n for n in files if n.endswith("_content_list.json")]
    return json.loads(files[name])


def parse(api: Api, name: str, data: bytes, **options: Any) -> dict[str, bytes]:
    batch_id = api.upload_batch({name: data}, **options)
    (item,) = api.wait_batch(batch_id)
    assert item["state"] == "done", item
    response = requests.get(item["full_zip_url"], timeout=10)
    return members(response.content)


def shape(blocks: list[dict[str, Any]], offset: int = 0) -> list[tuple[Any, ...]]:
    return [(b["type"], b.get("text"), b.get("text_level"), b["page_idx"] + offset) for b in blocks]


# -- titles, indexes -----------------------------------------------------------------------------


def test_titles_follow_the_layout_not_the_position(api: Api) -> None:
    whole = content_list(parse(api, "report.pdf", pdf_bytes()))
    titles = [(b["text"], b["page_idx"]) for b in whole if b.get("text_level") == 1]
    assert titles == [("Annual Report", 0), ("Part Two", 3)]

    # A slice by page_ranges: its first line is not a title, the heading on page 4 still is.
    ranged = parse_with_ranges(api, "2-5")
    assert [b for b in ranged if b.get("text_level") == 1] == [b for b in whole if b.get("text_level") == 1][1:]
    assert ranged[0]["text"] == PAGES[1][0] and "text_level" not in ranged[0]


def parse_with_ranges(api: Api, page_ranges: str) -> list[dict[str, Any]]:
    body = {"files": [{"name": "report.pdf", "page_ranges": page_ranges}]}
    data = api.ok(api.post("/file-urls/batch", body))
    assert requests.put(data["file_urls"][0], data=pdf_bytes(), timeout=10).status_code == 200
    (item,) = api.wait_batch(data["batch_id"])
    return content_list(members(requests.get(item["full_zip_url"], timeout=10).content))


@pytest.mark.parametrize("size", [1, 2, 4])
def test_stitched_slices_equal_the_unsplit_parse(api: Api, size: int) -> None:
    whole = content_list(parse(api, "report.pdf", pdf_bytes()))
    # Locally split parts (page_idx from 0 in each), offset back, equal the whole document's blocks.
    stitched: list[tuple[Any, ...]] = []
    for start in range(0, len(PAGES), size):
        part_pages = PAGES[start : start + size]
        part_headings = [(p - start, line) for p, line in [(0, 0), *HEADINGS] if start <= p < start + size]
        part = content_list(parse(api, f"part{start}.pdf", make_pdf(part_pages, title=False, headings=part_headings)))
        stitched += shape(part, offset=start)
    assert stitched == shape(whole)


def test_layout_index_is_numbered_per_page(api: Api) -> None:
    layout = json.loads(parse(api, "report.pdf", pdf_bytes())["layout.json"])
    for page in layout["pdf_info"]:
        assert [block["index"] for block in page["para_blocks"]] == list(range(len(page["para_blocks"])))
    assert len(layout["pdf_info"]) == 6


# -- images --------------------------------------------------------------------------------------


def test_images_per_page_are_named_like_mineru_and_referenced(mineru_emulator_factory) -> None:
    api = Api(mineru_emulator_factory(images_per_page=2))
    files = parse(api, "report.pdf", pdf_bytes())
    images = sorted(name for name in files if name.startswith("images/"))
    assert len(images) == 12
    blocks = [b for b in content_list(files) if b["type"] == "image"]
    assert sorted(b["img_path"] for b in blocks) == images
    for block in blocks:
        assert block["img_path"] == mineru_image_name(block["page_idx"], block["bbox"])
        assert f"![]({block['img_path']})" in files["full.md"].decode()
    assert len({files[name] for name in images}) == 12, "every figure has its own bytes"


def test_images_of_split_parts_collide_by_name_with_different_bytes(mineru_emulator_factory) -> None:
    api = Api(mineru_emulator_factory(images_per_page=1))
    first = parse(api, "part1.pdf", make_pdf(PAGES[:3]))
    second = parse(api, "part2.pdf", make_pdf(PAGES[3:], title=False))
    shared = {n for n in first if n.startswith("images/")} & {n for n in second if n.startswith("images/")}
    assert len(shared) == 3, "page_idx 0..2 in both parts: MinerU's names collide"
    assert all(first[name] != second[name] for name in shared)


# -- page_ranges and the page limit --------------------------------------------------------------


@pytest.mark.parametrize(
    ("count_ranges", "page_ranges", "state"),
    [(False, "1-3", "failed"), (True, "1-3", "done"), (True, "1-4", "failed"), (True, None, "failed")],
)
def test_page_ranges_count_for_limit(mineru_emulator_factory, count_ranges: bool, page_ranges, state) -> None:
    api = Api(mineru_emulator_factory(max_pages=3, page_ranges_count_for_limit=count_ranges))
    body = {"files": [{"name": "report.pdf", **({"page_ranges": page_ranges} if page_ranges else {})}]}
    data = api.ok(api.post("/file-urls/batch", body))
    requests.put(data["file_urls"][0], data=pdf_bytes(), timeout=10)
    (item,) = api.wait_batch(data["batch_id"])
    assert item["state"] == state
    if state == "failed":
        assert item["err_msg"].startswith("-60006")
        assert "the limit is 3" in item["err_msg"]


# -- the public results API ----------------------------------------------------------------------


def test_public_results_api_builds_a_zip_offline(tmp_path) -> None:
    source = tmp_path / "report.pdf"
    source.write_bytes(pdf_bytes())
    out = tmp_path / "report.zip"
    build_result_zip(ResultSpec.for_pdf("report.pdf", str(source), pages=[3, 4], images_per_page=1), str(out))
    files = members(out.read_bytes())
    blocks = content_list(files)
    assert {b["page_idx"] for b in blocks} == {3, 4}
    assert blocks[0] == {**blocks[0], "text": "Part Two", "text_level": 1}
    assert "report_content_list.json" in files and "report_origin.pdf" in files
    assert results.pdf_page_texts(str(source), [3]) == [(3, PAGES[3])]


def test_old_import_paths_still_work() -> None:
    from mineru_emulator._pdf import make_pdf as private_make_pdf
    from mineru_emulator.cloud import result_zip

    assert result_zip.ResultSpec is ResultSpec and result_zip.build_result_zip is build_result_zip
    assert private_make_pdf is make_pdf
    assert os.path.basename(results.__file__) == "results.py"


# -- the V1 flavor's page_idx --------------------------------------------------------------------


def test_v1_page_idx_is_the_page_number_minus_one(mineru_api_emulator) -> None:
    emu = mineru_api_emulator
    text = [f"Line {n}, with enough words on it to look like a real text layer." for n in range(4)]
    pages = [["Annual Report", *text], [], ["Results", *text], ["Part Two", *text]]  # page 2 is blank
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {emu.api_key}"
    submitted = session.post(
        f"{emu.base_url}/v1/tasks?tier=flash&output_formats=zip&page_range=1-4",
        files={"files": ("doc.pdf", make_pdf(pages, headings=[(3, 0)]), "application/pdf")},
        timeout=10,
    )
    assert submitted.status_code == 202, submitted.text
    url = f"{emu.base_url}/v1/tasks/{submitted.json()['task_id']}/result?response_format=zip"
    deadline = time.monotonic() + 10
    while (response := session.get(url, timeout=10)).status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert response.status_code == 200, response.text
    structured = json.loads(members(response.content)["structured_content.json"])
    assert [page["page_idx"] for page in structured["pages"]] == [0, 2, 3]
    kinds = [[block["type"] for block in page["blocks"]] for page in structured["pages"]]
    assert kinds == [["doc_title", *["text"] * 4], ["text"] * 5, ["doc_title", *["text"] * 4]]
