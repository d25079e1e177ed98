"""
The open-source ``mineru-api`` server (package ``mineru`` 4.0.x, its "V1" API), behind the same hook.

Its endpoints over the connection's transport, as :class:`MinerUApiClient`; the wire format
(bodies, answers, errors, the version check) is :mod:`~airflow_provider_mineru.clients.mineru_api_wire`,
the re-layout of its results into the cloud's layout
:mod:`~airflow_provider_mineru.clients.mineru_api_results`. The server's version is read once per
client from ``GET /v1/health``; anything but 4.0.x is refused with a message naming the version.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mineru.clients import mineru_api_wire as wire
from airflow_provider_mineru.clients.base import MinerUClient, Sent, Uploader, UploadFiles
from airflow_provider_mineru.clients.mineru_api_results import relayout_zip
from airflow_provider_mineru.clients.mineru_api_wire import (
    MAX_TASK_FILES,
    TASKS_PATH,
    TIERS,
    MinerUUnsupportedServerError,
)
from airflow_provider_mineru.connection.form import API_FLAVOR_CLOUD, API_FLAVOR_MINERU_API
from airflow_provider_mineru.exceptions import (
    MinerUAuthError,
    MinerUError,
    MinerUNotFoundError,
    MinerUProtocolError,
    MinerUTransientError,
    MinerUValidationError,
)
from airflow_provider_mineru.inputs.validation import (
    SELF_HOSTED_PROFILE,
    validate_batch_size,
    validate_data_id,
    validate_language,
    validate_unique_names,
)
from airflow_provider_mineru.models import BatchResult, DocumentResult
from airflow_provider_mineru.results.landing import land_result
from airflow_provider_mineru.transport.policy import Answer, Request, safe_url
from airflow_provider_mineru.utils.safe_zip import ZipLimits, extract_result_zip

if TYPE_CHECKING:
    from airflow_provider_mineru.clients.v4_wire import ParseOptions
    from airflow_provider_mineru.connection.config import MinerULimits
    from airflow_provider_mineru.inputs.sources import SourceFile
    from airflow_provider_mineru.transport import MinerUTransport
    from airflow_provider_mineru.utils.safe_zip import ExtractedResult

log = logging.getLogger(__name__)

__all__ = ["MinerUApiClient", "MinerUUnsupportedServerError"]


class MinerUApiClient(MinerUClient):
    """
    The ``mineru-api`` V1 API: a V1 task is our batch (``POST /v1/tasks``, JSON URLs or a streamed
    multipart upload), polled at ``/v1/tasks/{id}``; results come from the server itself, with the
    API key, and are re-laid into the cloud's layout.
    """

    flavor: ClassVar[str] = API_FLAVOR_MINERU_API
    default_path: ClassVar[str] = ""  # the server's root URL: we add /v1/... ourselves
    paid_submit_paths: ClassVar[tuple[str, ...]] = (TASKS_PATH,)
    tiers: ClassVar[tuple[str, ...]] = TIERS
    max_files_per_batch: ClassVar[int] = MAX_TASK_FILES

    def __init__(self) -> None:
        self.server_version: str | None = None
        self._warned: set[tuple[str, ...]] = set()

    # -- options and request bodies ----------------------------------------------------------------

    def job_options(self, options: ParseOptions) -> dict[str, Any]:
        """
        Task-level V1 options (``tier``, ``ocr_mode``, ``output_formats``) from the provider's options.

        :raises MinerUValidationError: ``callback``, ``seed``, ``extra_formats``, ``model_version``
            or an unknown ``tier``.
        """
        for name in wire.UNSUPPORTED_OPTIONS:
            value = getattr(options, name)
            if value is not None:
                raise MinerUValidationError(
                    name,
                    value,
                    f"is not supported by api_flavor '{API_FLAVOR_MINERU_API}' (the open-source mineru-api "
                    f"server); remove it or use api_flavor '{API_FLAVOR_CLOUD}'",
                )
        if options.language is not None:  # ignored by this server, but a typo is refused as on the cloud
            validate_language(options.language)
        ignored = tuple(name for name in wire.IGNORED_OPTIONS if getattr(options, name) is not None)
        if ignored and ignored not in self._warned:
            self._warned.add(ignored)
            log.warning("api_flavor 'mineru-api' has no equivalent of %s; ignored", ", ".join(ignored))
        body: dict[str, Any] = {"output_formats": list(wire.OUTPUT_FORMATS)}
        tier = self.check_tier(options)
        if tier is not None:
            body["tier"] = tier
        if options.is_ocr is not None:
            body["ocr_mode"] = wire.ocr_mode(options.is_ocr, "is_ocr")
        return body

    def extension_profile(self, model_version: str | None) -> str | None:
        return SELF_HOSTED_PROFILE

    def task_body(
        self, url: str, options: ParseOptions, *, data_id: str | None = None, page_ranges: str | None = None
    ) -> dict[str, Any]:
        job = self.job_options(options)
        entry: dict[str, Any] = {"source": {"type": "url", "url": wire.check_url(url, "url")}}
        if data_id is not None:
            validate_data_id(data_id)
        if page_ranges is not None:
            entry["page_range"] = wire.to_v1_page_range(page_ranges)
        return {"files": [entry], **job}

    def batch_body(
        self, files: Sequence[str | Mapping[str, Any]], options: ParseOptions, *, key: str, limits: MinerULimits
    ) -> dict[str, Any]:
        """
        ``{"groups": [...]}``: the V1 tasks these files become, each ``{"indices", "options", "files"}``
        (see :func:`~airflow_provider_mineru.clients.mineru_api_wire.group_files`).
        """
        validate_batch_size(len(files), limits)
        job = self.job_options(options)
        items = [wire.file_entry(entry, key, i, job) for i, entry in enumerate(files)]
        if key == "name":
            validate_unique_names([item["name"] for item in items])
        return {"groups": wire.group_files(items, key, job)}

    # -- responses ---------------------------------------------------------------------------------

    def decode(self, status: int, headers: Mapping[str, str], body: bytes, *, known_id: str | None = None) -> Any:
        return wire.decode(Answer(status, headers, body), known_id=known_id)

    def task_result(self, data: Any, task_id: str, root: str = "") -> DocumentResult:
        found = wire.documents(data, task_id, root)
        if not found:
            raise MinerUProtocolError(f"mineru-api task {task_id} lists no file")
        return found[0]

    def batch_result(self, data: Any, batch_id: str, root: str = "") -> BatchResult:
        return BatchResult(batch_id=batch_id, files=tuple(wire.documents(data, batch_id, root)))

    # -- server version ---------------------------------------------------------------------------

    def _health(self, transport: MinerUTransport) -> Request:
        return Request("GET", transport.url(wire.HEALTH_PATH), f"GET {wire.HEALTH_PATH}")

    def ensure_supported(self, transport: MinerUTransport) -> str:
        """Read the server version once per client (sync); refuse an unsupported server."""
        if self.server_version is None:
            root = transport.config.base_url
            self.server_version = transport.send(self._health(transport), lambda a: wire.health_version(a, root))
            log.info("mineru-api %s at %s", self.server_version, root)
        return self.server_version

    async def aensure_supported(self, transport: MinerUTransport) -> str:
        """Async :meth:`ensure_supported` (triggers)."""
        if self.server_version is None:
            root = transport.config.base_url
            self.server_version = await transport.asend(self._health(transport), lambda a: wire.health_version(a, root))
        return self.server_version

    # -- calls ---------------------------------------------------------------------------------------

    def _request(self, transport: MinerUTransport, method: str, path: str, **fields: Any) -> Request:
        return Request(method, transport.url(path), f"{method} {path}", paid=self.is_paid(method, path), **fields)

    def _send(self, transport: MinerUTransport, request: Request, known_id: str | None = None) -> Any:
        self.ensure_supported(transport)
        return transport.send(request, lambda answer: wire.decode(answer, known_id=known_id))

    async def _asend(self, transport: MinerUTransport, request: Request, known_id: str | None = None) -> Any:
        await self.aensure_supported(transport)
        return await transport.asend(request, lambda answer: wire.decode(answer, known_id=known_id))

    # -- endpoints ---------------------------------------------------------------------------------

    def submit_task(
        self,
        transport: MinerUTransport,
        url: str,
        options: ParseOptions,
        *,
        data_id: str | None,
        page_ranges: str | None,
    ) -> str:
        """One URL as a V1 task with one URL source (``POST /v1/tasks``, JSON); returns the task id."""
        body = self.task_body(url, options, data_id=data_id, page_ranges=page_ranges)
        return wire.task_id_of(self._send(transport, self._request(transport, "POST", TASKS_PATH, json=body)))

    def submit_url_batch(
        self,
        transport: MinerUTransport,
        files: Sequence[str | Mapping[str, Any]],
        options: ParseOptions,
        *,
        single: bool = False,
    ) -> list[tuple[str, list[int]]]:
        """
        URLs as V1 JSON tasks (one per ``ocr_mode``, 100 files each); returns ``(task id, indices)``.

        :param single: the files must fit one V1 task (checked before anything is sent).
        """
        plan = self.batch_body(files, options, key="url", limits=transport.config.limits)
        if single and len(plan["groups"]) != 1:
            raise MinerUValidationError(
                "files",
                f"{len(files)} files",
                f"must fit one mineru-api task (at most {MAX_TASK_FILES}, one is_ocr): use MinerUSubmitBatchOperator",
            )
        submitted = []
        for group in plan["groups"]:
            request = self._request(transport, "POST", TASKS_PATH, json=wire.url_job(group))
            submitted.append((wire.task_id_of(self._send(transport, request)), group["indices"]))
        return submitted

    def submit_batch(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> str:
        """URLs that must fit one V1 task (at most 100, one ``is_ocr``); the operator splits larger lists itself."""
        return self.submit_url_batch(transport, files, options, single=True)[0][0]

    def send_url_batch(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> Iterator[Sent]:
        """One V1 task per ``ocr_mode``, 100 files each."""
        for task_id, held in self.submit_url_batch(transport, files, options):
            yield task_id, held, {}

    def send_uploads(
        self, transport: MinerUTransport, files: UploadFiles, upload: Uploader, log: Any
    ) -> Iterator[Sent]:
        """Streamed multipart ``POST /v1/tasks``: one V1 task per ``is_ocr``/``page_ranges``, 100 files each."""
        for task_id, held in self.submit_uploads(transport, files.entries, files.sources, files.options):
            yield task_id, held, {}

    def submit_uploads(
        self,
        transport: MinerUTransport,
        entries: Sequence[Mapping[str, Any]],
        sources: Sequence[SourceFile],
        options: ParseOptions,
    ) -> list[tuple[str, list[int]]]:
        """
        Local or object-storage files as multipart V1 tasks, streamed (never read whole).

        :param entries: per file ``{"name", "is_ocr"?, "data_id"?, "page_ranges"?}``.
        :param sources: the matching :class:`~airflow_provider_mineru.inputs.sources.SourceFile` objects.
        :return: ``(task id, indices into entries)`` per V1 task.
        """
        plan = self.batch_body(entries, options, key="name", limits=transport.config.limits)
        submitted = []
        for group in plan["groups"]:
            request = self._request(
                transport,
                "POST",
                TASKS_PATH,
                params=wire.multipart_params(group["options"]),
                multipart=[sources[i] for i in group["indices"]],
            )
            submitted.append((wire.task_id_of(self._send(transport, request)), group["indices"]))
        return submitted

    def get_task(self, transport: MinerUTransport, task_id: str) -> DocumentResult:
        data = self._send(transport, self._request(transport, "GET", wire.task_path(task_id)), task_id)
        return self.task_result(data, task_id, transport.config.base_url)

    def get_batch(self, transport: MinerUTransport, batch_id: str) -> BatchResult:
        data = self._send(transport, self._request(transport, "GET", wire.task_path(batch_id, "batch_id")), batch_id)
        return self.batch_result(data, batch_id, transport.config.base_url)

    async def aget_task(self, transport: MinerUTransport, task_id: str) -> DocumentResult:
        request = self._request(transport, "GET", wire.task_path(task_id))
        return self.task_result(await self._asend(transport, request, task_id), task_id, transport.config.base_url)

    async def aget_batch(self, transport: MinerUTransport, batch_id: str) -> BatchResult:
        request = self._request(transport, "GET", wire.task_path(batch_id, "batch_id"))
        return self.batch_result(await self._asend(transport, request, batch_id), batch_id, transport.config.base_url)

    def test_connection(self, transport: MinerUTransport) -> tuple[bool, str]:
        """Check the version (``/v1/health``) and the API key (a made-up task id must answer 404)."""
        base = transport.config.base_url
        try:
            version = self.ensure_supported(transport)
            self._send(transport, self._request(transport, "GET", f"{TASKS_PATH}/connection-test-{uuid.uuid4().hex}"))
        except MinerUNotFoundError:
            return True, f"Connected to mineru-api {version} at {base}; the API key is accepted."
        except MinerUAuthError as exc:
            return False, f"mineru-api refused the API key: {exc}"
        except MinerUError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to mineru-api {version} at {base}."

    # -- results -----------------------------------------------------------------------------------

    def _download(self, transport: MinerUTransport, url: str, destination: Path, max_bytes: int) -> Path:
        """Stream a result zip with the API key (only to the connection's own server, no redirect followed)."""
        root = transport.config.base_url
        if not (url == root or url.startswith(root + "/")):
            raise MinerUValidationError(
                "full_zip_url", safe_url(url), f"is not on this connection's server {root}; the API key is not sent"
            )
        rest = url[len(root) :]
        known_id = rest.split("/")[3] if rest.startswith(f"{TASKS_PATH}/") else None

        def refuse(answer: Answer) -> None:
            if answer.status == 202:
                raise MinerUTransientError("the result is not ready yet (HTTP 202)", http_status=202)
            wire.decode(answer, known_id=known_id)

        return transport.download(url, destination, max_bytes=max_bytes, authenticated=True, refuse=refuse)

    def download_and_extract(
        self, transport: MinerUTransport, url: str, target: Any, *, limits: ZipLimits | None = None
    ) -> ExtractedResult:
        """
        Download one done file's result zip and extract it into ``target`` in the cloud's layout.

        :param url: the document's ``full_zip_url``.
        :param target: a local folder or any object-storage path.
        """
        limits = limits or ZipLimits()
        work = Path(tempfile.mkdtemp(prefix="mineru-api-result-"))
        try:
            zip_path = self._download(transport, url, work / "result.zip", limits.max_total_bytes)
            return extract_result_zip(relayout_zip(zip_path, url, work, limits), target, limits=limits)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def land_download(
        self, transport: MinerUTransport, url: str, target: Any, identity: dict[str, Any]
    ) -> ExtractedResult:
        """The server's result, re-laid into the cloud's layout by :meth:`download_and_extract`, lands the same way."""
        return land_result(lambda folder: self.download_and_extract(transport, url, folder), target, identity=identity)
