"""
A 100,000-document backlog against the emulator with MinerU's limits on, in compressed time.

    python bench/bench_account_backlog.py                       # 100,000 documents, 4 workers
    python bench/bench_account_backlog.py --documents 4000      # two days: a smoke test
    python bench/bench_account_backlog.py --json out.json

**The account** (the emulator, in this process, real HTTP on loopback): MinerU's published limits
(``AccountLimits.contract``: 300 submits and 1,000 queries a minute, 2,000 priority pages a UTC day)
with ``strict_page_budget`` (a submit past the day's pages is refused with -60018, a task whose
pages do not fit fails at its start with -60018), 10,000 tasks a day (-60018 past it) and at most
``--max-queued`` pending tasks (-60009 past it). The provider's connection has the same numbers:
``daily_page_budget`` 2,000, ``daily_file_budget`` 10,000, ``submit_rpm`` 300, ``query_rpm`` 1,000.

**The backlog**: ``--documents`` one-page images (the emulator's ``scanned_receipt.png``, one
URL per document), each submitted alone (``MinerUHook.submit_task``: one request per document, the
worst case for the rate) by ``--workers`` worker processes. Before each request a worker reserves
its page in the connection's ``DailyBudget``; the request goes through the hook's transport, whose
``AccountPacing`` takes a token of the deployment's submit ``RateLimiter``. The store is a local
folder shared by the processes (``account_store``), as on one machine.

**What is compressed, and why the result transfers.** At MinerU's limits this backlog takes 50
UTC days (2,000 pages a day) and each day's 2,000 requests take 7 minutes at 300 a minute; the
rest of the day nothing may be sent. Two things are compressed, both on the clocks only:

1. *Time runs* ``--scale`` *times faster* for both sides. The emulator's account clock (its rate
   windows and UTC days) and the provider's limiters and budgets read one function,
   ``START + (time.time() - t0) × scale + jumped``; a limiter's sleeps are divided by ``scale``.
   Every rule is stated in that clock's seconds (the bucket's rate, its leases, the server's
   60-second windows, ``Retry-After``), so the requests each side counts per window are the same
   numbers as at real speed: the server sees ``scale × 300`` requests a *real* minute, 300 a
   minute of its own clock. What does not scale: HTTP latency (a real 1-2 ms is ``scale`` times
   longer in the compressed clock, so the measured share of the rate is, if anything, low) and
   the emulator's task timings (real seconds; they only decide when a task is billed).
2. *The idle rest of each day is skipped.* When every worker holds a budget answer ``exhausted``
   (nothing may be sent until ``resets_at``) and every task sent has been billed (started) by the
   emulator, both clocks jump to the next UTC midnight. In a deployment that is the time the
   tasks spend deferred (``on_budget_exhausted="defer"``) in a ``DateTimeTrigger``: no request is
   made in it, so skipping it removes nothing that is counted.

The same code paths run as in a worker: ``DailyBudget.reserve``/``release``, the transport's
``AccountPacing`` and the shared ``RateLimiter`` (its class, policy and store; only its clock and
sleep are handed in), the hook's ``submit_task`` over HTTP.

**The baseline, in the same run**: the same workers and backlog on a fresh emulator account for
one UTC day, with nothing shared: each worker has its own account store (its own limiter and
budget, "a counter in one process"), as when each task honours the limits on its own.
``max_retries`` is 0 in both runs, so every refusal is counted once and never slept on.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import airflow_home, write_json

airflow_home()

from airflow_provider_mineru.account import rates, shared  # noqa: E402
from airflow_provider_mineru.account.budget import BudgetStatus, DailyBudget, utc_day  # noqa: E402
from airflow_provider_mineru.account.rates import QUERY, SUBMIT, RateLimiter  # noqa: E402
from airflow_provider_mineru.exceptions import MinerUError  # noqa: E402
from airflow_provider_mineru.hooks.mineru import MinerUHook  # noqa: E402
from mineru_emulator import MinerUEmulator  # noqa: E402
from mineru_emulator.cloud.account import AccountLimits  # noqa: E402
from mineru_emulator.cloud.state import Timings  # noqa: E402

START = 1_796_083_200.0  # 2026-12-01 00:00 UTC
CONN_ID = "mineru_default"


class ScaledClock:
    """``START + (time.time() - t0) × scale + jumped`` (``jumped`` is shared by the processes)."""

    def __init__(self, scale: float, jumped: Any) -> None:
        self.scale = scale
        self.t0 = time.time()
        self.jumped = jumped

    def __call__(self) -> float:
        return START + (time.time() - self.t0) * self.scale + self.jumped.value

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.scale)


def _install_limiters(clock: ScaledClock, hook: MinerUHook) -> DailyBudget:
    """This process's limiters and budget with the scaled clock (the ones ``account_for`` hands out)."""
    limits = hook.account_limits
    store = shared.store_for(limits.account_store)
    for kind, rpm in ((SUBMIT, limits.submit_rpm), (QUERY, limits.query_rpm)):
        rates._limiters[(limits.account_store, CONN_ID, kind, rpm)] = RateLimiter(
            store, CONN_ID, kind, rpm, clock=clock, sleep=clock.sleep
        )
    return DailyBudget(store, CONN_ID, limits, clock=clock)


