"""
The emulator's ``mineru-api`` room: a stand-in for the open-source MinerU server (V1 API).

::

    from airflow_provider_mineru.emulator.mineru_api import MinerUApiEmulator, Fault, Timings

    with MinerUApiEmulator(api_key="k", timings=Timings.fast()) as server:
        ...  # connection: host=server.base_url, password="k", extra {"api_flavor": "mineru-api"}

``state`` holds tasks and parsing, ``responses`` the payloads and zips, ``routes`` the routes,
``server`` the HTTP server. Like the rest of the emulator it imports nothing from the provider.
"""

from __future__ import annotations

from airflow_provider_mineru.emulator.mineru_api.server import ENDPOINTS, Fault, MinerUApiEmulator
from airflow_provider_mineru.emulator.mineru_api.state import Timings

__all__ = ["ENDPOINTS", "Fault", "MinerUApiEmulator", "Timings"]
