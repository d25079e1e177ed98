"""The daily budget: exactly at the budget under concurrent reservers (threads, processes, S3)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_mineru.account.budget import BudgetStatus, DailyBudget, next_utc_midnight, utc_day
from airflow_provider_mineru.account.limits import AccountLimits
from airflow_provider_mineru.account.store import (
    AccountStoreUnavailable,
    JsonStore,
    LocalBackend,
    MemoryBackend,
    S3Backend,
    backend_for,
)
from tests.account import _workers


def _process_context():
    """Fresh processes; one server process imports Airflow once and forks the workers (spawning each costs ~10 s)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.account._workers", "airflow_provider_mineru.account.rates"])
    return context


def _budget(backend, clock, pages=None, files=None) -> DailyBudget:
    limits = AccountLimits(daily_page_budget=pages, daily_file_budget=files)
    return DailyBudget(JsonStore(backend), "mineru_default", limits, clock=clock)


def test_reserve_grants_until_exactly_the_budget_then_exhausted(clock):
    budget = _budget(MemoryBackend(), clock, pages=10)
    assert budget.reserve(4).status is BudgetStatus.GRANTED
    assert budget.reserve(6).status is BudgetStatus.GRANTED
    refused = budget.reserve(1)
    assert refused.status is BudgetStatus.EXHAUSTED
    assert (refused.pages, refused.pages_remaining) == (0, 0)
    assert refused.resets_at == dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
    assert budget.usage().pages_used == 10


def test_partial_grants_what_is_left(clock):
    budget = _budget(MemoryBackend(), clock, pages=10, files=3)
    budget.reserve(7, 1)
    partial = budget.reserve(5, 1, allow_partial=True)
    assert (partial.status, partial.pages, partial.files) == (BudgetStatus.PARTIAL, 3, 1)
    assert budget.reserve(1, 1, allow_partial=True).status is BudgetStatus.EXHAUSTED


def test_reserve_documents_first_fit_in_order(clock):
    budget = _budget(MemoryBackend(), clock, pages=10, files=3)
    got = budget.reserve_documents([6, 5, 3, 1, 1])
    assert got.status is BudgetStatus.PARTIAL
    assert got.admitted == (0, 2, 3)  # 5 does not fit after 6; the third file is the last one the budget has
    assert (got.pages, got.files, got.pages_remaining, got.files_remaining) == (10, 3, 0, 0)


def test_release_and_settle_count_in_the_reservations_day(clock):
    budget = _budget(MemoryBackend(), clock, pages=10)
    first = budget.reserve(8)
    budget.release(first, pages=3, files=0)  # MinerU refused one 3-page document
    assert budget.usage().pages_used == 5
    budget.settle(first.day, estimated_pages=1, actual_pages=4)  # a .docx counted 1 until MinerU said 4
    assert budget.usage().pages_used == 8
    clock.now += 86400  # the next UTC day: yesterday's release does not give today anything
    budget.release(first, pages=5, files=0)
    assert budget.usage().pages_used == 0
    assert budget.usage().day == utc_day(clock.now)


def test_a_new_utc_day_has_the_whole_budget(clock):
    budget = _budget(MemoryBackend(), clock, pages=5)
    budget.reserve(5)
    clock.now = next_utc_midnight(clock.now).timestamp() - 0.001
    assert budget.reserve(1).status is BudgetStatus.EXHAUSTED
    clock.now += 0.002
    assert budget.reserve(5).status is BudgetStatus.GRANTED


def test_unlimited_still_counts(clock):
    budget = _budget(MemoryBackend(), clock)
    assert budget.reserve(1000, 7).status is BudgetStatus.GRANTED
    usage = budget.usage()
    assert (usage.pages_used, usage.files_used, usage.pages_remaining) == (1000, 7, None)


@pytest.mark.parametrize("backend_kind", ["local", "memory"])
def test_exactly_the_budget_under_threads(backend_kind, tmp_path, clock):
    backend = LocalBackend(tmp_path) if backend_kind == "local" else MemoryBackend()
    budget = _budget(backend, clock, pages=997)

    def reserve_many(_: int) -> int:
        return sum(budget.reserve(3).pages for _ in range(30))

    with ThreadPoolExecutor(12) as pool:
        granted = sum(pool.map(reserve_many, range(12)))
    assert granted == 996  # 332 reservations of 3 pages: the most that fits in 997
    assert budget.usage().pages_used == 996


