"""The account's limits over real sockets: rates (429), the daily page budget, tasks a day, the queue."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from emulator_client import Api

from mineru_emulator import AccountLimits, MinerUEmulator, Timings
from mineru_emulator.cli import account_limits, build_parser

#: 2026-03-01 23:59:00 UTC: a minute before a new UTC day.
T0 = 1772409540.0


class FrozenClock:
    """A wall clock that moves only when the test says (through ``emu.advance_clock``)."""

    def __call__(self) -> float:
        return T0


def error(response: requests.Response) -> tuple[int, Any, str]:
    payload = response.json()
    return response.status_code, payload["code"], payload["msg"]


def admin(emu: MinerUEmulator, method: str, action: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{emu.root_url}/__emulator__/{action}", json=body, timeout=10)


@pytest.fixture
def make(mineru_emulator_factory):
    def build(timings: Timings | None = None, **limits: Any) -> tuple[MinerUEmulator, Api]:
        emu = mineru_emulator_factory(
            account=AccountLimits(**limits), clock=FrozenClock(), timings=timings or Timings.fast()
        )
        return emu, Api(emu)

    return build


# -- rates ---------------------------------------------------------------------------------------


def test_submit_rate_is_a_sliding_window_with_retry_after(make) -> None:
    emu, api = make(submit_rpm=3)
    url = emu.sample_url("invoice.pdf")
    api.submit(url)  # the three kinds of submit share one window
    api.ok(api.post("/extract/task/batch", {"files": [{"url": url}]}))
    api.ok(api.post("/file-urls/batch", {"files": [{"name": "a.pdf"}]}))
    created = emu.file_count

    refused = api.post("/extract/task", {"url": url})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert refused.json()["code"] == -10001 and "3 submit requests a minute" in refused.json()["msg"]
    emu.advance_clock(45)
    assert api.post("/extract/task/batch", {"files": [{"url": url}]}).headers["Retry-After"] == "15"
    assert emu.file_count == created, "a refused submit creates no task"

    api.get("/extract/task/unknown-id")  # queries do not take submit slots
    emu.advance_clock(15)
    api.submit(url)
    usage = emu.account_usage()
    assert usage["http_429"] == {"submit": 2, "query": 0}
    assert usage["tasks_created"] == {"2026-03-01": created, "2026-03-02": 1}  # 60 s later: a new UTC day


def test_query_rate_counts_task_and_batch_queries(make) -> None:
    emu, api = make(query_rpm=2)
    task_id = api.submit(emu.sample_url("invoice.pdf"))
    batch_id = api.ok(api.post("/extract/task/batch", {"files": [{"url": emu.sample_url("invoice.pdf")}]}))["batch_id"]
    api.task(task_id)
    api.batch(batch_id)
    for path in (f"/extract/task/{task_id}", f"/extract-results/batch/{batch_id}", "/extract/task/made-up"):
        response = api.get(path)
        assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert api.post("/extract/task", {"url": emu.sample_url("invoice.pdf")}).status_code == 200
    emu.advance_clock(60)
    assert api.task(task_id)["task_id"] == task_id
    assert emu.account_usage()["http_429"] == {"submit": 0, "query": 3}
    assert [r.status for r in emu.requests_to("get_task")] == [200, 429, 429, 200]


def test_unauthenticated_requests_take_no_slot(make) -> None:
    emu, api = make(submit_rpm=1)
    bad = requests.post(emu.base_url + "/extract/task", json={"url": emu.sample_url("invoice.pdf")}, timeout=10)
    assert bad.status_code == 401
    api.submit(emu.sample_url("invoice.pdf"))
    assert emu.account_usage()["http_429"]["submit"] == 0


# -- tasks a day, the queue ----------------------------------------------------------------------


def test_tasks_per_day_refuses_whole_requests_with_60018_until_the_next_utc_day(make) -> None:
    emu, api = make(tasks_per_day=3)
    url = emu.sample_url("invoice.pdf")
    api.ok(api.post("/extract/task/batch", {"files": [{"url": url}, {"url": url}]}))
    status, code, msg = error(api.post("/extract/task/batch", {"files": [{"url": url}, {"url": url}]}))
    assert (status, code) == (200, -60018)
    assert msg.startswith("Daily task limit reached") and "3 tasks a day; 2 used today (2026-03-01 UTC)" in msg
    assert emu.file_count == 2, "a refused batch creates none of its tasks"
    api.ok(api.post("/file-urls/batch", {"files": [{"name": "a.pdf"}]}))  # upload grants count too
    assert error(api.post("/extract/task", {"url": url}))[1] == -60018

    emu.advance_clock(60)  # 2026-03-02 00:00 UTC
    api.submit(url)
    usage = emu.account_usage()
    assert usage["tasks_created"] == {"2026-03-01": 3, "2026-03-02": 1}
    assert usage["refusals"] == {"-60018": 2}


def test_queue_full_is_60009_and_frees_as_tasks_start(make) -> None:
    emu, api = make(timings=Timings(pending=0.6, per_page=0.001, converting=0.001), max_queued_tasks=2)
    url = emu.sample_url("invoice.pdf")
    first = api.submit(url)
    api.submit(url)
    status, code, msg = error(api.post("/extract/task/batch", {"files": [{"url": url}]}))
    assert (status, code) == (200, -60009)
    assert "2 tasks queued, at most 2" in msg
    assert emu.file_count == 2
    api.wait_task(first)
    api.submit(url)
    assert emu.account_usage()["refusals"] == {"-60009": 1}


# -- the daily page budget -----------------------------------------------------------------------


def test_past_the_priority_pages_tasks_run_slower_as_the_contract_says(make) -> None:
    emu, api = make(
        timings=Timings(pending=0.01, per_page=0.02, converting=0.01),
        priority_pages_per_day=5,
        low_priority_factor=20,
    )
    fast = api.wait_task(api.submit(emu.sample_url("annual_report.pdf")))  # 3 pages, priority
    assert fast["state"] == "done"
    started = time.monotonic()
    slow = api.wait_task(api.submit(emu.sample_url("research_paper.pdf")))  # 4 pages: 2 priority, 2 lower
    assert slow["state"] == "done"
    assert time.monotonic() - started >= 4 * 0.02 * 20 * 0.9
    today = emu.account_usage()["today"]
    assert today == {
        "pages_billed": 7,
        "priority_pages": 5,
        "low_priority_pages": 2,
        "priority_pages_left": 0,
        "tasks_created": 2,
    }


def test_strict_page_budget_refuses_with_60018_and_bills_nothing_refused(make) -> None:
    emu, api = make(priority_pages_per_day=5, strict_page_budget=True)
    assert api.wait_task(api.submit(emu.sample_url("annual_report.pdf")))["state"] == "done"  # 3 pages
    too_big = api.wait_task(api.submit(emu.sample_url("research_paper.pdf")))  # 4 pages, 2 left
    assert too_big["state"] == "failed"
    assert too_big["err_msg"].startswith("-60018: Daily task limit reached")
    assert "needs 4 pages, 2 of today's 5 remain" in too_big["err_msg"]
    assert api.wait_task(api.submit(emu.sample_url("invoice.pdf")))["state"] == "done"  # 2 pages: 5 used
    status, code, msg = error(api.post("/extract/task", {"url": emu.sample_url("invoice.pdf")}))
    assert (status, code) == (200, -60018) and "all 5 pages of today's (2026-03-01 UTC) page budget" in msg
    usage = emu.account_usage()
    assert usage["pages_billed"] == {"2026-03-01": 5}
    assert usage["failed_tasks"] == {"-60018": 1} and usage["refusals"] == {"-60018": 1}
    assert emu.pages_used == 5

    emu.next_day()
    assert api.wait_task(api.submit(emu.sample_url("research_paper.pdf")))["state"] == "done"
    assert emu.account_usage()["pages_billed"] == {"2026-03-01": 5, "2026-03-02": 4}


def test_page_quota_refusals_are_counted_and_not_billed(make, mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(page_quota=4, clock=FrozenClock())
    api = Api(emu)
    assert api.wait_task(api.submit(emu.sample_url("annual_report.pdf")))["state"] == "done"
    failed = api.wait_task(api.submit(emu.sample_url("invoice.pdf")))
    assert failed["err_msg"].startswith("-60017")
    assert api.wait_task(api.submit(emu.sample_url("scanned_receipt.png")))["state"] == "done"
    assert error(api.post("/extract/task", {"url": emu.sample_url("invoice.pdf")}))[1] == -60017
    usage = emu.account_usage()
    assert usage["pages_billed"] == {"2026-03-01": 4} and emu.pages_used == 4
    assert usage["failed_tasks"] == {"-60017": 1} and usage["refusals"] == {"-60017": 1}


# -- changing limits at run time -----------------------------------------------------------------


def test_admin_api_reads_counters_changes_limits_and_moves_the_clock(make) -> None:
    emu, api = make()
    api.submit(emu.sample_url("invoice.pdf"))
    changed = admin(emu, "POST", "account", {"submit_rpm": 1, "tasks_per_day": 10})
    assert changed.status_code == 200
    assert changed.json()["limits"]["submit_rpm"] == 1 and emu.account_limits.tasks_per_day == 10
    assert api.post("/extract/task", {"url": emu.sample_url("invoice.pdf")}).status_code == 200
    assert api.post("/extract/task", {"url": emu.sample_url("invoice.pdf")}).status_code == 429

    usage = admin(emu, "GET", "account").json()
    assert usage["day"] == "2026-03-01" and usage["http_429"]["submit"] == 1
    assert usage["today"]["tasks_created"] == 2
    moved = admin(emu, "POST", "clock", {"next_day": True}).json()
    assert moved["day"] == "2026-03-02" and moved["now"] == T0 + 60
    assert admin(emu, "POST", "clock", {"advance": 30}).json()["now"] == T0 + 90
    assert admin(emu, "POST", "account", {"submit_rpm": "fast"}).status_code == 400
    assert admin(emu, "POST", "account", {"per_hour": 3}).status_code == 400
    assert admin(emu, "POST", "clock", {"advance": -1}).status_code == 400

    admin(emu, "POST", "reset")
    usage = admin(emu, "GET", "account").json()
    assert usage["http_429"] == {"submit": 0, "query": 0} and usage["tasks_created"] == {}
    assert usage["limits"]["submit_rpm"] == 1, "a reset forgets the usage, not the limits"


def test_contract_limits_and_cli_flags() -> None:
    assert AccountLimits.contract() == AccountLimits(submit_rpm=300, query_rpm=1000, priority_pages_per_day=2000)
    parser = build_parser()
    assert account_limits(parser.parse_args([])) == AccountLimits()
    flags = "--contract-limits --query-rpm 500 --strict-page-budget --tasks-per-day 10000"
    args = parser.parse_args([*flags.split(), "--max-queued-tasks", "50", "--low-priority-factor", "2"])
    assert account_limits(args) == AccountLimits(
        submit_rpm=300,
        query_rpm=500,
        priority_pages_per_day=2000,
        strict_page_budget=True,
        low_priority_factor=2.0,
        tasks_per_day=10000,
        max_queued_tasks=50,
    )
    args = parser.parse_args(["--submit-rpm", "7", "--priority-pages-per-day", "1000"])
    assert account_limits(args) == AccountLimits(submit_rpm=7, priority_pages_per_day=1000)


def test_pages_are_billed_in_queue_order_whichever_task_is_polled(make) -> None:
    emu, api = make(priority_pages_per_day=5, strict_page_budget=True)
    url = emu.sample_url("invoice.pdf")  # 2 pages each
    first, second, third = (api.submit(url) for _ in range(3))
    time.sleep(0.1)  # every document fetched, every pending time over
    late = api.wait_task(third)  # only the last one is polled: the first two start before it
    assert late["state"] == "failed" and "needs 2 pages, 1 of today's 5 remain" in late["err_msg"]
    assert [api.wait_task(t)["state"] for t in (first, second)] == ["done", "done"]
    assert emu.account_usage()["today"]["pages_billed"] == 4
