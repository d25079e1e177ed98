"""
The seam between the hook and the API it speaks.

A :class:`MinerUClient` knows one server API ("flavor"): how to build and validate requests, how to
decode responses into the provider's typed results (:class:`~airflow_provider_mineru.models.DocumentResult`,
:class:`~airflow_provider_mineru.models.BatchResult`, :class:`~airflow_provider_mineru.models.MinerUState`)
and how to classify errors into the typed exceptions of :mod:`airflow_provider_mineru.exceptions`.
The hook keeps the transport (sessions, retries, time-outs) and picks the client from the
connection's ``api_flavor`` extra; operators, sensors and triggers stay the same classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from airflow_provider_mineru.clients.v4_wire import ParseOptions
    from airflow_provider_mineru.models import BatchResult, DocumentResult
    from airflow_provider_mineru.validation import MinerULimits

#: The MinerU cloud v4 API (``https://mineru.net/api/v4``) and v4-shaped gateways.
API_FLAVOR_CLOUD = "cloud"
#: The open-source ``mineru-api`` server (MinerU 4.0.x, V1 API).
API_FLAVOR_MINERU_API = "mineru-api"
API_FLAVORS = (API_FLAVOR_CLOUD, API_FLAVOR_MINERU_API)


class MinerUClient(ABC):
    """
    One server API: request building and validation, response decoding, error classification.

    :attr:`owns_transport` is False for the cloud client (the hook's own endpoint code sends its
    requests) and True for clients whose endpoints are implemented here on top of the hook's
    sessions and retry policy.
    """

    #: The ``api_flavor`` connection extra that selects this client.
    flavor: ClassVar[str]
    #: Whether the hook hands its endpoint calls to this client.
    owns_transport: ClassVar[bool] = False
    #: Most files one server-side batch may hold.
    max_files_per_batch: ClassVar[int] = 200

    # -- requests ----------------------------------------------------------------------------------

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
        """What :func:`~airflow_provider_mineru.validation.allowed_extensions` takes for this flavor."""
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
