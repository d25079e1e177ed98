"""
The open-source ``mineru-api`` server (package ``mineru`` 4.0.x, its "V1" API), behind the same hook.

Mapping onto the provider's model:

- a V1 *task* is our *batch*: files uploaded with a multipart ``POST /v1/tasks``, or a JSON job
  whose ``files[].source`` are URLs; a single URL task is a V1 task with one URL source;
- task states ``queued``/``running`` → ``pending``/``running``; ``completed`` → ``done``;
  ``partial`` → each file ``done`` or ``failed`` with its error; ``failed``/``canceled`` → ``failed``;
- ``is_ocr`` → ``ocr_mode`` (``ocr``; False keeps ``auto``), ``page_ranges`` → ``page_range``
  (``15-`` becomes ``15-r1``, ``2--2`` becomes ``2-r2``), ``tier`` is sent as is;
- results: each done file's zip (``GET /v1/tasks/{id}/result?response_format=zip`` for a one-file
  task, the file's own zip ``/v1/files/{id}/content`` otherwise; the same bytes) is re-laid into the
  cloud layout: ``full.md`` (from ``markdown.md``, image links kept working), ``images/``, a
  ``<id>_content_list.json`` derived from ``structured_content.json``, and the server's own JSON
  files beside them;
- errors: HTTP 401/403 → auth, 404 for an id we hold → "the server forgot the task", 429/5xx →
  transient (except ``quality_tier_unavailable`` → invalid request), other 4xx → invalid request.

The server's version is read once per hook from ``GET /v1/health``; anything but 4.0.x is refused
with a message naming the version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow_provider_mineru.clients.base import MinerUClient, Sent, Uploader, UploadFiles
from airflow_provider_mineru.connection_form import API_FLAVOR_CLOUD, API_FLAVOR_MINERU_API
from airflow_provider_mineru.exceptions import (
    MinerUAuthError,
    MinerUConnectionError,
    MinerUError,
    MinerUInvalidRequestError,
    MinerUNotFoundError,
    MinerUProtocolError,
    MinerUResultError,
    MinerUTransientError,
    MinerUValidationError,
)
from airflow_provider_mineru.models import BatchResult, DocumentResult, MinerUState
from airflow_provider_mineru.utils.bounded_http import (
    aread_answer,
    bounded_request,
    refuse_redirect,
    ssl_option,
)

if TYPE_CHECKING:
    from airflow_provider_mineru.clients.v4_wire import ParseOptions
    from airflow_provider_mineru.sources import SourceFile
    from airflow_provider_mineru.utils.safe_zip import ExtractedResult, ZipLimits
    from airflow_provider_mineru.validation import MinerULimits

log = logging.getLogger(__name__)

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
#: Characters of a server error message kept in a document's ``err_msg``.
_ERR_MSG_CHARS = 500
_CHUNK = 1024 * 1024
_TASK_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_TITLE_TYPES = frozenset({"doc_title", "title", "paragraph_title"})


class MinerUUnsupportedServerError(MinerUInvalidRequestError):
    """The server is not a ``mineru-api`` 4.0.x (a 3.x server, a 4.1+ one, or not MinerU at all)."""


def to_v1_page_range(value: str, field: str = "page_ranges") -> str:
    """
    The V1 spelling of a cloud page selection: ``N-`` → ``N-r1``, a negative ``-k`` → ``rk``.

    :param value: ``"2,4-6"``, ``"2--2"``, ``"15-"`` (validated like the cloud's).
    """
    from airflow_provider_mineru.validation import parse_page_ranges

    def page(number: int) -> str:
        return str(number) if number > 0 else f"r{-number}"

    items = []
    for start, end in parse_page_ranges(value, field):
        if end == start:
            items.append(page(start))
        else:
            items.append(f"{page(start)}-{'r1' if end is None else page(end)}")
    return ",".join(items)


def _ocr_mode(value: Any, field: str) -> str:
    from airflow_provider_mineru.validation import validate_bool

    return "ocr" if validate_bool(value, field) else "auto"


def _safe_url(url: str) -> str:
    return url.split("?", 1)[0]


def _excerpt(body: bytes) -> str:
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    return text + ("…" if len(body) > 200 else "")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    from airflow_provider_mineru.utils.retries import parse_retry_after

    return parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))


def _error_text(error: Mapping[str, Any]) -> str:
    message = str(error.get("message") or error.get("type") or "no message")
    if error.get("param"):
        message += f" (param {error['param']})"
    return message


class MinerUApiClient(MinerUClient):
    """
    The ``mineru-api`` V1 API: requests, decoding, error classes, and its endpoints over the hook's
    sessions and retry policy.
    """

    flavor: ClassVar[str] = API_FLAVOR_MINERU_API
    max_files_per_batch: ClassVar[int] = MAX_TASK_FILES

    def __init__(self) -> None:
        self.server_version: str | None = None
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    # -- options and request bodies ----------------------------------------------------------------

    def job_options(self, options: ParseOptions) -> dict[str, Any]:
        """
        Task-level V1 options (``tier``, ``ocr_mode``, ``output_formats``) from the provider's options.

        :raises MinerUValidationError: ``callback``, ``seed``, ``extra_formats``, ``model_version``
            or an unknown ``tier``.
        """
        for name in UNSUPPORTED_OPTIONS:
            value = getattr(options, name)
            if value is not None:
                raise MinerUValidationError(
                    name,
                    value,
                    f"is not supported by api_flavor '{API_FLAVOR_MINERU_API}' (the open-source mineru-api "
                    f"server); remove it or use api_flavor '{API_FLAVOR_CLOUD}'",
                )
        if options.language is not None:  # ignored by this server, but a typo is refused as on the cloud
            from airflow_provider_mineru.validation import validate_language

            validate_language(options.language)
        ignored = [name for name in IGNORED_OPTIONS if getattr(options, name) is not None]
        if ignored and tuple(ignored) not in self._warned:
            self._warned.add(tuple(ignored))  # type: ignore[arg-type]
            log.warning("api_flavor 'mineru-api' has no equivalent of %s; ignored", ", ".join(ignored))
        body: dict[str, Any] = {"output_formats": list(OUTPUT_FORMATS)}
        tier = getattr(options, "tier", None)
        if tier is not None:
            if tier not in TIERS:
                raise MinerUValidationError("tier", tier, f"must be one of {list(TIERS)}")
            body["tier"] = tier
        if options.is_ocr is not None:
            body["ocr_mode"] = _ocr_mode(options.is_ocr, "is_ocr")
        return body

    def extension_profile(self, model_version: str | None) -> str | None:
        from airflow_provider_mineru.validation import SELF_HOSTED_PROFILE

        return SELF_HOSTED_PROFILE

    def _file_entry(
        self, entry: str | Mapping[str, Any], key: str, index: int, job: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One validated file: ``{key, "ocr_mode", "page_range"}`` (per-file overrides applied)."""
        from airflow_provider_mineru.clients.v4_wire import normalize_batch_file
        from airflow_provider_mineru.validation import SELF_HOSTED_PROFILE, validate_data_id, validate_extension

        item = normalize_batch_file(entry, key, index)
        field = f"files[{index}]"
        if key == "url":
            self._check_url(item["url"], f"{field}.url")
        else:
            validate_extension(item["name"], f"{field}.name", SELF_HOSTED_PROFILE)
        if "data_id" in item:
            validate_data_id(item["data_id"], f"{field}.data_id")
        out = {key: item[key], "ocr_mode": job.get("ocr_mode", "auto"), "page_range": None}
        if "is_ocr" in item:
            out["ocr_mode"] = _ocr_mode(item["is_ocr"], f"{field}.is_ocr")
        if "page_ranges" in item:
            out["page_range"] = to_v1_page_range(item["page_ranges"], f"{field}.page_ranges")
        return out

    @staticmethod
    def _check_url(url: Any, field: str) -> str:
        from airflow_provider_mineru.validation import SELF_HOSTED_PROFILE, document_extension, validate_extension

        parsed = urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise MinerUValidationError(field, url, "must be an http:// or https:// URL the server can fetch")
        if document_extension(url):  # a URL without a suffix is typed by the server from its answer
            validate_extension(url, field, SELF_HOSTED_PROFILE)
        return url.strip()

    def task_body(
        self, url: str, options: ParseOptions, *, data_id: str | None = None, page_ranges: str | None = None
    ) -> dict[str, Any]:
        from airflow_provider_mineru.validation import validate_data_id

        job = self.job_options(options)
        entry: dict[str, Any] = {"source": {"type": "url", "url": self._check_url(url, "url")}}
        if data_id is not None:
            validate_data_id(data_id)
        if page_ranges is not None:
            entry["page_range"] = to_v1_page_range(page_ranges)
        return {"files": [entry], **job}

    def batch_body(
        self, files: Sequence[str | Mapping[str, Any]], options: ParseOptions, *, key: str, limits: MinerULimits
    ) -> dict[str, Any]:
        """
        ``{"groups": [...]}``: the V1 tasks these files become, each ``{"indices", "options", "files"}``.

        Files share one task when their ``ocr_mode`` (and, for uploads, their ``page_range``: a
        multipart task has one) agree; a task holds at most :data:`MAX_TASK_FILES`.
        """
        from airflow_provider_mineru.validation import validate_batch_size, validate_unique_names

        validate_batch_size(len(files), limits)
        job = self.job_options(options)
        items = [self._file_entry(entry, key, i, job) for i, entry in enumerate(files)]
        if key == "name":
            validate_unique_names([item["name"] for item in items])
        groups: dict[tuple[str, str | None], list[int]] = {}
        for index, item in enumerate(items):
            group_key = (item["ocr_mode"], item["page_range"] if key == "name" else None)
            groups.setdefault(group_key, []).append(index)
        out = []
        for (ocr_mode, page_range), indices in groups.items():
            for start in range(0, len(indices), MAX_TASK_FILES):
                held = indices[start : start + MAX_TASK_FILES]
                group_options = {**job, "ocr_mode": ocr_mode}
                if page_range:
                    group_options["page_range"] = page_range
                out.append({"indices": held, "options": group_options, "files": [items[i] for i in held]})
        return {"groups": out}

    # -- responses ---------------------------------------------------------------------------------

    def decode(self, status: int, headers: Mapping[str, str], body: bytes, *, known_id: str | None = None) -> Any:
        """
        A V1 answer's JSON, or the typed error of ``{"error": {"type", "code", "message", "param"}}``.

        :param known_id: the task id the request was about, when it came from this server: a 404
            then means the server forgot it.
        """
        retry_after = _retry_after(headers)
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, ValueError):
            payload = None
        if status < 300:
            if not isinstance(payload, dict):
                raise MinerUProtocolError(
                    f"mineru-api answered HTTP {status} with a body that is not a JSON object: {_excerpt(body)!r}",
                    http_status=status,
                )
            return payload
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            error = {"message": f"HTTP {status}: {_excerpt(body)}" if body.strip() else f"HTTP {status}"}
        code = error.get("code") or None
        text = _error_text(error)
        if status in (401, 403):
            hint = " (check the connection password: the server's --api-key)" if code == "invalid_api_key" else ""
            raise MinerUAuthError(text + hint, code=code, http_status=status)
        if status == 404:
            if known_id and code in ("job_not_found", "file_not_found"):
                text = f"{FORGOT_TASK} ({known_id}: {text})"
            raise MinerUNotFoundError(text, code=code, http_status=status)
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

    def _zip_url(self, root: str, task_id: str, files: Sequence[Mapping[str, Any]], index: int) -> str | None:
        ref = (files[index].get("output_files") or {}).get("zip")
        if not isinstance(ref, dict) or not ref.get("file_id"):
            return None
        if len(files) == 1:
            return f"{root}/v1/tasks/{quote(task_id)}/result?response_format=zip"
        return f"{root}/v1/files/{quote(str(ref['file_id']))}/content"

    def _documents(self, data: Any, task_id: str, root: str) -> list[DocumentResult]:
        if not isinstance(data, dict) or not isinstance(data.get("files"), list):
            raise MinerUProtocolError(f"mineru-api's task answer has no 'files': {str(data)[:200]!r}")
        task_status = str(data.get("status") or "")
        files = [f for f in data["files"] if isinstance(f, dict)]
        documents = []
        for index, file in enumerate(files):
            status = str(file.get("status") or "")
            err_msg = None
            zip_url = None
            if status == "completed":
                state = MinerUState.DONE
                zip_url = self._zip_url(root, task_id, files, index)
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
            documents.append(
                DocumentResult(
                    state=state,
                    raw_state=state.value,
                    task_id=task_id,
                    file_name=str(file.get("name") or "") or None,
                    full_zip_url=zip_url,
                    err_msg=err_msg[:_ERR_MSG_CHARS] if err_msg else None,
                )
            )
        return documents

    def task_result(self, data: Any, task_id: str, root: str = "") -> DocumentResult:
        documents = self._documents(data, task_id, root)
        if not documents:
            raise MinerUProtocolError(f"mineru-api task {task_id} lists no file")
        return documents[0]

    def batch_result(self, data: Any, batch_id: str, root: str = "") -> BatchResult:
        return BatchResult(batch_id=batch_id, files=tuple(self._documents(data, batch_id, root)))

    # -- server version ---------------------------------------------------------------------------

    def check_health(self, status: int, headers: Mapping[str, str], body: bytes, root: str) -> str:
        """The version ``GET /v1/health`` reports, or the error refusing this server."""
        if status == 404:
            raise MinerUUnsupportedServerError(
                f"{root} does not serve GET /v1/health (HTTP 404): not a mineru-api 4.0 server. MinerU 3.x "
                "servers (POST /file_parse, /tasks) are not supported; api_flavor 'mineru-api' needs mineru 4.0.x."
            )
        payload = self.decode(status, headers, body)
        version = str(payload.get("version") or "")
        if not version:
            raise MinerUUnsupportedServerError(f"{root}/v1/health reports no version: {_excerpt(body)!r}")
        if not any(version == v or version.startswith(v + ".") for v in SUPPORTED_VERSIONS):
            raise MinerUUnsupportedServerError(
                f"{root} runs mineru-api {version}; api_flavor 'mineru-api' speaks the V1 API of mineru "
                f"{', '.join(v + '.x' for v in SUPPORTED_VERSIONS)} only (3.x has no /v1 tasks API, 4.1 changes "
                "POST /v1/tasks)"
            )
        return version

    def ensure_supported(self, hook: Any) -> str:
        """Read the server version once per hook (sync); refuse an unsupported server."""
        if self.server_version is None:
            root = hook.config.base_url

            def attempt() -> str:
                response = hook._api_session.get(
                    f"{root}/v1/health", timeout=hook.config.timeout, **hook._request_options
                )
                return self.check_health(response.status_code, response.headers, response.content, root)

            self.server_version = hook._with_retries("GET /v1/health", attempt)
            log.info("mineru-api %s at %s", self.server_version, root)
        return self.server_version

    async def aensure_supported(self, hook: Any, session: Any) -> str:
        """Async :meth:`ensure_supported` (triggers), on the shared session."""
        if self.server_version is None:
            config = await hook.aget_config()
            root = config.base_url
            status, headers, body = await self._aexchange(hook, session, "GET", f"{root}/v1/health", "GET /v1/health")
            self.server_version = self.check_health(status, headers, body, root)
        return self.server_version

    # -- transport ---------------------------------------------------------------------------------

    def _send(
        self,
        hook: Any,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        multipart: Sequence[SourceFile] | None = None,
        known_id: str | None = None,
    ) -> Any:
        """One V1 call with the hook's session and retry policy; returns the decoded JSON."""
        self.ensure_supported(hook)
        url = hook.config.base_url + path
        what = f"{method} {path}"

        def attempt() -> Any:

            with contextlib.ExitStack() as stack:
                kwargs: dict[str, Any] = {"json": json_body, "params": list(params or [])}
                if multipart is not None:
                    from requests_toolbelt.multipart.encoder import MultipartEncoder

                    fields = [
                        ("files", (source.name, stack.enter_context(source.open()), "application/octet-stream"))
                        for source in multipart
                    ]
                    encoder = MultipartEncoder(fields=fields)
                    kwargs.update(data=encoder, headers={"Content-Type": encoder.content_type})
                    timeout: Any = hook._file_timeout
                else:
                    timeout = hook.config.timeout
                # No redirect is followed and the answer is read bounded; ``timeout`` bounds the whole
                # request (uploads are bounded per read by the file time-out instead).
                status, headers, content = bounded_request(
                    hook._api_session,
                    method,
                    url,
                    what=what,
                    timeout=timeout,
                    deadline=hook.config.timeout if multipart is None else None,
                    **kwargs,
                    **hook._request_options,
                )
                return self.decode(status, headers, content, known_id=known_id)

        return hook._with_retries(what, attempt, method=method, body=json_body, path=path)

    async def _aexchange(self, hook: Any, session: Any, method: str, url: str, what: str) -> tuple[int, Any, bytes]:
        """One async request with retries of connection failures; returns (status, headers, body)."""
        import aiohttp

        config = await hook.aget_config()
        attempt = 0
        while True:
            try:
                async with session.request(
                    method,
                    url,
                    headers=config.auth_headers,
                    timeout=aiohttp.ClientTimeout(total=config.timeout),
                    proxy=config.proxy,
                    ssl=ssl_option(config.verify),
                    allow_redirects=False,
                ) as response:
                    refuse_redirect(what, url, response.status, response.headers)
                    return response.status, response.headers, await aread_answer(what, response)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error: MinerUError = MinerUConnectionError(f"{what}: {type(exc).__name__}: {str(exc)[:200]}")
            await asyncio.sleep(hook._retry_or_raise(attempt, error, what))
            attempt += 1

    async def _asend(self, hook: Any, method: str, path: str, *, known_id: str | None = None) -> Any:
        config = await hook.aget_config()
        what = f"{method} {path}"
        attempt = 0
        async with hook.async_session() as session:
            await self.aensure_supported(hook, session)
            while True:
                status, headers, body = await self._aexchange(hook, session, method, config.base_url + path, what)
                try:
                    return self.decode(status, headers, body, known_id=known_id)
                except MinerUError as error:
                    await asyncio.sleep(hook._retry_or_raise(attempt, error, what))
                    attempt += 1

    @staticmethod
    def _task_path(task_id: str, field: str = "task_id") -> str:
        if not isinstance(task_id, str) or not _TASK_ID_RE.match(task_id):
            raise MinerUValidationError(field, task_id, "must be a mineru-api task id (job_…)")
        return f"/v1/tasks/{task_id}"

    @staticmethod
    def _task_id(data: Any) -> str:
        if not isinstance(data, dict) or not data.get("task_id"):
            raise MinerUProtocolError(f"mineru-api's answer has no 'task_id': {str(data)[:200]!r}")
        return str(data["task_id"])

    # -- endpoints ---------------------------------------------------------------------------------

    def submit_task(
        self, hook: Any, url: str, options: ParseOptions, *, data_id: str | None, page_ranges: str | None
    ) -> str:
        """One URL as a V1 task with one URL source (``POST /v1/tasks``, JSON); returns the task id."""
        body = self.task_body(url, options, data_id=data_id, page_ranges=page_ranges)
        return self._task_id(self._send(hook, "POST", "/v1/tasks", json_body=body))

    def submit_url_batch(
        self, hook: Any, files: Sequence[str | Mapping[str, Any]], options: ParseOptions, *, single: bool = False
    ) -> list[tuple[str, list[int]]]:
        """
        URLs as V1 JSON tasks (one per ``ocr_mode``, 100 files each); returns ``(task id, indices)``.

        :param single: the files must fit one V1 task (checked before anything is sent).
        """
        plan = self.batch_body(files, options, key="url", limits=hook.config.limits)
        if single and len(plan["groups"]) != 1:
            raise MinerUValidationError(
                "files",
                f"{len(files)} files",
                f"must fit one mineru-api task (at most {MAX_TASK_FILES}, one is_ocr): use MinerUSubmitBatchOperator",
            )
        submitted = []
        for group in plan["groups"]:
            entries = []
            for item in group["files"]:
                entry: dict[str, Any] = {"source": {"type": "url", "url": item["url"]}}
                if item["page_range"]:
                    entry["page_range"] = item["page_range"]
                entries.append(entry)
            body = {"files": entries, **group["options"]}
            submitted.append((self._task_id(self._send(hook, "POST", "/v1/tasks", json_body=body)), group["indices"]))
        return submitted

    def submit_batch(self, hook: Any, files: Sequence[str | Mapping[str, Any]], options: ParseOptions) -> str:
        """URLs that must fit one V1 task (at most 100, one ``is_ocr``); the operator splits larger lists itself."""
        return self.submit_url_batch(hook, files, options, single=True)[0][0]

    def send_url_batch(
        self, hook: Any, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> Iterator[Sent]:
        """One V1 task per ``ocr_mode``, 100 files each."""
        for task_id, held in self.submit_url_batch(hook, files, options):
            yield task_id, held, {}

    def send_uploads(self, hook: Any, files: UploadFiles, upload: Uploader, log: Any) -> Iterator[Sent]:
        """Streamed multipart ``POST /v1/tasks``: one V1 task per ``is_ocr``/``page_ranges``, 100 files each."""
        for task_id, held in self.submit_uploads(hook, files.entries, files.sources, files.options):
            yield task_id, held, {}

    def land_download(self, hook: Any, url: str, target: Any, identity: dict[str, Any]) -> ExtractedResult:
        """The server's result, re-laid into the cloud's layout by :meth:`download_and_extract`, lands the same way."""
        from airflow_provider_mineru.landing import land_result

        return land_result(lambda folder: self.download_and_extract(hook, url, folder), target, identity=identity)

    def submit_uploads(
        self, hook: Any, entries: Sequence[Mapping[str, Any]], sources: Sequence[SourceFile], options: ParseOptions
    ) -> list[tuple[str, list[int]]]:
        """
        Local or object-storage files as multipart V1 tasks, streamed (never read whole).

        :param entries: per file ``{"name", "is_ocr"?, "data_id"?, "page_ranges"?}``.
        :param sources: the matching :class:`~airflow_provider_mineru.sources.SourceFile` objects.
        :return: ``(task id, indices into entries)`` per V1 task.
        """
        plan = self.batch_body(entries, options, key="name", limits=hook.config.limits)
        submitted = []
        for group in plan["groups"]:
            params = [("output_formats", fmt) for fmt in group["options"]["output_formats"]]
            params += [(k, str(v)) for k, v in group["options"].items() if k != "output_formats" and v is not None]
            data = self._send(
                hook, "POST", "/v1/tasks", params=params, multipart=[sources[i] for i in group["indices"]]
            )
            submitted.append((self._task_id(data), group["indices"]))
        return submitted

    def get_task(self, hook: Any, task_id: str) -> DocumentResult:
        data = self._send(hook, "GET", self._task_path(task_id), known_id=task_id)
        return self.task_result(data, task_id, hook.config.base_url)

    def get_batch(self, hook: Any, batch_id: str) -> BatchResult:
        data = self._send(hook, "GET", self._task_path(batch_id, "batch_id"), known_id=batch_id)
        return self.batch_result(data, batch_id, hook.config.base_url)

    async def aget_task(self, hook: Any, task_id: str) -> DocumentResult:
        config = await hook.aget_config()
        data = await self._asend(hook, "GET", self._task_path(task_id), known_id=task_id)
        return self.task_result(data, task_id, config.base_url)

    async def aget_batch(self, hook: Any, batch_id: str) -> BatchResult:
        config = await hook.aget_config()
        data = await self._asend(hook, "GET", self._task_path(batch_id, "batch_id"), known_id=batch_id)
        return self.batch_result(data, batch_id, config.base_url)

    def cancel(self, hook: Any, task_id: str) -> dict[str, Any]:
        """Cancel a task (``DELETE /v1/tasks/{id}``); a parse already running ends on its own."""
        return self._send(hook, "DELETE", self._task_path(task_id), known_id=task_id)

    def test_connection(self, hook: Any) -> tuple[bool, str]:
        """Check the version (``/v1/health``) and the API key (a made-up task id must answer 404)."""
        try:
            version = self.ensure_supported(hook)
            self._send(hook, "GET", f"/v1/tasks/connection-test-{uuid.uuid4().hex}")
        except MinerUNotFoundError:
            return True, f"Connected to mineru-api {version} at {hook.config.base_url}; the API key is accepted."
        except MinerUAuthError as exc:
            return False, f"mineru-api refused the API key: {exc}"
        except MinerUError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to mineru-api {version} at {hook.config.base_url}."

    # -- results -----------------------------------------------------------------------------------

    def _download(self, hook: Any, url: str, destination: Path, max_bytes: int) -> Path:
        """Stream a result zip with the API key (only to the connection's own server)."""
        root = hook.config.base_url
        if not (url == root or url.startswith(root + "/")):
            raise MinerUValidationError(
                "full_zip_url", _safe_url(url), f"is not on this connection's server {root}; the API key is not sent"
            )
        known_id = url[len(root) :].split("/")[3] if url[len(root) :].startswith("/v1/tasks/") else None

        def attempt() -> Path:
            with hook._api_session.get(
                url,
                stream=True,
                timeout=hook._file_timeout,
                headers={"Accept-Encoding": "identity"},
                **hook._request_options,
            ) as response:
                if response.status_code == 202:
                    raise MinerUTransientError("the result is not ready yet (HTTP 202)", http_status=202)
                if response.status_code >= 300:
                    self.decode(response.status_code, response.headers, response.raw.read(65536), known_id=known_id)
                expected = response.headers.get("Content-Length")
                written = 0
                with open(destination, "wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise MinerUResultError(f"result download exceeds {max_bytes} bytes: {_safe_url(url)}")
                        out.write(chunk)
            if expected is not None and written != int(expected):
                raise MinerUConnectionError(f"result download ended after {written} of {expected} bytes")
            return destination

        return hook._with_retries(f"download of {_safe_url(url)}", attempt)

    def download_and_extract(
        self, hook: Any, url: str, target: Any, *, limits: ZipLimits | None = None
    ) -> ExtractedResult:
        """
        Download one done file's result zip and extract it into ``target`` in the cloud's layout.

        :param url: the document's ``full_zip_url``.
        :param target: a local folder or any object-storage path.
        """
        from airflow_provider_mineru.utils.safe_zip import ZipLimits, extract_result_zip

        limits = limits or ZipLimits()
        tmpdir = Path(tempfile.mkdtemp(prefix="mineru-api-result-"))
        try:
            zip_path = self._download(hook, url, tmpdir / "result.zip", limits.max_total_bytes)
            raw = tmpdir / "raw"
            raw.mkdir()
            extract_result_zip(zip_path, raw, limits=limits)
            stem = re.sub(r"[^A-Za-z0-9_.\-]+", "_", urlsplit(url).path.rstrip("/").split("/")[-2])
            cloud = tmpdir / "cloud"
            relayout_result(_result_folder(raw), cloud, stem or "mineru")
            cloud_zip = tmpdir / "cloud.zip"
            with zipfile.ZipFile(cloud_zip, "w", zipfile.ZIP_STORED) as archive:
                for path in sorted(cloud.rglob("*")):
                    if path.is_file():
                        archive.write(path, path.relative_to(cloud).as_posix())
            return extract_result_zip(cloud_zip, target, limits=limits)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


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


__all__ = [
    "FORGOT_TASK",
    "MAX_TASK_FILES",
    "SUPPORTED_VERSIONS",
    "MinerUApiClient",
    "MinerUUnsupportedServerError",
    "content_list_from_structured",
    "relayout_result",
    "to_v1_page_range",
]