def worker(
    index: int, conn: dict[str, Any], url: str, clock: ScaledClock, shared_state: dict[str, Any], out: str
) -> None:
    """Drain the backlog: reserve a page, submit one document; wait for the reset when the day is spent."""
    os.environ["AIRFLOW_CONN_MINERU_DEFAULT"] = json.dumps(conn)
    hook = MinerUHook()
    budget = _install_limiters(clock, hook)
    next_doc, total, waiting = shared_state["next"], shared_state["total"], shared_state["waiting"]
    sent: list[float] = []
    errors: Counter[str] = Counter()
    while True:
        reservation = budget.reserve(1, 1)
        if reservation.status is not BudgetStatus.GRANTED:
            if shared_state["stop_when_spent"]:
                break
            reset = reservation.resets_at.timestamp()
            waiting[index] = reset  # nothing more from this worker before ``reset``
            while clock() < reset:
                time.sleep(0.005)
            waiting[index] = 0.0
            continue
        with next_doc.get_lock():
            doc = next_doc.value
            next_doc.value += 1
        if doc >= total:
            budget.release(reservation)
            break
        try:
            hook.submit_task(f"{url}?doc={doc}")
            sent.append(clock())
        except MinerUError as exc:
            errors[str(exc.http_status if exc.http_status == 429 else exc.code)] += 1
    waiting[index] = -1.0  # done
    Path(out).write_text(json.dumps({"sent": sent, "errors": errors}))


def run(
    *,
    documents: int,
    workers: int,
    scale: float,
    shared_store: bool,
    max_queued: int,
    stop_when_spent: bool,
) -> dict[str, Any]:
    """One backlog run on a fresh emulator; the emulator's counters and what the workers saw."""
    ctx = multiprocessing.get_context("fork")
    jumped = ctx.Value("d", 0.0)
    clock = ScaledClock(scale, jumped)
    limits = AccountLimits.contract(strict_page_budget=True, tasks_per_day=10_000, max_queued_tasks=max_queued)
    timings = Timings(pending=0.02, per_page=0.02, converting=0.02)
    work = Path(tempfile.mkdtemp(prefix="mineru-backlog-"))
    with MinerUEmulator(
        token="bench-token", account=limits, clock=clock, timings=timings, fetch_demo_urls=False
    ) as emu:
        url = emu.sample_url("scanned_receipt.png")
        state = {
            "next": ctx.Value("q", 0),
            "total": documents,
            "waiting": ctx.Array("d", workers),
            "stop_when_spent": stop_when_spent,
        }
        procs = []
        started = time.time()
        for w in range(workers):
            conn = json.loads(emu.connection_json())
            conn["extra"].update(
                {
                    "account_store": str(work / ("store" if shared_store else f"store-{w}")),
                    "daily_page_budget": 2000,
                    "daily_file_budget": 10_000,
                    "submit_rpm": 300,
                    "query_rpm": 1000,
                    "max_retries": 0,
                }
            )
            proc = ctx.Process(target=worker, args=(w, conn, url, clock, state, str(work / f"worker-{w}.json")))
            proc.start()
            procs.append(proc)
        jumps = 0
        while any(p.is_alive() for p in procs):
            time.sleep(0.02)
            marks = list(state["waiting"])
            if not all(m != 0.0 for m in marks) or all(m < 0 for m in marks):
                continue
            reset = max(marks)
            unbilled = emu.queued_tasks()  # every task sent is billed (started) before the day ends
            if unbilled or clock() >= reset:
                continue
            with jumped.get_lock():
                jumped.value += reset - clock() + 0.001
            jumps += 1
        for proc in procs:
            proc.join()
        wall = time.time() - started
        while emu.queued_tasks():
            time.sleep(0.05)
        usage = emu.account_usage()
    sent: list[float] = []
    worker_errors: Counter[str] = Counter()
    for w in range(workers):
        data = json.loads((work / f"worker-{w}.json").read_text())
        sent.extend(data["sent"])
        worker_errors.update(data["errors"])
    sent.sort()
    return {"usage": usage, "sent": sent, "worker_errors": dict(worker_errors), "wall_s": wall, "jumps": jumps}


