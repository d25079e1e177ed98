"""Deployment-wide rate limits: the 60-second window bound, leases, 429 penalties, the async face, poll pacing."""

from __future__ import annotations

import asyncio
import bisect
import heapq

import pytest

from airflow_provider_mineru.account.rates import (
    SLOT_MARGIN,
    BucketPolicy,
    PollPacer,
    RateLimiter,
    WaitRegistry,
    poll_interval_for,
)
from airflow_provider_mineru.account.store import JsonStore, LocalBackend, MemoryBackend
from tests.account import _workers
from tests.account.test_budget import _process_context


def max_in_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    return max((bisect.bisect_right(times, t + window - 1e-9) - i for i, t in enumerate(times)), default=0)


def simulate(limiters: list[RateLimiter], clock, until: float) -> list[float]:
    """Every limiter wants a token all the time; the simulated times tokens were granted."""
    granted: list[float] = []
    queue = [(clock.now, i) for i in range(len(limiters))]
    heapq.heapify(queue)
    while queue:
        at, i = heapq.heappop(queue)
        if at > until:
            break
        clock.now = at
        wait = limiters[i].try_acquire()
        if wait == 0:
            granted.append(at)
            heapq.heappush(queue, (at + 0.001, i))
        else:
            heapq.heappush(queue, (at + wait, i))
    return granted


@pytest.mark.parametrize(("rpm", "processes"), [(300, 1), (300, 7), (1000, 3), (40, 2)])
def test_no_window_sees_more_than_rpm_and_throughput_is_above_90_percent(rpm, processes, clock):
    store = JsonStore(MemoryBackend())
    limiters = [RateLimiter(store, "c", "submit", rpm, clock=clock) for _ in range(processes)]
    start = clock.now
    granted = simulate(limiters, clock, start + 600)
    assert max_in_window(granted) <= rpm
    assert len(granted) >= 0.9 * rpm * 10


def test_leases_save_store_round_trips(clock):
    backend = MemoryBackend()
    limiter = RateLimiter(JsonStore(backend), "c", "query", 1000, clock=clock)
    granted = simulate([limiter], clock, clock.now + 60)
    assert len(granted) >= 900
    assert backend.writes < len(granted) / 8  # up to 31 tokens a lease at 1,000 rpm


def test_policy_arithmetic():
    policy = BucketPolicy(300)
    assert policy.rate == pytest.approx(300 / 64)
    assert policy.capacity + policy.rate * (60 + policy.lease_seconds) == pytest.approx(300)
    assert policy.lease_size == 9


def test_penalize_stops_everyone_then_refills_slower(clock):
    store = JsonStore(MemoryBackend())
    first, second = (RateLimiter(store, "c", "submit", 300, clock=clock) for _ in range(2))
    assert first.try_acquire() == 0
    first.penalize(30)
    clock.now += 2.5  # the other process's lease (if any) has expired
    assert 27.5 <= second.try_acquire() <= 27.55  # up to 50 ms jitter: processes do not come back together
    clock.now += 28
    granted = simulate([first, second], clock, clock.now + 60)
    assert 0.45 * 300 < len(granted) < 0.65 * 300  # half speed, recovering 10 % a minute


def test_try_acquire_never_sleeps_and_acquire_does(clock):
    limiter = RateLimiter(JsonStore(MemoryBackend()), "c", "submit", 60, clock=clock, sleep=clock.sleep)
    while limiter.try_acquire() == 0:
        pass
    before = clock.now
    waited = limiter.acquire()
    assert waited > 0 and clock.now == pytest.approx(before + waited)
    while limiter.try_acquire() == 0:
        pass
    with pytest.raises(TimeoutError):
        limiter.acquire(timeout=0.01)


def test_async_face_shares_the_bucket(tmp_path):
    store = JsonStore(LocalBackend(tmp_path))
    limiter = RateLimiter(store, "c", "query", 6000)  # real clock: 100/s

    async def take(n: int) -> None:
        await asyncio.gather(*(limiter.acquire_async() for _ in range(n)))

    asyncio.run(take(30))
    other = RateLimiter(store, "c", "query", 6000)
    doc = store.read("rate/c/query")
    assert doc is not None and doc["tokens"] < other.policy.capacity
    assert limiter.round_trips < 30


def test_processes_share_one_limiter_on_the_local_store(tmp_path):
    # 3 processes want 25 tokens each at 600 rpm (capacity ~18.75, 9.4/s): 75 tokens take >= ~6 s together.
    with _process_context().Pool(3) as pool:
        results = pool.starmap(_workers.take_tokens, [(str(tmp_path), 600, 25)] * 3)
    times = sorted(t for result in results for t in result)
    rate = BucketPolicy(600).rate
    capacity = BucketPolicy(600).capacity
    assert len(times) == 75
    # Never more than the bucket allows in any span: capacity + rate x span (+ one lease in flight per process).
    for i, t in enumerate(times):
        for j in range(i + 1, len(times)):
            assert j - i + 1 <= capacity + rate * (times[j] - t) + 3 * BucketPolicy(600).lease_size


def test_poll_interval_for():
    assert poll_interval_for(1, 1000, 10) == 10
    assert poll_interval_for(2000, 1000, 10) == pytest.approx(150)  # 2000 x 60 / 150 = 800 a minute
    assert poll_interval_for(0, 1000, 5) == 5
    with pytest.raises(ValueError, match="positive"):
        poll_interval_for(1, 0, 5)


