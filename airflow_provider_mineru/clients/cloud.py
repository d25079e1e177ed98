"""
The MinerU cloud v4 API (the seeds' API) and v4-shaped gateways, as a
:class:`~airflow_provider_mineru.clients.base.MinerUClient`: bodies and envelopes from
:mod:`airflow_provider_mineru.clients.v4_wire`, sent over the connection's
:class:`~airflow_provider_mineru.transport.MinerUTransport` (deadlines, no redirects, bounded
reads, the retry loop).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mineru.clients.base import MinerUClient, Sent, Uploader, UploadFiles
from airflow_provider_mineru.clients.cloud_check import check_connection
from airflow_provider_mineru.clients.v4_wire import (
    BATCH_PATH,
    FILE_URLS_PATH,
    PAID_SUBMIT_PATHS,
    SUBMIT_BATCH_PATH,
    SUBMIT_TASK_PATH,
    TASK_NOT_FOUND_CODE,
    TASK_PATH,
    build_batch_body,
    build_task_body,
    parse_response,
)
from airflow_provider_mineru.connection.form import API_FLAVOR_CLOUD, DEFAULT_API_PATH
from airflow_provider_mineru.exceptions import MinerUError, MinerUProtocolError, MinerUUploadURLExpiredError
from airflow_provider_mineru.inputs.validation import validate_path_id
from airflow_provider_mineru.models import BatchResult, DocumentResult, UploadGrant
from airflow_provider_mineru.results.landing import land_result_zip
from airflow_provider_mineru.transport.policy import Answer, Request, mark_missing_endpoint
from airflow_provider_mineru.utils.bounded_http import check_answer_url
from airflow_provider_mineru.utils.safe_zip import DEFAULT_LIMITS, ZipLimits, extract_result_zip
from airflow_provider_mineru.utils.storage_paths import is_local_path

if TYPE_CHECKING:
    from airflow_provider_mineru.clients.v4_wire import ParseOptions
    from airflow_provider_mineru.connection.config import MinerULimits
    from airflow_provider_mineru.transport import MinerUTransport
    from airflow_provider_mineru.utils.safe_zip import ExtractedResult


class CloudClient(MinerUClient):
    """
    The v4 API: ``/extract/task``, ``/extract/task/batch``, ``/file-urls/batch`` + presigned PUTs,
    ``/extract-results/batch/{id}``, result zips on a CDN.
    """

    flavor: ClassVar[str] = API_FLAVOR_CLOUD
    default_path: ClassVar[str] = DEFAULT_API_PATH
    paid_submit_paths: ClassVar[tuple[str, ...]] = PAID_SUBMIT_PATHS

    def task_body(
        self, url: str, options: ParseOptions, *, data_id: str | None = None, page_ranges: str | None = None
    ) -> dict[str, Any]:
        self.check_tier(options)
        return build_task_body(url, options, data_id=data_id, page_ranges=page_ranges)

    def batch_body(
        self, files: Sequence[str | Mapping[str, Any]], options: ParseOptions, *, key: str, limits: MinerULimits
    ) -> dict[str, Any]:
        self.check_tier(options)
        return build_batch_body(files, options, key=key, limits=limits)

    def decode(self, status: int, headers: Mapping[str, str], body: bytes, *, known_id: str | None = None) -> Any:
        return parse_response(status, headers, body)

    def task_result(self, data: Any, task_id: str) -> DocumentResult:
        if not isinstance(data, dict):
            raise MinerUProtocolError(f"MinerU's task answer is not an object: {str(data)[:200]!r}")
        return DocumentResult.from_api({"task_id": task_id, **data})

    def batch_result(self, data: Any, batch_id: str) -> BatchResult:
        return BatchResult.from_api(data if isinstance(data, dict) else {}, batch_id)

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
        body = self.task_body(url, options, data_id=data_id, page_ranges=page_ranges)
        return _task_id(transport.send(self._post(transport, SUBMIT_TASK_PATH, body), _decode))

    async def asubmit_task(
        self,
        transport: MinerUTransport,
        url: str,
        options: ParseOptions,
        *,
        data_id: str | None,
        page_ranges: str | None,
    ) -> str:
        body = self.task_body(url, options, data_id=data_id, page_ranges=page_ranges)
        return _task_id(await transport.asend(self._post(transport, SUBMIT_TASK_PATH, body), _decode))

    def submit_batch(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> str:
        body = self.batch_body(files, options, key="url", limits=transport.config.limits)
        return _batch_id(transport.send(self._post(transport, SUBMIT_BATCH_PATH, body), _decode))

    async def asubmit_batch(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> str:
        body = self.batch_body(files, options, key="url", limits=transport.config.limits)
        return _batch_id(await transport.asend(self._post(transport, SUBMIT_BATCH_PATH, body), _decode))

    def request_upload_urls(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> UploadGrant:
        body = self.batch_body(files, options, key="name", limits=transport.config.limits)
        return _upload_grant(transport.send(self._post(transport, FILE_URLS_PATH, body), _decode), len(files))

    async def arequest_upload_urls(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> UploadGrant:
        body = self.batch_body(files, options, key="name", limits=transport.config.limits)
        return _upload_grant(await transport.asend(self._post(transport, FILE_URLS_PATH, body), _decode), len(files))

    def get_task(self, transport: MinerUTransport, task_id: str) -> DocumentResult:
        return self.task_result(transport.send(_get(transport, _task_path(task_id)), _decode), task_id)

    async def aget_task(self, transport: MinerUTransport, task_id: str) -> DocumentResult:
        return self.task_result(await transport.asend(_get(transport, _task_path(task_id)), _decode), task_id)

    def get_batch(self, transport: MinerUTransport, batch_id: str) -> BatchResult:
        return self.batch_result(transport.send(_get(transport, _batch_path(batch_id)), _decode), batch_id)

    async def aget_batch(self, transport: MinerUTransport, batch_id: str) -> BatchResult:
        return self.batch_result(await transport.asend(_get(transport, _batch_path(batch_id)), _decode), batch_id)

    def send_url_batch(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> Iterator[Sent]:
        yield self.submit_batch(transport, files, options), list(range(len(files))), {}

    def send_uploads(
        self, transport: MinerUTransport, files: UploadFiles, upload: Uploader, log: Any
    ) -> Iterator[Sent]:
        """
        Request upload URLs and upload the files; files whose URL had expired before the upload are
        sent once more in a new batch (their entry in the first batch counts as failed).
        """
        entries, sources, options = files.entries, files.sources, files.options
        every = list(range(len(entries)))
        grant = self.request_upload_urls(transport, entries, options)
        yield grant.batch_id, every, None  # recorded before the first PUT
        log.info("MinerU batch %s: uploading %d files", grant.batch_id, len(entries))
        failures = upload(sources, grant.file_urls)
        expired = [i for i in every if isinstance(failures.get(sources[i].name), MinerUUploadURLExpiredError)]
        for i in expired:
            failures[sources[i].name] = "the upload URL had expired; sent again in a new batch"
        yield grant.batch_id, every, {name: str(error) for name, error in failures.items()}
        if expired:
            log.warning("%d upload URLs had expired; requesting new ones", len(expired))
            again = self.request_upload_urls(transport, [entries[i] for i in expired], options)
            yield again.batch_id, expired, None
            retried = upload([sources[i] for i in expired], again.file_urls)
            yield again.batch_id, expired, {name: str(error) for name, error in retried.items()}

    def download_and_extract(
        self, transport: MinerUTransport, url: str, target: Any, *, limits: ZipLimits | None = None
    ) -> ExtractedResult:
        tmpdir = tempfile.mkdtemp(prefix="mineru-result-")
        try:
            zip_path = _download(transport, url, Path(tmpdir) / "result.zip")
            return extract_result_zip(zip_path, target, limits=limits or ZipLimits())
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def land_download(
        self, transport: MinerUTransport, url: str, target: Any, identity: dict[str, Any]
    ) -> ExtractedResult:
        """The zip is downloaded beside ``target`` on a local disk (one file system), else to a temporary file."""
        if is_local_path(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            zip_path = target.parent / f".{target.name}.download-{uuid.uuid4().hex[:12]}.zip"
        else:  # object storage: the zip waits on local disk
            handle, name = tempfile.mkstemp(prefix="mineru-result-", suffix=".zip")
            os.close(handle)
            zip_path = Path(name)
        try:
            _download(transport, url, zip_path)
            return land_result_zip(zip_path, target, limits=DEFAULT_LIMITS, identity=identity)
        finally:
            with contextlib.suppress(OSError):
                zip_path.unlink()

    def test_connection(self, transport: MinerUTransport) -> tuple[bool, str]:
        """A made-up task id (no quota): :func:`~airflow_provider_mineru.clients.cloud_check.check_connection`."""
        return check_connection(transport.config)

    def _post(self, transport: MinerUTransport, path: str, body: dict[str, Any]) -> Request:
        return Request("POST", transport.url(path), f"POST {path}", json=body, paid=self.is_paid("POST", path))


def _get(transport: MinerUTransport, path: str) -> Request:
    return Request("GET", transport.url(path), f"GET {path}")


def _decode(answer: Answer) -> Any:
    """An answer's ``data``; a 404 that is not MinerU's "no such task" means a wrong base URL."""
    try:
        return parse_response(*answer)
    except MinerUError as error:
        if answer.status == 404 and error.code != TASK_NOT_FOUND_CODE:
            raise mark_missing_endpoint(error) from None
        raise


def _download(transport: MinerUTransport, url: str, destination: Path) -> Path:
    """A result zip from the CDN: no header of ours; at most the connection's ``max_result_mb``."""
    check_answer_url(url, "full_zip_url")
    return transport.download(url, destination, max_bytes=transport.config.limits.max_result_bytes)


def _task_path(task_id: str) -> str:
    return TASK_PATH.format(task_id=validate_path_id(task_id, "task_id"))


def _batch_path(batch_id: str) -> str:
    return BATCH_PATH.format(batch_id=validate_path_id(batch_id, "batch_id"))


def _require(data: Any, key: str) -> Any:
    if not isinstance(data, dict) or not data.get(key):
        raise MinerUProtocolError(f"MinerU's answer has no {key!r}: {str(data)[:200]!r}")
    return data[key]


def _task_id(data: Any) -> str:
    return str(_require(data, "task_id"))


def _batch_id(data: Any) -> str:
    return str(_require(data, "batch_id"))


def _upload_grant(data: Any, expected: int) -> UploadGrant:
    urls = data.get("file_urls") or data.get("files") if isinstance(data, dict) else None
    if not isinstance(urls, list) or len(urls) != expected:
        raise MinerUProtocolError(
            f"MinerU returned {len(urls) if isinstance(urls, list) else 'no'} upload URLs for {expected} files"
        )
    for index, url in enumerate(urls):
        check_answer_url(url, f"upload URL {index}")
    return UploadGrant(batch_id=str(_require(data, "batch_id")), file_urls=tuple(str(u) for u in urls))
