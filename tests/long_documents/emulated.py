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
