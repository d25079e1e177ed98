"""
The cloud v4 API on the wire (sans I/O), used by :class:`~airflow_provider_mineru.clients.cloud.CloudClient`.

Everything that does not depend on the HTTP library lives here: endpoint paths, the parsing
options (:class:`ParseOptions`, the one list of their names: :data:`OPTION_NAMES`), request
bodies (validated before they are built), decoding MinerU's envelope into data or a typed error,
and which submits are paid (:data:`PAID_SUBMIT_PATHS`: never re-sent once their answer is lost,
by :mod:`airflow_provider_mineru.transport`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from airflow_provider_mineru.connection.config import MinerULimits
from airflow_provider_mineru.exceptions import (
    MinerUError,
    MinerUProtocolError,
    MinerUTransientError,
    MinerUValidationError,
    error_class_for,
)
from airflow_provider_mineru.inputs.validation import (
    validate_batch_size,
    validate_bool,
    validate_cache_tolerance,
    validate_callback,
    validate_data_id,
    validate_extension,
    validate_extra_formats,
    validate_file_name,
    validate_language,
    validate_model_version,
    validate_page_ranges,
    validate_seed,
    validate_unique_names,
    validate_url,
)
from airflow_provider_mineru.utils.bounded_http import body_excerpt
from airflow_provider_mineru.utils.retries import parse_retry_after

# Endpoint paths, relative to the connection's base URL.
SUBMIT_TASK_PATH = "extract/task"
TASK_PATH = "extract/task/{task_id}"
FILE_URLS_PATH = "file-urls/batch"
SUBMIT_BATCH_PATH = "extract/task/batch"
BATCH_PATH = "extract-results/batch/{batch_id}"

#: MinerU's answer to a task id it does not know (any other 404: no MinerU API at that path).
TASK_NOT_FOUND_CODE = "-60012"

#: Options accepted per file inside a batch.
FILE_OPTIONS = ("is_ocr", "data_id", "page_ranges")


@dataclass(frozen=True)
class ParseOptions:
    """
    The parsing options of a task or a batch; None leaves MinerU's default in place.

    :param is_ocr: force OCR (default false). In a batch this is the default for every file.
    :param enable_formula: recognise formulas (default true).
    :param enable_table: recognise tables (default true).
    :param language: PaddleOCR language code (default ``ch``).
    :param callback: http(s) URL MinerU POSTs the result to; needs ``seed``.
    :param seed: 1-64 of ``[A-Za-z0-9_]``, signs the callback.
    :param extra_formats: any of ``docx``, ``html``, ``latex`` besides Markdown and JSON.
    :param model_version: ``pipeline`` (default), ``vlm`` or ``MinerU-HTML``.
    :param no_cache: bypass MinerU's cache of a fetched URL.
    :param cache_tolerance: seconds a cached fetch stays valid (default 900).
    :param tier: ``flash``, ``basic``, ``standard`` or ``advanced``: the open-source ``mineru-api``
        server's quality tier (connection ``api_flavor="mineru-api"`` only; an error on the cloud).
    """

    is_ocr: bool | None = None
    enable_formula: bool | None = None
    enable_table: bool | None = None
    language: str | None = None
    callback: str | None = None
    seed: str | None = None
    extra_formats: Sequence[str] | None = None
    model_version: str | None = None
    no_cache: bool | None = None
    cache_tolerance: int | None = None
    tier: str | None = None

    def to_body(self) -> dict[str, Any]:
        """Validate every option that is set and return them as request-body fields (cloud v4 API)."""
        if self.tier is not None:
            raise MinerUValidationError(
                "tier",
                self.tier,
                "is an option of api_flavor 'mineru-api' only; this connection's api_flavor is 'cloud'",
            )
        body: dict[str, Any] = {}
        for name in ("is_ocr", "enable_formula", "enable_table", "no_cache"):
            value = getattr(self, name)
            if value is not None:
                body[name] = validate_bool(value, name)
        if self.language is not None:
            body["language"] = validate_language(self.language)
        if self.callback is not None:
            body["callback"] = validate_callback(self.callback)
            if self.seed is None:
                raise MinerUValidationError("seed", None, "is required when callback is set")
        if self.seed is not None:
            body["seed"] = validate_seed(self.seed)
        if self.extra_formats is not None:
            body["extra_formats"] = validate_extra_formats(self.extra_formats)
        if self.model_version is not None:
            body["model_version"] = validate_model_version(self.model_version)
        if self.cache_tolerance is not None:
            body["cache_tolerance"] = validate_cache_tolerance(self.cache_tolerance)
        return body


#: The parsing options' names, in order: the one list the operators, the hook and the clients use.
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(ParseOptions))


def build_task_body(
    url: str, options: ParseOptions, *, data_id: str | None = None, page_ranges: str | None = None
) -> dict[str, Any]:
    """Body of ``POST /extract/task`` for one document URL."""
    body: dict[str, Any] = {"url": validate_url(url, "url", options.model_version)}
    body.update(options.to_body())
    if data_id is not None:
        body["data_id"] = validate_data_id(data_id)
    if page_ranges is not None:
        body["page_ranges"] = validate_page_ranges(page_ranges)
    return body


def normalize_batch_file(entry: str | Mapping[str, Any], key: str, index: int) -> dict[str, Any]:
    """
    One ``files[]`` item: a plain string becomes ``{key: value}``; a dict keeps only known fields.

    :param key: ``"url"`` for URL batches, ``"name"`` for upload batches.
    """
    if isinstance(entry, str):
        return {key: entry}
    if not isinstance(entry, Mapping):
        raise MinerUValidationError(f"files[{index}]", entry, f"must be a string or a dict with {key!r}")
    unknown = set(entry) - {key, *FILE_OPTIONS}
    if unknown:
        raise MinerUValidationError(
            f"files[{index}]", sorted(unknown), f"unknown per-file option; allowed: {[key, *FILE_OPTIONS]}"
        )
    if key not in entry:
        raise MinerUValidationError(f"files[{index}].{key}", None, "is required")
    return {k: v for k, v in entry.items() if v is not None}


def _validated_file(item: dict[str, Any], key: str, index: int, model_version: str | None) -> dict[str, Any]:
    field = f"files[{index}]"
    if key == "url":
        validate_url(item["url"], f"{field}.url", model_version)
    else:
        validate_file_name(item["name"], f"{field}.name")
        validate_extension(item["name"], f"{field}.name", model_version)
    if "is_ocr" in item:
        validate_bool(item["is_ocr"], f"{field}.is_ocr")
    if "data_id" in item:
        validate_data_id(item["data_id"], f"{field}.data_id")
    if "page_ranges" in item:
        item["page_ranges"] = validate_page_ranges(item["page_ranges"], f"{field}.page_ranges")
    return item


def build_batch_body(
    files: Sequence[str | Mapping[str, Any]], options: ParseOptions, *, key: str, limits: MinerULimits
) -> dict[str, Any]:
    """
    Body of ``POST /extract/task/batch`` (``key="url"``) or ``POST /file-urls/batch`` (``key="name"``).

    Batch-level options apply to every file; ``is_ocr``, ``data_id`` and ``page_ranges`` may be set
    per file.
    """
    validate_batch_size(len(files), limits)
    items = [
        _validated_file(normalize_batch_file(entry, key, i), key, i, options.model_version)
        for i, entry in enumerate(files)
    ]
    if key == "name":
        validate_unique_names([item["name"] for item in items])
    body = options.to_body()
    if "is_ocr" in body:  # MinerU takes is_ocr per file; apply the batch default to each
        default_ocr = body.pop("is_ocr")
        for item in items:
            item.setdefault("is_ocr", default_ocr)
    body["files"] = items
    return body


def join_url(base_url: str, path: str) -> str:
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}"


# ---------------------------------------------------------------------------------------------
# Responses


def _message_text(msg: Any) -> str:
    """MinerU's ``msg`` may be a string or ``{"en": …, "zh": …}``; prefer English."""
    if isinstance(msg, dict):
        for key in ("en", "en_US", "zh", "zh_CN"):
            if msg.get(key):
                return str(msg[key])
        return json.dumps(msg, ensure_ascii=False)
    return "" if msg is None else str(msg)


