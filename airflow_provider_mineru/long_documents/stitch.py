"""
Stitching the results of a split input's slices into one folder that reads like an unsplit result.

Layout of a stitched document folder (``<output_path>/<name>/``)::

    full.md                      every slice's Markdown, in page order
    <stem>_content_list.json     blocks of every slice, page_idx 0..N-1
    <stem>_model.json            pages of every slice (page_info.page_no offset too)
    layout.json                  pdf_info of every slice, page_idx 0..N-1
    <stem>_content_list_v2.json  (when MinerU wrote it) pages of every slice
    <stem>_origin.pdf            (when the caller hands over the source PDF)
    images/                      every slice's images; a name two slices use for different
                                 bytes is renamed (``<name>.s<index>.<ext>``) and its references
                                 rewritten in full.md and the JSON
    parts/<index>-<first>-<last>/  each slice's own result as MinerU sent it (landed with its own
                                 completion marker), untouched
    .mineru-complete.json        the completion marker, written last

Each slice is landed first into ``parts/<index>-<first>-<last>/`` (one normal result folder per
slice, with :func:`~airflow_provider_mineru.results.landing.land_result_zip`); :func:`stitch_parts` then
writes the top-level files. A failed slice leaves the others under ``parts/`` and no top-level
result (no marker: a retry sees the input incomplete and sends only the missing slices,
:func:`~.parts.slices_to_send` with :func:`landed_page_ranges`).

Page numbering: a server may number a slice's pages from 0 (relative) or keep each page's
index in the whole document (absolute; the open-source ``mineru`` server and the emulator do).
The stitcher decides per slice from the page indices it finds: indices within the slice's own
range (``first_page - 1`` .. ``last_page - 1``) are absolute, indices within ``0 .. pages - 1``
relative; the leading slices are all ``max_pages`` long, so the two ranges do not overlap past
the first slice. Indices that fit neither refuse the stitch.

Page-indexed JSON handled: any top-level ``*.json`` every slice has, when it is a list (items'
``page_idx``, and ``page_info.page_no`` of model output, are offset; nested lists of pages are
concatenated) or an object with a ``pdf_info`` list (``layout.json``, ``*_middle.json``).
Anything else (``.docx``/``.html``/``.tex`` extra formats, each slice's ``*_origin.pdf`` when no
source is handed over) stays under ``parts/`` only and is listed in
:attr:`StitchedResult.unstitched`.

Memory: one slice's Markdown or one slice's JSON file is held at a time; output is streamed.
Local folders only for now (object storage: later).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_mineru.exceptions import MinerUResultError
from airflow_provider_mineru.long_documents.plan import PageSlice, SlicePlan
from airflow_provider_mineru.results.landing import MARKER_NAME, completion_marker, read_marker

__all__ = ["PARTS_DIR", "StitchedResult", "landed_page_ranges", "part_folder", "stitch_parts"]

log = logging.getLogger(__name__)

#: The folder, inside a split input's result folder, holding each slice's own result.
PARTS_DIR = "parts"
_CHUNK = 1024 * 1024
_PREFIXED_SUFFIXES = ("_content_list_v2.json", "_content_list.json", "_middle.json", "_model.json", "_origin.pdf")


@dataclass(frozen=True)
class StitchedResult:
    """
    What :func:`stitch_parts` wrote.

    :param target: the input's folder.
    :param files: every file the marker lists, relative POSIX paths: the stitched files first,
        then each slice's files under ``parts/``.
    :param pages: pages of the stitched result (``page_idx`` runs ``0 .. pages - 1``).
    :param numbering: per slice, ``"absolute"`` or ``"relative"``: how its server numbered pages
        (``"n/a"`` for the first slice, where both agree, and for a slice without page indices).
    :param renamed_images: ``{"parts/<slice>/images/x.jpg": "images/x.s1.jpg"}`` for every image
        renamed to avoid a collision.
    :param unstitched: files kept under ``parts/`` only (relative paths).
    :param marker: the completion marker written (what ``landing.read_marker`` reads).
    """

    target: str
    files: tuple[str, ...]
    pages: int
    numbering: tuple[str, ...]
    renamed_images: dict[str, str]
    unstitched: tuple[str, ...]
    marker: dict[str, Any] = field(repr=False)


def part_folder(target: str | os.PathLike[str], piece: PageSlice) -> Path:
    """Where ``piece``'s own result is landed: ``<target>/parts/<index>-<first>-<last>``."""
    return Path(target) / PARTS_DIR / piece.folder_name


