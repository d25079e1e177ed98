"""
The emulator's ``mineru-api`` room: a stand-in for the open-source MinerU server (V1 API).

::

    from mineru_emulator.mineru_api import MinerUApiEmulator, Fault, Timings

    with MinerUApiEmulator(api_key="k", timings=Timings.fast()) as server:
        ...  # connection: host=server.base_url, password="k", extra {"api_flavor": "mineru-api"}

It runs on the shared :class:`~mineru_emulator.http.HTTPService`, as the cloud room does:

- :mod:`~mineru_emulator.mineru_api.state`: tasks, their output files, retention
  and restarts, and the flash tier's parsing (no HTTP).
- :mod:`~mineru_emulator.mineru_api.contract`: limits, the error body and the
  validation of a submitted job, as data.
- :mod:`~mineru_emulator.mineru_api.payloads`: the answers' bodies (health, tiers,
  task payloads, result zips).
- :mod:`~mineru_emulator.mineru_api.faults`: :class:`Fault` and the endpoint names.
- :mod:`~mineru_emulator.mineru_api.responses`: the endpoint handlers and the
  flavor's answers to the plumbing.
- :mod:`~mineru_emulator.mineru_api.routes`: the route table.
- :mod:`~mineru_emulator.mineru_api.server`: :class:`MinerUApiEmulator`, the facade.

Like the rest of the emulator it imports nothing from the provider.
"""

from __future__ import annotations

from mineru_emulator.mineru_api.faults import ENDPOINTS, Fault
from mineru_emulator.mineru_api.server import MinerUApiEmulator
from mineru_emulator.mineru_api.state import Timings

__all__ = ["ENDPOINTS", "Fault", "MinerUApiEmulator", "Timings"]
