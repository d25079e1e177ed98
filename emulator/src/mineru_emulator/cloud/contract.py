"""
The MinerU contract as data: error codes and messages, request validation, page ranges.

Written from the API reference alone (it imports nothing from the provider), so the emulator
is an independent second implementation that the provider's client can be tested against.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

#: English messages of every documented error code (upstream table plus later additions).
ERROR_MESSAGES: dict[str, str] = {
    "A0202": "Token error, check whether the token is correct or replace it with a new one",
    "A0211": "Token expired, replace it with a new token",
    "-500": "Param invalid, please check param and Content-Type",
    "-10001": "Service exception, please try again later",
    "-10002": "Request parameter error, check the request parameter format",
    "-60001": "Failed to generate upload URL, please try again later",
    "-60002": "Failed to get matching file format; the file must be one of pdf, doc, docx, ppt, pptx, png, jp(e)g",
    "-60003": "File reading failed, check whether the file is corrupted and re-upload",
    "-60004": "Empty file, please upload a valid file",
    "-60005": "File size exceeds limit, the maximum supported size is 200MB",
    "-60006": "File page count exceeds limit (600 pages), please split the file and try again",
    "-60007": "Model service temporarily unavailable, please try again later",
    "-60008": "File read timeout, check that the URL is reachable",
    "-60009": "Task submission queue is full, please try again later",
    "-60010": "Parsing failed, please try again later",
    "-60011": "Failed to get a valid file, ensure the file has been uploaded",
    "-60012": "Task not found, ensure the task_id is valid and not deleted",
    "-60013": "No permission to access the task",
    "-60014": "Running tasks cannot be deleted",
    "-60015": "File conversion failed, convert the file to PDF manually and re-upload",
    "-60016": "Failed to convert the file to the requested format, try other formats or try again later",
    "-60017": "Page quota exceeded",
    "-60018": "Daily task limit reached",
    "-60019": "HTML parsing quota exhausted",
    "-60020": "File split failed, please try again later",
    "-60021": "Failed to read the page count, please try again later",
    "-60022": "Web page read failed (network or rate limit), please try again later",
}

#: Extensions the parser accepts, judged on the URL path or the file name.
SUPPORTED_EXTENSIONS = frozenset({".pdf", ".doc", ".docx", ".ppt", ".pptx", ".png", ".jpg", ".jpeg"})
#: Extra extensions accepted with ``model_version: "MinerU-HTML"``.
HTML_EXTENSIONS = frozenset({".html", ".htm"})
MODEL_VERSIONS = ("pipeline", "vlm", "MinerU-HTML")
EXTRA_FORMATS = ("docx", "html", "latex")
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})
OFFICE_EXTENSIONS = frozenset({".doc", ".docx", ".ppt", ".pptx"})

_DATA_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_SEED = re.compile(r"[A-Za-z0-9_]{1,64}")
_PAGE_ITEM = re.compile(r"\s*(-?\d+)\s*(?:(-)\s*(-?\d+)?\s*)?")
_BOOL_OPTIONS = ("is_ocr", "enable_formula", "enable_table", "no_cache")


def error_message(code: str | int) -> str:
    """The table message of ``code``, or a generic one for a code the table lacks."""
    return ERROR_MESSAGES.get(str(code), f"error {code}")


def err_msg(code: str | int, detail: str | None = None) -> str:
    """A task ``err_msg`` naming the code, e.g. ``-60008: File read timeout, ...: detail``."""
    text = f"{code}: {error_message(code)}"
    return f"{text} ({detail})" if detail else text


def code_value(code: str | int) -> str | int:
    """A code as the service sends it: numeric codes as ints, ``A0202``-style as strings."""
    text = str(code)
    try:
        return int(text)
    except ValueError:
        return text


class ApiError(Exception):
    """A request the emulator answers with an error envelope."""

    def __init__(self, code: str | int, detail: str | None = None, http_status: int = 200) -> None:
        self.code = code
        self.detail = detail
        self.http_status = http_status
        super().__init__(self.message)

    @property
    def message(self) -> str:
        base = error_message(self.code)
        return f"{base}: {self.detail}" if self.detail else base


def file_extension(name: str) -> str:
    """The lower-case extension (with the dot) of the last segment of ``name``; '' if none."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    return posixpath.splitext(last)[1].lower()


