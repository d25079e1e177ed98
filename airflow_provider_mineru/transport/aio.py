"""
The transport's async face (``aiohttp``): triggers poll through it, on one shared session per event loop.

The rules are the sync face's (:mod:`~airflow_provider_mineru.transport.policy`): no redirect
followed, bounded reads (:func:`~airflow_provider_mineru.utils.bounded_http.aread_answer`), the
connection's ``timeout`` for the whole request (``ClientTimeout(total=…)``), and
:class:`~airflow_provider_mineru.transport.policy.Attempts` after every failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TypeVar

import aiohttp

from airflow_provider_mineru.exceptions import MinerUError
from airflow_provider_mineru.transport.policy import UNPACED, Answer, Attempts, Origin, Pacing, Request, transport_error
from airflow_provider_mineru.utils.bounded_http import aread_answer, refuse_redirect, ssl_option

if TYPE_CHECKING:
    from airflow_provider_mineru.connection.config import MinerUConnectionConfig

T = TypeVar("T")

#: Simultaneous connections of the shared async session (all triggers of one triggerer).
ASYNC_POOL_LIMIT = 64


class SharedSessions:
    """One ``aiohttp.ClientSession`` per event loop, reference-counted, closed by its last user."""

    def __init__(self) -> None:
        self._sessions: dict[int, tuple[aiohttp.ClientSession, int]] = {}

    async def acquire(self) -> aiohttp.ClientSession:
        key = id(asyncio.get_running_loop())
        entry = self._sessions.get(key)
        if entry is None or entry[0].closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=ASYNC_POOL_LIMIT, keepalive_timeout=30),
                skip_auto_headers=("User-Agent",),
            )
            entry = (session, 0)
        self._sessions[key] = (entry[0], entry[1] + 1)
        return entry[0]

    async def release(self) -> None:
        key = id(asyncio.get_running_loop())
        session, users = self._sessions[key]
        if users <= 1:
            del self._sessions[key]
            await session.close()
        else:
            self._sessions[key] = (session, users - 1)

    def open_sessions(self) -> int:
        return len(self._sessions)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[aiohttp.ClientSession]:
        """Hold the event loop's shared session while inside the block."""
        session = await self.acquire()
        try:
            yield session
        finally:
            await self.release()


#: Every trigger of a triggerer shares one session and one bounded connection pool.
SHARED_SESSIONS = SharedSessions()


class AsyncTransport:
    """
    Every async request of one connection, on the event loop's shared session.

    :param config: the parsed connection.
    :param origin: how errors name the connection.
    :param log: where retries are announced.
    :param pacing: what every API call waits for first (the account's shared limiters).
    """

    def __init__(
        self, config: MinerUConnectionConfig, origin: Origin, log: logging.Logger, pacing: Pacing = UNPACED
    ) -> None:
        self.config = config
        self.origin = origin
        self.log = log
        self.pacing = pacing

    async def send(self, request: Request, decode: Callable[[Answer], T]) -> T:
        """Async :meth:`~airflow_provider_mineru.transport.sync.SyncTransport.send` (JSON bodies only)."""
        if request.multipart:
            raise TypeError("multipart uploads are sent by the sync face")
        config = self.config
        timeout = aiohttp.ClientTimeout(total=config.timeout)  # the whole request, body included
        ssl = ssl_option(config.verify)
        attempts = Attempts(request, config.retry, self.origin, self.log)
        async with SHARED_SESSIONS.held() as session:
            while True:
                await self.pacing.abefore(request)
                try:
                    async with session.request(
                        request.method,
                        request.url,
                        json=request.json,
                        params=list(request.params) or None,
                        headers=config.auth_headers,
                        timeout=timeout,
                        proxy=config.proxy,
                        ssl=ssl,
                        allow_redirects=False,
                    ) as response:
                        refuse_redirect(request.what, request.url, response.status, response.headers)
                        answer = Answer(response.status, response.headers, await aread_answer(request.what, response))
                    return decode(answer)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    error: MinerUError = transport_error(exc, request.what, self.origin)
                except MinerUError as exc:
                    error = exc
                delay = attempts.after(error)
                await self.pacing.aretrying(request, error)
                await asyncio.sleep(delay)
