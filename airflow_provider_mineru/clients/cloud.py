"""
The MinerU cloud v4 API (the seeds' API) and v4-shaped gateways, as a
:class:`~airflow_provider_mineru.clients.base.MinerUClient`: bodies and envelopes from
:mod:`airflow_provider_mineru.clients.v4_wire`, sent with the hook's JSON transport
(``hook._call`` / ``hook._acall``: deadlines, no redirects, the retry loop).
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
from airflow_provider_mineru.clients.v4_wire import (
    BATCH_PATH,
    FILE_URLS_PATH,
    SUBMIT_BATCH_PATH,
    SUBMIT_TASK_PATH,
    TASK_PATH,
    build_batch_body,
    build_task_body,
    parse_response,
)
from airflow_provider_mineru.connection_form import API_FLAVOR_CLOUD
from airflow_provider_mineru.exceptions import MinerUProtocolError, MinerUUploadURLExpiredError, MinerUValidationError
from airflow_provider_mineru.models import BatchResult, DocumentResult, UploadGrant
from airflow_provider_mineru.utils.bounded_http import check_answer_url
from airflow_provider_mineru.utils.storage_paths import is_local_path
from airflow_provider_mineru.validation import validate_path_id

if TYPE_CHECKING:
    from airflow_provider_mineru.clients.v4_wire import ParseOptions
    from airflow_provider_mineru.utils.safe_zip import ExtractedResult, ZipLimits
    from airflow_provider_mineru.validation import MinerULimits


def _no_tier(options: ParseOptions) -> None:
    if getattr(options, "tier", None) is not None:
        raise MinerUValidationError(
            "tier",
            options.tier,
            f"is an option of api_flavor 'mineru-api' only; this connection's api_flavor is '{API_FLAVOR_CLOUD}'",
        )


class CloudClient(MinerUClient):
    """
    The v4 API: ``/extract/task``, ``/extract/task/batch``, ``/file-urls/batch`` + presigned PUTs,
    ``/extract-results/batch/{id}``, result zips on a CDN.
    """

    flavor: ClassVar[str] = API_FLAVOR_CLOUD

    def task_body(
        self, url: str, options: ParseOptions, *, data_id: str | None = None, page_ranges: str | None = None
    ) -> dict[str, Any]:
        _no_tier(options)
        return build_task_body(url, options, data_id=data_id, page_ranges=page_ranges)

    def batch_body(
        self, files: Sequence[str | Mapping[str, Any]], options: ParseOptions, *, key: str, limits: MinerULimits
    ) -> dict[str, Any]:
        _no_tier(options)
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
        self, hook: Any, url: str, options: ParseOptions, *, data_id: str | None, page_ranges: str | None
    ) -> str:
        body = self.task_body(url, options, data_id=data_id, page_ranges=page_ranges)
        return _task_id(hook._call("POST", SUBMIT_TASK_PATH, body))

    async def asubmit_task(
        self, hook: Any, url: str, options: ParseOptions, *, data_id: str | None, page_ranges: str | None
    ) -> str:
        body = self.task_body(url, options, data_id=data_id, page_ranges=page_ranges)
        return _task_id(await hook._acall("POST", SUBMIT_TASK_PATH, body))

    def submit_batch(self, hook: Any, files: Sequence[str | Mapping[str, Any]], options: ParseOptions) -> str:
        body = self.batch_body(files, options, key="url", limits=hook.config.limits)
        return _batch_id(hook._call("POST", SUBMIT_BATCH_PATH, body))

    async def asubmit_batch(self, hook: Any, files: Sequence[str | Mapping[str, Any]], options: ParseOptions) -> str:
        body = self.batch_body(files, options, key="url", limits=(await hook.aget_config()).limits)
        return _batch_id(await hook._acall("POST", SUBMIT_BATCH_PATH, body))

    def request_upload_urls(
        self, hook: Any, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> UploadGrant:
        body = self.batch_body(files, options, key="name", limits=hook.config.limits)
        return _upload_grant(hook._call("POST", FILE_URLS_PATH, body), len(files))

    async def arequest_upload_urls(
        self, hook: Any, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> UploadGrant:
        body = self.batch_body(files, options, key="name", limits=(await hook.aget_config()).limits)
        return _upload_grant(await hook._acall("POST", FILE_URLS_PATH, body), len(files))

    def get_task(self, hook: Any, task_id: str) -> DocumentResult:
        return self.task_result(hook._call("GET", _task_path(task_id)), task_id)

    async def aget_task(self, hook: Any, task_id: str) -> DocumentResult:
        return self.task_result(await hook._acall("GET", _task_path(task_id)), task_id)

    def get_batch(self, hook: Any, batch_id: str) -> BatchResult:
        return self.batch_result(hook._call("GET", _batch_path(batch_id)), batch_id)

    async def aget_batch(self, hook: Any, batch_id: str) -> BatchResult:
        return self.batch_result(await hook._acall("GET", _batch_path(batch_id)), batch_id)

    def send_url_batch(
        self, hook: Any, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> Iterator[Sent]:
        yield self.submit_batch(hook, files, options), list(range(len(files))), {}

    def send_uploads(self, hook: Any, files: UploadFiles, upload: Uploader, log: Any) -> Iterator[Sent]:
        """
        Request upload URLs and upload the files; files whose URL had expired before the upload are
        sent once more in a new batch (their entry in the first batch counts as failed).
        """
        entries, sources, options = files.entries, files.sources, files.options
        every = list(range(len(entries)))
        grant = self.request_upload_urls(hook, entries, options)
        yield grant.batch_id, every, None  # recorded before the first PUT
        log.info("MinerU batch %s: uploading %d files", grant.batch_id, len(entries))
        failures = upload(sources, grant.file_urls)
        expired = [i for i in every if isinstance(failures.get(sources[i].name), MinerUUploadURLExpiredError)]
        for i in expired:
            failures[sources[i].name] = "the upload URL had expired; sent again in a new batch"
        yield grant.batch_id, every, {name: str(error) for name, error in failures.items()}
        if expired:
            log.warning("%d upload URLs had expired; requesting new ones", len(expired))
            again = self.request_upload_urls(hook, [entries[i] for i in expired], options)
            yield again.batch_id, expired, None
            retried = upload([sources[i] for i in expired], again.file_urls)
            yield again.batch_id, expired, {name: str(error) for name, error in retried.items()}

    def download_and_extract(
        self, hook: Any, url: str, target: Any, *, limits: ZipLimits | None = None
    ) -> ExtractedResult:
        from airflow_provider_mineru.utils.safe_zip import ZipLimits, extract_result_zip

        tmpdir = tempfile.mkdtemp(prefix="mineru-result-")
        try:
            zip_path = hook.download_result(url, Path(tmpdir) / "result.zip")
            return extract_result_zip(zip_path, target, limits=limits or ZipLimits())
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def land_download(self, hook: Any, url: str, target: Any, identity: dict[str, Any]) -> ExtractedResult:
        """The zip is downloaded beside ``target`` on a local disk (one file system), else to a temporary file."""
        from airflow_provider_mineru.landing import land_result_zip
        from airflow_provider_mineru.utils.safe_zip import DEFAULT_LIMITS

        if is_local_path(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            zip_path = target.parent / f".{target.name}.download-{uuid.uuid4().hex[:12]}.zip"
        else:  # object storage: the zip waits on local disk
            handle, name = tempfile.mkstemp(prefix="mineru-result-", suffix=".zip")
            os.close(handle)
            zip_path = Path(name)
        try:
            hook.download_result(url, zip_path)
            return land_result_zip(zip_path, target, limits=DEFAULT_LIMITS, identity=identity)
        finally:
            with contextlib.suppress(OSError):
                zip_path.unlink()

    def test_connection(self, hook: Any) -> tuple[bool, str]:
        from airflow_provider_mineru.connection import check_connection

        return check_connection(hook.config)


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
