"""
The cloud API's documents: fetching a task's URL, inspecting what arrived (kind, size, pages,
the selected page ranges) and building the result zip at first download.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mineru_emulator.cloud import contract
from mineru_emulator.cloud.contract import err_msg
from mineru_emulator.http import CHUNK

if TYPE_CHECKING:
    from mineru_emulator.cloud.state import CloudState, Task


def _kind(ext: str) -> str:
    if ext == ".pdf":
        return "pdf"
    if ext in contract.IMAGE_EXTENSIONS:
        return "image"
    return "html" if ext in contract.HTML_EXTENSIONS else "office"


def inspect_document(
    task: Task, path: str, size: int, too_big: bool, *, max_file_bytes: int, max_pages: int
) -> dict[str, Any]:
    """
    Check a fetched/uploaded document.

    :param task: its task (the extension and page ranges are read).
    :param path: where it is stored.
    :param size: its size in bytes (as far as it was read).
    :param too_big: it is over ``max_file_bytes`` (and was not stored whole).
    :param max_file_bytes: the size limit (for the message).
    :param max_pages: the page limit.
    :return: the fields to set on the task.
    """
    kind = _kind(task.ext)
    out: dict[str, Any] = {"doc_path": path, "doc_size": size, "kind": kind, "doc_error": None}
    if too_big:
        out["doc_error"] = err_msg(-60005, f"the file is over {max_file_bytes} bytes")
        return out
    if size == 0:
        out["doc_error"] = err_msg(-60004)
        return out
    total = 1
    if kind == "pdf":
        try:
            from pypdf import PdfReader

            total = len(PdfReader(path).pages)
            if total < 1:
                raise ValueError("no pages")
        except Exception as exc:
            out["doc_error"] = err_msg(-60003, f"not a readable PDF: {type(exc).__name__}")
            return out
    out["total_pages"] = total
    if total > max_pages:
        out["doc_error"] = err_msg(-60006, f"{total} pages, the limit is {max_pages}")
        return out
    selected = contract.resolve_page_ranges(task.page_ranges, total) if kind == "pdf" else [0]
    if not selected:
        out["doc_error"] = err_msg(
            -10002, f"page_ranges {task.page_ranges!r} selects no page of a {total}-page document"
        )
    out["selected"] = selected
    return out


def inspect_for(state: CloudState, task: Task, path: str, size: int, too_big: bool) -> dict[str, Any]:
    """:func:`inspect_document` with the state's limits."""
    limits = state.limits
    return inspect_document(task, path, size, too_big, max_file_bytes=limits.max_file_bytes, max_pages=limits.max_pages)


def fetch(state: CloudState, task_id: str, generation: int, url: str, path: str) -> None:
    """Fetch a task's URL into ``path`` (worker thread), inspect it and hand it to the state."""
    import urllib.error
    import urllib.request

    from mineru_emulator._samples import demo_document

    demo = demo_document(url)
    error: str | None = None
    size = 0
    too_big = False
    try:
        if demo is not None and not state.limits.fetch_demo_urls:
            raise OSError("built-in demo document")
        request = urllib.request.Request(url, headers={"User-Agent": "MinerU-emulator/1.0"})
        with (
            urllib.request.urlopen(request, timeout=state.timings.fetch_timeout) as response,
            open(path, "wb") as out,
        ):
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > state.limits.max_file_bytes:
                    too_big = True
                    break
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        error = f"HTTP {exc.code} fetching {url}"
    except Exception as exc:
        error = f"{type(exc).__name__} fetching {url}"
    if error is not None and demo is not None:
        with open(path, "wb") as out:
            out.write(demo)
        error, size, too_big = None, len(demo), False
    if error is not None:
        info: dict[str, Any] = {"doc_error": err_msg(-60008, error), "doc_path": None}
    else:
        with state.lock:
            task = state.tasks.get(task_id)
        if task is None:
            return
        info = inspect_for(state, task, path, size, too_big)
    state.document_ready(task_id, generation, info, queue=False)


def ensure_zip(task: Task, zips_dir: str, member_prefix: str) -> str:
    """
    Build the task's result zip once (at first download).

    :param task: a ``done`` task.
    :param zips_dir: where zips are stored.
    :param member_prefix: ``"stem"`` (the input's stem) or ``"id"`` (a server-side id).
    :return: the zip's path.
    """
    from mineru_emulator.cloud.result_zip import ResultSpec, build_result_zip, member_stem

    with task.build_lock:
        if task.zip_path and os.path.exists(task.zip_path):
            return task.zip_path
        prefix = task.zip_id if member_prefix == "id" else member_stem(task.file_name, task.zip_id)
        spec = ResultSpec(
            source_path=task.doc_path or "",
            kind=task.kind,
            file_name=task.file_name,
            member_prefix=prefix,
            pages=list(task.selected) or [0],
            total_pages=task.total_pages,
            size=task.doc_size,
            extra_formats=list(task.options.get("extra_formats") or []),
            model_version=task.options.get("model_version") or "pipeline",
        )
        path = os.path.join(zips_dir, f"{task.zip_id}.zip")
        build_result_zip(spec, path)
        task.zip_path = path
        return path
