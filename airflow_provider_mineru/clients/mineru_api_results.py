"""
A ``mineru-api`` result re-laid into the cloud's layout, so everything after the download is the same.

``full.md`` (from ``markdown.md``, image links kept working), ``images/``, a
``<id>_content_list.json`` derived from ``structured_content.json``, and the server's own JSON
files beside them. No HTTP here: :mod:`~airflow_provider_mineru.clients.mineru_api` downloads.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mineru.exceptions import MinerUResultError
from airflow_provider_mineru.utils.safe_zip import ZipLimits, extract_result_zip

_TITLE_TYPES = frozenset({"doc_title", "title", "paragraph_title"})


def _result_folder(raw: Path) -> Path:
    """The folder holding ``markdown.md``: the zip's top, or its only numbered folder."""
    if (raw / "markdown.md").is_file():
        return raw
    folders = [p for p in sorted(raw.iterdir()) if p.is_dir() and (p / "markdown.md").is_file()]
    if len(folders) == 1:
        return folders[0]
    raise MinerUResultError(
        f"the mineru-api result zip has no markdown.md (found {sorted(p.name for p in raw.iterdir())[:10]})"
    )


def content_list_from_structured(structured: Any) -> list[dict[str, Any]]:
    """
    Reading-order blocks in the cloud's ``*_content_list.json`` shape from V1 ``structured_content.json``.

    Each block becomes ``{"type", "text", "page_idx"}`` (titles get ``text_level``, images ``img_path``).
    """
    blocks: list[dict[str, Any]] = []
    pages = structured.get("pages") if isinstance(structured, dict) else None
    for page_number, page in enumerate(pages or []):
        if not isinstance(page, dict):
            continue
        page_idx = page.get("page_idx") if isinstance(page.get("page_idx"), int) else page_number
        for block in page.get("blocks") or []:
            if not isinstance(block, dict):
                continue
            kind = str(block.get("type") or "text")
            entry: dict[str, Any] = {"type": "text", "text": _block_text(block.get("content")), "page_idx": page_idx}
            if kind in _TITLE_TYPES:
                entry["text_level"] = int(block.get("level") or 1)
            elif kind in ("table", "image", "equation", "code", "list"):
                entry["type"] = kind
                if kind == "table":
                    entry["table_body"] = entry.pop("text")
                if kind == "image":
                    entry["img_path"] = block.get("image_source") or block.get("path") or ""
                    captions = [_block_text(c) for c in block.get("captions") or []]
                    if any(captions):
                        entry["img_caption"] = [c for c in captions if c]
            if block.get("bbox") is not None:
                entry["bbox"] = block["bbox"]
            blocks.append(entry)
    return blocks


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_block_text(item) for item in content) if t)
    if isinstance(content, dict):
        for key in ("html", "markdown", "text", "latex", "content", "caption"):
            if isinstance(content.get(key), (str, list, dict)):
                text = _block_text(content[key])
                if text:
                    return text
        return ""
    return "" if content is None else str(content)


def relayout_result(source: Path, target: Path, stem: str) -> None:
    """
    Lay one V1 result folder out like a cloud result: ``full.md``, ``images/``,
    ``<stem>_content_list.json``, and the server's JSON files (``middle_json.json``,
    ``structured_content.json``, ``model_output.json``) beside them.
    """
    target.mkdir(parents=True, exist_ok=True)
    markdown = (source / "markdown.md").read_text("utf-8", errors="replace")
    (target / "full.md").write_text(markdown, "utf-8")  # image links are relative to images/, as in the cloud's
    if (source / "images").is_dir():
        shutil.copytree(source / "images", target / "images")
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix == ".json":
            shutil.copyfile(path, target / path.name)
    structured_path = source / "structured_content.json"
    blocks: list[dict[str, Any]] = []
    if structured_path.is_file():
        try:
            blocks = content_list_from_structured(json.loads(structured_path.read_text("utf-8")))
        except ValueError:
            blocks = []
    if not blocks and markdown.strip():
        blocks = [{"type": "text", "text": markdown, "page_idx": 0}]
    (target / f"{stem}_content_list.json").write_text(json.dumps(blocks, ensure_ascii=False), "utf-8")


def relayout_zip(zip_path: Path, url: str, work: Path, limits: ZipLimits) -> Path:
    """
    The server's result zip at ``zip_path`` as a zip in the cloud's layout, built under ``work``.

    :param url: the document's ``full_zip_url`` (its second-to-last path segment names the files).
    :param limits: the zip-bomb limits of the server's zip.
    """
    raw = work / "raw"
    raw.mkdir()
    extract_result_zip(zip_path, raw, limits=limits)
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "_", urlsplit(url).path.rstrip("/").split("/")[-2])
    cloud = work / "cloud"
    relayout_result(_result_folder(raw), cloud, stem or "mineru")
    cloud_zip = work / "cloud.zip"
    with zipfile.ZipFile(cloud_zip, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(cloud.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(cloud).as_posix())
    return cloud_zip
