"""Worker functions the multi-process tests start (the forkserver preloads this module)."""

from __future__ import annotations

import time

from airflow_provider_mineru.account.budget import DailyBudget
from airflow_provider_mineru.account.limits import AccountLimits
from airflow_provider_mineru.account.rates import RateLimiter
from airflow_provider_mineru.account.store import JsonStore, LocalBackend


def reserve_loop(root: str, budget: int, rounds: int, pages: int) -> list[int]:
    """Reserve ``pages`` ``rounds`` times against a local store; the pages granted each time."""
    budget_ = DailyBudget(JsonStore(LocalBackend(root)), "mineru_default", AccountLimits(daily_page_budget=budget))
    return [budget_.reserve(pages, 1).pages for _ in range(rounds)]


def take_tokens(root: str, rpm: int, count: int) -> list[float]:
    """Take ``count`` submit tokens from a local store's limiter; the times they were granted."""
    limiter = RateLimiter(JsonStore(LocalBackend(root)), "mineru_default", "submit", rpm)
    times = []
    for _ in range(count):
        limiter.acquire()
        times.append(time.time())
    return times
