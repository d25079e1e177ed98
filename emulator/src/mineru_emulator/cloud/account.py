"""
The account's limits: requests per minute, the daily page budget, tasks per day, the queue. No HTTP.

MinerU's limits belong to the account, not to a task. The contract (seed ``000``) says: "Each
account is entitled to a maximum quota of 2000 pages per day at the highest priority for
parsing. Pages exceeding 2000 will have reduced priority." Users report about 300 submits and
1,000 queries a minute, ``-60018`` (daily task limit reached) and ``-60009`` (submission queue
full) when an account is pushed. Every limit is off (``None``) unless configured;
:meth:`AccountLimits.contract` turns on the published ones.

Rates are a **sliding window** of 60 seconds per kind of request: an admitted request takes a
slot for 60 s; when every slot is taken the request is refused with HTTP 429 and ``Retry-After``,
the whole seconds until the oldest slot frees. A refused request takes no slot.

Days are UTC days of the account's clock (:class:`Account`), which tests move with
:meth:`Account.advance`; the state machine's durations keep real time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from mineru_emulator.cloud.contract import ApiError

#: The kinds of rated request and the endpoints of each (the contract's calls).
RATED_ENDPOINTS: dict[str, frozenset[str]] = {
    "submit": frozenset({"submit_task", "submit_batch", "file_urls"}),
    "query": frozenset({"get_task", "get_batch"}),
}
WINDOW = 60.0


@dataclass
class AccountLimits:
    """
    What one account may do. ``None`` is unlimited.

    :param submit_rpm: submits a minute (``POST /extract/task``, ``/extract/task/batch``,
        ``/file-urls/batch``), over it HTTP 429.
    :param query_rpm: queries a minute (``GET /extract/task/{id}``, ``/extract-results/batch/{id}``).
    :param priority_pages_per_day: pages a UTC day parsed at the highest priority (the contract: 2000).
    :param strict_page_budget: past the priority pages, refuse (``-60018``) instead of parsing
        at a lower priority: a submit once the day's pages are used up, and a task whose pages do
        not fit fails at its start, unbilled.
    :param low_priority_factor: a task started past the priority pages (not strict) runs this
        many times slower (``Timings.per_page`` × factor).
    :param tasks_per_day: tasks (files) created a UTC day; a request that would pass it is
        refused whole with ``-60018``.
    :param max_queued_tasks: tasks ``pending`` (submitted, not yet running; not the upload
        tasks still waiting for their file); a request that would pass it: ``-60009``.
    """

    submit_rpm: int | None = None
    query_rpm: int | None = None
    priority_pages_per_day: int | None = None
    strict_page_budget: bool = False
    low_priority_factor: float = 4.0
    tasks_per_day: int | None = None
    max_queued_tasks: int | None = None

    @classmethod
    def contract(cls, **overrides: Any) -> AccountLimits:
        """The published limits: 300 submits and 1,000 queries a minute, 2,000 priority pages a day."""
        values: dict[str, Any] = {"submit_rpm": 300, "query_rpm": 1000, "priority_pages_per_day": 2000}
        values.update(overrides)
        return cls(**values)

    def update(self, changes: dict[str, Any]) -> None:
        """Change some limits (the admin API's ``POST account``); unknown names raise ValueError."""
        known = {f.name: f for f in fields(self)}
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown account limits: {sorted(unknown)}")
        for name, value in changes.items():
            if name == "strict_page_budget":
                if not isinstance(value, bool):
                    raise ValueError("strict_page_budget must be a boolean")
            elif name == "low_priority_factor":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
                    raise ValueError("low_priority_factor must be a number >= 1")
            elif value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer or null")
        for name, value in changes.items():
            setattr(self, name, value)


@dataclass(frozen=True)
class PageVerdict:
    """How a starting task's pages are taken: ``priority``, ``low`` (slower) or ``refused``."""

    kind: str
    detail: str = ""


class Account:
    """
    One account's usage against its :class:`AccountLimits`. Every method expects the emulator's
    lock to be held.

    :param limits: the limits (mutable: changed at run time by the admin API).
    :param clock: the wall clock in seconds (``time.time``); :meth:`advance` moves it forward.
    """

    def __init__(self, limits: AccountLimits, clock: Callable[[], float] | None = None) -> None:
        self.limits = limits
        self._clock = clock or time.time
        self.offset = 0.0
        self.reset()

    def reset(self) -> None:
        """Forget the usage (not the limits, not the clock)."""
        self.windows: dict[str, deque[float]] = {kind: deque() for kind in RATED_ENDPOINTS}
        self.http_429: dict[str, int] = dict.fromkeys(RATED_ENDPOINTS, 0)
        self.refusals: dict[str, int] = {}  # code -> submit requests refused with it
        self.failed_tasks: dict[str, int] = {}  # code -> tasks failed at their start with it
        self.pages_billed: dict[str, int] = {}  # UTC day -> pages billed
        self.priority_pages: dict[str, int] = {}  # UTC day -> of which at the highest priority
        self.low_priority_pages: dict[str, int] = {}  # UTC day -> of which at a lower priority
        self.tasks_created: dict[str, int] = {}  # UTC day -> tasks (files) accepted

    # -- the clock -------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self.offset

    def day(self) -> str:
        """Today's UTC date, ``YYYY-MM-DD``."""
        return time.strftime("%Y-%m-%d", time.gmtime(self.now()))

    def advance(self, seconds: float) -> None:
        """Move the account's clock forward (to a next UTC day, past a rate window)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds

    def seconds_to_next_day(self) -> float:
        now = self.now()
        return (math.floor(now / 86400) + 1) * 86400 - now

    # -- rates -----------------------------------------------------------------------------------

    def admit(self, kind: str) -> int | None:
        """Take a slot of ``kind`` (``submit``/``query``); None, or the ``Retry-After`` seconds of a 429."""
        limit = self.limits.submit_rpm if kind == "submit" else self.limits.query_rpm
        if limit is None:
            return None
        now = self.now()
        window = self.windows[kind]
        while window and window[0] <= now - WINDOW:
            window.popleft()
        if len(window) >= limit:
            self.http_429[kind] += 1
            return max(1, math.ceil(window[0] + WINDOW - now)) if window else int(WINDOW)
        window.append(now)
        return None

    # -- submits ---------------------------------------------------------------------------------

    def refuse(self, code: int, detail: str) -> ApiError:
        """Count a refused submit and return its error to raise."""
        self.refusals[str(code)] = self.refusals.get(str(code), 0) + 1
        return ApiError(code, detail)

    def check_submit(self, files: int, queued: Callable[[], int]) -> None:
        """
        Refuse a submit of ``files`` tasks that the daily limits or the queue do not allow.

        :param queued: counts the tasks pending now (called only when a queue limit is set).
        :raises ApiError: ``-60018`` (pages or tasks of the day), ``-60009`` (queue full).
        """
        limits = self.limits
        today = self.day()
        budget = limits.priority_pages_per_day
        if budget is not None and limits.strict_page_budget and self.priority_pages.get(today, 0) >= budget:
            raise self.refuse(-60018, f"all {budget} pages of today's ({today} UTC) page budget are used")
        per_day = limits.tasks_per_day
        used = self.tasks_created.get(today, 0)
        if per_day is not None and used + files > per_day:
            raise self.refuse(
                -60018, f"{per_day} tasks a day; {used} used today ({today} UTC), the request has {files}"
            )
        if limits.max_queued_tasks is not None:
            waiting = queued()
            if waiting + files > limits.max_queued_tasks:
                raise self.refuse(
                    -60009, f"{waiting} tasks queued, at most {limits.max_queued_tasks}; the request has {files}"
                )

    def created(self, files: int) -> None:
        """Count ``files`` accepted tasks today."""
        today = self.day()
        self.tasks_created[today] = self.tasks_created.get(today, 0) + files

    # -- pages -----------------------------------------------------------------------------------

    def bills_in_order(self) -> bool:
        """Pages are taken from a daily budget: tasks must start in the order they were queued."""
        return self.limits.priority_pages_per_day is not None

    def start(self, pages: int) -> PageVerdict:
        """Bill a starting task's ``pages`` (unless refused): at the highest priority or a lower one."""
        today = self.day()
        budget = self.limits.priority_pages_per_day
        if budget is None:
            self._bill(today, pages, pages, 0)
            return PageVerdict("priority")
        left = max(0, budget - self.priority_pages.get(today, 0))
        if pages <= left:
            self._bill(today, pages, pages, 0)
            return PageVerdict("priority")
        if self.limits.strict_page_budget:
            self.failed_tasks["-60018"] = self.failed_tasks.get("-60018", 0) + 1
            return PageVerdict("refused", f"the task needs {pages} pages, {left} of today's {budget} remain")
        self._bill(today, pages, left, pages - left)
        return PageVerdict("low")

    def task_failed(self, code: int) -> None:
        self.failed_tasks[str(code)] = self.failed_tasks.get(str(code), 0) + 1

    def _bill(self, today: str, pages: int, priority: int, low: int) -> None:
        self.pages_billed[today] = self.pages_billed.get(today, 0) + pages
        if priority:
            self.priority_pages[today] = self.priority_pages.get(today, 0) + priority
        if low:
            self.low_priority_pages[today] = self.low_priority_pages.get(today, 0) + low

    # -- what benchmarks read --------------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        """The limits and every counter, as JSON (``GET /__emulator__/account``)."""
        today = self.day()
        budget = self.limits.priority_pages_per_day
        return {
            "limits": asdict(self.limits),
            "now": self.now(),
            "day": today,
            "today": {
                "pages_billed": self.pages_billed.get(today, 0),
                "priority_pages": self.priority_pages.get(today, 0),
                "low_priority_pages": self.low_priority_pages.get(today, 0),
                "priority_pages_left": None if budget is None else max(0, budget - self.priority_pages.get(today, 0)),
                "tasks_created": self.tasks_created.get(today, 0),
            },
            "pages_billed": dict(self.pages_billed),
            "priority_pages": dict(self.priority_pages),
            "low_priority_pages": dict(self.low_priority_pages),
            "tasks_created": dict(self.tasks_created),
            "http_429": dict(self.http_429),
            "refusals": dict(self.refusals),
            "failed_tasks": dict(self.failed_tasks),
        }
