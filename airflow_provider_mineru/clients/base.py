"""
The seam between the hook and the API it speaks.

A :class:`MinerUClient` knows one server API ("flavor"), and every fact of it lives on its class:
its default path, which submits MinerU bills, the file types it accepts, its option checks, how to
build requests and decode answers into the provider's typed results
(:class:`~airflow_provider_mineru.models.DocumentResult`, :class:`~airflow_provider_mineru.models.BatchResult`)
and typed errors, its endpoints, and its connection Test. Endpoints are sent over the
:class:`~airflow_provider_mineru.transport.MinerUTransport` the hook hands in (the only code that
talks HTTP). Each subclass registers itself under its ``flavor`` in :data:`CLIENTS`, where the hook
finds it by the connection's ``api_flavor`` extra; a new server protocol is one more subclass in one
new module.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mineru.exceptions import MinerUValidationError

if TYPE_CHECKING:
    from airflow_provider_mineru.clients.v4_wire import ParseOptions
    from airflow_provider_mineru.connection.config import MinerULimits
    from airflow_provider_mineru.inputs.sources import SourceFile
    from airflow_provider_mineru.models import BatchResult, DocumentResult, UploadGrant
    from airflow_provider_mineru.transport import MinerUTransport
    from airflow_provider_mineru.utils.safe_zip import ExtractedResult, ZipLimits

#: What one send yields: ``(task or batch id, the input indices it holds in order, {file name:
#: error} for files that never reached MinerU, or None while an upload batch is only granted)``.
Sent = tuple[str, Sequence[int], "dict[str, str] | None"]


@dataclass(frozen=True)
class UploadFiles:
    """
    Files to send in one operator batch, with their per-file entries and the batch's options.

    :param entries: per file ``{"name", "is_ocr"?, "data_id"?, "page_ranges"?}``.
    :param sources: the matching files (local or object storage), read only while streaming.
    :param options: the batch-wide parsing options.
    """

    entries: Sequence[Mapping[str, Any]]
    sources: Sequence[SourceFile]
    options: ParseOptions


#: Uploads files to presigned URLs, ``upload(sources, urls) -> {file name: error}`` (the operator's, concurrent).
Uploader = Callable[[Sequence["SourceFile"], Sequence[str]], "dict[str, Any]"]


#: Every client class by its ``api_flavor``, filled by the class definitions.
CLIENTS: dict[str, type[MinerUClient]] = {}


class MinerUClient(ABC):
    """
    One server API: request building and validation, response decoding, error classification, and
    its endpoints. Every endpoint takes the connection's
    :class:`~airflow_provider_mineru.transport.MinerUTransport`.
    """

    #: The ``api_flavor`` connection extra that selects this client.
    flavor: ClassVar[str]
    #: The path a base URL without one gets (``/api/v4`` on the cloud, none on ``mineru-api``).
    default_path: ClassVar[str]
    #: Endpoint paths whose ``POST`` MinerU bills: never re-sent once their answer may be lost.
    paid_submit_paths: ClassVar[tuple[str, ...]]
    #: The quality tiers the server offers (the ``tier`` option); none: ``tier`` is refused.
    tiers: ClassVar[tuple[str, ...]] = ()
    #: Most files one server-side batch may hold.
    max_files_per_batch: ClassVar[int] = 200

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "flavor" in cls.__dict__:
            CLIENTS[cls.flavor] = cls

    def is_paid(self, method: str, path: str) -> bool:
        """Whether MinerU bills this request (a submit), so a lost answer must not be re-sent."""
        return method.upper() == "POST" and path in self.paid_submit_paths

    # -- requests ----------------------------------------------------------------------------------

    def check_tier(self, options: ParseOptions) -> str | None:
        """The ``tier`` option, checked against :attr:`tiers` (the one ``tier`` rule of every flavor)."""
        tier = options.tier
        if tier is None:
            return None
        if not self.tiers:
            offering = " or ".join(f"'{flavor}'" for flavor, cls in CLIENTS.items() if cls.tiers)
            raise MinerUValidationError(
                "tier",
                tier,
                f"is an option of api_flavor {offering} only; this connection's api_flavor is '{self.flavor}'",
            )
        if tier not in self.tiers:
            raise MinerUValidationError("tier", tier, f"must be one of {list(self.tiers)}")
        return tier

    @abstractmethod
    def task_body(
        self, url: str, options: ParseOptions, *, data_id: str | None = None, page_ranges: str | None = None
    ) -> dict[str, Any]:
        """The validated request body that submits one document URL; raises before any request."""

    @abstractmethod
    def batch_body(
        self, files: Sequence[str | Mapping[str, Any]], options: ParseOptions, *, key: str, limits: MinerULimits
    ) -> dict[str, Any]:
        """
        The validated body of a URL batch (``key="url"``) or an upload batch (``key="name"``).

        :raises MinerUValidationError: an option or file this flavor cannot honour.
        """

    def extension_profile(self, model_version: str | None) -> str | None:
        """What :func:`~airflow_provider_mineru.inputs.validation.allowed_extensions` takes for this flavor."""
        return model_version

    # -- responses ---------------------------------------------------------------------------------

    @abstractmethod
    def decode(self, status: int, headers: Mapping[str, str], body: bytes, *, known_id: str | None = None) -> Any:
        """The data of one response, or raise the typed error it stands for."""

    @abstractmethod
    def task_result(self, data: Any, task_id: str) -> DocumentResult:
        """One task's state from a decoded answer."""

    @abstractmethod
    def batch_result(self, data: Any, batch_id: str) -> BatchResult:
        """Every file of one batch from a decoded answer, in submission order."""

    # -- endpoints ---------------------------------------------------------------------------------

    @abstractmethod
    def submit_task(
        self,
        transport: MinerUTransport,
        url: str,
        options: ParseOptions,
        *,
        data_id: str | None,
        page_ranges: str | None,
    ) -> str:
        """Submit one document URL; return its task id."""

    async def asubmit_task(
        self,
        transport: MinerUTransport,
        url: str,
        options: ParseOptions,
        *,
        data_id: str | None,
        page_ranges: str | None,
    ) -> str:
        """Async :meth:`submit_task` (by default the sync call, in a thread)."""
        return await asyncio.to_thread(
            self.submit_task, transport, url, options, data_id=data_id, page_ranges=page_ranges
        )

    @abstractmethod
    def submit_batch(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> str:
        """Submit URLs as one server-side batch; return its id."""

    async def asubmit_batch(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> str:
        """Async :meth:`submit_batch` (by default the sync call, in a thread)."""
        return await asyncio.to_thread(self.submit_batch, transport, files, options)

    def request_upload_urls(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> UploadGrant:
        """Presigned upload URLs, one per file; a flavor without them says so."""
        raise MinerUValidationError(
            "request_upload_urls",
            None,
            f"api_flavor {self.flavor!r} has no upload URLs; use MinerUUploadFilesOperator",
        )

    async def arequest_upload_urls(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> UploadGrant:
        """Async :meth:`request_upload_urls`."""
        return self.request_upload_urls(transport, files, options)

    @abstractmethod
    def get_task(self, transport: MinerUTransport, task_id: str) -> DocumentResult:
        """One task's state."""

    @abstractmethod
    async def aget_task(self, transport: MinerUTransport, task_id: str) -> DocumentResult:
        """Async :meth:`get_task` (never blocks the event loop)."""

    @abstractmethod
    def get_batch(self, transport: MinerUTransport, batch_id: str) -> BatchResult:
        """Every file of one batch, in submission order."""

    @abstractmethod
    async def aget_batch(self, transport: MinerUTransport, batch_id: str) -> BatchResult:
        """Async :meth:`get_batch` (never blocks the event loop)."""

    @abstractmethod
    def send_url_batch(
        self, transport: MinerUTransport, files: Sequence[str | Mapping[str, Any]], options: ParseOptions
    ) -> Iterator[Sent]:
        """
        Send the URLs of one operator batch (at most ``max_batch_files``) as this server batches
        them; yield what each server-side batch holds (indices into ``files``).
        """

    @abstractmethod
    def send_uploads(
        self, transport: MinerUTransport, files: UploadFiles, upload: Uploader, log: Any
    ) -> Iterator[Sent]:
        """
        Send local or object-storage files; yield each server-side batch as soon as it exists (with
        failures ``None`` when its upload URLs are granted and nothing is sent yet, so it is recorded
        before anything can be parsed), then again with the files that failed.

        :param files: the files, their entries and options.
        :param upload: what uploads to presigned URLs, for flavors that grant them.
        """

    @abstractmethod
    def download_and_extract(
        self, transport: MinerUTransport, url: str, target: Any, *, limits: ZipLimits | None = None
    ) -> ExtractedResult:
        """Download one document's result and extract it safely into ``target`` in the cloud's layout."""

    @abstractmethod
    def land_download(
        self, transport: MinerUTransport, url: str, target: Any, identity: dict[str, Any]
    ) -> ExtractedResult:
        """
        Download one document's result and land it atomically in ``target`` with its completion
        marker (see :mod:`airflow_provider_mineru.results.landing`).
        """

    @abstractmethod
    def test_connection(self, transport: MinerUTransport) -> tuple[bool, str]:
        """The connection form's Test: one request that costs no quota, and what it proved."""
