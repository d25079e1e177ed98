"""
The emulator's ``mineru-api`` room: a stand-in for the open-source MinerU server (V1 API).

::

    from airflow_provider_mineru.emulator.mineru_api import MinerUApiEmulator, Fault, Timings

    with MinerUApiEmulator(api_key="k", timings=Timings.fast()) as server:
        ...  # connection: host=server.base_url, password="k", extra {"api_flavor": "mineru-api"}

It runs on the shared :class:`~airflow_provider_mineru.emulator.http.HTTPService`, as the cloud room does:

- :mod:`~airflow_provider_mineru.emulator.mineru_api.state`: tasks, their output files, retention
  and restarts, and the flash tier's parsing (no HTTP).
- :mod:`~airflow_provider_mineru.emulator.mineru_api.contract`: limits, the error body and the
  validation of a submitted job, as data.
- :mod:`~airflow_provider_mineru.emulator.mineru_api.payloads`: the answers' bodies (health, tiers,
  task payloads, result zips).
- :mod:`~airflow_provider_mineru.emulator.mineru_api.faults`: :class:`Fault` and the endpoint names.
- :mod:`~airflow_provider_mineru.emulator.mineru_api.responses`: the endpoint handlers and the
  flavor's answers to the plumbing.
- :mod:`~airflow_provider_mineru.emulator.mineru_api.routes`: the route table.
- :mod:`~airflow_provider_mineru.emulator.mineru_api.server`: :class:`MinerUApiEmulator`, the facade.

Like the rest of the emulator it imports nothing from the provider.
"""

from __future__ import annotations

from airflow_provider_mineru.emulator.mineru_api.faults import ENDPOINTS, Fault
from airflow_provider_mineru.emulator.mineru_api.server import MinerUApiEmulator
from airflow_provider_mineru.emulator.mineru_api.state import Timings

__all__ = ["ENDPOINTS", "Fault", "MinerUApiEmulator", "Timings"]