def url_file_name(url: str) -> str:
    """The file name MinerU reports for a URL: the last segment of its path, percent-decoded."""
    path = urlsplit(url).path
    return unquote(path.rstrip("/").rsplit("/", 1)[-1]) or "document"


def check_extension(name: str, model_version: str | None) -> str:
    """Return the extension of ``name`` or raise -60002 when MinerU would not accept it."""
    ext = file_extension(name)
    allowed = SUPPORTED_EXTENSIONS | (HTML_EXTENSIONS if model_version == "MinerU-HTML" else frozenset())
    if ext not in allowed:
        raise ApiError(-60002, f"unsupported file type {ext or '(none)'!r} of {name!r}")
    return ext


# -- page ranges ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageItem:
    """One item of a ``page_ranges`` string: a page, a range, or an open range (``end`` None)."""

    start: int
    end: int | None
    is_range: bool


def parse_page_ranges(spec: str) -> list[PageItem]:
    """
    Parse a ``page_ranges`` string such as ``"2,4-6"``, ``"2--2"``, ``"2 - -2"`` or ``"15-"``.

    Numbers are 1-based; a negative number counts from the end (``-1`` last page, ``-2``
    next-to-last). Zero is not a page number.

    :raises ValueError: on bad syntax.
    """
    items: list[PageItem] = []
    for raw in spec.split(","):
        match = _PAGE_ITEM.fullmatch(raw)
        if match is None:
            raise ValueError(f"bad page range item {raw!r}")
        start = int(match.group(1))
        end = int(match.group(3)) if match.group(3) is not None else None
        if start == 0 or end == 0:
            raise ValueError(f"page 0 in {raw!r}: pages are numbered from 1")
        items.append(PageItem(start, end, match.group(2) is not None))
    return items


def resolve_page_ranges(spec: str | None, total: int) -> list[int]:
    """
    The 0-based page indexes ``spec`` selects in a document of ``total`` pages, in page order.

    Pages outside the document are ignored. ``None`` or an empty ``spec`` selects every page.
    """
    if spec is None or not spec.strip():
        return list(range(total))

    def absolute(number: int) -> int:
        return number if number > 0 else total + number + 1

    chosen: set[int] = set()
    for item in parse_page_ranges(spec):
        first = absolute(item.start)
        last = first if not item.is_range else (total if item.end is None else absolute(item.end))
        for page in range(max(first, 1), min(last, total) + 1):
            chosen.add(page - 1)
    return sorted(chosen)


# -- request options -----------------------------------------------------------------------------


def _check_bool(obj: dict[str, Any], key: str, where: str = "") -> None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise ApiError(-10002, f"{where}{key} must be a boolean")


def check_data_id(value: Any, where: str = "") -> str | None:
    """Validate a ``data_id`` (1-128 of ``[A-Za-z0-9_.-]``)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _DATA_ID.fullmatch(value):
        raise ApiError(-10002, f"{where}data_id must be 1-128 characters of [A-Za-z0-9_.-]")
    return value


def check_page_ranges(value: Any, where: str = "") -> str | None:
    """Validate a ``page_ranges`` string; an empty string counts as absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(-10002, f"{where}page_ranges must be a string such as '2,4-6'")
    if not value.strip():
        return None
    try:
        parse_page_ranges(value)
    except ValueError as exc:
        raise ApiError(-10002, f"{where}page_ranges: {exc}") from None
    return value


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def check_url(value: Any, where: str = "") -> str:
    """Validate a document URL (required, http or https)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError(-10002, f"{where}url is required")
    if not isinstance(value, str) or not _is_http_url(value.strip()):
        raise ApiError(-10002, f"{where}url must be an http or https URL")
    return value.strip()


def check_name(value: Any, where: str = "") -> str:
    """Validate an upload file name (required string)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError(-10002, f"{where}name is required")
    if not isinstance(value, str):
        raise ApiError(-10002, f"{where}name must be a string")
    return value.strip()


