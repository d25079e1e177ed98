"""
The emulator's result generation, called in-process: what MinerU would return for a whole
document, for one ``page_ranges`` slice of it, or for a locally split part.

The emulator is imported by its path inside the provider for now (tests only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow_provider_mineru.long_documents.plan import PageSlice, SlicePlan
from airflow_provider_mineru.long_documents.split import split_pdf
from airflow_provider_mineru.long_documents.stitch import part_folder
from airflow_provider_mineru.results.landing import land_result_zip
from mineru_emulator._pdf import make_pdf
from mineru_emulator.cloud.result_zip import ResultSpec, build_result_zip


def page_lines(page: int, seed: int = 0) -> list[str]:
    """Text of page ``page`` (0-based): a few lines, some pages with a table, some blank."""
    kind = (page * 7 + seed) % 11
    if kind == 0:
        return []  # a blank page
    lines = [f"Page {page + 1} line {i} seed {seed}" for i in range(1 + (page + seed) % 3)]
    if kind == 3:
        lines += [f"cell {page} a | cell {page} b", f"row {page} c | row {page} d"]
    return lines


def text_pdf(path: Path, pages: int, seed: int = 0) -> Path:
    """A text PDF of ``pages`` pages (the emulator's own writer)."""
    path.write_bytes(make_pdf([page_lines(p, seed) for p in range(pages)]))
    return path


def build(source: Path, out_zip: Path, pages: list[int], *, prefix: str, name: str | None = None) -> Path:
    """The emulator's result zip of ``pages`` (0-based) of ``source``."""
    build_result_zip(
        ResultSpec(
            source_path=str(source),
            kind="pdf",
            file_name=name or source.name,
            member_prefix=prefix,
            pages=pages,
            total_pages=len(pages),
            size=source.stat().st_size,
            extra_formats=[],
        ),
        str(out_zip),
    )
    return out_zip


def unsplit(source: Path, total: int, folder: Path, *, prefix: str) -> Path:
    """The emulator's result of the whole document, landed into ``folder``."""
    zip_path = build(source, folder.parent / f"{folder.name}.zip", list(range(total)), prefix=prefix)
    land_result_zip(str(zip_path), str(folder))
    return folder


def land_slices(source: Path, plan: SlicePlan, target: Path, *, strategy: str, workdir: Path) -> None:
    """
    Each slice's emulator result landed into its part folder.

    ``strategy="page_ranges"``: the server sees the whole file and selects the slice's pages (absolute
    page_idx, as the emulator and the open-source server number them). ``"split"``: the server sees
    a locally split part (page_idx from 0).
    """
    if strategy == "page_ranges":
        for piece in plan.slices:
            pages = list(range(piece.first_page - 1, piece.last_page))
            zip_path = build(source, workdir / f"slice-{piece.index}.zip", pages, prefix=f"id{piece.index}")
            land_result_zip(str(zip_path), str(part_folder(target, piece)))
    else:
        for part in split_pdf(source, plan, workdir):
            piece: PageSlice = part.slice
            zip_path = build(part.path, workdir / f"part-{piece.index}.zip", list(range(piece.pages)), prefix="p")
            land_result_zip(str(zip_path), str(part_folder(target, piece)))
            if part.path != source:
                os.unlink(part.path)


def load(folder: Path, suffix: str) -> Any:
    """The JSON file of ``folder`` (top level) whose name ends with ``suffix``."""
    (match,) = [p for p in folder.iterdir() if p.name.endswith(suffix) and p.is_file()]
    return json.loads(match.read_text("utf-8"))


def comparable(value: Any) -> Any:
    """
    ``value`` (a result's JSON or Markdown) without the two things the emulator numbers per parse.

    Layout blocks' ``index`` is dropped: the emulator numbers blocks through the whole document,
    MinerU per page (``vlm_magic_model.py``: ``enumerate(page_blocks)``; the pipeline's reading
    order is per page too), so a per-page index needs no offset and the stitcher leaves it.

    "title" is made plain text everywhere:
    The emulator makes the first line of whatever it parses a title (``text_level: 1``, layout
    type ``title``, model category 0, ``# `` in Markdown), so each slice's first line comes back as
    a title, which MinerU's layout model would not do for a line in the middle of a document. The
    comparisons with the unsplit result are made without titles, and the tests check separately that
    titles differ only at slice starts. Reported for the emulator.
    """
    if isinstance(value, str):
        return "\n\n".join(p[2:] if p.startswith("# ") else p for p in value.split("\n\n"))
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if isinstance(value, dict):
        out = {k: comparable(v) for k, v in value.items() if k not in ("text_level", "index")}
        if out.get("type") == "title":
            out["type"] = "text"
        if out.get("category_id") == 0:
            out["category_id"] = 1
        return out
    return value


def slice_first_blocks(content_list: list[dict[str, Any]], plan: SlicePlan) -> set[int]:
    """Positions in ``content_list`` of each later slice's first block (the emulator makes it a title)."""
    out: set[int] = set()
    for piece in plan.slices[1:]:
        for position, block in enumerate(content_list):
            if piece.page_offset <= block["page_idx"] <= piece.last_page - 1:
                out.add(position)
                break
    return out
