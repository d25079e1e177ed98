"""
:class:`MinerUApiEmulator`: a local stand-in for the open-source ``mineru-api`` server (V1 API).

An honest second implementation from the server's documented behaviour (it imports nothing from
the provider and nothing from Airflow): bearer API key, flash-tier parsing of Office/HTML/CSV files
and text PDFs, per-file OCR failures for scans and images, ``partial`` tasks, result zips in the
server's own layout, state in memory only (``restart()`` and the retention forget tasks, which then
answer 404), and scripted faults. Versions other than 4.0.x can be pretended (``version="3.1.0"``
serves no ``/v1`` API; ``"4.1.0"`` reports itself in ``/v1/health``).

:class:`MinerUApiEmulator` is a facade on the shared :class:`~mineru_emulator.http.HTTPService`:
the state is :mod:`.state`, the validation :mod:`.contract`, the answers' bodies :mod:`.payloads`,
the handlers :mod:`.responses`, the route table :mod:`.routes` and the faults :mod:`.faults`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from mineru_emulator.faults import FaultBook
from mineru_emulator.http import HTTPService, RecordedRequest, RouteTable
from mineru_emulator.mineru_api.contract import TIERS
from mineru_emulator.mineru_api.faults import ENDPOINTS, Fault
from mineru_emulator.mineru_api.responses import MinerUApiResponses
from mineru_emulator.mineru_api.routes import mineru_api_routes, no_v1_routes
from mineru_emulator.mineru_api.state import MinerUApiState, TaskRecord, Timings

__all__ = ["ENDPOINTS", "Fault", "MinerUApiEmulator", "RecordedRequest", "Timings"]


def _delegated(name: str, doc: str) -> Any:
    """A read-write property kept on the state."""
    return property(
        lambda self: getattr(self._state, name), lambda self, value: setattr(self._state, name, value), doc=doc
    )


class MinerUApiEmulator(HTTPService):
    """
    A running stand-in for ``mineru-api --tier flash --api-key KEY``.

    :param api_key: the ``--api-key`` (empty: no authentication, as without ``--api-key``).
    :param host: interface to bind; ``port=0`` picks a free port.
    :param timings: how long tasks stay queued and files running.
    :param version: what ``/v1/health`` reports (``3.x``: no V1 API at all).
    :param server_tier: ``--tier`` (``flash``: PDFs and images need an explicit ``tier``).
    :param allow_http_source: ``--allow-http-source`` (http:// URL sources).
    :param retention_seconds: ``--retention-seconds``: finished tasks are forgotten after this.
    :param fetch_timeout: seconds to fetch a URL source.
    """

    thread_name = "mineru-api-emulator"
    server_version = "uvicorn"
    idle_timeout = 120

    def __init__(
        self,
        api_key: str = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        timings: Timings | None = None,
        version: str = "4.0.12",
        server_tier: str = "flash",
        allow_http_source: bool = True,
        retention_seconds: float = 86400.0,
        fetch_timeout: float = 5.0,
    ) -> None:
        if server_tier not in TIERS:
            raise ValueError(f"server_tier must be one of {TIERS}")
        super().__init__(host, port, threading.RLock())
        self.api_key = api_key
        self.version = version
        self.server_tier = server_tier
        self.allow_http_source = allow_http_source
        self.fetch_timeout = fetch_timeout
        self._state = MinerUApiState(self._lock, timings or Timings(), retention_seconds)
        self.fault_book: FaultBook[Fault] = FaultBook(self._lock)
        self.answers = MinerUApiResponses(self._state, self)
        self._v1_routes = mineru_api_routes(self.answers)
        self._no_v1_routes = no_v1_routes(self.answers)

    timings = _delegated("timings", "How long tasks stay queued and files running.")
    retention_seconds = _delegated("retention_seconds", "Finished tasks are forgotten this long after.")
    restarts = _delegated("restarts", "How many times the server restarted (``restart()`` or a fault).")

    @property
    def routes(self) -> RouteTable:  # type: ignore[override]
        """The V1 route table; a 3.x server (:attr:`version`) has no V1 API."""
        return self._v1_routes if int(self.version.split(".")[0] or 0) >= 4 else self._no_v1_routes

    def start(self) -> MinerUApiEmulator:
        """Bind and serve in a daemon thread; returns ``self``."""
        return super().start()

    def __enter__(self) -> MinerUApiEmulator:
        return self.start()

    def restart(self) -> None:
        """What a restart of the real server does: every task and file is forgotten (404 afterwards)."""
        self._state.restart()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def token(self) -> str:
        return self.api_key

    def connection_json(self) -> str:
        """JSON for ``AIRFLOW_CONN_MINERU_DEFAULT``: ``api_flavor`` ``mineru-api``, the key as password."""
        return json.dumps(
            {
                "conn_type": "mineru",
                "host": self.root_url,
                "password": self.api_key,
                "extra": {"api_flavor": "mineru-api"},
            }
        )

    # -- inspection and scripting ----------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Add a fault (checked in order of injection); returns it so tests can read ``fired``."""
        with self._lock:
            self.fault_book.faults.append(fault)
        return fault

    def task_ids(self) -> list[str]:
        with self._lock:
            return list(self._state.tasks)

    def add_task(self, task: TaskRecord) -> dict[str, Any]:
        """Keep a task (as a submit does); returns its payload."""
        with self._lock:
            self._state.add(task)
            return self.answers.payload(task, time.time())
