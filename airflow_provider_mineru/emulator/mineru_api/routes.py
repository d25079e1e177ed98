"""
The HTTP routes of the emulated ``mineru-api`` (V1): one function per route, all answers JSON
``{"error": …}`` bodies or payloads, as the real server's FastAPI application gives them.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_mineru.emulator.mineru_api import responses
from airflow_provider_mineru.emulator.mineru_api.state import (
    FLASH_ONLY,
    FileRecord,
    Outcome,
    TaskRecord,
    extension,
    parse_document,
)

if TYPE_CHECKING:
    from airflow_provider_mineru.emulator.mineru_api.server import MinerUApiEmulator

TIERS = ("flash", "basic", "standard", "advanced")
OUTPUT_FORMATS = frozenset({"markdown", "middle_json", "structured_content", "zip"})
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/models", "/v1/tiers"})
MAX_FILES = 100
MAX_FILE_BYTES = 200 * 1024 * 1024
_PAGE_RANGE = re.compile(r"^(all|(r?[1-9]\d*)(-(r?[1-9]\d*))?(,(r?[1-9]\d*)(-(r?[1-9]\d*))?)*)$")


class ApiError(Exception):
    """An error answer: HTTP status + the V1 error body."""

    def __init__(self, status: int, error_type: str, code: str | None, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = responses.error_body(error_type, code, message, param)


def invalid(message: str, *, code: str = "invalid_request", status: int = 400, param: str | None = None) -> ApiError:
    return ApiError(status, "invalid_request_error" if status < 500 else "api_error", code, message, param)


def route(method: str, path: str) -> tuple[str, str | None]:
    """``(endpoint name, task or file id)`` of a request path (see ``ENDPOINTS``)."""
    if path == "/v1/health":
        return "health", None
    if path == "/v1/tiers":
        return "tiers", None
    if path == "/v1/tasks" and method == "POST":
        return "submit", None
    match = re.fullmatch(r"/v1/tasks/([^/]+)(/result)?", path)
    if match:
        if match.group(2):
            return "result", match.group(1)
        return ("cancel" if method == "DELETE" else "get_task"), match.group(1)
    match = re.fullmatch(r"/v1/files/([^/]+)/content", path)
    if match:
        return "file_content", match.group(1)
    return "other", None


def health(emu: MinerUApiEmulator) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": emu.version,
        "features": {
            "webhook": False,
            "output_formats": sorted(OUTPUT_FORMATS),
            "sources": ["file_id", "url", "inline"],
        },
    }


def tiers(emu: MinerUApiEmulator) -> dict[str, Any]:
    available = TIERS[: TIERS.index(emu.server_tier) + 1] if emu.server_tier != "standard" else TIERS
    return {
        "object": "list",
        "data": [{"id": t, "description": t, "current_model": f"mineru-{emu.version}"} for t in available],
    }


def _page_range(value: str | None, param: str) -> str:
    text = (value or "").replace(" ", "")
    if text and not _PAGE_RANGE.match(text):
        raise invalid(f"Invalid page range {value!r}: expected a page, an inclusive range, or 'all'", param=param)
    for first, last in re.findall(r"(r?\d+)-(r?\d+)", text):
        if first[0] != "r" and last[0] != "r" and int(last) < int(first):
            raise invalid(f"Invalid page range {value!r}: reversed range", param=param)
    return text


def _fetch(emu: MinerUApiEmulator, url: str) -> tuple[bytes | None, str | None, str | None]:
    """(bytes, media type, error message) of a URL source."""
    try:
        with urllib.request.urlopen(url, timeout=emu.fetch_timeout) as answer:
            data = answer.read(MAX_FILE_BYTES + 1)
            media = (answer.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    except urllib.error.HTTPError as exc:
        return None, None, f"Client error '{exc.code}' for url '{url}'"
    except (OSError, ValueError):
        return None, None, "All connection attempts failed"
    if len(data) > MAX_FILE_BYTES:
        return None, None, f"url source exceeds max_url_bytes ({MAX_FILE_BYTES})"
    return data, media, None


def _multipart(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """``(field name, file name, bytes)`` of every part of a ``multipart/form-data`` body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise invalid("Malformed multipart body", param="files")
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts.append((str(name or ""), part.get_filename(), part.get_payload(decode=True) or b""))
    return parts


