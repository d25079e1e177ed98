"""
The emulated ``mineru-api``'s endpoint handlers: each turns a routed, parsed
:class:`~mineru_emulator.http.Request` into an answer (a payload of
:mod:`.payloads`, a ``{"error": …}`` body of :mod:`.contract`, a zip or a file's bytes), as the
real server's FastAPI application gives them.

:class:`MinerUApiResponses` is also the flavor's :class:`~mineru_emulator.http.Answers`
(method not allowed, body too large, internal error, faults).
"""

from __future__ import annotations

import hmac
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

from mineru_emulator.http import Handler, Request, Route, answer_transport_fault
from mineru_emulator.mineru_api import contract, payloads
from mineru_emulator.mineru_api.contract import MAX_FILE_BYTES, ApiError, Job, Source, invalid
from mineru_emulator.mineru_api.state import (
    TERMINAL,
    FileRecord,
    MinerUApiState,
    Outcome,
    TaskRecord,
    extension,
    parse_document,
)

if TYPE_CHECKING:
    from mineru_emulator.mineru_api.faults import Fault

#: JSON answers carry no charset, as FastAPI's ``JSONResponse``.
JSON = "application/json"
_UNAUTHORIZED = ApiError(401, "authentication_error", "invalid_api_key", "Invalid or missing API key")


