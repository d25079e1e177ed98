"""
The emulated ``mineru-api`` V1 contract, as data: limits, the ``{"error": …}`` body and
:class:`ApiError`, and the validation of a ``POST /v1/tasks`` (JSON job or multipart form) into a
:class:`Job`, in the order the real server's FastAPI application checks it. No sockets.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mineru_emulator.mineru_api.state import FLASH_ONLY, extension

TIERS = ("flash", "basic", "standard", "advanced")
OUTPUT_FORMATS = frozenset({"markdown", "middle_json", "structured_content", "zip"})
MAX_FILES = 100
MAX_FILE_BYTES = 200 * 1024 * 1024
#: The largest ``POST /v1/tasks`` body read (multipart uploads are read into memory).
MAX_BODY = 256 * 1024 * 1024
_PAGE_RANGE = re.compile(r"^(all|(r?[1-9]\d*)(-(r?[1-9]\d*))?(,(r?[1-9]\d*)(-(r?[1-9]\d*))?)*)$")


def error_body(error_type: str, code: str | None, message: str, param: str | None = None) -> dict[str, Any]:
    """The V1 error shape: ``{"error": {"type", "code", "message", "param"}}``."""
    return {"error": {"type": error_type, "code": code, "message": message, "param": param}}


class ApiError(Exception):
    """An error answer: HTTP status + the V1 error body."""

    def __init__(self, status: int, error_type: str, code: str | None, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(error_type, code, message, param)


def invalid(message: str, *, code: str = "invalid_request", status: int = 400, param: str | None = None) -> ApiError:
    return ApiError(status, "invalid_request_error" if status < 500 else "api_error", code, message, param)


def not_found(code: str, what: str) -> ApiError:
    """``404`` for an unknown job or file (``code`` ``job_not_found`` / ``file_not_found``)."""
    return ApiError(404, "invalid_request_error", code, f"{what} not found")


@dataclass(frozen=True)
class Source:
    """
    One file of a job, before parsing.

    :param name: its file name.
    :param data: its bytes (None for a URL source, fetched later).
    :param url: the URL of a URL source.
    :param page_range: the validated ``page_range``.
    """

    name: str
    data: bytes | None
    url: str | None
    page_range: str


@dataclass
class Job:
    """A submitted job's options (as sent, not yet checked by :func:`check_options`) and files."""

    tier: Any
    ocr_mode: Any
    formats: Any
    sources: list[Source]


def _page_range(value: str | None, param: str) -> str:
    text = (value or "").replace(" ", "")
    if text and not _PAGE_RANGE.match(text):
        raise invalid(f"Invalid page range {value!r}: expected a page, an inclusive range, or 'all'", param=param)
    for first, last in re.findall(r"(r?\d+)-(r?\d+)", text):
        if first[0] != "r" and last[0] != "r" and int(last) < int(first):
            raise invalid(f"Invalid page range {value!r}: reversed range", param=param)
    return text


def _json_source(entry: Any, index: int, allow_http_source: bool) -> Source:
    source = entry.get("source") if isinstance(entry, dict) else None
    param = f"files.{index}.source"
    if not isinstance(source, dict) or source.get("type") not in ("url", "inline", "file_id"):
        raise invalid("Invalid request: unsupported source", code="unsupported_source", param=param)
    page_range = _page_range(entry.get("page_range"), f"files.{index}.page_range")
    if source["type"] == "url":
        url = str(source.get("url") or "")
        scheme = urlsplit(url).scheme.lower()
        if scheme == "http" and not allow_http_source:
            raise invalid(
                "url source must use https unless --allow-http-source is enabled",
                code="unsupported_source",
                param=param,
            )
        if scheme not in ("http", "https"):
            raise invalid("url source must use http or https", code="unsupported_source", param=param)
        return Source(urlsplit(url).path.rsplit("/", 1)[-1] or "unknown", None, url, page_range)
    if source["type"] == "inline":
        try:
            data = base64.b64decode(str(source.get("data") or ""), validate=True)
        except ValueError:
            raise invalid("inline source data must be valid base64", param=param) from None
        return Source(str(source.get("name") or "inline"), data, None, page_range)
    raise invalid(f"File {source.get('file_id')} not found", code="file_not_found", status=404)


