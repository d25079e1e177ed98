"""
Account scale in simulated time: a 100,000-document backlog against the shared submit limiter and
the daily budget, and 2,000 concurrent waits against the query limiter.

Nothing sleeps: every limiter, budget and "server" reads one injected clock, and a discrete-event
loop moves it. The store is the real :class:`JsonStore` over an in-memory backend (each simulated
process has its own ``RateLimiter`` and ``DailyBudget``, as separate workers would). A simulated
MinerU counts what it receives in every sliding 60-second window and every UTC day and answers
what the real one would: 429 over ``submit_rpm``/``query_rpm``, -60018 over the daily file limit.

    python bench/bench_account.py            # the full figures (~1-2 minutes)
    python bench/bench_account.py --quick    # 10,000 documents, 500 waits
    python bench/bench_account.py --json out.json
    python bench/bench_account.py --emulator-waits 300 --query-rpm 300 --seconds 75
        # real MinerUTaskTriggers in one event loop against the emulator (real time, real HTTP)
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import random
import sys
import time
from collections import Counter, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import airflow_home, write_json

airflow_home()

from airflow_provider_mineru.account.budget import BudgetStatus, DailyBudget, utc_day  # noqa: E402
from airflow_provider_mineru.account.limits import AccountLimits  # noqa: E402
from airflow_provider_mineru.account.rates import BucketPolicy, PollPacer, RateLimiter, WaitRegistry  # noqa: E402
from airflow_provider_mineru.account.store import JsonStore, MemoryBackend  # noqa: E402

START = 1_796_083_200.0  # 2026-12-01 00:00 UTC


class CountingBackend(MemoryBackend):
    """The in-memory store, counting writes per kind of document (``budget``, ``rate``)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_kind: Counter[str] = Counter()

    def write(self, key: str, body: bytes, *, expected: str | None) -> bool:
        written = super().write(key, body, expected=expected)
        if written:
            self.by_kind[key.split("/")[0]] += 1
        return written


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def max_in_window(times: list[float], window: float = 60.0) -> int:
    return max((bisect.bisect_right(times, t + window - 1e-9) - i for i, t in enumerate(times)), default=0)


def over_limit(times: list[float], limit: int, window: float = 60.0) -> int:
    """Requests a strict sliding-window server would refuse (each one beyond ``limit`` in its window)."""
    refused, accepted = 0, deque()
    for t in times:
        while accepted and accepted[0] <= t - window:
            accepted.popleft()
        if len(accepted) >= limit:
            refused += 1
        else:
            accepted.append(t)
    return refused


def documents(count: int, seed: int) -> list[int]:
    """Page counts: mostly short documents, a long tail up to 600 pages."""
    rng = random.Random(seed)
    return [min(600, max(1, int(rng.lognormvariate(1.8, 0.9)))) for _ in range(count)]


