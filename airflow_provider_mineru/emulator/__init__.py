"""
A local emulator of the MinerU document-parsing API, for tests, demos and offline development.

It is an independent implementation of the API contract (it imports nothing else from this
provider and nothing from Airflow), built on the standard library's ``http.server``::

    from airflow_provider_mineru.emulator import Fault, MinerUEmulator, Timings

    with MinerUEmulator(token="test-token", timings=Timings.fast()) as emu:
        emu.inject(Fault(endpoint="get_task", http_status=503, retry_after=1))
        ...  # point a client at emu.base_url

See ``docs/emulator.md``. The names below are imported on first use, so importing this
package is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mineru.emulator.server import (
        ENDPOINTS,
        Fault,
        MinerUEmulator,
        RecordedRequest,
        Timings,
    )

__all__ = ["ENDPOINTS", "Fault", "MinerUEmulator", "RecordedRequest", "Timings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from airflow_provider_mineru.emulator import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
