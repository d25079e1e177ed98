"""
The transport: the only code of the provider that talks HTTP to MinerU, object storage and CDNs.

One :class:`Transport` per connection, with a sync face (:mod:`.sync`, ``requests``: operators,
uploads, downloads, the connection Test) and an async face (:mod:`.aio`, ``aiohttp``: triggers,
one shared session per event loop). Both keep the same rules, decided once in :mod:`.policy`:
no redirect followed from the API (the error names the redirect's status and target origin), every
body read bounded (:mod:`airflow_provider_mineru.utils.bounded_http`), the connection's ``timeout``
for the whole request, retries with backoff and ``Retry-After``
(:class:`~airflow_provider_mineru.utils.retries.RetryPolicy`), and a paid submit whose answer was
lost never sent again (:class:`~airflow_provider_mineru.exceptions.MinerUAmbiguousSubmitError`).

API clients (:mod:`airflow_provider_mineru.clients`) receive it typed as :class:`MinerUTransport`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from airflow_provider_mineru.transport.policy import (
    UNPACED,
    Answer,
    Origin,
    Pacing,
    Request,
    mark_missing_endpoint,
    safe_url,
)
from airflow_provider_mineru.transport.sync import SyncTransport

if TYPE_CHECKING:
    from airflow_provider_mineru.connection.config import MinerUConnectionConfig
    from airflow_provider_mineru.inputs.sources import SourceFile
    from airflow_provider_mineru.transport.aio import AsyncTransport

T = TypeVar("T")

__all__ = [
    "UNPACED",
    "Answer",
    "MinerUTransport",
    "Pacing",
    "Request",
    "Transport",
    "mark_missing_endpoint",
    "safe_url",
]


class MinerUTransport(Protocol):
    """What an API client may use: the connection's settings and the transport's calls, nothing else."""

    @property
    def config(self) -> MinerUConnectionConfig:
        """The parsed connection (base URL, limits, time-outs)."""
        ...

    def url(self, path: str) -> str:
        """The connection's base URL joined with an endpoint path."""
        ...

    def send(self, request: Request, decode: Callable[[Answer], T]) -> T:
        """One API call with the token, retried; ``decode`` turns each answer into data or a typed error."""
        ...

    async def asend(self, request: Request, decode: Callable[[Answer], T]) -> T:
        """Async :meth:`send`."""
        ...

    def download(
        self,
        url: str,
        destination: Path,
        *,
        max_bytes: int,
        authenticated: bool = False,
        refuse: Callable[[Answer], None] | None = None,
    ) -> Path:
        """Stream a result to a file (see :meth:`SyncTransport.download`)."""
        ...


class Transport:
    """
    Both faces of one connection's transport.

    :param config: the parsed connection.
    :param conn_id: the connection id, named in errors (with the base URL, never the token).
    :param log: where retries are announced (the hook's logger).
    :param pacing: what both faces wait for before each API call (the account's shared limiters;
        see :class:`~airflow_provider_mineru.transport.policy.Pacing`).
    """

    def __init__(
        self, config: MinerUConnectionConfig, *, conn_id: str, log: logging.Logger, pacing: Pacing = UNPACED
    ) -> None:
        self.config = config
        self.origin = Origin(conn_id, config.base_url, config.timeout)
        self.log = log
        self.pacing = pacing
        self.sync = SyncTransport(config, self.origin, log, pacing)
        self._aio: AsyncTransport | None = None

    @property
    def aio(self) -> AsyncTransport:
        """The async face, made at its first use."""
        if self._aio is None:
            # Here, not at the top: importing aiohttp costs 0.36-0.63 s (measured on Airflow 3.3.2), and
            # workers use only the sync face; the triggerer has imported it already (_FIRST_RUN_IMPORTS).
            from airflow_provider_mineru.transport.aio import AsyncTransport

            self._aio = AsyncTransport(self.config, self.origin, self.log, self.pacing)
        return self._aio

    def url(self, path: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/{path.lstrip('/')}"

    def send(self, request: Request, decode: Callable[[Answer], T]) -> T:
        return self.sync.send(request, decode)

    async def asend(self, request: Request, decode: Callable[[Answer], T]) -> T:
        return await self.aio.send(request, decode)

    def upload(self, url: str, source: SourceFile) -> int:
        return self.sync.upload(url, source)

    def head(self, url: str) -> dict[str, str] | None:
        """A document URL's response headers from one HEAD request (see :meth:`SyncTransport.head`)."""
        return self.sync.head(url)

    def download(
        self,
        url: str,
        destination: Path,
        *,
        max_bytes: int,
        authenticated: bool = False,
        refuse: Callable[[Answer], None] | None = None,
    ) -> Path:
        return self.sync.download(url, destination, max_bytes=max_bytes, authenticated=authenticated, refuse=refuse)