def check_options(obj: dict[str, Any]) -> dict[str, Any]:
    """
    Validate the task-level options of ``/extract/task`` and both batch calls.

    :return: the options, normalised, with defaults filled in.
    :raises ApiError: -10002 for any invalid value.
    """
    for key in _BOOL_OPTIONS:
        _check_bool(obj, key)
    language = obj.get("language")
    if language is not None and (not isinstance(language, str) or not language.strip()):
        raise ApiError(-10002, "language must be a non-empty string")
    data_id = check_data_id(obj.get("data_id"))
    seed = obj.get("seed")
    if seed is not None and (not isinstance(seed, str) or not _SEED.fullmatch(seed)):
        raise ApiError(-10002, "seed must be 1-64 characters of [A-Za-z0-9_]")
    callback = obj.get("callback")
    if callback is not None and callback != "":
        if not isinstance(callback, str) or not _is_http_url(callback):
            raise ApiError(-10002, "callback must be an http or https URL")
        if seed is None:
            raise ApiError(-10002, "seed is required when callback is set")
    else:
        callback = None
    extra = obj.get("extra_formats")
    if extra is not None:
        if not isinstance(extra, list) or not all(isinstance(item, str) for item in extra):
            raise ApiError(-10002, "extra_formats must be a list of strings")
        bad = [item for item in extra if item not in EXTRA_FORMATS]
        if bad:
            raise ApiError(-10002, f"extra_formats only supports docx, html, latex (got {bad})")
    model_version = obj.get("model_version")
    if model_version is not None and model_version not in MODEL_VERSIONS:
        raise ApiError(-10002, f"model_version must be one of {', '.join(MODEL_VERSIONS)}")
    tolerance = obj.get("cache_tolerance")
    if tolerance is not None and (
        isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0
    ):
        raise ApiError(-10002, "cache_tolerance must be a non-negative number of seconds")
    return {
        "is_ocr": bool(obj.get("is_ocr", False)),
        "enable_formula": obj.get("enable_formula", True) is not False,
        "enable_table": obj.get("enable_table", True) is not False,
        "language": language or "ch",
        "data_id": data_id,
        "callback": callback,
        "seed": seed,
        "extra_formats": list(dict.fromkeys(extra or [])),
        "page_ranges": check_page_ranges(obj.get("page_ranges")),
        "model_version": model_version or "pipeline",
        "no_cache": bool(obj.get("no_cache", False)),
        "cache_tolerance": 900 if tolerance is None else tolerance,
    }


def check_batch_files(obj: dict[str, Any], key: str, max_files: int) -> list[dict[str, Any]]:
    """
    Validate the ``files`` list of a batch call; ``key`` is ``"name"`` or ``"url"``.

    :return: per file ``{key, is_ocr, data_id, page_ranges}``.
    """
    files = obj.get("files")
    if files is None:
        raise ApiError(-10002, "files is required")
    if not isinstance(files, list) or not files:
        raise ApiError(-10002, "files must be a non-empty list")
    if len(files) > max_files:
        raise ApiError(-10002, f"too many files: at most {max_files} files per request (got {len(files)})")
    out: list[dict[str, Any]] = []
    for index, item in enumerate(files):
        where = f"files[{index}]."
        if not isinstance(item, dict):
            raise ApiError(-10002, f"files[{index}] must be an object")
        value = check_url(item.get("url"), where) if key == "url" else check_name(item.get("name"), where)
        _check_bool(item, "is_ocr", where)
        out.append(
            {
                key: value,
                "is_ocr": item.get("is_ocr"),
                "data_id": check_data_id(item.get("data_id"), where),
                "page_ranges": check_page_ranges(item.get("page_ranges"), where),
            }
        )
    return out
