"""Stitching slices' result folders into one that reads like an unsplit result (``long_documents.stitch``)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mineru.exceptions import MinerUResultError
from airflow_provider_mineru.long_documents.parts import slices_to_send
from airflow_provider_mineru.long_documents.plan import PageSlice, SlicePlan, plan_slices
from airflow_provider_mineru.long_documents.stitch import landed_page_ranges, part_folder, stitch_parts
from airflow_provider_mineru.results.landing import MARKER_NAME, land_result_zip, read_marker
from tests.long_documents.emulated import land_slices, load, text_pdf, unsplit


def check_against_unsplit(stitched: Path, whole: Path, plan: SlicePlan) -> None:
    content = load(stitched, "_content_list.json")
    expected = load(whole, "_content_list.json")
    # Exactly equal, titles and per-page block indices included (the emulator titles by layout, per page).
    assert content == expected
    for suffix in ("_model.json", "layout.json"):
        assert load(stitched, suffix) == load(whole, suffix), suffix
    assert (stitched / "full.md").read_text("utf-8") == (whole / "full.md").read_text("utf-8")
    pages = [entry["page_idx"] for entry in load(stitched, "layout.json")["pdf_info"]]
    assert pages == list(range(plan.slices[-1].last_page))
    assert [entry["page_info"]["page_no"] for entry in load(stitched, "_model.json")] == pages
    block_pages = [block["page_idx"] for block in content]
    assert block_pages == sorted(block_pages) and set(block_pages) <= set(pages)


def test_a_1000_page_pdf_split_locally_at_200_stitches_into_the_unsplit_result(tmp_path):
    source = text_pdf(tmp_path / "report.pdf", 1000)
    whole = unsplit(source, 1000, tmp_path / "whole", prefix="report")
    plan = plan_slices("report.pdf", 1000, 200)
    target = tmp_path / "out" / "report"
    land_slices(source, plan, target, strategy="split", workdir=tmp_path)
    result = stitch_parts(target, plan, stem="report", identity={"task": "t"}, origin_pdf=source)
    check_against_unsplit(target, whole, plan)
    assert result.numbering == ("n/a", "relative", "relative", "relative", "relative")
    assert result.pages == 1000 and result.unstitched == ()
    top = sorted(p.name for p in target.iterdir())
    assert top == [
        MARKER_NAME,
        "full.md",
        "layout.json",
        "parts",
        "report_content_list.json",
        "report_model.json",
        "report_origin.pdf",
    ]
    assert sorted(p.name for p in (target / "parts").iterdir()) == [
        "0-1-200",
        "1-201-400",
        "2-401-600",
        "3-601-800",
        "4-801-1000",
    ]
    assert (target / "report_origin.pdf").read_bytes() == source.read_bytes()
    marker = read_marker(str(target), {"task": "t"})
    assert marker is not None
    assert marker.content_list == "report_content_list.json" and marker.markdown == "full.md"
    assert "parts/2-401-600/full.md" in marker.files
    assert result.marker["stitched"]["parts"] == ["0-1-200", "1-201-400", "2-401-600", "3-601-800", "4-801-1000"]


def test_page_ranges_slices_numbered_absolutely_stitch_the_same(tmp_path):
    source = text_pdf(tmp_path / "doc.pdf", 230, seed=3)
    whole = unsplit(source, 230, tmp_path / "whole", prefix="doc")
    plan = plan_slices("doc.pdf", 230, 100)
    target = tmp_path / "doc"
    land_slices(source, plan, target, strategy="page_ranges", workdir=tmp_path)
    result = stitch_parts(target, plan, stem="doc")
    assert result.numbering == ("n/a", "absolute", "absolute")
    check_against_unsplit(target, whole, plan)
    # Each slice's own JSON is kept as MinerU sent it.
    assert load(part_folder(target, plan.slices[1]), "_content_list.json")[0]["page_idx"] >= 100
    assert any(name.endswith("_origin.pdf") for name in result.unstitched)


# -- hand-made slices: images, shapes MinerU writes that the emulator does not --------------------


def land_part(target: Path, piece: PageSlice, members: dict[str, Any], workdir: Path) -> None:
    zip_path = workdir / f"hand-{piece.folder_name}.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, value in members.items():
            data = value if isinstance(value, (bytes, str)) else json.dumps(value)
            archive.writestr(name, data)
    land_result_zip(str(zip_path), str(part_folder(target, piece)))


def slice_members(piece: PageSlice, *, absolute: bool, image: bytes, extra: dict[str, Any] | None = None) -> dict:
    base = piece.page_offset if absolute else 0
    pages = range(base, base + piece.pages)
    return {
        "full.md": f"Slice {piece.index}\n\n![](images/fig.jpg)\n\n![](images/logo.jpg)\n\n![](images/fig.jpg)\n",
        "images/fig.jpg": image,
        "images/logo.jpg": b"the same logo in every slice",
        f"srv{piece.index}_content_list.json": [
            {"type": "text", "text": f"Slice {piece.index}", "page_idx": base},
            {"type": "image", "img_path": "images/fig.jpg", "page_idx": base + piece.pages - 1},
        ],
        f"srv{piece.index}_content_list_v2.json": [[{"type": "paragraph", "content": {"p": n}}] for n in pages],
        f"srv{piece.index}_model.json": [[{"type": "text", "bbox": [0, 0, 1, 1]}] for _ in pages],
        f"srv{piece.index}_middle.json": {
            "pdf_info": [
                {"page_idx": n, "para_blocks": [{"type": "image", "lines": [{"spans": [{"image_path": "fig.jpg"}]}]}]}
                for n in pages
            ],
            "_backend": "vlm",
        },
        "layout.json": {"_version_name": "2.5", "pdf_info": [{"page_idx": n, "page_size": [612, 792]} for n in pages]},
        f"srv{piece.index}.docx": b"PK docx bytes",
        f"srv{piece.index}_origin.pdf": b"%PDF slice",
        "summary.json": {"not": "page indexed"},
        **(extra or {}),
    }


@pytest.mark.parametrize("absolute", [False, True])
def test_images_shared_names_and_mineru_shapes(tmp_path, absolute):
    plan = plan_slices("book.pdf", 5, 2)  # 1-2, 3-4, 5-5
    target = tmp_path / "book"
    for piece in plan.slices:
        image = b"same figure" if piece.index == 2 else f"figure of slice {piece.index}".encode()
        land_part(target, piece, slice_members(piece, absolute=absolute, image=image), tmp_path)
    result = stitch_parts(target, plan, stem="book")
    # slice 2's fig.jpg has slice 0's name but other bytes... and slice 1's: renamed; logo.jpg is shared.
    assert result.renamed_images == {
        "parts/1-3-4/images/fig.jpg": "images/fig.s1.jpg",
        "parts/2-5-5/images/fig.jpg": "images/fig.s2.jpg",
    }
    assert sorted(p.name for p in (target / "images").iterdir()) == ["fig.jpg", "fig.s1.jpg", "fig.s2.jpg", "logo.jpg"]
    assert (target / "images" / "fig.s1.jpg").read_bytes() == b"figure of slice 1"
    assert (target / "full.md").read_text() == (
        "Slice 0\n\n![](images/fig.jpg)\n\n![](images/logo.jpg)\n\n![](images/fig.jpg)\n\n"
        "Slice 1\n\n![](images/fig.s1.jpg)\n\n![](images/logo.jpg)\n\n![](images/fig.s1.jpg)\n\n"
        "Slice 2\n\n![](images/fig.s2.jpg)\n\n![](images/logo.jpg)\n\n![](images/fig.s2.jpg)\n"
    )
    content = load(target, "book_content_list.json")
    assert [b["page_idx"] for b in content] == [0, 1, 2, 3, 4, 4]
    assert [b.get("img_path") for b in content if b["type"] == "image"] == [
        "images/fig.jpg",
        "images/fig.s1.jpg",
        "images/fig.s2.jpg",
    ]
    middle = load(target, "book_middle.json")
    assert middle["_backend"] == "vlm" and [p["page_idx"] for p in middle["pdf_info"]] == [0, 1, 2, 3, 4]
    spans = [p["para_blocks"][0]["lines"][0]["spans"][0]["image_path"] for p in middle["pdf_info"]]
    assert spans == ["fig.jpg", "fig.jpg", "fig.s1.jpg", "fig.s1.jpg", "fig.s2.jpg"]
    assert load(target, "layout.json") == {
        "_version_name": "2.5",
        "pdf_info": [{"page_idx": n, "page_size": [612, 792]} for n in range(5)],
    }
    # Pages of content_list_v2 carry no page index: concatenated in page order, as sent.
    v2 = [page[0]["content"]["p"] for page in load(target, "book_content_list_v2.json")]
    assert v2 == ([0, 1, 2, 3, 4] if absolute else [0, 1, 0, 1, 0])
    assert len(load(target, "book_model.json")) == 5
    assert set(result.unstitched) == {
        f"parts/{piece.folder_name}/{name}"
        for piece in plan.slices
        for name in (f"srv{piece.index}.docx", f"srv{piece.index}_origin.pdf", "summary.json")
    }
    assert read_marker(str(target)) is not None


def test_a_failed_slice_keeps_the_others_and_writes_no_result(tmp_path):
    source = text_pdf(tmp_path / "r.pdf", 50)
    plan = plan_slices("r.pdf", 50, 20)
    target = tmp_path / "r"
    land_slices(source, plan, target, strategy="page_ranges", workdir=tmp_path)
    failed = plan.slices[1]
    (part_folder(target, failed) / MARKER_NAME).unlink()  # as if it never landed
    assert landed_page_ranges(target, plan) == ["1-20", "41-50"]
    with pytest.raises(MinerUResultError, match="pages 21-40: no complete result"):
        stitch_parts(target, plan, stem="r")
    assert sorted(p.name for p in target.iterdir()) == ["parts"]
    assert read_marker(str(target)) is None
    assert slices_to_send(plan, [], landed=landed_page_ranges(target, plan)) == list(plan.slices)


def test_stitching_again_replaces_the_older_result_and_never_touches_parts(tmp_path):
    plan = plan_slices("b.pdf", 4, 2)
    target = tmp_path / "b"
    for piece in plan.slices:
        land_part(target, piece, slice_members(piece, absolute=False, image=b"x%d" % piece.index), tmp_path)
    stitch_parts(target, plan, stem="first")
    before = {p: p.read_bytes() for p in (target / "parts").rglob("*") if p.is_file()}
    (target / "stale.txt").write_text("from an older result")
    (target / ".stitch-partial-0123456789ab").mkdir()  # a stitch killed half-way
    result = stitch_parts(target, plan, stem="second", identity={"try": 2})
    names = {p.name for p in target.iterdir()}
    assert "stale.txt" not in names and "first_content_list.json" not in names
    assert "second_content_list.json" in names
    assert {p: p.read_bytes() for p in (target / "parts").rglob("*") if p.is_file()} == before
    assert read_marker(str(target), {"try": 2}) is not None and result.marker["identity"] == {"try": 2}
    assert not [p for p in target.iterdir() if p.name.startswith(".stitch-")]


def test_page_numbers_outside_the_slice_refuse_the_stitch(tmp_path):
    plan = plan_slices("c.pdf", 30, 10)
    target = tmp_path / "c"
    for piece in plan.slices:
        members = slice_members(piece, absolute=True, image=b"i")
        if piece.index == 2:
            members["layout.json"]["pdf_info"][0]["page_idx"] = 5  # neither 20.. nor 0..9 throughout
        land_part(target, piece, members, tmp_path)
    with pytest.raises(MinerUResultError, match=r"pages 21-30: its result numbers pages 5\.\.29"):
        stitch_parts(target, plan, stem="c")
    assert read_marker(str(target)) is None
