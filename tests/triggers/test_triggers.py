"""Triggers: serialization round trips and real runs against the emulator (``[e async for e in run()]``)."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.triggers.mineru import MinerUBatchTrigger, MinerUTaskTrigger
from mineru_emulator import Fault
from tests.helpers import sample_url


def rebuild(trigger):
    """What the triggerer does: serialize to JSON, store, and build the trigger again."""
    import importlib

    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(kwargs))
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**stored)


async def events(trigger):
    return [event.payload async for event in trigger.run()]


class TestSerialization:
    def test_task_trigger_round_trip(self):
        trigger = MinerUTaskTrigger(
            mineru_task_id="t-1", end_time=123.5, mineru_conn_id="c", poll_interval=2, sources=["https://h/a.pdf"]
        )
        again = rebuild(trigger)
        assert again.serialize() == trigger.serialize()
        assert trigger.serialize()[0] == "airflow_provider_mineru.triggers.mineru.MinerUTaskTrigger"

    def test_batch_trigger_round_trip(self):
        trigger = MinerUBatchTrigger(batch_ids=["a", "b"], expected_files=[200, 3], end_time=9.0, poll_interval=1)
        again = rebuild(trigger)
        assert again.serialize() == trigger.serialize()
        assert again.expected_files == [200, 3]


class TestRuns:
    async def test_task_done_event(self, mineru_conn):
        task_id = MinerUHook().submit_task(sample_url(mineru_conn, "invoice.pdf"), data_id="inv")
        trigger = rebuild(MinerUTaskTrigger(mineru_task_id=task_id, end_time=time.time() + 30, poll_interval=0.05))
        (event,) = await events(trigger)
        assert event["status"] == "done"
        assert event["results"][0]["state"] == "done"
        assert event["results"][0]["data_id"] == "inv"
        assert event["ids"] == [task_id] and event["sources"] == []

    async def test_batch_polls_once_per_batch_not_per_file(self, mineru_conn):
        urls = [sample_url(mineru_conn, "invoice.pdf") + f"?n={i}" for i in range(20)]
        batch_id = MinerUHook().submit_batch(urls)
        mineru_conn.clear_requests()
        trigger = MinerUBatchTrigger(
            batch_ids=[batch_id], expected_files=[20], end_time=time.time() + 30, poll_interval=0.05
        )
        (event,) = await events(trigger)
        assert event["status"] == "done"
        assert len(event["results"]) == 20
        assert mineru_conn.requests_to("get_task") == []
        polls = mineru_conn.requests_to("get_batch")
        assert {r.path.rsplit("/", 1)[-1] for r in polls} == {batch_id}

    async def test_timeout_event_reports_progress(self, mineru_conn):
        mineru_conn.stick("running")
        task_id = MinerUHook().submit_task(sample_url(mineru_conn, "annual_report.pdf"))
        trigger = MinerUTaskTrigger(mineru_task_id=task_id, end_time=time.time() + 0.5, poll_interval=0.1)
        (event,) = await events(trigger)
        assert event["status"] == "timeout"
        assert "running" in event["message"]

    async def test_permanent_error_event(self, mineru_conn):
        trigger = MinerUTaskTrigger(mineru_task_id="no-such-task", end_time=time.time() + 10, poll_interval=0.05)
        (event,) = await events(trigger)
        assert event["status"] == "error"
        assert event["error"]["class"] == "MinerUNotFoundError"
        assert event["error"]["code"] == "-60012"
        assert event["error"]["trace_id"]

    async def test_transient_errors_do_not_end_the_wait(self, mineru_conn):
        task_id = MinerUHook().submit_task(sample_url(mineru_conn, "invoice.pdf"))
        # more failures than the hook retries by itself: the trigger keeps polling
        mineru_conn.inject(Fault(endpoint="get_task", http_status=503, times=6))
        trigger = MinerUTaskTrigger(mineru_task_id=task_id, end_time=time.time() + 30, poll_interval=0.05)
        (event,) = await events(trigger)
        assert event["status"] == "done"

    async def test_triggers_share_one_session(self, mineru_conn):
        import asyncio

        from airflow_provider_mineru.transport import aio as hook_module

        hook = MinerUHook()
        task_ids = [hook.submit_task(sample_url(mineru_conn, "invoice.pdf")) for _ in range(5)]
        end = time.time() + 30
        triggers = [MinerUTaskTrigger(mineru_task_id=t, end_time=end, poll_interval=0.05) for t in task_ids]
        seen = []

        async def watch():
            while len(seen) < 50:
                seen.append(hook_module.SHARED_SESSIONS.open_sessions())
                await asyncio.sleep(0.01)

        results = await asyncio.gather(*(events(t) for t in triggers), watch())
        assert all(r[0]["status"] == "done" for r in results[:-1])
        assert max(seen) == 1
        assert hook_module.SHARED_SESSIONS.open_sessions() == 0


@pytest.mark.usefixtures("airflow_db")
def test_trigger_rebuilt_mid_wait_carries_on(mineru_conn):
    """A triggerer restart: the first trigger is dropped mid-wait; one rebuilt from serialize() finishes."""
    import asyncio
    import contextlib

    task_id = MinerUHook().submit_task(sample_url(mineru_conn, "research_paper.pdf"))
    trigger = MinerUTaskTrigger(mineru_task_id=task_id, end_time=time.time() + 30, poll_interval=0.05)

    async def interrupted():
        generator = trigger.run()
        task = asyncio.ensure_future(generator.__anext__())
        await asyncio.sleep(0.1)
        task.cancel()  # the triggerer went away mid-poll
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return await events(rebuild(trigger))

    (event,) = asyncio.run(interrupted())
    assert event["status"] == "done"
    assert len(mineru_conn.requests_to("submit_task")) == 1


async def test_unknown_state_counts_as_in_progress(mineru_conn):
    """MinerU reports states outside the documented list (``uploading``): keep waiting, do not fail."""
    from airflow_provider_mineru.models import MinerUState

    mineru_conn.stick("uploading")
    task_id = MinerUHook().submit_task(sample_url(mineru_conn, "invoice.pdf"))
    seen = await MinerUHook().aget_task(task_id)
    assert seen.state is MinerUState.UNKNOWN
    assert seen.raw_state == "uploading"
    assert not seen.is_terminal
    trigger = MinerUTaskTrigger(mineru_task_id=task_id, end_time=time.time() + 0.5, poll_interval=0.1)
    (event,) = await events(trigger)
    assert event["status"] == "timeout"
    assert "uploading" in event["message"]
