"""
The bodies of the emulated ``mineru-api``'s answers, as data: health and tiers, task payloads,
results and result zips (the error body is :func:`.contract.error_body`). No HTTP.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

from mineru_emulator.mineru_api.contract import OUTPUT_FORMATS, TIERS
from mineru_emulator.mineru_api.state import TaskRecord, Timings


def iso(epoch: float | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def health(version: str) -> dict[str, Any]:
    """``GET /v1/health``."""
    return {
        "status": "ok",
        "version": version,
        "features": {
            "webhook": False,
            "output_formats": sorted(OUTPUT_FORMATS),
            "sources": ["file_id", "url", "inline"],
        },
    }


def tiers(server_tier: str, version: str) -> dict[str, Any]:
    """``GET /v1/tiers``: the tiers up to the server's (all of them on a ``standard`` server)."""
    available = TIERS[: TIERS.index(server_tier) + 1] if server_tier != "standard" else TIERS
    return {
        "object": "list",
        "data": [{"id": t, "description": t, "current_model": f"mineru-{version}"} for t in available],
    }


def _page_count(task: TaskRecord, index: int) -> str:
    pages = len(task.files[index].outcome.pages)
    return "" if pages == 0 else ("1" if pages == 1 else f"1-{pages}")


def task_payload(
    task: TaskRecord, now: float, timings: Timings, file_ids: dict[tuple[int, str], str]
) -> dict[str, Any]:
    """``GET /v1/tasks/{id}`` as the real server answers it (``JobAsyncResponse`` + task links)."""
    statuses = [task.file_status(i, now, timings) for i in range(len(task.files))]
    status = task.status(now, timings)
    started = task.created + timings.queued
    files = []
    for index, (record, file_status) in enumerate(zip(task.files, statuses, strict=True)):
        if status == "canceled" and file_status in ("queued", "running"):
            file_status = "queued"
        entry: dict[str, Any] = {
            "file_id": record.file_id,
            "name": record.name,
            "page_range": record.page_range if file_status != "completed" else _page_count(task, index),
            "status": file_status,
            "parse": None,
            "output_files": None,
            "error": None,
        }
        if file_status == "completed":
            outputs: dict[str, Any] = {k: None for k in ("markdown", "middle_json", "structured_content")}
            outputs.update(html=None, latex=None, docx=None, zip=None)
            for fmt in task.output_formats:
                key = (index, fmt)
                if key in file_ids:
                    outputs[fmt] = {"file_id": file_ids[key], "bytes": 1}
            entry["output_files"] = outputs
            entry["parse"] = {
                "model_used": None,
                "duration_ms": int(timings.per_file * 1000),
                "parser_version": "4.0.12",
            }
        elif file_status == "failed":
            entry["error"] = record.outcome.error
        files.append(entry)
    base = f"/v1/tasks/{task.task_id}"
    return {
        "status": status,
        "created_at": iso(task.created),
        "started_at": iso(started) if status != "queued" else None,
        "finished_at": iso(task.finished_at(timings)) if status in ("completed", "partial", "failed") else None,
        "tier": task.tier,
        "output_formats": list(task.output_formats),
        "access_level": "registered",
        "progress": {
            "completed": statuses.count("completed"),
            "failed": statuses.count("failed"),
            "total": len(task.files),
        },
        "files": files,
        "links": {"self": base, "cancel": base},
        "task_id": task.task_id,
        "status_url": base,
        "result_url": f"{base}/result",
    }


def with_contents(task: TaskRecord, payload: dict[str, Any]) -> dict[str, Any]:
    """A finished task's JSON result: its payload with each completed file's Markdown as ``content``."""
    for index, entry in enumerate(payload["files"]):
        entry["content"] = {"markdown": task.files[index].outcome.markdown} if entry["status"] == "completed" else {}
    return payload


def file_zip(task: TaskRecord, index: int) -> bytes:
    """One parsed file's self-contained zip: ``markdown.md``, the JSON files and ``images/``."""
    outcome = task.files[index].outcome
    structured = {
        "pages": [{"page_idx": i, "blocks": blocks} for i, blocks in enumerate(outcome.pages)],
        "metadata": {"producer": {"name": "mineru", "version": "4.0.12"}},
        "extensions": {"mineru": {"tier": task.tier, "parse_mode": "txt"}},
        "is_full_document": True,
    }
    middle = {"schema_version": "emulated", "pages": structured["pages"]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("markdown.md", outcome.markdown)
        archive.writestr("middle_json.json", json.dumps(middle, ensure_ascii=False, indent=2))
        archive.writestr("structured_content.json", json.dumps(structured, ensure_ascii=False, indent=2))
        archive.writestr("model_output.json", json.dumps({"pages": len(outcome.pages)}))
        for path, data in sorted(outcome.images.items()):
            archive.writestr(path, data)
    return buffer.getvalue()


def combined_zip(task: TaskRecord, payload: dict[str, Any]) -> bytes:
    """Several files' results: ``manifest.json`` and numbered folders ``0001/``… (done files only)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        target.writestr("manifest.json", json.dumps(payload, ensure_ascii=False))
        for index, entry in enumerate(payload["files"]):
            if entry["status"] != "completed":
                continue
            with zipfile.ZipFile(io.BytesIO(file_zip(task, index))) as source:
                for info in source.infolist():
                    target.writestr(f"{index + 1:04d}/{info.filename}", source.read(info))
    return buffer.getvalue()