def submit(emu: MinerUApiEmulator, query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """``POST /v1/tasks``: JSON job (url/inline sources) or multipart ``files`` with options in the query."""
    media = content_type.split(";", 1)[0].strip().lower()
    params = parse_qs(query, keep_blank_values=True)
    sources: list[tuple[str, bytes | None, str | None, str]] = []  # (name, bytes, fetch error, page_range)
    if media == "application/json":
        if params:
            raise invalid("JSON parse options must be supplied in the request body")
        try:
            job = json.loads(body.decode("utf-8"))
        except ValueError:
            raise invalid("Invalid request: body is not JSON") from None
        if not isinstance(job, dict) or not isinstance(job.get("files"), list) or not job["files"]:
            raise invalid("Invalid request: files: List should have at least 1 item", param="files")
        unknown = set(job) - {"files", "tier", "ocr_mode", "output_formats", "callback"}
        if unknown:
            raise invalid(
                f"Invalid request: {sorted(unknown)[0]}: Extra inputs are not permitted", param=sorted(unknown)[0]
            )
        if len(job["files"]) > MAX_FILES:
            raise invalid(f"Invalid request: files: List should have at most {MAX_FILES} items", param="files")
        if job.get("callback") is not None:
            raise invalid("Webhook callbacks are not supported by this service", param="callback")
        tier, ocr_mode = job.get("tier"), job.get("ocr_mode", "auto")
        formats = job.get("output_formats", ["markdown"])
        for index, entry in enumerate(job["files"]):
            source = entry.get("source") if isinstance(entry, dict) else None
            if not isinstance(source, dict) or source.get("type") not in ("url", "inline", "file_id"):
                raise invalid(
                    "Invalid request: unsupported source", code="unsupported_source", param=f"files.{index}.source"
                )
            page_range = _page_range(entry.get("page_range"), f"files.{index}.page_range")
            if source["type"] == "url":
                url = str(source.get("url") or "")
                scheme = urlsplit(url).scheme.lower()
                if scheme == "http" and not emu.allow_http_source:
                    raise invalid(
                        "url source must use https unless --allow-http-source is enabled",
                        code="unsupported_source",
                        param=f"files.{index}.source",
                    )
                if scheme not in ("http", "https"):
                    raise invalid(
                        "url source must use http or https", code="unsupported_source", param=f"files.{index}.source"
                    )
                name = urlsplit(url).path.rsplit("/", 1)[-1] or "unknown"
                sources.append((name, None, url, page_range))
            elif source["type"] == "inline":
                try:
                    data = base64.b64decode(str(source.get("data") or ""), validate=True)
                except ValueError:
                    raise invalid("inline source data must be valid base64", param=f"files.{index}.source") from None
                sources.append((str(source.get("name") or "inline"), data, None, page_range))
            else:
                raise invalid(f"File {source.get('file_id')} not found", code="file_not_found", status=404)
    elif media == "multipart/form-data":
        flat = {k: v[-1] for k, v in params.items()}
        unknown = set(flat) - {"tier", "ocr_mode", "page_range", "output_formats"}
        if unknown:
            raise invalid(f"{sorted(unknown)[0]}: Extra inputs are not permitted")
        tier, ocr_mode = flat.get("tier") or None, flat.get("ocr_mode", "auto")
        formats = params.get("output_formats", ["markdown"])
        page_range = _page_range(flat.get("page_range"), "page_range")
        parts = _multipart(content_type, body)
        if not parts or any(name != "files" for name, _, _ in parts):
            raise invalid("Supply one or more files fields", param="files")
        if len(parts) > MAX_FILES:
            raise invalid(f"Too many files. Maximum number of files is {MAX_FILES}.")
        for _, filename, data in parts:
            if not filename:
                raise invalid("Every files field must contain a named file", param="files")
            if len(data) > MAX_FILE_BYTES:
                raise invalid("File exceeds 200 MiB", code="file_too_large", status=413)
            if not data:
                raise invalid("Empty files are not supported", param="files")
            sources.append((filename, data, None, page_range))
    else:
        raise invalid("Use application/json, multipart/form-data or application/octet-stream", status=415)

    if tier is not None and tier not in TIERS:
        raise invalid(f"Invalid request: tier: Input should be {', '.join(TIERS)}", param="tier")
    if ocr_mode not in ("auto", "txt", "ocr"):
        raise invalid("Invalid request: ocr_mode: Input should be 'auto', 'txt' or 'ocr'", param="ocr_mode")
    if not formats or any(f not in OUTPUT_FORMATS for f in formats):
        raise invalid("Unsupported output format", code="unsupported_output_format", param="output_formats")
    if tier is None:
        flash_only = all(extension(n) in FLASH_ONLY or (u is not None and not extension(n)) for n, _, u, _ in sources)
        if emu.server_tier != "flash":
            tier = emu.server_tier
        elif flash_only:
            tier = "flash"
        else:
            raise ApiError(
                503,
                "engine_error",
                "quality_tier_unavailable",
                "No basic, standard, or advanced tier available in this server. Pass tier='flash' explicitly "
                "for flash parsing.",
            )
    elif TIERS.index(tier) > TIERS.index(emu.server_tier):
        raise invalid(f"Tier '{tier}' not available in this server")

    files = []
    for name, data, url, page_range in sources:
        if url is not None:
            data, media_type, error = _fetch(emu, url)
            if error is None and not extension(name) and media_type == "text/html":
                name = name + ".html"
            outcome = (
                Outcome(error={"type": "engine_error", "code": "parse_failed", "message": error, "param": None})
                if error
                else parse_document(name, data or b"", page_range=page_range, ocr_mode=ocr_mode)
            )
            file_id = None
        else:
            outcome = parse_document(name, data or b"", page_range=page_range, ocr_mode=ocr_mode)
            file_id = "file-" + secrets.token_hex(12)
        files.append(FileRecord(name=name, file_id=file_id, page_range=page_range, outcome=outcome))
    task = TaskRecord(
        task_id="job_" + secrets.token_hex(12),
        created=time.time(),
        tier=tier,
        ocr_mode=ocr_mode,
        output_formats=list(dict.fromkeys(formats)),
        files=files,
    )
    return emu.add_task(task)