def send(request: Request, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
    """Send a V1 JSON answer."""
    request.send_json(payload, status, headers, content_type=JSON)


def send_error(request: Request, error: ApiError) -> None:
    send(request, error.body, error.status)


def fetch(url: str, timeout: float) -> tuple[bytes | None, str | None, str | None]:
    """``(bytes, media type, error message)`` of a URL source, as the server's fetcher reports it."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            data = answer.read(MAX_FILE_BYTES + 1)
            media = (answer.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    except urllib.error.HTTPError as exc:
        return None, None, f"Client error '{exc.code}' for url '{url}'"
    except (OSError, ValueError):
        return None, None, "All connection attempts failed"
    if len(data) > MAX_FILE_BYTES:
        return None, None, f"url source exceeds max_url_bytes ({MAX_FILE_BYTES})"
    return data, media, None


class ServerSettings(Protocol):
    """What the handlers read of the server they serve (the facade, :class:`~.server.MinerUApiEmulator`)."""

    api_key: str
    version: str
    server_tier: str
    allow_http_source: bool
    fetch_timeout: float

    def add_task(self, task: TaskRecord) -> dict[str, Any]: ...


class MinerUApiResponses:
    """
    The handlers of one emulator.

    :param state: its tasks.
    :param emulator: its settings (API key, version, tier, sources) and timings.
    """

    def __init__(self, state: MinerUApiState, emulator: ServerSettings) -> None:
        self.state = state
        self.emu = emulator

    # -- answers the plumbing asks for -----------------------------------------------------------

    def method_not_allowed(self, request: Request, route: Route) -> None:
        send_error(request, invalid("Method Not Allowed", code="method_not_allowed", status=405))

    def body_too_large(self, request: Request) -> None:
        message = f"Request body exceeds {contract.MAX_BODY // (1024 * 1024)} MiB"
        send_error(request, invalid(message, code="file_too_large", status=413))

    def internal_error(self, request: Request, error: Exception) -> None:
        """An emulator bug answers like the real server's catch-all."""
        send_error(request, ApiError(500, "api_error", "internal_error", f"Internal server error: {error}"))

    def answer_fault(self, request: Request, fault: Fault) -> bool:
        """Restart first if asked; then the transport half, or the V1 error body; False: the normal answer, cut."""
        if fault.restart:
            self.state.restart()
        if answer_transport_fault(request, fault):
            return True
        if fault.truncated:
            return False
        send_error(request, ApiError(fault.http_status, fault.error_type, fault.code, fault.message))
        return True

    # -- auth ------------------------------------------------------------------------------------

    def api(self, handler: Callable[[Request], None]) -> Handler:
        """``handler`` behind the API-key check, with :class:`ApiError` answered as a V1 error body."""

        def answer(request: Request) -> None:
            key = self.emu.api_key
            given = (request.headers.get("Authorization") or "").encode()
            if key and not hmac.compare_digest(given, f"Bearer {key}".encode()):
                send_error(request, _UNAUTHORIZED)
                return
            try:
                handler(request)
            except ApiError as error:
                send_error(request, error)

        return answer

    # -- the API ---------------------------------------------------------------------------------

    def other(self, request: Request) -> None:
        """No such route (every route of a 3.x server, which has no V1 API)."""
        send_error(request, ApiError(404, "invalid_request_error", "invalid_request", "Not Found"))

    def health(self, request: Request) -> None:
        send(request, payloads.health(self.emu.version))

    def tiers(self, request: Request) -> None:
        send(request, payloads.tiers(self.emu.server_tier, self.emu.version))

    def payload(self, task: TaskRecord, now: float) -> dict[str, Any]:
        """``GET /v1/tasks/{id}``'s payload of a task at ``now``."""
        with self.state.lock:
            file_ids = self.state.file_ids.get(task.task_id, {})
            return payloads.task_payload(task, now, self.state.timings, file_ids)

    def _task(self, request: Request, now: float) -> TaskRecord:
        task = self.state.task(request.arg or "", now)
        if task is None:
            raise contract.not_found("job_not_found", f"Job {request.arg}")
        return task

    def get_task(self, request: Request) -> None:
        now = time.time()
        send(request, self.payload(self._task(request, now), now))

    def cancel(self, request: Request) -> None:
        """``DELETE /v1/tasks/{id}``: stops the queued files (409 once the task is terminal)."""
        now = time.time()
        with self.state.lock:
            task = self._task(request, now)
            status = task.status(now, self.state.timings)
            if status in TERMINAL:
                raise invalid(f"Job is {status}", code="job_already_terminal", status=409)
            task.canceled_at = now
            payload = self.payload(task, now)
        send(request, payload)

    def result(self, request: Request) -> None:
        """``GET /v1/tasks/{id}/result[?response_format=zip]``: 202 while running, 409 failed or canceled."""
        now = time.time()
        response_format = (parse_qs(request.query).get("response_format") or ["json"])[-1]
        with self.state.lock:
            task = self._task(request, now)
            payload = self.payload(task, now)
        status = payload["status"]
        if status not in TERMINAL:
            send(request, payload, 202)
        elif status in ("failed", "canceled"):
            send(request, payload, 409)
        elif response_format != "zip":
            send(request, payloads.with_contents(task, payload))
        elif "zip" not in task.output_formats:
            raise invalid("Request zip in output_formats when submitting the task", code="unsupported_output_format")
        else:
            index = next(i for i, f in enumerate(payload["files"]) if f["status"] == "completed")
            data = payloads.file_zip(task, index) if len(task.files) == 1 else payloads.combined_zip(task, payload)
            headers = {
                "Content-Disposition": f'attachment; filename="{task.task_id}.zip"',
                "X-MinerU-Task-Id": task.task_id,
                "X-MinerU-Task-Status": status,
            }
            request.send(200, data, "application/zip", headers)

    def file_content(self, request: Request) -> None:
        """``GET /v1/files/{id}/content``: a completed file's Markdown or zip."""
        output = self.state.output(request.arg or "", time.time())
        if output is None:
            raise contract.not_found("file_not_found", f"File {request.arg}")
        task, index, fmt = output
        data = payloads.file_zip(task, index) if fmt == "zip" else task.files[index].outcome.markdown.encode("utf-8")
        request.send(200, data, "application/octet-stream")

    # -- submitting ------------------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        """``POST /v1/tasks``: a JSON job (url/inline sources) or multipart ``files`` with options in the query."""
        content_type = request.headers.get("Content-Type") or ""
        media = content_type.split(";", 1)[0].strip().lower()
        params = parse_qs(request.query, keep_blank_values=True)
        job: Job
        if media == "application/json":
            job = contract.check_json_job(request.body, params, allow_http_source=self.emu.allow_http_source)
        elif media == "multipart/form-data":
            job, page_range = contract.check_form_options(params)
            try:
                parts = request.multipart()
            except ValueError:
                raise invalid("Malformed multipart body", param="files") from None
            contract.add_form_files(job, page_range, [(p.name, p.filename, p.data) for p in parts])
        else:
            raise invalid("Use application/json, multipart/form-data or application/octet-stream", status=415)
        tier = contract.check_options(job, self.emu.server_tier)
        # Outside the lock: URL sources are fetched while answering.
        files = [self._parse(source, job.ocr_mode) for source in job.sources]
        task = TaskRecord(
            task_id="job_" + secrets.token_hex(12),
            created=time.time(),
            tier=tier,
            ocr_mode=job.ocr_mode,
            output_formats=list(dict.fromkeys(job.formats)),
            files=files,
        )
        send(request, self.emu.add_task(task), 202)

    def _parse(self, source: Source, ocr_mode: str) -> FileRecord:
        """A source fetched (URL sources) and parsed."""
        name, page_range = source.name, source.page_range
        if source.url is None:
            outcome = parse_document(name, source.data or b"", page_range=page_range, ocr_mode=ocr_mode)
            file_id = "file-" + secrets.token_hex(12)
            return FileRecord(name=name, file_id=file_id, page_range=page_range, outcome=outcome)
        data, media_type, error = fetch(source.url, self.emu.fetch_timeout)
        if error is None and not extension(name) and media_type == "text/html":
            name = name + ".html"
        if error:
            outcome = Outcome(error={"type": "engine_error", "code": "parse_failed", "message": error, "param": None})
        else:
            outcome = parse_document(name, data or b"", page_range=page_range, ocr_mode=ocr_mode)
        return FileRecord(name=name, file_id=None, page_range=page_range, outcome=outcome)
