"""
The transport's pacing for one connection: the account's deployment-wide limiters, at one place.

:class:`AccountPacing` implements :class:`~airflow_provider_mineru.transport.policy.Pacing`; the
transport's two faces call it at the same points (before each API attempt, after each failure
that is retried), so the sync hook (workers) and the async hook (the triggerer) share one rule:

- a ``POST`` (submit, upload-URL request) takes a token of the ``submit`` limiter, anything else
  (state queries) a token of the ``query`` limiter (:func:`kind_of`);
- a retried failure counts ``mineru.http_retries`` by status; a 429 also calls
  :meth:`~airflow_provider_mineru.account.rates.RateLimiter.penalize` with its ``Retry-After``
  (the request itself still waits ``Retry-After`` in the transport's retry loop).

Which connections are paced (:func:`pacing_for`): the cloud flavor always (MinerU's published
rates are the defaults); a self-hosted ``mineru-api`` server only when ``submit_rpm`` or
``query_rpm`` is set on the connection (it has no account limits of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from airflow_provider_mineru.account import metrics
from airflow_provider_mineru.account.limits import AccountLimits
from airflow_provider_mineru.account.rates import QUERY, SUBMIT, PollPacer, RateLimiter, wait_registry
from airflow_provider_mineru.account.shared import Account, account_for
from airflow_provider_mineru.connection.form import API_FLAVOR_CLOUD
from airflow_provider_mineru.exceptions import MinerUError
from airflow_provider_mineru.transport.policy import UNPACED, Pacing, Request

#: A 429 without ``Retry-After`` still slows the deployment down this long (seconds).
DEFAULT_PENALTY_SECONDS = 1.0
#: A wait for a token shorter than this is not worth a metric (seconds).
RATE_LIMITED_AFTER = 0.05


def kind_of(request: Request) -> str:
    """The limiter a request takes a token of: ``submit`` for a ``POST``, ``query`` otherwise."""
    return SUBMIT if request.method.upper() == "POST" else QUERY


def retry_status(error: MinerUError) -> int | str | None:
    """What ``mineru.http_retries`` is tagged with: the HTTP error status, else MinerU's code, else None."""
    status = error.http_status
    if status is not None and status >= 400:
        return status
    return error.code


class AccountPacing:
    """
    The account's limiters around every API call of one connection (one per hook; the limiters
    behind it are shared by the process, their buckets by the deployment).

    :param account: the connection's account (its store, budget and limiters).
    :param flavor: the connection's ``api_flavor`` (a metric tag).
    :param log: where long waits are announced.
    :param max_penalty: the longest ``Retry-After`` honoured (the connection's retry cap, ``retry_max_after``).
    """

    def __init__(self, account: Account, flavor: str, log: logging.Logger, *, max_penalty: float = 300.0) -> None:
        self.account = account
        self.flavor = flavor
        self.log = log
        self.max_penalty = max_penalty

    def limiter(self, request: Request) -> RateLimiter:
        """The limiter ``request`` takes a token of."""
        return self.account.submits if kind_of(request) == SUBMIT else self.account.queries

    def _waited(self, request: Request, seconds: float) -> None:
        if seconds >= RATE_LIMITED_AFTER:
            kind = kind_of(request)
            metrics.rate_limited(self.account.conn_id, kind=kind)
            if seconds >= 1.0:
                self.log.info("Waited %.1fs for the deployment's MinerU %s rate (%s)", seconds, kind, request.what)

    def before(self, request: Request) -> None:
        """Take a token of the request's limiter (blocking)."""
        self._waited(request, self.limiter(request).acquire())

    async def abefore(self, request: Request) -> None:
        """Take a token of the request's limiter in the event loop."""
        self._waited(request, await self.limiter(request).acquire_async())

    def _penalty(self, request: Request, error: MinerUError) -> float | None:
        """Count the retry; the seconds to penalize the shared limiter for (a 429), else None."""
        metrics.http_retry(self.account.conn_id, flavor=self.flavor, status=retry_status(error))
        if error.http_status != 429:
            return None
        seconds = getattr(error, "retry_after", None)
        seconds = DEFAULT_PENALTY_SECONDS if seconds is None else max(0.0, float(seconds))
        seconds = min(seconds, self.max_penalty)
        self.log.warning(
            "MinerU answered 429 to %s: the deployment's %s rate slows down (Retry-After %.1fs)",
            request.what,
            kind_of(request),
            seconds,
        )
        return seconds

    def retrying(self, request: Request, error: MinerUError) -> None:
        """Count the retry; a 429 slows the shared limiter down."""
        seconds = self._penalty(request, error)
        if seconds is not None:
            self.limiter(request).penalize(seconds)

    async def aretrying(self, request: Request, error: MinerUError) -> None:
        """:meth:`retrying` from an event loop (the store round trip runs in a thread)."""
        seconds = self._penalty(request, error)
        if seconds is not None:
            await self.limiter(request).penalize_async(seconds)


