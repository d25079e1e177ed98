"""
Pages and files per UTC day per connection, counted in the account store for the whole deployment.

The order of one document's life:

1. :meth:`DailyBudget.reserve` / :meth:`DailyBudget.reserve_documents` before any paid request
   or upload (pages from our page counter; a non-PDF counts 1 page until MinerU reports more).
   A reservation is one atomic update: under any number of concurrent reservers, the pages
   reserved for one UTC day never exceed ``daily_page_budget`` (the same for files).
2. :meth:`DailyBudget.release` when MinerU refused the request (a refused request is not billed).
3. :meth:`DailyBudget.settle` when MinerU reports the real page count; the difference is counted
   in the reservation's day, even when that takes the day over its budget (the pages were billed):
   later reservations of that day then see less, or nothing, left.

A reservation belongs to the UTC day it was made in (:attr:`Reservation.day`); releases and
settlements go to that day, so a document reserved at 23:59 and settled at 00:01 never gives
tomorrow's budget back.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_mineru.account.limits import AccountLimits
from airflow_provider_mineru.account.store import JsonStore, key_part


class BudgetStatus(str, enum.Enum):
    """What a reservation got."""

    GRANTED = "granted"  #: everything asked for
    PARTIAL = "partial"  #: some of it (``allow_partial``, or some of the documents)
    EXHAUSTED = "exhausted"  #: nothing: wait for :attr:`Reservation.resets_at`


def utc_day(now: float) -> str:
    """The UTC day of an epoch time, ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def next_utc_midnight(now: float) -> dt.datetime:
    """When the budget of ``now``'s UTC day resets (aware, UTC)."""
    day = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc).date()
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Reservation:
    """
    Pages and files reserved in one UTC day.

    :param status: granted, partial or exhausted.
    :param day: the UTC day (``YYYY-MM-DD``) the pages are counted in; releases and settlements go there.
    :param pages: pages reserved (0 when exhausted).
    :param files: files reserved.
    :param admitted: for :meth:`DailyBudget.reserve_documents`, the indices of the documents reserved.
    :param resets_at: the next UTC midnight after the reservation.
    :param pages_remaining: pages left in the day after this reservation (None: unlimited).
    :param files_remaining: files left in the day after this reservation (None: unlimited).
    """

    status: BudgetStatus
    day: str
    pages: int
    files: int
    resets_at: dt.datetime
    admitted: tuple[int, ...] = ()
    pages_remaining: int | None = None
    files_remaining: int | None = None


@dataclass(frozen=True)
class BudgetUsage:
    """What one UTC day has used and has left (``*_remaining`` None: unlimited)."""

    day: str
    pages_used: int
    files_used: int
    pages_remaining: int | None
    files_remaining: int | None
    resets_at: dt.datetime


def _left(budget: int | None, used: int) -> int | None:
    return None if budget is None else max(0, budget - used)


