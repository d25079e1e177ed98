"""
API clients: one per server flavor, chosen by the connection's ``api_flavor`` extra.

- ``"cloud"`` (default): :class:`~airflow_provider_mineru.clients.cloud.CloudClient`, the MinerU
  cloud v4 API and v4-shaped gateways;
- ``"mineru-api"``: :class:`~airflow_provider_mineru.clients.mineru_api.MinerUApiClient`, the
  open-source ``mineru-api`` server (MinerU 4.0.x, V1 API).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mineru.clients.base import (
    API_FLAVOR_CLOUD,
    API_FLAVOR_MINERU_API,
    API_FLAVORS,
    MinerUClient,
)

# Both clients are imported with this package (the hook imports it), never later on a triggerer's
# event loop, where a first import blocks every trigger.
from airflow_provider_mineru.clients.cloud import CloudClient
from airflow_provider_mineru.clients.mineru_api import MinerUApiClient
from airflow_provider_mineru.exceptions import MinerUValidationError

__all__ = [
    "API_FLAVORS",
    "API_FLAVOR_CLOUD",
    "API_FLAVOR_MINERU_API",
    "CloudClient",
    "MinerUApiClient",
    "MinerUClient",
    "client_for",
    "validate_flavor",
]


def validate_flavor(value: Any, field: str = "connection extra api_flavor") -> str:
    """The flavor named by a connection extra (blank: ``cloud``), or a validation error naming it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return API_FLAVOR_CLOUD
    flavor = str(value).strip().lower()
    if flavor not in API_FLAVORS:
        raise MinerUValidationError(field, value, f"must be one of {list(API_FLAVORS)}")
    return flavor


def client_for(flavor: str) -> MinerUClient:
    """A new client for one flavor (``cloud`` or ``mineru-api``)."""
    return MinerUApiClient() if validate_flavor(flavor) == API_FLAVOR_MINERU_API else CloudClient()
