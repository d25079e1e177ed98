"""The MinerU cloud v4 API (the seeds' API), as a :class:`~airflow_provider_mineru.clients.base.MinerUClient`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mineru.clients.base import API_FLAVOR_CLOUD, MinerUClient
from airflow_provider_mineru.exceptions import MinerUProtocolError, MinerUValidationError
from airflow_provider_mineru.models import BatchResult, DocumentResult

if TYPE_CHECKING:
    from airflow_provider_mineru.clients.v4_wire import ParseOptions
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
    Today's v4 behaviour, delegated to :mod:`airflow_provider_mineru.clients.v4_wire`.

    The hook sends these requests itself (:attr:`owns_transport` is False); this class is what the
    operators validate with, and the shape other flavors follow.
    """

    flavor: ClassVar[str] = API_FLAVOR_CLOUD
    owns_transport: ClassVar[bool] = False

    def task_body(
        self, url: str, options: ParseOptions, *, data_id: str | None = None, page_ranges: str | None = None
    ) -> dict[str, Any]:
        from airflow_provider_mineru.clients.v4_wire import build_task_body

        _no_tier(options)
        return build_task_body(url, options, data_id=data_id, page_ranges=page_ranges)

    def batch_body(
        self, files: Sequence[str | Mapping[str, Any]], options: ParseOptions, *, key: str, limits: MinerULimits
    ) -> dict[str, Any]:
        from airflow_provider_mineru.clients.v4_wire import build_batch_body

        _no_tier(options)
        return build_batch_body(files, options, key=key, limits=limits)

    def decode(self, status: int, headers: Mapping[str, str], body: bytes, *, known_id: str | None = None) -> Any:
        from airflow_provider_mineru.clients.v4_wire import parse_response

        return parse_response(status, headers, body)

    def task_result(self, data: Any, task_id: str) -> DocumentResult:
        if not isinstance(data, dict):
            raise MinerUProtocolError(f"MinerU's task answer is not an object: {str(data)[:200]!r}")
        return DocumentResult.from_api({"task_id": task_id, **data})

    def batch_result(self, data: Any, batch_id: str) -> BatchResult:
        return BatchResult.from_api(data if isinstance(data, dict) else {}, batch_id)