def max_in_window(times: list[float], window: float = 60.0) -> int:
    import bisect

    return max((bisect.bisect_right(times, t + window - 1e-9) - i for i, t in enumerate(times)), default=0)


def summarize(result: dict[str, Any], *, budget: int, submit_rpm: int) -> dict[str, Any]:
    """The figures: refusals, pages per UTC day, throughput against what the rate and the budget allow."""
    usage, sent = result["usage"], result["sent"]
    pages = usage["pages_billed"]
    days = sorted(pages)
    per_day_sent: dict[str, list[float]] = {}
    for t in sent:
        per_day_sent.setdefault(utc_day(t), []).append(t)
    # Within a day the rate binds until the budget is spent: requests a minute from the day's first to its last.
    bursts = []
    for times in per_day_sent.values():
        if len(times) > 1:
            minutes = (times[-1] - times[0] + 60.0 / submit_rpm) / 60.0
            bursts.append(len(times) / minutes / submit_rpm)
    full_days = days[:-1] if len(days) > 1 else days
    return {
        "documents_sent": len(sent),
        "utc_days": len(days),
        "http_429": sum(usage["http_429"].values()),
        "refused_60018": usage["refusals"].get("-60018", 0) + usage["failed_tasks"].get("-60018", 0),
        "refused_60009": usage["refusals"].get("-60009", 0),
        "worker_errors": result["worker_errors"],
        "max_pages_in_a_day": max(pages.values(), default=0),
        "min_pages_in_a_full_day": min((pages[d] for d in full_days), default=0),
        "days_over_budget": sum(1 for p in pages.values() if p > budget),
        "budget_use_full_days": round(sum(pages[d] for d in full_days) / (budget * len(full_days)), 4)
        if full_days
        else None,
        "max_requests_in_any_60s": max_in_window(sent),
        "rate_share_while_sending_min": round(min(bursts), 4) if bursts else None,
        "rate_share_while_sending_mean": round(sum(bursts) / len(bursts), 4) if bursts else None,
        "allowed_days": -(-len(sent) // budget),
        "throughput_of_allowed": round(-(-len(sent) // budget) / len(days), 4) if days else None,
        "wall_s": round(result["wall_s"], 1),
        "clock_jumps": result["jumps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--scale", type=float, default=20.0, help="how much faster both clocks run")
    parser.add_argument("--max-queued", type=int, default=5000, help="the emulator's pending tasks before -60009")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "inputs": {
            "documents": args.documents,
            "workers": args.workers,
            "scale": args.scale,
            "daily_page_budget": 2000,
            "submit_rpm": 300,
            "query_rpm": 1000,
            "tasks_per_day": 10_000,
            "max_queued_tasks": args.max_queued,
            "python": sys.version.split()[0],
        }
    }
    common = {"workers": args.workers, "scale": args.scale, "max_queued": args.max_queued}
    if not args.no_baseline:
        base = run(documents=args.documents, shared_store=False, stop_when_spent=True, **common)
        figures["baseline_nothing_shared_one_day"] = summarize(base, budget=2000, submit_rpm=300)
        print("baseline:", json.dumps(figures["baseline_nothing_shared_one_day"]), flush=True)
    shared_run = run(documents=args.documents, shared_store=True, stop_when_spent=False, **common)
    figures["shared"] = summarize(shared_run, budget=2000, submit_rpm=300)
    figures["shared"]["pages_per_day"] = shared_run["usage"]["pages_billed"]
    print("shared:", json.dumps({k: v for k, v in figures["shared"].items() if k != "pages_per_day"}), flush=True)
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
