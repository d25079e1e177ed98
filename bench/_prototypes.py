"""
Prototypes of provider changes, applied at run time in a benchmark worker only (``--prototype``),
so their effect can be measured before the provider code is changed. Nothing here is imported by
the provider. ``lean_poll`` replaces whole methods with edited copies of the provider's code as it
was when the prototype was written: once the provider changes, rerun it only to check a change
still proposed, not to measure the provider.

``cached_ssl``
    ``hooks/mineru.py::_ssl_option`` builds a new ``SSLContext`` for every async request when the
    connection's ``verify`` extra is a CA-bundle path. aiohttp keys pooled connections by that
    context object, so no connection is ever reused: every poll opens a new TLS connection, and
    the old ones stay open (idle) until the 30 s keep-alive time-out. Caching the context per
    path restores one bounded pool.

``lean_poll``
    Per-poll overhead of the trigger path: ``_MinerUPollTrigger.run`` wraps even a single fetch in
    ``asyncio.gather`` (a new ``Task`` per poll), and ``MinerUHook._acall`` re-acquires the shared
    session from the registry and builds an ``aiohttp.ClientTimeout`` on every call. The prototype
    awaits a lone fetch directly, reuses the session the trigger already holds, and builds the
    time-out once per hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any


def apply(names: list[str]) -> None:
    for name in names:
        {"cached_ssl": _cached_ssl, "lean_poll": _lean_poll}[name]()


def _cached_ssl() -> None:
    from airflow_provider_mineru.hooks import mineru

    mineru._ssl_option = functools.lru_cache(maxsize=16)(mineru._ssl_option)


def _lean_poll() -> None:
    import aiohttp

    from airflow_provider_mineru.exceptions import MinerUError
    from airflow_provider_mineru.hooks import mineru
    from airflow_provider_mineru.hooks.mineru import MinerUHook, _connection_error, _ssl_option
    from airflow_provider_mineru.polling import ERROR
    from airflow_provider_mineru.protocol import join_url
    from airflow_provider_mineru.protocol import parse_response as parse_api_response
    from airflow_provider_mineru.triggers import mineru as triggers

    original_session = MinerUHook.async_session

    @contextlib.asynccontextmanager
    async def async_session(self: Any) -> Any:
        held = getattr(self, "_held_session", None)
        if held is not None and not held.closed:
            yield held
            return
        async with original_session(self) as session:
            self._held_session = session
            try:
                yield session
            finally:
                self._held_session = None

    async def _acall(self: Any, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        config = await self.aget_config()
        url = join_url(config.base_url, path)
        timeout = self.__dict__.get("_aio_timeout")
        if timeout is None:
            timeout = self.__dict__["_aio_timeout"] = aiohttp.ClientTimeout(total=config.timeout)
        held = getattr(self, "_held_session", None)
        scope = contextlib.nullcontext(held) if held is not None and not held.closed else self.async_session()
        attempt = 0
        async with scope as session:
            while True:
                try:
                    async with session.request(
                        method,
                        url,
                        json=body,
                        headers=config.auth_headers,
                        timeout=timeout,
                        proxy=config.proxy,
                        ssl=_ssl_option(config.verify),
                    ) as response:
                        content = await response.read()
                    return parse_api_response(response.status, response.headers, content)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    error: MinerUError = _connection_error(exc, method, path, body)
                    self._warn_if_ambiguous(error, method, body)
                except MinerUError as exc:
                    error = exc
                await asyncio.sleep(self._retry_or_raise(attempt, error, f"{method} {path}"))
                attempt += 1

    async def _one(coro: Any) -> Any:
        try:
            return await coro
        except Exception as exc:  # what gather(return_exceptions=True) would have returned
            return exc

    async def run(self: Any) -> Any:
        poller = self._poller()
        hook = mineru.MinerUHook(mineru_conn_id=self.mineru_conn_id)
        try:
            async with hook.async_session():
                while True:
                    pending = poller.pending_ids()
                    if len(pending) == 1:
                        answers = [await _one(self._fetch(hook, pending[0]))]
                    else:
                        answers = await asyncio.gather(
                            *(self._fetch(hook, item_id) for item_id in pending), return_exceptions=True
                        )
                    for item_id, answer in zip(pending, answers, strict=True):
                        if isinstance(answer, BaseException) and not isinstance(answer, MinerUError):
                            raise answer
                        if (failed := poller.absorb(item_id, answer, self.log)) is not None:
                            yield triggers.TriggerEvent(failed)
                            return
                    now = time.time()
                    if (over := poller.finished(now, self.end_time)) is not None:
                        yield triggers.TriggerEvent(over)
                        return
                    await asyncio.sleep(max(0.0, min(self.poll_interval, self.end_time - now)))
        except Exception as exc:
            error = exc if isinstance(exc, MinerUError) else MinerUError(f"{type(exc).__name__}: {exc}")
            yield triggers.TriggerEvent(poller.outcome(ERROR, str(error), error))

    MinerUHook.async_session = async_session
    MinerUHook._acall = _acall
    triggers._MinerUPollTrigger.run = run