def check_json_job(body: bytes, params: dict[str, list[str]], *, allow_http_source: bool) -> Job:
    """
    A JSON job (``url``/``inline`` sources; a ``file_id`` is never known here).

    :param body: the request body.
    :param params: the query parameters (must be empty: JSON options go in the body).
    :param allow_http_source: ``--allow-http-source``.
    """
    if params:
        raise invalid("JSON parse options must be supplied in the request body")
    try:
        job = json.loads(body.decode("utf-8"))
    except ValueError:
        raise invalid("Invalid request: body is not JSON") from None
    if not isinstance(job, dict) or not isinstance(job.get("files"), list) or not job["files"]:
        raise invalid("Invalid request: files: List should have at least 1 item", param="files")
    unknown = sorted(set(job) - {"files", "tier", "ocr_mode", "output_formats", "callback"})
    if unknown:
        raise invalid(f"Invalid request: {unknown[0]}: Extra inputs are not permitted", param=unknown[0])
    if len(job["files"]) > MAX_FILES:
        raise invalid(f"Invalid request: files: List should have at most {MAX_FILES} items", param="files")
    if job.get("callback") is not None:
        raise invalid("Webhook callbacks are not supported by this service", param="callback")
    sources = [_json_source(entry, index, allow_http_source) for index, entry in enumerate(job["files"])]
    return Job(job.get("tier"), job.get("ocr_mode", "auto"), job.get("output_formats", ["markdown"]), sources)


def check_form_options(params: dict[str, list[str]]) -> tuple[Job, str]:
    """
    The options of a multipart job (in the query string): the job, with no files yet, and the
    ``page_range`` of its files.

    :param params: the query parameters.
    """
    flat = {key: values[-1] for key, values in params.items()}
    unknown = sorted(set(flat) - {"tier", "ocr_mode", "page_range", "output_formats"})
    if unknown:
        raise invalid(f"{unknown[0]}: Extra inputs are not permitted")
    page_range = _page_range(flat.get("page_range"), "page_range")
    job = Job(flat.get("tier") or None, flat.get("ocr_mode", "auto"), params.get("output_formats", ["markdown"]), [])
    return job, page_range


def add_form_files(job: Job, page_range: str, parts: list[tuple[str, str | None, bytes]]) -> None:
    """
    Add the uploaded ``files`` fields to a :func:`check_form_options` job.

    :param job: the job.
    :param page_range: the page range of every file.
    :param parts: ``(field name, file name, bytes)`` of every form part.
    """
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
        job.sources.append(Source(filename, data, None, page_range))


def check_options(job: Job, server_tier: str) -> str:
    """
    Check a job's tier, OCR mode and output formats; return the tier it runs on.

    :param job: the job.
    :param server_tier: the server's ``--tier``.
    """
    tier = job.tier
    if tier is not None and tier not in TIERS:
        raise invalid(f"Invalid request: tier: Input should be {', '.join(TIERS)}", param="tier")
    if job.ocr_mode not in ("auto", "txt", "ocr"):
        raise invalid("Invalid request: ocr_mode: Input should be 'auto', 'txt' or 'ocr'", param="ocr_mode")
    if not job.formats or any(f not in OUTPUT_FORMATS for f in job.formats):
        raise invalid("Unsupported output format", code="unsupported_output_format", param="output_formats")
    if tier is not None:
        if TIERS.index(tier) > TIERS.index(server_tier):
            raise invalid(f"Tier '{tier}' not available in this server")
        return str(tier)
    if server_tier != "flash":
        return server_tier
    if all(extension(s.name) in FLASH_ONLY or (s.url is not None and not extension(s.name)) for s in job.sources):
        return "flash"
    raise ApiError(
        503,
        "engine_error",
        "quality_tier_unavailable",
        "No basic, standard, or advanced tier available in this server. Pass tier='flash' explicitly "
        "for flash parsing.",
    )