def backlog(
    pages: list[int], *, workers: int, submit_rpm: int, page_budget: int | None, file_budget: int | None
) -> dict[str, object]:
    """
    ``workers`` processes drain the backlog: a submit token, then a reservation, then the request
    (one document per request: the worst case for the rate). The simulated MinerU bills each request
    in the UTC day it arrives.
    """
    clock = Clock()
    backend = CountingBackend()
    limits = AccountLimits(
        daily_page_budget=page_budget, daily_file_budget=file_budget, submit_rpm=submit_rpm, account_store="memory"
    )
    procs = [
        (
            RateLimiter(JsonStore(backend), "mineru_default", "submit", submit_rpm, clock=clock),
            DailyBudget(JsonStore(backend), "mineru_default", limits, clock=clock),
        )
        for _ in range(workers)
    ]
    todo = deque(range(len(pages)))
    sent: list[float] = []
    pages_per_day: Counter[str] = Counter()
    files_per_day: Counter[str] = Counter()
    latency = 0.2  # one request, simulated
    queue = [(START, w) for w in range(workers)]
    heapq.heapify(queue)
    waits_for_reset = 0
    while queue:
        now, w = heapq.heappop(queue)
        clock.now = now
        limiter, budget = procs[w]
        if not todo:
            continue
        wait = limiter.try_acquire()
        if wait:
            heapq.heappush(queue, (now + wait, w))
            continue
        doc = todo.popleft()
        got = budget.reserve(pages[doc], 1)
        if got.status is not BudgetStatus.GRANTED:
            todo.appendleft(doc)  # the token is spent for nothing; wait for the reset
            waits_for_reset += 1
            heapq.heappush(queue, (got.resets_at.timestamp() + random.uniform(0, 1), w))
            continue
        sent.append(now)
        pages_per_day[utc_day(now)] += pages[doc]
        files_per_day[utc_day(now)] += 1
        heapq.heappush(queue, (now + latency, w))
    elapsed = max(sent) - START + 60.0 / submit_rpm
    days = sorted(pages_per_day)
    full_days = days[:-1] if page_budget or file_budget else days
    result: dict[str, object] = {
        "documents": len(sent),
        "pages": sum(pages),
        "simulated_hours": round(elapsed / 3600, 2),
        "max_requests_in_any_60s": max_in_window(sent),
        "http_429": over_limit(sent, submit_rpm),
        "limiter_store_writes_per_request": round(backend.by_kind["rate"] / len(sent), 3),
        "budget_store_writes_per_request": round(backend.by_kind["budget"] / len(sent), 3),
        "workers": workers,
    }
    if page_budget is None and file_budget is None:
        result["achieved_rpm"] = round(len(sent) / (elapsed / 60), 1)
        result["throughput_of_allowed"] = round(len(sent) / (elapsed / 60) / submit_rpm, 4)
    else:
        result["days"] = len(days)
        result["max_pages_in_a_day"] = max(pages_per_day.values())
        result["max_files_in_a_day"] = max(files_per_day.values())
        result["overspend_pages"] = sum(max(0, p - (page_budget or p)) for p in pages_per_day.values())
        result["overspend_files"] = sum(max(0, f - (file_budget or f)) for f in files_per_day.values())
        result["minerU_60018"] = result["overspend_files"]
        # A full day is as good as its binding limit is full: pages, files, or the rate over 24 h.
        use = [
            max(
                pages_per_day[d] / page_budget if page_budget else 0.0,
                files_per_day[d] / file_budget if file_budget else 0.0,
                files_per_day[d] / (submit_rpm * 1440),
            )
            for d in full_days
        ]
        result["throughput_of_allowed_per_full_day_min"] = round(min(use), 4) if use else None
        result["throughput_of_allowed_per_full_day_mean"] = round(sum(use) / len(use), 4) if use else None
        result["waits_for_reset"] = waits_for_reset
    return result


def waits(count: int, query_rpm: int, minutes: int, base_interval: float = 10.0) -> dict[str, object]:
    """``count`` waits in one process start at once and poll for ``minutes``; how many queries a minute."""
    clock = Clock()
    backend = MemoryBackend()
    registry = WaitRegistry()
    limiter = RateLimiter(JsonStore(backend), "mineru_default", "query", query_rpm, clock=clock)
    pacer = PollPacer(limiter, "mineru_default", query_rpm, registry=registry, clock=clock)
    held = [registry.waiting("mineru_default") for _ in range(count)]
    for context in held:
        context.__enter__()
    polls: list[float] = []
    per_wait: Counter[int] = Counter()
    queue = [(START, i, False) for i in range(count)]
    heapq.heapify(queue)
    end = START + minutes * 60
    while queue:
        now, i, booked = heapq.heappop(queue)
        if now > end:
            break
        clock.now = now
        if not booked:
            heapq.heappush(queue, (now + pacer.book_slot(), i, True))
            continue
        wait = limiter.try_acquire()
        if wait:
            heapq.heappush(queue, (now + wait, i, True))
            continue
        polls.append(now)
        per_wait[i] += 1
        heapq.heappush(queue, (now + pacer.interval(base_interval), i, False))
    steady = [t for t in polls if t >= START + 300]  # after the first 5 minutes
    return {
        "waits": count,
        "query_rpm": query_rpm,
        "poll_interval_s": round(pacer.interval(base_interval), 1),
        "max_queries_in_any_60s": max_in_window(polls),
        "share_of_query_rpm": round(max_in_window(polls) / query_rpm, 4),
        "steady_queries_per_minute": round(len(steady) / ((minutes - 5) or 1), 1),
        "http_429": over_limit(polls, query_rpm),
        "waits_never_polled": count - len(per_wait),
        "store_writes_per_minute": round(backend.writes / minutes, 1),
    }


