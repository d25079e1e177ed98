"""
No MinerU trigger blocks the triggerer's event loop, first run included, and none fires too soon.

The check runs in a fresh interpreter, as a new triggerer process would: Airflow's triggerer
loaded, the provider's trigger module imported (the triggerer imports it by class path), nothing
else of ours. While one task trigger and one batch trigger run to completion against the
emulator, every module first imported on the loop's thread is recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator
from airflow_provider_mineru.triggers.mineru import MinerUTaskTrigger
from airflow_provider_mineru.waiting.polling import MIN_DEFER_SECONDS, MinerUPoller, min_defer_default
from airflow_provider_mineru.waiting.waits import TASK_WAIT
from tests.helpers import sample_url

_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys, threading, time
    import airflow.jobs.triggerer_job_runner  # what a triggerer process has loaded
    import concurrent.futures.thread  # asyncio's default executor (Python 3.10 imports it on first use)
    from airflow_provider_mineru.triggers.mineru import MinerUBatchTrigger, MinerUTaskTrigger

    LOOP_THREAD = threading.get_ident()
    in_loop = []

    class Watch:
        # Records every module first imported on the event loop's thread (the import still happens).
        def find_spec(self, name, path=None, target=None):
            if threading.get_ident() == LOOP_THREAD and name not in sys.modules:
                in_loop.append(name)
            return None

    TICK = 0.002

    async def main(task_id, batch_id):
        worst = 0.0
        async def monitor():
            nonlocal worst
            while True:
                started = time.perf_counter()
                await asyncio.sleep(TICK)
                worst = max(worst, time.perf_counter() - started - TICK)
        watcher = asyncio.create_task(monitor())
        await asyncio.sleep(0.05)
        sys.meta_path.insert(0, Watch())
        deadline = time.time() + 60
        triggers = [
            MinerUTaskTrigger(mineru_task_id=task_id, end_time=deadline, poll_interval=0.05),
            MinerUBatchTrigger(batch_ids=[batch_id], end_time=deadline, poll_interval=0.05),
        ]
        async def first(trigger):
            async for event in trigger.run():
                return event.payload["status"]
        statuses = await asyncio.gather(*(first(t) for t in triggers))
        await asyncio.sleep(0.05)
        watcher.cancel()
        print(json.dumps({"worst": worst, "statuses": statuses, "imported_in_loop": in_loop}))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def run_first_run_probe(task_id: str, batch_id: str) -> dict:
    """Run both triggers once in a fresh interpreter (:data:`_PROBE`); return what it measured."""
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, task_id, batch_id],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    return json.loads(probe.stdout.strip().splitlines()[-1])


def test_first_run_imports_nothing_on_the_event_loop(mineru_conn):
    """
    Importing in the loop blocked a real triggerer 0.25-0.38 s (the hook, ``aiohttp``). What a
    trigger needs is imported in a worker thread; the loop's own lag is measured by
    ``bench/bench_triggers.py`` (docs/performance.md), not asserted here, where timing is noise.
    """
    hook = MinerUHook()
    task_id = hook.submit_task(sample_url(mineru_conn, "invoice.pdf"))
    batch_id = hook.submit_batch([sample_url(mineru_conn, "invoice.pdf") + f"?n={i}" for i in range(3)])
    measured = run_first_run_probe(task_id, batch_id)
    print(f"worst event-loop lag during the first run: {measured['worst'] * 1000:.1f} ms")
    assert measured["statuses"] == ["done", "done"]
    assert measured["imported_in_loop"] == []


class _Lines:
    """The trigger's log, as the lines it would write (Airflow 2 logs through logging, 3 through structlog)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _line(self, message: str, *args: object, **_: object) -> None:
        self.lines.append(message % args if args else message)

    info = warning = debug = error = exception = _line


async def test_no_event_before_not_before_and_the_log_says_why(mineru_conn, monkeypatch):
    import re

    logged = _Lines()
    monkeypatch.setattr(MinerUTaskTrigger, "log", property(lambda self: logged))
    task_id = MinerUHook().submit_task(sample_url(mineru_conn, "invoice.pdf"))
    started = time.time()
    trigger = MinerUTaskTrigger(
        mineru_task_id=task_id,
        end_time=started + 30,
        poll_interval=0.05,
        not_before=started + 4,  # the wait takes well under a second: its event is held
        min_defer_seconds=4,
    )
    (event,) = [e.payload async for e in trigger.run()]
    assert event["status"] == "done"
    assert time.time() >= started + 4
    held = [
        re.fullmatch(
            r"MinerU task wait done; holding the event (\d+\.\d) s more \(min_defer_seconds=4: Airflow 3 can "
            r"fail a task resumed within seconds of deferring, see apache/airflow#66374, #71580, #72716\)",
            line,
        )
        for line in logged.lines
        if "holding the event" in line
    ]
    assert len(held) == 1 and held[0] is not None, logged.lines
    assert 0 < float(held[0].group(1)) <= 4


async def test_an_event_not_held_logs_no_hold(mineru_conn, monkeypatch):
    logged = _Lines()
    monkeypatch.setattr(MinerUTaskTrigger, "log", property(lambda self: logged))
    task_id = MinerUHook().submit_task(sample_url(mineru_conn, "invoice.pdf"))
    trigger = MinerUTaskTrigger(mineru_task_id=task_id, end_time=time.time() + 30, poll_interval=0.05)
    (event,) = [e.payload async for e in trigger.run()]
    assert event["status"] == "done"
    assert any("done" in line for line in logged.lines)
    assert not any("holding the event" in line for line in logged.lines)


def test_min_defer_default_is_ten_seconds_unless_configured(monkeypatch):
    monkeypatch.delenv("AIRFLOW__MINERU__MIN_DEFER_SECONDS", raising=False)
    assert min_defer_default() == MIN_DEFER_SECONDS == 10.0
    monkeypatch.setenv("AIRFLOW__MINERU__MIN_DEFER_SECONDS", "3")
    assert min_defer_default() == 3.0


def test_the_operator_holds_its_trigger_for_min_defer_seconds(monkeypatch):
    monkeypatch.delenv("AIRFLOW__MINERU__MIN_DEFER_SECONDS", raising=False)
    operator = MinerUSubmitTaskOperator(task_id="submit", url="https://example.com/a.pdf", deferrable=True)
    assert operator.min_defer_seconds == 10.0
    before = time.time()
    poller = MinerUPoller(wait=TASK_WAIT, ids=["mineru-1"], sources=["https://example.com/a.pdf"])
    kwargs = operator._trigger(poller, end_time=before + 60, poll_interval=operator.poll_interval).serialize()[1]
    assert kwargs["mineru_task_id"] == "mineru-1"
    assert before + 10 <= kwargs["not_before"] <= time.time() + 10
    assert kwargs["min_defer_seconds"] == 10.0 and kwargs["sources"] == ["https://example.com/a.pdf"]
