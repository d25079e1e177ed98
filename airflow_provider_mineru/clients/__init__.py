"""
API clients: one class per server flavor, found by the connection's ``api_flavor`` extra in
:data:`~airflow_provider_mineru.clients.base.CLIENTS` (each class registers itself when defined).

- ``"cloud"`` (default): :class:`~airflow_provider_mineru.clients.cloud.CloudClient`, the MinerU
  cloud v4 API and v4-shaped gateways;
- ``"mineru-api"``: :class:`~airflow_provider_mineru.clients.mineru_api.MinerUApiClient`, the
  open-source ``mineru-api`` server (MinerU 4.0.x, V1 API).

A third server protocol is one new module here with one ``MinerUClient`` subclass, imported below.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mineru.clients.base import CLIENTS, MinerUClient

# Every client is imported with this package (the hook imports it), never later on a triggerer's
# event loop, where a first import blocks every trigger.
from airflow_provider_mineru.clients.cloud import CloudClient
from airflow_provider_mineru.clients.mineru_api import MinerUApiClient
from airflow_provider_mineru.connection.form import validate_flavor

__all__ = ["CLIENTS", "CloudClient", "MinerUApiClient", "MinerUClient", "client_class"]


def client_class(flavor: Any) -> type[MinerUClient]:
    """The client class of one ``api_flavor`` (blank: ``cloud``); an unknown flavor is a validation error."""
    return CLIENTS[validate_flavor(flavor)]