class DailyBudget:
    """
    One connection's daily page and file budget in the account store.

    :param store: the account store.
    :param conn_id: the connection the budget belongs to.
    :param limits: the connection's limits (budgets are read from here on every call, so a changed
        connection applies at once).
    :param clock: epoch seconds (tests and simulations inject one).
    """

    def __init__(
        self, store: JsonStore, conn_id: str, limits: AccountLimits, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.conn_id = conn_id
        self.limits = limits
        self._clock = clock

    def _key(self, day: str) -> str:
        return f"budget/{key_part(self.conn_id)}/{day}"

    @staticmethod
    def _used(doc: dict[str, Any] | None) -> tuple[int, int]:
        return (int(doc.get("pages", 0)), int(doc.get("files", 0))) if doc else (0, 0)

    def _fits(self, used_pages: int, used_files: int, pages: int, files: int) -> bool:
        page_budget, file_budget = self.limits.daily_page_budget, self.limits.daily_file_budget
        return (page_budget is None or used_pages + pages <= page_budget) and (
            file_budget is None or used_files + files <= file_budget
        )

    def _reservation(
        self,
        status: BudgetStatus,
        day: str,
        now: float,
        used: tuple[int, int],
        pages: int,
        files: int,
        admitted: tuple[int, ...] = (),
    ) -> Reservation:
        return Reservation(
            status=status,
            day=day,
            pages=pages,
            files=files,
            resets_at=next_utc_midnight(now),
            admitted=admitted,
            pages_remaining=_left(self.limits.daily_page_budget, used[0] + pages),
            files_remaining=_left(self.limits.daily_file_budget, used[1] + files),
        )

    def reserve(self, pages: int, files: int = 1, *, allow_partial: bool = False) -> Reservation:
        """
        Reserve ``pages`` and ``files`` in today's budget (UTC), atomically.

        :param allow_partial: grant what is left when all does not fit (status ``partial``);
            otherwise it is all or nothing.
        :raises AccountStoreUnavailable: nothing was reserved (fail closed: send nothing).
        """
        if pages < 0 or files < 0:
            raise ValueError("pages and files must be 0 or more")
        now = self._clock()
        day = utc_day(now)

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], Reservation]:
            used = self._used(doc)
            if self._fits(*used, pages, files):
                got, status = (pages, files), BudgetStatus.GRANTED
            elif allow_partial:
                left = (_left(self.limits.daily_page_budget, used[0]), _left(self.limits.daily_file_budget, used[1]))
                got = (
                    pages if left[0] is None else min(pages, left[0]),
                    files if left[1] is None else min(files, left[1]),
                )
                # A grant is partial only when it has some of each thing asked for (pages without a file is none).
                if (got[0] or not pages) and (got[1] or not files):
                    status = BudgetStatus.PARTIAL
                else:
                    got, status = (0, 0), BudgetStatus.EXHAUSTED
            else:
                got, status = (0, 0), BudgetStatus.EXHAUSTED
            new = {"day": day, "pages": used[0] + got[0], "files": used[1] + got[1]}
            return new, self._reservation(status, day, now, used, *got)

        return self.store.update(self._key(day), change)

    def reserve_documents(self, page_counts: Sequence[int]) -> Reservation:
        """
        Reserve documents (``page_counts[i]`` pages and 1 file each) in today's budget, first fit in
        order: each document is admitted when it fits in what is left; one atomic update for all.

        :returns: the reservation; :attr:`Reservation.admitted` holds the indices admitted.
        """
        if any(count < 0 for count in page_counts):
            raise ValueError("page counts must be 0 or more")
        now = self._clock()
        day = utc_day(now)

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], Reservation]:
            used = self._used(doc)
            pages = files = 0
            admitted: list[int] = []
            for index, count in enumerate(page_counts):
                if self._fits(used[0] + pages, used[1] + files, count, 1):
                    admitted.append(index)
                    pages += count
                    files += 1
            if len(admitted) == len(page_counts):
                status = BudgetStatus.GRANTED
            else:
                status = BudgetStatus.PARTIAL if admitted else BudgetStatus.EXHAUSTED
            new = {"day": day, "pages": used[0] + pages, "files": used[1] + files}
            return new, self._reservation(status, day, now, used, pages, files, tuple(admitted))

        return self.store.update(self._key(day), change)

    def release(self, reservation: Reservation, pages: int | None = None, files: int | None = None) -> None:
        """
        Give back what MinerU refused (a refused request is not billed), in the reservation's day.

        :param pages: pages to give back (default: all of the reservation's).
        :param files: files to give back (default: all of the reservation's).
        """
        pages = reservation.pages if pages is None else pages
        files = reservation.files if files is None else files
        self._adjust(reservation.day, -pages, -files)

    def release_on(self, day: str, pages: int, files: int) -> None:
        """
        :meth:`release` by numbers, for a caller that kept the reservation's day and pages (a resumed task).

        :param day: :attr:`Reservation.day` of the reservation.
        :param pages: pages to give back.
        :param files: files to give back.
        """
        self._adjust(day, -pages, -files)

    def settle(self, day: str, estimated_pages: int, actual_pages: int) -> None:
        """
        Count what MinerU reported instead of what was estimated, in the reservation's ``day``.

        :param day: :attr:`Reservation.day` of the reservation the document was sent under.
        """
        if actual_pages != estimated_pages:
            self._adjust(day, actual_pages - estimated_pages, 0)

    def _adjust(self, day: str, pages: int, files: int) -> None:
        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
            used = self._used(doc)
            return {"day": day, "pages": max(0, used[0] + pages), "files": max(0, used[1] + files)}, None

        if pages or files:
            self.store.update(self._key(day), change)

    def usage(self) -> BudgetUsage:
        """Today's use (UTC): for the ``budget remaining`` metric and the logs."""
        now = self._clock()
        day = utc_day(now)
        used = self._used(self.store.read(self._key(day)))
        return BudgetUsage(
            day=day,
            pages_used=used[0],
            files_used=used[1],
            pages_remaining=_left(self.limits.daily_page_budget, used[0]),
            files_remaining=_left(self.limits.daily_file_budget, used[1]),
            resets_at=next_utc_midnight(now),
        )