def landed_page_ranges(target: str | os.PathLike[str], plan: SlicePlan) -> list[str]:
    """The page ranges of ``plan``'s slices whose results are complete under ``parts/`` (marker present)."""
    return [piece.page_ranges for piece in plan.slices if read_marker(str(part_folder(target, piece))) is not None]


# -- one slice's folder ---------------------------------------------------------------------------


@dataclass
class _Slice:
    piece: PageSlice
    root: Path
    rel: str  # "parts/<folder>"
    files: list[str]
    markdown: str | None = None
    images: list[str] = field(default_factory=list)
    json_roles: dict[str, str] = field(default_factory=dict)  # role -> file name
    others: list[str] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)  # "images/x.jpg" -> "images/x.s1.jpg"
    offset: int = 0
    numbering: str = "relative"


def _walk(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if rel != MARKER_NAME:
                out.append(rel)
    return out


def _prefix(files: Iterable[str]) -> str | None:
    for suffix in _PREFIXED_SUFFIXES:
        for name in files:
            if "/" not in name and name.lower().endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
    return None


def _read_slice(target: Path, piece: PageSlice) -> _Slice:
    root = part_folder(target, piece)
    if read_marker(str(root)) is None:
        raise MinerUResultError(f"pages {piece.page_ranges}: no complete result in {root}")
    files = _walk(root)
    found = _Slice(piece, root, f"{PARTS_DIR}/{piece.folder_name}", files)
    prefix = _prefix(files)
    for name in files:
        if name.startswith("images/"):
            found.images.append(name)
        elif name.lower() == "full.md":
            found.markdown = name
        elif "/" not in name and name.lower().endswith(".json"):
            role = name[len(prefix) :] if prefix and name.startswith(prefix + "_") else name
            found.json_roles[role] = name
        else:
            found.others.append(name)
    if found.markdown is None:
        found.markdown = next((n for n in found.others if "/" not in n and n.lower().endswith(".md")), None)
        if found.markdown is not None:
            found.others.remove(found.markdown)
    return found


# -- page numbering -------------------------------------------------------------------------------


def _page_numbers(value: Any, parent: str = "") -> Iterator[int]:
    """Every page index in a result's JSON: ``page_idx`` keys, and ``page_no`` of ``page_info``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, int) and not isinstance(item, bool):
                if key == "page_idx" or (key == "page_no" and parent == "page_info"):
                    yield item
            elif isinstance(item, (dict, list)):
                yield from _page_numbers(item, key)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                yield from _page_numbers(item, parent)


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise MinerUResultError(f"cannot read {path}: {exc}") from exc


def _decide_numbering(found: _Slice) -> None:
    piece = found.piece
    low: int | None = None
    high: int | None = None
    for role in sorted(found.json_roles):
        for number in _page_numbers(_load_json(found.root / found.json_roles[role])):
            low = number if low is None else min(low, number)
            high = number if high is None else max(high, number)
    if piece.first_page == 1 or low is None or high is None:  # both numberings agree, or nothing to number
        found.offset, found.numbering = piece.page_offset, "n/a"
        return
    absolute = piece.page_offset <= low and high <= piece.last_page - 1
    relative = low >= 0 and high <= piece.pages - 1
    if absolute and relative:  # only when the two ranges overlap: the first page decides
        relative = low != piece.page_offset
    if relative:
        found.offset, found.numbering = piece.page_offset, "relative"
    elif absolute:
        found.offset, found.numbering = 0, "absolute"
    else:
        raise MinerUResultError(
            f"pages {piece.page_ranges}: its result numbers pages {low}..{high}, neither within the slice "
            f"({piece.page_offset}..{piece.last_page - 1}) nor from 0 ({piece.pages} pages); cannot stitch it"
        )


def _adjust(value: Any, offset: int, strings: dict[str, str], parent: str = "") -> Any:
    """``value`` with page indices moved by ``offset`` and renamed image paths rewritten."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if (
                isinstance(item, int)
                and not isinstance(item, bool)
                and (key == "page_idx" or (key == "page_no" and parent == "page_info"))
            ):
                out[key] = item + offset
            else:
                out[key] = _adjust(item, offset, strings, key)
        return out
    if isinstance(value, list):
        return [_adjust(item, offset, strings, parent) for item in value]
    if isinstance(value, str) and strings:
        return strings.get(value, value)
    return value