class RecordingPacer(PollPacer):
    """The triggers' pacer, keeping the time of every poll it lets through (what the client sent, when)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[float] = []

    def window_wait(self, requests: int = 1) -> float:
        wait = super().window_wait(requests)
        if not wait:
            self.sent.extend([time.time()] * min(max(1, requests), self.window_limit))
        return wait


def emulator_waits(count: int, query_rpm: int, seconds: float, base_interval: float = 1.0) -> dict[str, object]:
    """
    ``count`` real ``MinerUTaskTrigger`` waits in one event loop (one triggerer) against the emulator,
    in real time, for ``seconds``: how many state queries reached it in any 60-second window.

    The documents never finish (the emulator keeps them ``running``), so every wait polls until its
    deadline; each wait asks for a poll every ``base_interval`` seconds, ``count / base_interval``
    queries a second unpaced.
    """
    import asyncio
    import json
    import os
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from airflow_provider_mineru.account import pacing
    from airflow_provider_mineru.account.shared import account_for
    from airflow_provider_mineru.exceptions import MinerUAmbiguousSubmitError
    from airflow_provider_mineru.hooks.mineru import MinerUHook
    from airflow_provider_mineru.triggers.mineru import MinerUTaskTrigger
    from mineru_emulator import MinerUEmulator

    with MinerUEmulator(token="bench-token") as emu, tempfile.TemporaryDirectory() as store:
        conn = json.loads(emu.connection_json())
        conn["extra"].update({"account_store": store, "query_rpm": query_rpm, "submit_rpm": 100_000})
        os.environ["AIRFLOW_CONN_MINERU_DEFAULT"] = json.dumps(conn)
        hook = MinerUHook()
        url = emu.sample_url("invoice.pdf")
        emu.stick("running", count=count)

        def submit(i: int) -> str:
            # the submits are set-up, not what is measured: a submit whose answer was lost (a
            # keep-alive connection the emulator closed as it was reused) is simply sent again
            for _ in range(5):
                try:
                    return hook.submit_task(f"{url}?copy={i}")
                except MinerUAmbiguousSubmitError:
                    continue
            return hook.submit_task(f"{url}?copy={i}")

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(submit, range(count)))
        # The pacer the triggers share, recording when each poll leaves its window check (the client's sends).
        limits = hook.account_limits
        pacer = RecordingPacer(account_for("mineru_default", limits).queries, "mineru_default", query_rpm)
        pacing._pacers[(limits.account_store, "mineru_default", limits.query_rpm)] = pacer
        started = time.time()
        end = started + seconds

        async def one(task_id: str) -> None:
            trigger = MinerUTaskTrigger(mineru_task_id=task_id, end_time=end, poll_interval=base_interval)
            async for _ in trigger.run():
                return

        async def all_waits() -> None:
            await asyncio.gather(*(one(i) for i in ids))

        asyncio.run(all_waits())
        polls = sorted(r.time for r in emu.requests_to("get_task") if r.time >= started)
        usage = emu.account_usage()
    load = os.getloadavg()
    return {
        "client_max_polls_in_any_60s": max_in_window(sorted(pacer.sent)),
        "load_average_1_5_15": [round(x, 1) for x in load],
        "waits": count,
        "query_rpm": query_rpm,
        "seconds": seconds,
        "unpaced_queries_per_minute": round(count * 60 / base_interval),
        "queries": len(polls),
        "max_queries_in_any_60s": max_in_window(polls),
        "share_of_query_rpm": round(max_in_window(polls) / query_rpm, 4),
        "http_429": sum(usage["http_429"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--emulator-waits", type=int, help="only the real-time trigger benchmark, with N waits")
    parser.add_argument("--query-rpm", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=75.0)
    args = parser.parse_args()
    if args.emulator_waits:
        figure = emulator_waits(args.emulator_waits, args.query_rpm, args.seconds)
        print(figure)
        if args.json:
            write_json(args.json, {"emulator_waits": figure})
        return
    count = 10_000 if args.quick else 100_000
    pages = documents(count, seed=23)
    random.seed(23)
    started = time.perf_counter()
    figures = {
        "rates": backlog(pages, workers=8, submit_rpm=300, page_budget=None, file_budget=None),
        "rates_1_process": backlog(pages[: count // 10], workers=1, submit_rpm=300, page_budget=None, file_budget=None),
        "budget": backlog(pages, workers=8, submit_rpm=300, page_budget=50_000, file_budget=10_000),
        "budget_1000_pages": backlog(
            pages[: count // 20], workers=4, submit_rpm=300, page_budget=1_000, file_budget=None
        ),
        "waits": waits(500 if args.quick else 2000, 1000, 30),
        "policy_300_rpm": {
            "rate_per_s": round(BucketPolicy(300).rate, 4),
            "capacity": BucketPolicy(300).capacity,
            "lease_size": BucketPolicy(300).lease_size,
        },
    }
    figures["wall_seconds"] = round(time.perf_counter() - started, 1)
    for name, values in figures.items():
        print(f"{name}:")
        if isinstance(values, dict):
            for key, value in values.items():
                print(f"  {key:42} {value}")
        else:
            print(f"  {values}")
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