def test_exactly_the_budget_under_processes(tmp_path):
    context = _process_context()
    with context.Pool(4) as pool:  # 4 x 80 x 2 = 640 pages asked for, 501 allowed
        results = pool.starmap(_workers.reserve_loop, [(str(tmp_path), 501, 80, 2)] * 4)
    granted = [pages for result in results for pages in result]
    assert sum(granted) == 500
    assert all(pages in (0, 2) for pages in granted)
    budget = DailyBudget(JsonStore(LocalBackend(tmp_path)), "mineru_default", AccountLimits(daily_page_budget=501))
    assert budget.usage().pages_used == 500


def test_exactly_the_budget_on_s3_with_conditional_writes(s3_client, s3_bucket, clock):
    backend = S3Backend(s3_client, s3_bucket, "deploy/account")
    budget = _budget(backend, clock, pages=151)

    def reserve_many(_: int) -> int:
        return sum(budget.reserve(5).pages for _ in range(8))

    with ThreadPoolExecutor(6) as pool:
        granted = sum(pool.map(reserve_many, range(6)))
    assert granted == 150
    key = f"deploy/account/budget/mineru_default/{utc_day(clock.now)}.json"
    assert b'"pages":150' in s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()


def test_s3_backend_create_and_replace_are_conditional(s3_client, s3_bucket):
    backend = S3Backend(s3_client, s3_bucket)
    assert backend.read("a/b") is None
    assert backend.write("a/b", b"{}", expected=None)
    assert not backend.write("a/b", b"{}", expected=None)  # If-None-Match: * lost the race
    current = backend.read("a/b")
    assert backend.write("a/b", b'{"x":1}', expected=current.version)
    assert not backend.write("a/b", b'{"x":2}', expected=current.version)  # stale ETag: 412


def test_s3_store_from_the_account_store_url(aws_conn, s3_bucket, clock):
    backend = backend_for(f"s3://{aws_conn}@{s3_bucket}/p")
    assert isinstance(backend, S3Backend)
    assert backend.shared_across_machines
    budget = _budget(backend, clock, pages=3)
    assert budget.reserve(3).status is BudgetStatus.GRANTED
    assert budget.reserve(1).status is BudgetStatus.EXHAUSTED


def test_unreachable_store_fails_closed(clock):
    class Down(MemoryBackend):
        def read(self, key):
            raise ConnectionError("connection refused")

    budget = _budget(Down(), clock, pages=10)
    with pytest.raises(AccountStoreUnavailable, match="connection refused"):
        budget.reserve(1)


def test_keys_cannot_escape_the_store(tmp_path, clock):
    budget = DailyBudget(JsonStore(LocalBackend(tmp_path / "s")), "../../etc/x y", AccountLimits(daily_page_budget=2))
    budget.reserve(1)
    files = [p for p in (tmp_path / "s").rglob("*.json")]
    assert len(files) == 1 and files[0].is_relative_to(tmp_path / "s")


def test_local_lock_is_held_by_threads_of_one_process(tmp_path):
    backend = LocalBackend(tmp_path)
    store = JsonStore(backend)
    barrier = threading.Barrier(8)

    def bump(_: int) -> None:
        barrier.wait()
        for _ in range(25):
            store.update("c", lambda doc: ({"n": (doc or {"n": 0})["n"] + 1}, None))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(8)))
    assert store.read("c") == {"n": 200}


def test_a_corrupt_document_grants_nothing(tmp_path, clock):
    budget = _budget(LocalBackend(tmp_path), clock, pages=10)
    budget.reserve(1)
    (path,) = tmp_path.rglob("*.json")
    path.write_text("{not json")
    with pytest.raises(AccountStoreUnavailable, match="delete it to reset"):
        budget.reserve(1)


def test_s3_errors_other_than_a_lost_race_fail_closed(s3_client, clock):
    budget = _budget(S3Backend(s3_client, "no-such-bucket-for-account"), clock, pages=10)
    with pytest.raises(AccountStoreUnavailable, match="NoSuchBucket"):
        budget.reserve(1)