def test_registry_counts_waits_per_connection():
    registry = WaitRegistry()
    with registry.waiting("a"), registry.waiting("a"), registry.waiting("b"):
        assert (registry.count("a"), registry.count("b")) == (2, 1)
    assert registry.count("a") == 0


def test_2000_waits_in_one_process_stay_under_80_percent(clock):
    registry = WaitRegistry()
    limiter = RateLimiter(JsonStore(MemoryBackend()), "c", "query", 1000, clock=clock)
    pacer = PollPacer(limiter, "c", 1000, registry=registry, clock=clock)
    polls: list[float] = []
    contexts = [registry.waiting("c") for _ in range(2000)]
    for context in contexts:
        context.__enter__()
    queue = [(clock.now, i, False) for i in range(2000)]  # all 2,000 start at once: the worst burst
    heapq.heapify(queue)
    end = clock.now + 900
    while queue:
        at, i, booked = heapq.heappop(queue)
        if at > end:
            break
        clock.now = at
        if not booked:
            heapq.heappush(queue, (at + pacer.book_slot(), i, True))
            continue
        wait = limiter.try_acquire()
        if wait:
            heapq.heappush(queue, (at + wait, i, True))
            continue
        polls.append(at)
        heapq.heappush(queue, (at + pacer.interval(10), i, False))
    assert max_in_window(polls) <= 0.8 * 1000
    assert len(polls) >= 0.9 * 0.8 * 1000 * 15 * 0.9  # the waits are not starved either


def test_pacer_async_books_slots_apart_and_takes_deployment_tokens(tmp_path, clock):
    store = JsonStore(LocalBackend(tmp_path))
    limiter = RateLimiter(store, "c", "query", 60_000, clock=clock)
    pacer = PollPacer(limiter, "c", 60_000, registry=WaitRegistry(), clock=clock)  # slots 1.25 ms apart

    async def polls() -> list[float]:
        return await asyncio.gather(*(pacer.before_poll_async() for _ in range(20)))

    waited = asyncio.run(polls())
    spacing = 60 / 48_000 * (1 + SLOT_MARGIN)  # 80 % of query_rpm, booked 1 % further apart
    assert sorted(waited) == pytest.approx([i * spacing for i in range(20)], abs=1e-5)
    assert store.read("rate/c/query") is not None


def test_shared_limiter_is_one_per_process_and_connection(tmp_path):
    from airflow_provider_mineru.account.rates import shared_limiter

    store = JsonStore(LocalBackend(tmp_path))
    first = shared_limiter(store, str(tmp_path), "c", "query", 1000)
    assert shared_limiter(store, str(tmp_path), "c", "query", 1000) is first
    assert shared_limiter(store, str(tmp_path), "d", "query", 1000) is not first


def test_penalize_async(clock):
    limiter = RateLimiter(JsonStore(MemoryBackend()), "c", "submit", 300, clock=clock)
    asyncio.run(limiter.penalize_async(12))
    assert limiter.try_acquire() >= 12


def test_account_for_shares_store_and_limiters_in_a_process(tmp_path):
    from airflow_provider_mineru.account.limits import AccountLimits
    from airflow_provider_mineru.account.shared import account_for

    limits = AccountLimits.from_extra({"account_store": str(tmp_path), "daily_page_budget": 5, "query_rpm": 600})
    first, second = account_for("c", limits), account_for("c", limits)
    assert first.store is second.store and first.queries is second.queries and first.submits is second.submits
    assert first.queries.policy.rpm == 600
    assert first.budget.reserve(5).pages == 5
    assert second.budget.reserve(1).pages == 0


def test_limiters_share_the_bucket_on_s3(s3_client, s3_bucket, clock):
    from airflow_provider_mineru.account.store import S3Backend

    backend = S3Backend(s3_client, s3_bucket, "acct")
    first, second = (RateLimiter(JsonStore(backend), "c", "submit", 300, clock=clock) for _ in range(2))
    granted = simulate([first, second], clock, clock.now + 30)
    assert max_in_window(granted) <= 300
    first.penalize(20)
    clock.now += 2.5
    assert second.try_acquire() >= 17


def test_pacer_window_holds_the_polls_as_sent_after_a_late_wake_up(clock):
    """A stalled event loop wakes many booked slots at once: the log of polls as sent still holds the share."""
    pacer = PollPacer(RateLimiter(JsonStore(MemoryBackend()), "c", "query", 100, clock=clock), "c", 100, clock=clock)
    assert pacer.window_limit == 77  # 80 % of 100, 3 % under (WINDOW_MARGIN)
    booked = [pacer.book_slot() for _ in range(100)]  # 100 waits book their slots (75 s of them) ...
    clock.now += 20.0  # ... and the loop wakes them 20 s late, the first 27 at once
    sent = [clock.now for delay in booked if delay <= 20.0 and pacer.window_wait() == 0.0]
    start = clock.now
    while len(sent) < 100:
        clock.now = max(clock.now, start + booked[len(sent)] - 20.0)
        wait = pacer.window_wait()
        clock.now += wait
        if not wait:
            sent.append(clock.now)
    assert max_in_window(sent) <= 77
    assert pacer.window_wait(requests=500) >= 0  # a round larger than the window is capped, never stuck