# -- images ---------------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and _digest(a) == _digest(b)


def _place(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, destination)  # same disk: no copy (parts/ and the top level share the bytes)
    except OSError:
        shutil.copyfile(source, destination)


def _merge_images(slices: list[_Slice], staging: Path) -> dict[str, str]:
    claimed: dict[str, Path] = {}  # lower-case relative name -> its file (case-insensitive disks)
    renamed: dict[str, str] = {}
    for found in slices:
        for rel in found.images:
            source = found.root / rel
            key = rel.lower()
            if key in claimed and _same_bytes(claimed[key], source):
                continue
            new = rel
            if key in claimed:
                head, ext = posixpath.splitext(rel)
                counter = 0
                while new.lower() in claimed:
                    suffix = f".s{found.piece.index}" + (f"-{counter}" if counter else "")
                    new, counter = f"{head}{suffix}{ext}", counter + 1
                found.renames[rel] = new
                renamed[f"{found.rel}/{rel}"] = new
            claimed[new.lower()] = source
            _place(source, staging / new)
    return renamed


def _string_renames(found: _Slice) -> dict[str, str]:
    """JSON strings to rewrite: the relative path, and the bare name (``*_middle.json`` spans use it)."""
    out: dict[str, str] = {}
    for old, new in found.renames.items():
        out[old] = new
        if old.count("/") == 1:
            out[posixpath.basename(old)] = posixpath.basename(new)
    return out


def _markdown_renamer(found: _Slice) -> Any:
    if not found.renames:
        return lambda text: text
    names = sorted(found.renames, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w.-])")
    return lambda text: pattern.sub(lambda m: found.renames[m.group(1)], text)


# -- writing --------------------------------------------------------------------------------------


def _write_markdown(slices: list[_Slice], out: Path) -> None:
    first = True
    with open(out, "w", encoding="utf-8", newline="") as handle:
        for found in slices:
            if found.markdown is None:
                raise MinerUResultError(f"pages {found.piece.page_ranges}: the result has no Markdown")
            text = (found.root / found.markdown).read_text("utf-8").rstrip("\n")
            if not text.strip():
                continue
            handle.write(("" if first else "\n\n") + _markdown_renamer(found)(text))
            first = False
        handle.write("\n")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _write_json(role: str, slices: list[_Slice], out: Path) -> bool:
    """Stitch one JSON role; False (nothing written) when its shape is not one that can be stitched."""
    first_value = _load_json(slices[0].root / slices[0].json_roles[role])
    if isinstance(first_value, list):
        shape = "list"
    elif isinstance(first_value, dict) and isinstance(first_value.get("pdf_info"), list):
        shape = "pdf_info"
    else:
        return False
    head_keys = dict(first_value) if shape == "pdf_info" else {}
    del first_value
    with open(out, "w", encoding="utf-8") as handle:
        if shape == "pdf_info":
            keys = list(head_keys)
            position = keys.index("pdf_info")
            handle.write("{" + "".join(f"{_dump(k)}: {_dump(head_keys[k])}, " for k in keys[:position]))
            handle.write('"pdf_info": [')
        else:
            handle.write("[")
        wrote = False
        for found in slices:
            value = _load_json(found.root / found.json_roles[role])
            items = value.get("pdf_info") if shape == "pdf_info" and isinstance(value, dict) else value
            if not isinstance(items, list):
                raise MinerUResultError(f"pages {found.piece.page_ranges}: {found.json_roles[role]} has another shape")
            strings = _string_renames(found)
            for item in items:
                handle.write((", " if wrote else "") + _dump(_adjust(item, found.offset, strings)))
                wrote = True
            del value, items
        if shape == "pdf_info":
            handle.write("]" + "".join(f", {_dump(k)}: {_dump(head_keys[k])}" for k in keys[position + 1 :]) + "}")
        else:
            handle.write("]")
    return True


def _stitched_name(role: str, stem: str) -> str:
    return stem + role if role.startswith("_") else role


def _install(staging: Path, target: Path, names: list[str]) -> None:
    """Move the staged top-level entries into ``target``, removing top-level leftovers of an older stitch."""
    keep = set(names) | {PARTS_DIR, MARKER_NAME, staging.name}
    for entry in list(target.iterdir()):
        stale_staging = entry.name.startswith(".stitch-partial-")  # left by a stitch that was killed
        if entry.name in keep or (entry.name.startswith(".") and not stale_staging):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    for name in names:
        destination = target / name
        if destination.is_dir() and not destination.is_symlink():
            aside = target / f".{name}.old-{uuid.uuid4().hex[:12]}"
            os.rename(destination, aside)
            os.rename(staging / name, destination)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging / name, destination)


