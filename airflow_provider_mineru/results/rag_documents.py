"""
Turn MinerU results into documents for RAG pipelines: one document per page.

Each document is ``{"text": …, "metadata": {"file_name", "data_id", "page_number", "block_types",
"output_path", "source"}}`` — the shape apache-airflow-providers-common-ai's
``DocumentLoaderOperator`` returns — built from the reading-order blocks of a result's
``*_content_list.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider_mineru.results.xcom import read_results_jsonl, xcom_values

#: Block fields that hold text, by block type (tables keep their HTML, equations their LaTeX).
_TEXT_FIELDS = ("text", "table_body", "latex", "code_body", "list_items")
_CAPTION_FIELDS = ("img_caption", "image_caption", "table_caption", "table_footnote", "img_footnote")


def block_text(block: dict[str, Any]) -> str:
    """The readable text of one content-list block (captions included), or ``""``."""
    parts: list[str] = []
    for name in (*_TEXT_FIELDS, *_CAPTION_FIELDS):
        value = block.get(name)
        if isinstance(value, list):
            parts.extend(str(v) for v in value if v)
        elif value:
            parts.append(str(value))
    text = "\n".join(p.strip() for p in parts if str(p).strip())
    if block.get("text_level") == 1 and text:
        return f"# {text}"
    return text


def page_documents(
    blocks: Iterable[dict[str, Any]], *, file_name: str | None, data_id: str | None, output_path: str | None
) -> list[dict[str, Any]]:
    """Group content-list blocks by page (``page_idx``, 0-based) into one document per page."""
    pages: dict[int, list[dict[str, Any]]] = {}
    for block in blocks:
        if isinstance(block, dict):
            pages.setdefault(int(block.get("page_idx") or 0), []).append(block)
    documents = []
    for page_idx in sorted(pages):
        page_blocks = pages[page_idx]
        text = "\n\n".join(t for t in (block_text(b) for b in page_blocks) if t)
        documents.append(
            {
                "text": text,
                "metadata": {
                    "file_name": file_name,
                    "data_id": data_id,
                    "page_number": page_idx + 1,
                    "block_types": sorted({str(b.get("type", "text")) for b in page_blocks}),
                    "output_path": output_path,
                    "source": "mineru",
                },
            }
        )
    return documents


def iter_result_entries(results: Any) -> Iterator[dict[str, Any]]:
    """Every document entry in the XCom of any MinerU operator or sensor (or a list of them)."""

    for value in xcom_values(results):
        if not isinstance(value, dict):
            continue
        if "results_path" in value:  # a large batch: its entries are in a JSONL file
            yield from (entry for entry in read_results_jsonl(value["results_path"]) if isinstance(entry, dict))
        elif "results" in value:
            yield from (entry for entry in value["results"] if isinstance(entry, dict))
        elif "task_id" in value:
            yield value


def find_content_list(folder: Any) -> Any | None:
    """The ``*_content_list.json`` (not ``_v2``) directly inside an extracted result folder."""
    candidates = sorted((p for p in folder.iterdir() if p.name.endswith("_content_list.json")), key=lambda p: p.name)
    return candidates[0] if candidates else None


def write_jsonl(path: Any, documents: Iterable[dict[str, Any]]) -> int:
    """Write documents as JSON lines (local or object storage); return how many."""
    count = 0
    with path.open("wb") as handle:
        for document in documents:
            handle.write(json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n")
            count += 1
    return count