def _code_text(code: Any) -> str | None:
    if code is None or code == "":
        return None
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    return str(code).strip()


def parse_response(status: int, headers: Mapping[str, str], body: bytes) -> Any:
    """
    Turn one HTTP response from the MinerU API into its ``data``, or raise the typed error.

    Handles the envelope ``{"code", "msg", "trace_id", "data"}`` with numeric or string codes,
    ``msg`` as ``{"en", "zh"}``, the live service's HTTP 401 shape ``{"msgCode": "A0202", …}``,
    plain-text and HTML answers from gateways and proxies, and truncated JSON.
    """
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    try:
        payload = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        payload = None
    if not isinstance(payload, dict):
        error_class = error_class_for(None, status)
        what = (
            "an empty body"
            if not body.strip()
            else f"a body that is not MinerU's JSON envelope: {body_excerpt(body)!r}"
        )
        if status < 400 or error_class is MinerUError:
            raise MinerUProtocolError(
                f"MinerU answered HTTP {status} with {what}", http_status=status, retry_after=retry_after
            )
        raise _make_error(error_class, f"HTTP {status} with {what}", None, None, status, retry_after)

    code = _code_text(payload.get("code", payload.get("msgCode")))
    trace_id = payload.get("trace_id") or payload.get("traceId") or None
    message = _message_text(payload.get("msg", payload.get("message")))
    success = payload.get("success")
    if code in (None, "0", "200") and status < 400 and success is not False:
        if "data" not in payload:
            raise MinerUProtocolError(
                f"MinerU answered HTTP {status} without 'data': {body_excerpt(body)!r}",
                http_status=status,
                trace_id=trace_id,
            )
        return payload["data"]
    error_class = error_class_for(code, status)
    raise _make_error(error_class, message or f"HTTP {status}", code, trace_id, status, retry_after)


def _make_error(
    error_class: type[MinerUError],
    message: str,
    code: str | None,
    trace_id: str | None,
    status: int | None,
    retry_after: float | None,
) -> MinerUError:
    if issubclass(error_class, MinerUTransientError):
        return error_class(message, code=code, trace_id=trace_id, http_status=status, retry_after=retry_after)
    return error_class(message, code=code, trace_id=trace_id, http_status=status)


# ---------------------------------------------------------------------------------------------
# Retries

#: POSTs that make MinerU parse (and bill) documents: never re-sent once they may have arrived.
#: (``POST /file-urls/batch`` is retried: a duplicate grant is an empty batch nobody uploads to.)
PAID_SUBMIT_PATHS = (SUBMIT_TASK_PATH, SUBMIT_BATCH_PATH)