def paced(flavor: str, extra: Mapping[str, Any]) -> bool:
    """Whether a connection's requests go through the account's limiters (see the module docstring)."""
    if flavor == API_FLAVOR_CLOUD:
        return True
    return any(str(extra.get(name) or "").strip() for name in ("submit_rpm", "query_rpm"))


def pacing_for(
    conn_id: str,
    flavor: str,
    limits: AccountLimits,
    extra: Mapping[str, Any],
    log: logging.Logger,
    *,
    max_penalty: float = 300.0,
) -> Pacing:
    """
    The pacing of a connection's transport: :class:`AccountPacing`, or no pacing for a
    self-hosted server without rates.

    :param conn_id: the connection.
    :param flavor: its ``api_flavor``.
    :param limits: its account limits (:meth:`AccountLimits.from_extra`).
    :param extra: its extras (whether rates were set).
    :param log: the hook's logger.
    :param max_penalty: the longest ``Retry-After`` honoured (the connection's retry policy's cap).
    """
    if not paced(flavor, extra):
        return UNPACED
    return AccountPacing(account_for(conn_id, limits), flavor, log, max_penalty=max_penalty)


class WaitPacing:
    """
    How one trigger's wait shares its triggerer with the others of its connection: it is counted in
    the process's :func:`~airflow_provider_mineru.account.rates.wait_registry` while it runs, its poll
    interval grows with the number of waits (:func:`~airflow_provider_mineru.account.rates.poll_interval_for`),
    and each poll books a slot of the process's 80 % share of ``query_rpm``
    (:class:`~airflow_provider_mineru.account.rates.PollPacer`) before the transport takes its
    deployment-wide token.

    :param pacer: the process's pacer of the connection (None: the connection is not paced).
    :param conn_id: the connection.
    """

    def __init__(self, pacer: PollPacer | None, conn_id: str) -> None:
        self.pacer = pacer
        self.conn_id = conn_id

    def waiting(self) -> contextlib.AbstractContextManager[None]:
        """Count this wait while the block runs."""
        return wait_registry().waiting(self.conn_id) if self.pacer is not None else contextlib.nullcontext()

    def interval(self, base_interval: float) -> float:
        """The seconds until the next poll round."""
        return base_interval if self.pacer is None else self.pacer.interval(base_interval)

    async def before_round(self, requests: int) -> None:
        """Book one slot per request of the coming round, wait for the last, then for the window of polls as sent."""
        if self.pacer is None or requests <= 0:
            return
        delay = max(self.pacer.book_slot() for _ in range(requests))
        if delay > 0:
            await asyncio.sleep(delay)
        while (wait := self.pacer.window_wait(requests)) > 0:  # the polls as sent, after a late wake-up
            await asyncio.sleep(wait)


_pacers: dict[tuple[str, str, int], PollPacer] = {}
_pacers_lock = threading.Lock()
os.register_at_fork(after_in_child=_pacers.clear)


def wait_pacing(conn_id: str, flavor: str, limits: AccountLimits, extra: Mapping[str, Any]) -> WaitPacing:
    """
    The pacing of one wait in this process (the triggers of a triggerer share one pacer per connection).

    :param conn_id: the connection.
    :param flavor: its ``api_flavor``.
    :param limits: its account limits.
    :param extra: its extras (whether a self-hosted server's rates were set).
    """
    if not paced(flavor, extra):
        return WaitPacing(None, conn_id)
    key = (limits.account_store, conn_id, limits.query_rpm)
    with _pacers_lock:
        pacer = _pacers.get(key)
        if pacer is None:
            account = account_for(conn_id, limits)
            pacer = _pacers[key] = PollPacer(account.queries, conn_id, limits.query_rpm)
        return WaitPacing(pacer, conn_id)
