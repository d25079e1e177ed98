"""
API clients: one per server flavor, chosen by the connection's ``api_flavor`` extra.

- ``"cloud"`` (default): :class:`~airflow_provider_mineru.clients.cloud.CloudClient`, the MinerU
  cloud v4 API and v4-shaped gateways;
- ``"mineru-api"``: :class:`~airflow_provider_mineru.clients.mineru_api.MinerUApiClient`, the
  open-source ``mineru-api`` server (MinerU 4.0.x, V1 API).
"""

from __future__ import annotations

from airflow_provider_mineru.clients.base import MinerUClient

# Both clients are imported with this package (the hook imports it), never later on a triggerer's
# event loop, where a first import blocks every trigger.
from airflow_provider_mineru.clients.cloud import CloudClient
from airflow_provider_mineru.clients.mineru_api import MinerUApiClient
from airflow_provider_mineru.connection_form import (
    API_FLAVOR_CLOUD,
    API_FLAVOR_MINERU_API,
    API_FLAVORS,
    validate_flavor,
)

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


def client_for(flavor: str) -> MinerUClient:
    """A new client for one flavor (``cloud`` or ``mineru-api``)."""
    return MinerUApiClient() if validate_flavor(flavor) == API_FLAVOR_MINERU_API else CloudClient()