def stitch_parts(
    target: str | os.PathLike[str],
    plan: SlicePlan,
    *,
    stem: str,
    identity: dict[str, Any] | None = None,
    origin_pdf: str | os.PathLike[str] | None = None,
) -> StitchedResult:
    """
    Write the stitched result of ``plan``'s slices into ``target``, completion marker last.

    Every slice's result must already be complete in :func:`part_folder` (landed with its own
    marker). An older stitched result in ``target`` is replaced; ``parts/`` is never modified.

    :param target: the input's result folder (local).
    :param plan: the input's plan; its slices, in page order, cover the document.
    :param stem: the prefix of the stitched JSON names (``<stem>_content_list.json``), as an
        unsplit result would have it (the input's stem, or MinerU's id of the first slice).
    :param identity: written into the marker (``landing.read_marker`` compares it on a retry).
    :param origin_pdf: the source PDF, copied as ``<stem>_origin.pdf`` (an unsplit result has the
        whole document there); without it each slice's origin PDF stays under ``parts/`` only.
    :raises MinerUResultError: a slice's result is missing, unreadable or numbered outside its pages.
    """
    root = Path(target)
    if not plan.slices:
        raise MinerUResultError(f"{plan.name}: a plan without slices has nothing to stitch")
    slices = [_read_slice(root, piece) for piece in plan.slices]
    for found in slices:
        _decide_numbering(found)
    staging = root / f".stitch-partial-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        (root / MARKER_NAME).unlink(missing_ok=True)  # incomplete from here until the new marker
        renamed = _merge_images(slices, staging)
        top: list[str] = ["full.md"]
        _write_markdown(slices, staging / "full.md")
        unstitched: list[str] = []
        common = set.intersection(*(set(found.json_roles) for found in slices))
        for role in sorted(common):
            name = _stitched_name(role, stem)
            if _write_json(role, slices, staging / name):
                top.append(name)
            else:
                unstitched += [f"{found.rel}/{found.json_roles[role]}" for found in slices]
        for found in slices:
            unstitched += [f"{found.rel}/{found.json_roles[r]}" for r in sorted(set(found.json_roles) - common)]
            for rel in found.others:
                if not (origin_pdf is not None and rel.lower().endswith("_origin.pdf")):
                    unstitched.append(f"{found.rel}/{rel}")
        if origin_pdf is not None:
            name = f"{stem}_origin.pdf"
            shutil.copyfile(origin_pdf, staging / name)
            top.append(name)
        if (staging / "images").is_dir():
            top.append("images")
        _install(staging, root, top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [rel for name in top for rel in ([name] if name != "images" else _prefixed("images", root / "images"))]
    files += [f"{found.rel}/{rel}" for found in slices for rel in found.files]
    total = sum((root / rel).stat().st_size for rel in files)
    pages = plan.slices[-1].last_page
    marker = {
        **completion_marker(files, dict(identity or {}), total_bytes=total),
        "stitched": {
            "pages": pages,
            "parts": [found.piece.folder_name for found in slices],
            "numbering": [found.numbering for found in slices],
        },
    }
    _write_marker(root, marker)
    for old, new in renamed.items():
        log.info("Stitching %s: image %s renamed to %s (another slice has an image of that name)", plan.name, old, new)
    return StitchedResult(
        target=str(root),
        files=tuple(files),
        pages=pages,
        numbering=tuple(found.numbering for found in slices),
        renamed_images=renamed,
        unstitched=tuple(unstitched),
        marker=marker,
    )


def _prefixed(prefix: str, folder: Path) -> list[str]:
    return [f"{prefix}/{rel}" for rel in _walk(folder)]


def _write_marker(root: Path, marker: dict[str, Any]) -> None:
    temporary = root / f".{MARKER_NAME}.partial-{uuid.uuid4().hex[:12]}"
    try:
        temporary.write_text(json.dumps(marker, separators=(",", ":")), "utf-8")
        os.replace(temporary, root / MARKER_NAME)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise MinerUResultError(f"cannot write the completion marker in {root}: {exc}") from exc
