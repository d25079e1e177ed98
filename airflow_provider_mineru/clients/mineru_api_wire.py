"""
The open-source ``mineru-api`` server's V1 API on the wire (sans I/O), as the cloud's is in
:mod:`~airflow_provider_mineru.clients.v4_wire`.

Mapping onto the provider's model:

- a V1 *task* is our *batch*: files uploaded with a multipart ``POST /v1/tasks``, or a JSON job
  whose ``files[].source`` are URLs; a single URL task is a V1 task with one URL source;
- task states ``queued``/``running`` → ``pending``/``running``; ``completed`` → ``done``;
  ``partial`` → each file ``done`` or ``failed`` with its error; ``failed``/``canceled`` → ``failed``;
- ``is_ocr`` → ``ocr_mode`` (``ocr``; False keeps ``auto``), ``page_ranges`` → ``page_range``
  (``15-`` becomes ``15-r1``, ``2--2`` becomes ``2-r2``), ``tier`` is sent as is;
- each done file's zip is ``GET /v1/tasks/{id}/result?response_format=zip`` for a one-file task,
  the file's own ``/v1/files/{id}/content`` otherwise (the same bytes);
- errors: HTTP 401/403 → auth, 404 for an id we hold → "the server forgot the task", 429/5xx →
  transient (except ``quality_tier_unavailable`` → invalid request), other 4xx → invalid request;
- the server's version comes from ``GET /v1/health``; anything but 4.0.x is refused by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_mineru.clients.v4_wire import normalize_batch_file
from airflow_provider_mineru.exceptions import (
    MinerUAuthError,
    MinerUInvalidRequestError,
    MinerUNotFoundError,
    MinerUProtocolError,
    MinerUResultError,
    MinerUTransientError,
    MinerUValidationError,
)
from airflow_provider_mineru.inputs.validation import (
    SELF_HOSTED_PROFILE,
    document_extension,
    parse_page_ranges,
    validate_bool,
    validate_data_id,
    validate_extension,
)
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.transport.policy import Answer, mark_missing_endpoint
from airflow_provider_mineru.utils.bounded_http import body_excerpt
from airflow_provider_mineru.utils.retries import parse_retry_after

#: Server versions this client speaks: ``major.minor`` prefixes.
SUPPORTED_VERSIONS = ("4.0",)
#: Most files one V1 task may hold (``MAX_TASK_FILES`` of the server).
MAX_TASK_FILES = 100
TIERS = ("flash", "basic", "standard", "advanced")
#: What every task asks for: the Markdown inline and the self-contained result zip.
OUTPUT_FORMATS = ("markdown", "zip")
#: Options of the cloud API the open-source server cannot honour: refused before any request.
UNSUPPORTED_OPTIONS = ("callback", "seed", "extra_formats", "model_version")
#: Options the open-source server has no equivalent for: ignored with a warning.
IGNORED_OPTIONS = ("enable_formula", "enable_table", "language", "no_cache", "cache_tolerance")
FORGOT_TASK = "the server forgot the task: restarted or past its retention"

# Endpoint paths, relative to the server's root URL.
TASKS_PATH = "/v1/tasks"
HEALTH_PATH = "/v1/health"

#: Characters of a server error message kept in a document's ``err_msg``.
_ERR_MSG_CHARS = 500
_TASK_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
#: 404 codes that are about an id we sent (any other 404: no such endpoint at this base URL).
_ID_NOT_FOUND_CODES = ("job_not_found", "file_not_found")


class MinerUUnsupportedServerError(MinerUInvalidRequestError):
    """The server is not a ``mineru-api`` 4.0.x (a 3.x server, a 4.1+ one, or not MinerU at all)."""


# -- requests ----------------------------------------------------------------------------------------


def to_v1_page_range(value: str, field: str = "page_ranges") -> str:
    """
    The V1 spelling of a cloud page selection: ``N-`` → ``N-r1``, a negative ``-k`` → ``rk``.

    :param value: ``"2,4-6"``, ``"2--2"``, ``"15-"`` (validated like the cloud's).
    """

    def page(number: int) -> str:
        return str(number) if number > 0 else f"r{-number}"

    items = []
    for start, end in parse_page_ranges(value, field):
        if end == start:
            items.append(page(start))
        else:
            items.append(f"{page(start)}-{'r1' if end is None else page(end)}")
    return ",".join(items)


def ocr_mode(value: Any, field: str) -> str:
    return "ocr" if validate_bool(value, field) else "auto"


def check_url(url: Any, field: str) -> str:
    """A document URL the server can fetch (http(s), an accepted extension when it has one)."""
    parsed = urlsplit(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise MinerUValidationError(field, url, "must be an http:// or https:// URL the server can fetch")
    if document_extension(url):  # a URL without a suffix is typed by the server from its answer
        validate_extension(url, field, SELF_HOSTED_PROFILE)
    return url.strip()


def file_entry(entry: str | Mapping[str, Any], key: str, index: int, job: Mapping[str, Any]) -> dict[str, Any]:
    """One validated file: ``{key, "ocr_mode", "page_range"}`` (per-file overrides applied)."""
    item = normalize_batch_file(entry, key, index)
    field = f"files[{index}]"
    if key == "url":
        check_url(item["url"], f"{field}.url")
    else:
        validate_extension(item["name"], f"{field}.name", SELF_HOSTED_PROFILE)
    if "data_id" in item:
        validate_data_id(item["data_id"], f"{field}.data_id")
    out = {key: item[key], "ocr_mode": job.get("ocr_mode", "auto"), "page_range": None}
    if "is_ocr" in item:
        out["ocr_mode"] = ocr_mode(item["is_ocr"], f"{field}.is_ocr")
    if "page_ranges" in item:
        out["page_range"] = to_v1_page_range(item["page_ranges"], f"{field}.page_ranges")
    return out


def group_files(items: Sequence[Mapping[str, Any]], key: str, job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """
    The V1 tasks validated files become, each ``{"indices", "options", "files"}``.

    Files share one task when their ``ocr_mode`` (and, for uploads, their ``page_range``: a
    multipart task has one) agree; a task holds at most :data:`MAX_TASK_FILES`.
    """
    groups: dict[tuple[str, str | None], list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault((item["ocr_mode"], item["page_range"] if key == "name" else None), []).append(index)
    out = []
    for (mode, page_range), indices in groups.items():
        for start in range(0, len(indices), MAX_TASK_FILES):
            held = indices[start : start + MAX_TASK_FILES]
            options = {**job, "ocr_mode": mode}
            if page_range:
                options["page_range"] = page_range
            out.append({"indices": held, "options": options, "files": [items[i] for i in held]})
    return out


def url_job(group: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of ``POST /v1/tasks`` for one group of URLs."""
    entries = []
    for item in group["files"]:
        entry: dict[str, Any] = {"source": {"type": "url", "url": item["url"]}}
        if item["page_range"]:
            entry["page_range"] = item["page_range"]
        entries.append(entry)
    return {"files": entries, **group["options"]}


def multipart_params(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The query of a multipart ``POST /v1/tasks``: the group's options, ``output_formats`` repeated."""
    params = [("output_formats", fmt) for fmt in options["output_formats"]]
    return params + [(k, str(v)) for k, v in options.items() if k != "output_formats" and v is not None]


def task_path(task_id: str, field: str = "task_id") -> str:
    if not isinstance(task_id, str) or not _TASK_ID_RE.match(task_id):
        raise MinerUValidationError(field, task_id, "must be a mineru-api task id (job_…)")
    return f"{TASKS_PATH}/{task_id}"


# -- answers -----------------------------------------------------------------------------------------


def _error_text(error: Mapping[str, Any]) -> str:
    message = str(error.get("message") or error.get("type") or "no message")
    if error.get("param"):
        message += f" (param {error['param']})"
    return message


def decode(answer: Answer, *, known_id: str | None = None) -> Any:
    """
    A V1 answer's JSON, or the typed error of ``{"error": {"type", "code", "message", "param"}}``.

    :param known_id: the task id the request was about, when it came from this server: a 404
        then means the server forgot it.
    """
    status, headers, body = answer
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    try:
        payload = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        payload = None
    if status < 300:
        if not isinstance(payload, dict):
            raise MinerUProtocolError(
                f"mineru-api answered HTTP {status} with a body that is not a JSON object: {body_excerpt(body)!r}",
                http_status=status,
            )
        return payload
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {"message": f"HTTP {status}: {body_excerpt(body)}" if body.strip() else f"HTTP {status}"}
    code = error.get("code") or None
    text = _error_text(error)
    if status in (401, 403):
        hint = " (check the connection password: the server's --api-key)" if code == "invalid_api_key" else ""
        raise MinerUAuthError(text + hint, code=code, http_status=status)
    if status == 404:
        if known_id and code in _ID_NOT_FOUND_CODES:
            text = f"{FORGOT_TASK} ({known_id}: {text})"
        not_found = MinerUNotFoundError(text, code=code, http_status=status)
        raise not_found if code in _ID_NOT_FOUND_CODES else mark_missing_endpoint(not_found)
    if code == "quality_tier_unavailable":
        raise MinerUInvalidRequestError(
            f"{text} Set the operator option tier='flash' for a server started with --tier flash.",
            code=code,
            http_status=status,
        )
    if status == 429 or status >= 500:
        raise MinerUTransientError(text, code=code, http_status=status, retry_after=retry_after)
    if status == 409:
        raise MinerUResultError(text, code=code, http_status=status)
    raise MinerUInvalidRequestError(text, code=code, http_status=status)


def task_id_of(data: Any) -> str:
    if not isinstance(data, dict) or not data.get("task_id"):
        raise MinerUProtocolError(f"mineru-api's answer has no 'task_id': {str(data)[:200]!r}")
    return str(data["task_id"])


def health_version(answer: Answer, root: str) -> str:
    """The version ``GET /v1/health`` reports, or the error refusing this server."""
    if answer.status == 404:
        raise MinerUUnsupportedServerError(
            f"{root} does not serve GET /v1/health (HTTP 404): not a mineru-api 4.0 server. MinerU 3.x "
            "servers (POST /file_parse, /tasks) are not supported; api_flavor 'mineru-api' needs mineru 4.0.x."
        )
    payload = decode(answer)
    version = str(payload.get("version") or "")
    if not version:
        raise MinerUUnsupportedServerError(f"{root}/v1/health reports no version: {body_excerpt(answer.body)!r}")
    if not any(version == v or version.startswith(v + ".") for v in SUPPORTED_VERSIONS):
        raise MinerUUnsupportedServerError(
            f"{root} runs mineru-api {version}; api_flavor 'mineru-api' speaks the V1 API of mineru "
            f"{', '.join(v + '.x' for v in SUPPORTED_VERSIONS)} only (3.x has no /v1 tasks API, 4.1 changes "
            "POST /v1/tasks)"
        )
    return version


def _zip_url(root: str, task_id: str, files: Sequence[Mapping[str, Any]], index: int) -> str | None:
    ref = (files[index].get("output_files") or {}).get("zip")
    if not isinstance(ref, dict) or not ref.get("file_id"):
        return None
    if len(files) == 1:
        return f"{root}{TASKS_PATH}/{quote(task_id)}/result?response_format=zip"
    return f"{root}/v1/files/{quote(str(ref['file_id']))}/content"


def documents(data: Any, task_id: str, root: str) -> list[DocumentResult]:
    """Every file of a V1 task answer as a :class:`DocumentResult`, in the task's order."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise MinerUProtocolError(f"mineru-api's task answer has no 'files': {str(data)[:200]!r}")
    task_status = str(data.get("status") or "")
    files = [f for f in data["files"] if isinstance(f, dict)]
    out = []
    for index, file in enumerate(files):
        status = str(file.get("status") or "")
        err_msg = None
        zip_url = None
        if status == "completed":
            state = MinerUState.DONE
            zip_url = _zip_url(root, task_id, files, index)
            if zip_url is None:  # submitted elsewhere without the zip: done, but nothing to download
                err_msg = "no zip output to download: the task was submitted without 'zip' in output_formats"
        elif status == "failed":
            state = MinerUState.FAILED
            error = file.get("error") if isinstance(file.get("error"), dict) else {}
            err_msg = f"{error.get('code') or error.get('type') or 'failed'}: {_error_text(error)}"
        elif task_status in ("failed", "canceled"):
            state, err_msg = MinerUState.FAILED, f"the task was {task_status} before this file was parsed"
        elif status == "running":
            state = MinerUState.RUNNING
        elif status == "queued":
            state = MinerUState.PENDING
        else:
            state = MinerUState.UNKNOWN
        out.append(
            DocumentResult(
                state=state,
                raw_state=state.value,
                task_id=task_id,
                file_name=str(file.get("name") or "") or None,
                full_zip_url=zip_url,
                err_msg=err_msg[:_ERR_MSG_CHARS] if err_msg else None,
            )
        )
    return out
