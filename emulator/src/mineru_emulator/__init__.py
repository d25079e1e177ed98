"""
A local emulator of the MinerU document-parsing API, for tests, demos and offline development.

The ``mineru-emulator`` distribution, shipped from the airflow-provider-mineru repository the way
moto ships apart from boto. It is an independent implementation of the API contract (it imports
nothing from the provider and nothing from Airflow), built on the standard library's
``http.server`` and ``pypdf``::

    from mineru_emulator import Fault, MinerUEmulator, Timings

    with MinerUEmulator(token="test-token", timings=Timings.fast()) as emu:
        emu.inject(Fault(endpoint="get_task", http_status=503, retry_after=1))
        ...  # point a client at emu.base_url

See ``docs/emulator.md``. The names below are imported on first use, so importing this
package is free.

The rooms (one concern each; each API flavor is a room with its own state, handlers and route
table, and reuses the rest):

- ``server.py``: :class:`MinerUEmulator`, the facade tests and the CLI use.
- ``http.py``: the threaded HTTP server, one request's reading and writing, the request log,
  :class:`~mineru_emulator.http.Route` / ``RouteTable`` and the dispatch
  (``HTTPService``, the base of a flavor).
- ``faults.py``: :class:`Fault`, the ``fail_next_tasks``/``stick`` rules, their application.
- ``callbacks.py``: callback delivery with retries. ``admin.py``: the ``/__emulator__`` API.
- ``cloud/``: the MinerU cloud API: ``contract.py`` (codes, validation), ``state.py`` (tasks,
  batches, the state machine, the quota; no HTTP), ``documents.py`` (fetch, inspect, zip),
  ``result_zip.py`` (zip contents), ``responses.py`` (handlers), ``routes.py`` (route table).
- ``mineru_api/``: the open-source ``mineru-api`` server (V1), on the same ``HTTPService``:
  ``state.py`` (tasks, retention, restarts, flash parsing; no HTTP), ``contract.py`` (limits,
  errors, job validation), ``payloads.py`` (answer bodies, zips), ``faults.py`` (its ``Fault``),
  ``responses.py`` (handlers), ``routes.py`` (route table), ``server.py`` (``MinerUApiEmulator``).
- ``_samples.py``, ``_pdf.py``: the bundled sample documents; ``cli.py``, ``pytest_plugin.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mineru_emulator.server import (
        ENDPOINTS,
        Fault,
        MinerUEmulator,
        RecordedRequest,
        Timings,
    )

__version__ = "0.1.0"

__all__ = ["ENDPOINTS", "Fault", "MinerUEmulator", "RecordedRequest", "Timings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mineru_emulator import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
