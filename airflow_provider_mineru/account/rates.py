"""
Deployment-wide request rates: a token bucket in the account store, taken in leases.

**The bucket.** One document per connection and kind (``submit``, ``query``) holds the tokens
left, the time they were counted at, a penalty (``Retry-After``) and a slow-down factor. A process
takes a *lease* of a few tokens per store round trip and spends them from memory, so 1,000
requests a minute are about 30 store writes a minute, not 1,000.

**Why no 60-second window sees more than ``rpm`` requests** (:class:`BucketPolicy`): the bucket
refills at ``rate`` tokens a second up to ``capacity = rate × burst_seconds``; a leased token not
spent within ``lease_seconds`` is dropped. A request in a window ``[a, a + 60]`` spent a token
taken in ``[a − lease_seconds, a + 60]``, and the bucket hands out at most
``capacity + rate × (60 + lease_seconds)`` tokens in that span. With
``rate = rpm / (60 + burst_seconds + lease_seconds)`` that is ``rpm``. The defaults (2 s and 2 s)
allow 93.75 % of ``rpm`` on average. Clock skew between machines can add ``rate × skew`` tokens
once (time in the document never goes backwards), not per minute.

**A 429** (:meth:`RateLimiter.penalize`): the bucket is emptied, refills only after
``Retry-After``, and refills at half speed (``factor``), recovering 10 % of the rate a minute.
Other processes' leases in flight run out within ``lease_seconds``.

**A process that dies** holding a lease loses its tokens: fewer requests, never more.

**Waits in one process** (:func:`poll_interval_for`, :class:`WaitRegistry`, :class:`PollPacer`):
the triggers of one triggerer share one query limiter and lengthen their poll interval with the
number of waits, so N waits ask for at most 80 % of ``query_rpm``; poll slots booked
``60 / (0.8 × query_rpm)`` seconds apart make it hold in every 60-second window, bursts included,
and a log of the polls as sent (:meth:`PollPacer.window_wait`) keeps it when the event loop wakes
its waits late.

**Leases take half or wait.** A round trip takes at least half of what it asks for, or nothing and
comes back when a whole lease has refilled: taking the one token that just refilled would shrink
every lease to one token (a store write per request).

One logic, two faces: :meth:`RateLimiter.try_acquire` (never sleeps: simulations and tests),
:meth:`RateLimiter.acquire` (blocking, for workers) and :meth:`RateLimiter.acquire_async`
(the triggerer; a store round trip runs in a thread so the event loop never waits on it).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow_provider_mineru.account.store import JsonStore, key_part

SUBMIT = "submit"
QUERY = "query"
#: The share of ``query_rpm`` the waits of one process may use.
POLL_SHARE = 0.8
#: Poll slots are booked this much further apart than ``POLL_SHARE`` allows (network jitter; measured
#: against the emulator: 241 of 240 in one 60 s window without it).
SLOT_MARGIN = 0.01
#: How far under its share a process keeps its polls *as sent* in any 60 s: a window of arrivals at
#: MinerU spans a little more than 60 s of sending (measured at 2,000 waits, 1,000 ``query_rpm``, on
#: a quiet machine: 792 sent, 802 arrived with a 1 % margin).
WINDOW_MARGIN = 0.03
#: After a 429 the refill rate is multiplied by this, and recovers by ``FACTOR_RECOVERY_PER_MINUTE``.
PENALTY_FACTOR = 0.5
MIN_FACTOR = 0.1
FACTOR_RECOVERY_PER_MINUTE = 0.1


@dataclass(frozen=True)
class BucketPolicy:
    """
    A bucket that never lets a ``window_seconds`` window see more than ``rpm`` requests.

    :param rpm: requests per minute allowed.
    :param burst_seconds: the bucket holds this many seconds of refill.
    :param lease_seconds: a leased token not spent within this time is dropped.
    :param window_seconds: the window the server counts in.
    """

    rpm: int
    burst_seconds: float = 2.0
    lease_seconds: float = 2.0
    window_seconds: float = 60.0

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.rpm * (self.window_seconds / 60.0) / (self.window_seconds + self.burst_seconds + self.lease_seconds)

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate * self.burst_seconds)

    @property
    def lease_size(self) -> int:
        """The most tokens one round trip takes."""
        return max(1, math.floor(min(self.capacity, self.rate * self.lease_seconds)))


def _take(doc: dict[str, Any] | None, now: float, want: int, policy: BucketPolicy) -> tuple[dict[str, Any], int, float]:
    """
    The bucket after taking up to ``want`` tokens at ``now`` (pure).

    :returns: the new document, the tokens taken, and the seconds to wait when none were.
    """
    doc = dict(doc or {"tokens": policy.capacity, "at": now, "penalty_until": 0.0, "factor": 1.0})
    at, penalty_until = float(doc["at"]), float(doc["penalty_until"])
    factor = min(1.0, float(doc["factor"]) + FACTOR_RECOVERY_PER_MINUTE / 60.0 * max(0.0, now - at))
    refill_from = max(at, penalty_until)
    tokens = min(policy.capacity, float(doc["tokens"]) + max(0.0, now - refill_from) * policy.rate * factor)
    # At least half the lease or nothing: taking the one token that just refilled would shrink leases to 1
    # (a store write per request); waiting for half a lease keeps round trips few and costs no throughput.
    available = math.floor(tokens)
    taken = min(want, available) if now >= penalty_until and available >= max(1, want // 2) else 0
    tokens -= taken
    if taken:
        wait = 0.0
    elif now < penalty_until:
        wait = penalty_until - now
    else:  # come back when a whole lease has refilled, not one token: one round trip per lease
        wait = (min(want, policy.capacity) - tokens) / (policy.rate * factor)
    new = {"tokens": tokens, "at": max(at, now), "penalty_until": penalty_until, "factor": factor}
    return new, taken, wait


def _penalize(doc: dict[str, Any] | None, now: float, seconds: float, policy: BucketPolicy) -> dict[str, Any]:
    doc, _, _ = _take(doc, now, 0, policy)
    return {
        "tokens": 0.0,
        "at": doc["at"],
        "penalty_until": max(float(doc["penalty_until"]), now + seconds),
        "factor": max(MIN_FACTOR, float(doc["factor"]) * PENALTY_FACTOR),
    }


class RateLimiter:
    """
    One process's face of a deployment-wide token bucket (thread-safe; share one per process).

    :param store: the account store.
    :param conn_id: the connection.
    :param kind: ``"submit"`` or ``"query"``.
    :param rpm: requests per minute for the whole deployment.
    :param clock: epoch seconds (the store's time is compared across machines: keep clocks in NTP sync).
    :param sleep: how :meth:`acquire` waits.
    """

    def __init__(
        self,
        store: JsonStore,
        conn_id: str,
        kind: str,
        rpm: int,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        policy: BucketPolicy | None = None,
    ) -> None:
        self.store = store
        self.key = f"rate/{key_part(conn_id)}/{kind}"
        self.policy = policy or BucketPolicy(rpm)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = 0
        self._expires = 0.0
        self._not_before = 0.0
        self._spent_in_lease = 0
        self._ask = 1
        #: Store round trips this limiter made (for the benchmark and the logs).
        self.round_trips = 0

    def _take_local(self, now: float) -> float | None:
        """0.0 when a leased token was spent, seconds to wait when the store said so, None to ask the store."""
        if self._tokens > 0 and now < self._expires:
            self._tokens -= 1
            self._spent_in_lease += 1
            return 0.0
        if now < self._not_before:
            return self._not_before - now
        return None

    def try_acquire(self) -> float:
        """
        Take one token without sleeping: 0.0 when taken, else the seconds to wait before asking again.

        :raises AccountStoreUnavailable: the store cannot be reached (fail closed: do not send).
        """
        with self._lock:
            now = self._clock()
            local = self._take_local(now)
            if local is not None:
                return local
            # The lease ran out (spent or expired): ask for twice what the last one spent, up to the policy's size.
            self._ask = min(self.policy.lease_size, max(1, 2 * self._spent_in_lease))
            self.round_trips += 1
            taken, wait = self.store.update(self.key, lambda doc: self._lease(doc, now))
            if not taken:
                self._tokens = 0
                self._not_before = now + wait + random.uniform(0.0, min(0.05, wait / 10))  # processes apart
                return self._not_before - now
            self._tokens, self._expires, self._spent_in_lease = taken - 1, now + self.policy.lease_seconds, 1
            return 0.0

    def _lease(self, doc: dict[str, Any] | None, now: float) -> tuple[dict[str, Any] | None, tuple[int, float]]:
        new, taken, wait = _take(doc, now, self._ask, self.policy)
        # Nothing taken: the refill is computed from the stored time on the next read, no write needed.
        return (new if taken or doc is None else None), (taken, wait)

    def acquire(self, timeout: float | None = None) -> float:
        """
        Take one token, sleeping as long as needed (workers).

        :returns: the seconds waited.
        :raises TimeoutError: no token within ``timeout`` seconds.
        """
        waited = 0.0
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return waited
            if timeout is not None and waited + wait > timeout:
                raise TimeoutError(f"no {self.key} token within {timeout:.0f} s")
            self._sleep(wait)
            waited += wait

    async def acquire_async(self, timeout: float | None = None) -> float:
        """Take one token in an event loop; a store round trip runs in a thread. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                wait = self._take_local(self._clock())
            if wait is None:
                wait = await asyncio.to_thread(self.try_acquire)
            if wait <= 0:
                return waited
            if timeout is not None and waited + wait > timeout:
                raise TimeoutError(f"no {self.key} token within {timeout:.0f} s")
            await asyncio.sleep(wait)
            waited += wait

    def penalize(self, seconds: float) -> None:
        """
        MinerU answered 429 (``Retry-After: seconds``): slow the whole deployment down.

        Drops this process's lease, empties the shared bucket until ``seconds`` from now, and halves its
        refill rate (recovering 10 % of the rate a minute).
        """
        with self._lock:
            now = self._clock()
            self._tokens = 0
            self._not_before = max(self._not_before, now + seconds)
            self.round_trips += 1
            self.store.update(self.key, lambda doc: (_penalize(doc, now, seconds, self.policy), None))

    async def penalize_async(self, seconds: float) -> None:
        """:meth:`penalize` from an event loop."""
        await asyncio.to_thread(self.penalize, seconds)


# -------------------------------------------------------------------------------------------------
# Waits of one process


def poll_interval_for(waits: int, query_rpm: int, base_interval: float, share: float = POLL_SHARE) -> float:
    """
    Seconds between two polls of one wait, when ``waits`` waits share this process's ``share`` of
    ``query_rpm``: ``waits × 60 / interval ≤ share × query_rpm``, never shorter than ``base_interval``.
    """
    if query_rpm <= 0 or share <= 0:
        raise ValueError("query_rpm and share must be positive")
    return max(float(base_interval), max(0, waits) * 60.0 / (share * query_rpm))


class WaitRegistry:
    """How many waits of each connection this process runs now (the triggers of one triggerer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waits: dict[str, int] = {}

    def count(self, conn_id: str) -> int:
        with self._lock:
            return self._waits.get(conn_id, 0)

    @contextmanager
    def waiting(self, conn_id: str) -> Iterator[None]:
        """Count one wait while the block runs."""
        with self._lock:
            self._waits[conn_id] = self._waits.get(conn_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._waits[conn_id] -= 1
                if not self._waits[conn_id]:
                    del self._waits[conn_id]


class PollPacer:
    """
    What one process's waits of one connection do before each poll: wait their (growing) interval,
    then a slot of this process's share of ``query_rpm``, then a token of the deployment's limiter.

    The share is paced by slots booked ``60 / (share × query_rpm)`` seconds apart (virtual scheduling):
    it holds in every 60-second window, bursts included, and 2,000 waits starting at once each book
    one slot instead of waking up together to race for a token.

    :param limiter: the deployment-wide query limiter (shared by the process).
    :param query_rpm: the connection's ``query_rpm``.
    :param registry: the process's waits.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        conn_id: str,
        query_rpm: int,
        *,
        registry: WaitRegistry | None = None,
        share: float = POLL_SHARE,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = limiter
        self.conn_id = conn_id
        self.query_rpm = query_rpm
        self.share = share
        self.registry = registry or wait_registry()
        # 1 % apart more than the share allows: the requests reach MinerU with some jitter after their slot
        self._spacing = 60.0 / (share * query_rpm) * (1.0 + SLOT_MARGIN)
        self._next = 0.0
        #: Polls a 60-second window of this process may hold, as sent (:data:`WINDOW_MARGIN` under the share).
        self.window_limit = max(1, math.floor(share * query_rpm * (1.0 - WINDOW_MARGIN)))
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def interval(self, base_interval: float) -> float:
        """This wait's poll interval now."""
        return poll_interval_for(self.registry.count(self.conn_id), self.query_rpm, base_interval, self.share)

    def book_slot(self) -> float:
        """Book the next slot of this process's share: the seconds until it (0.0: now)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._spacing
            return slot - now

    def window_wait(self, requests: int = 1) -> float:
        """
        Count ``requests`` polls as sent now (0.0), or say how many seconds to wait first: no 60-second
        window of this process's polls *as sent* holds more than :attr:`window_limit`. Slots alone bound
        the polls as booked; a busy event loop that wakes its waits late would send several slots' polls
        at once (measured: 809 in one 60 s window at 2,000 waits and 1,000 ``query_rpm``).
        """
        requests = min(max(1, requests), self.window_limit)
        with self._lock:
            now = self._clock()
            while self._sent and self._sent[0] <= now - 60.0:
                self._sent.popleft()
            over = len(self._sent) + requests - self.window_limit
            if over > 0:
                return self._sent[over - 1] + 60.0 - now + 1e-3
            self._sent.extend([now] * requests)
            return 0.0

    async def before_poll_async(self, requests: int = 1) -> float:
        """Wait for a slot, the window, then a deployment token, in an event loop. Returns the seconds waited."""
        waited = self.book_slot()
        if waited:
            await asyncio.sleep(waited)
        while (wait := self.window_wait(requests)) > 0:
            await asyncio.sleep(wait)
            waited += wait
        return waited + await self.limiter.acquire_async()

    def before_poll(self, requests: int = 1) -> float:
        """Wait for a slot, the window, then a deployment token (blocking). Returns the seconds waited."""
        waited = self.book_slot()
        if waited:
            self._sleep(waited)
        while (wait := self.window_wait(requests)) > 0:
            self._sleep(wait)
            waited += wait
        return waited + self.limiter.acquire()


# One registry and one limiter per (store, connection, kind) in a process: the triggers of a
# triggerer share them. A forked child starts with none of its parent's leases.
_registry = WaitRegistry()
_limiters: dict[tuple[str, str, str, int], RateLimiter] = {}
_limiters_lock = threading.Lock()


def forget_limiters() -> None:
    """Start this process's waits and limiters afresh (a forked child; a test that wants a new account)."""
    global _registry
    _registry = WaitRegistry()
    _limiters.clear()  # no lock: after a fork, another thread's hold of it is gone with the thread


os.register_at_fork(after_in_child=forget_limiters)


def wait_registry() -> WaitRegistry:
    """This process's waits."""
    return _registry


def shared_limiter(store: JsonStore, location: str, conn_id: str, kind: str, rpm: int) -> RateLimiter:
    """
    This process's limiter of ``kind`` for ``conn_id`` (made on first use).

    :param location: the ``account_store`` location ``store`` writes to (part of the cache key).
    """
    key = (location, conn_id, kind, rpm)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter(store, conn_id, kind, rpm)
        return limiter
