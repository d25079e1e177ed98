"""
Whole-system scenarios: the triggerer restarting mid-wait, the service restarting (state lost) or
going away briefly, a task stuck in ``running`` until the operator's timeout, the page quota
running out mid-batch, and upload URLs that expired before the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
import time

import pytest

from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.operators.mineru import MinerUSubmitBatchOperator, MinerUUploadFilesOperator
from airflow_provider_mineru.triggers.mineru import MinerUBatchTrigger
from airflow_provider_mineru.waiting.waits import BATCH_WAIT
from mineru_emulator import Fault, MinerUEmulator, Timings
from tests.helpers import TEST_TOKEN, parse_dag
from tests.helpers.reliability import (
    MODES,
    PDFS,
    RETRY_ONCE,
    SAMPLES,
    OutageProxy,
    accounted_documents,
    pdf_paths,
    pdf_urls,
    run,
    sample_url,
    set_conn,
    wait_until,
    xcom,
)

MODE_PARAMS = [pytest.param(flag, id=name) for name, flag in MODES]


def _rebuild(trigger):
    """What a new triggerer does: the stored ``serialize()`` JSON builds the trigger again."""
    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(kwargs))
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**stored)


# -- the triggerer restarts mid-wait -------------------------------------------------------------


async def test_batch_trigger_rebuilt_mid_wait_carries_on(mineru_emulator_factory, monkeypatch, ledger, request):
    """The triggerer dies mid-poll (with faults in flight); a trigger rebuilt from serialize() finishes."""
    from airflow_provider_mineru.transport import aio as hook_module

    emu = mineru_emulator_factory(timings=Timings(pending=0.4, per_page=0.01, converting=0.01))
    set_conn(monkeypatch, emu)
    hook = MinerUHook()
    first = await hook.asubmit_batch([e["url"] for e in pdf_urls(emu, PDFS[:2])])
    second = await hook.asubmit_batch([pdf_urls(emu)[2]])
    emu.inject(Fault(endpoint="get_batch", http_status=503, times=2))
    emu.inject(Fault(endpoint="get_batch", reset=True))
    trigger = MinerUBatchTrigger(
        batch_ids=[first, second], expected_files=[2, 1], end_time=time.time() + 30, poll_interval=0.05
    )

    generator = trigger.run()
    pending = asyncio.ensure_future(generator.__anext__())
    await asyncio.sleep(0.15)
    assert not pending.done()  # still waiting: the documents are pending
    pending.cancel()  # the triggerer went away mid-wait
    with contextlib.suppress(asyncio.CancelledError):
        await pending
    await generator.aclose()
    ledger.scripted["triggerer restarted mid-wait"] += 1
    polls_before = len(emu.requests_to("get_batch"))

    events = [event.payload async for event in _rebuild(trigger).run()]

    (event,) = events
    assert event["status"] == "done"
    assert event["ids"] == [first, second]
    assert event["batch_of"] == [first, first, second]
    assert [r["state"] for r in event["results"]] == ["done"] * 3
    assert len(emu.requests_to("get_batch")) > polls_before  # the rebuilt trigger polled on
    assert emu.batch_count == 2 and len(emu.requests_to("submit_batch")) == 2  # nothing submitted by a trigger
    names = [r["file_name"].removesuffix(".pdf") for r in event["results"]]
    assert not ledger.account(request, PDFS, names)
    assert hook_module.SHARED_SESSIONS.open_sessions() == 0  # the dead trigger's session was released


# -- the service restarts (state lost) or goes away briefly ------------------------------------


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", MODE_PARAMS)
def test_service_restart_mid_batch_fails_clearly_then_retry_resubmits(
    monkeypatch, capfd, caplog, tmp_path, deferrable, ledger, request
):
    """
    The emulator is replaced mid-wait by a new one on the same port that has never heard of the
    batch (-60012). The try fails with MinerU's not-found error; the Airflow retry finds the old
    batch gone and submits again, to the new service, and succeeds.
    """
    timings = Timings.fast()
    old = MinerUEmulator(token=TEST_TOKEN, timings=timings, fetch_demo_urls=False).start()
    holder: dict[str, MinerUEmulator] = {}
    try:
        set_conn(monkeypatch, old)
        old.stick("running", count=3)  # the old service never finishes the batch

        def restart():
            wait_until(lambda: old.requests_to("get_batch"), timeout=60, interval=0.005)
            port = old.port
            old.stop()
            holder["new"] = MinerUEmulator(token=TEST_TOKEN, port=port, timings=timings, fetch_demo_urls=False).start()

        restarter = threading.Thread(target=restart, daemon=True)
        restarter.start()
        dag = parse_dag(
            MinerUSubmitBatchOperator,
            urls=pdf_urls(old),
            deferrable=deferrable,
            **RETRY_ONCE,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        restarter.join(10)
        ledger.scripted["service restarted mid-batch (state lost)"] += 1
        new = holder["new"]
        assert states == {"parse": "success"}, output[-4000:]
        assert "MinerUNotFoundError" in output and "-60012" in output  # the first try's clear error
        assert "Cannot resume the earlier submission" in output
        assert old.batch_count == 1 and new.batch_count == 1
        value = xcom(dag, "parse")
        assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))
    finally:
        old.stop()
        if "new" in holder:
            holder["new"].stop()


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", MODE_PARAMS)
def test_service_down_briefly_mid_batch_is_absorbed(
    mineru_emulator_factory, monkeypatch, capfd, caplog, tmp_path, deferrable, ledger, request
):
    """The gateway in front of MinerU goes away for ~1 s mid-wait (connection refused), then comes back."""
    emu = mineru_emulator_factory(token=TEST_TOKEN, timings=Timings(pending=1.2, per_page=0.01, converting=0.01))
    proxy = OutageProxy(emu.port).up()
    set_conn(monkeypatch, emu, base_url=f"http://127.0.0.1:{proxy.port}{emu.prefix}")
    outage_over = threading.Event()

    def outage():
        wait_until(lambda: emu.requests_to("get_batch"), timeout=60, interval=0.005)
        proxy.down()
        time.sleep(0.8)
        proxy.up()
        outage_over.set()

    threading.Thread(target=outage, daemon=True).start()
    try:
        dag = parse_dag(
            MinerUSubmitBatchOperator,
            urls=pdf_urls(emu),
            deferrable=deferrable,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
    finally:
        outage_over.wait(5)
        proxy.down()
    ledger.scripted["gateway outage mid-batch (~0.8 s)"] += 1
    assert states == {"parse": "success"}, output[-4000:]
    assert "Connection refused" in output or "Cannot connect" in output  # the outage was seen...
    assert "will poll again" in output  # ...and absorbed by the wait
    assert emu.batch_count == 1
    value = xcom(dag, "parse")
    assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))


# -- a task stuck in ``running`` -----------------------------------------------------------------


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", MODE_PARAMS)
def test_stuck_document_times_out_clearly_and_retry_resumes(mineru_conn, capfd, caplog, deferrable, ledger):
    """One file never leaves ``running``: the operator's timeout ends the try naming it; the retry resumes."""
    mineru_conn.stick("running", match="annual_report")
    dag = parse_dag(
        MinerUSubmitBatchOperator,
        urls=pdf_urls(mineru_conn),
        deferrable=deferrable,
        timeout=1,
        **RETRY_ONCE,
    )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "failed"}
    assert "MinerUWaitTimeoutError" in output
    assert "2 of 3 documents finished; still waiting: annual_report.pdf: running" in output
    assert "Resuming the MinerU batch" in output  # the retry waited on the same batch...
    assert mineru_conn.batch_count == 1  # ...instead of paying for it again


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", MODE_PARAMS)
def test_timeout_keeps_the_finished_documents(mineru_conn, capfd, caplog, tmp_path, deferrable, ledger, request):
    mineru_conn.stick("running", match="annual_report")
    dag = parse_dag(
        MinerUSubmitBatchOperator,
        urls=pdf_urls(mineru_conn),
        deferrable=deferrable,
        timeout=1,
        output_path=str(tmp_path),
    )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "failed"}
    value = xcom(dag, "parse")
    finished = ["research_paper", "invoice"]
    assert not ledger.account(request, finished, accounted_documents(value, output, finished))
    assert [r["state"] for r in value["results"]] == ["running", "done", "done"]


# -- the page quota runs out mid-batch -----------------------------------------------------------


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize(
    ("fail_on_file_error", "deferrable"),
    [pytest.param(False, True, id="partial-success-deferrable"), pytest.param(True, False, id="fail-after-saving")],
)
def test_page_quota_exhausted_mid_batch_keeps_the_others(
    mineru_emulator_factory, monkeypatch, capfd, caplog, tmp_path, fail_on_file_error, deferrable, ledger, request
):
    """Quota of 4 pages, three 2-page documents: two are parsed, the third fails with -60017."""
    emu = mineru_emulator_factory(token=TEST_TOKEN, page_quota=4)
    set_conn(monkeypatch, emu)
    names = ["inv-1", "inv-2", "inv-3"]
    dag = parse_dag(
        MinerUSubmitBatchOperator,
        urls=[{"url": sample_url(emu, "invoice.pdf", copy=i), "data_id": n} for i, n in enumerate(names)],
        deferrable=deferrable,
        fail_on_file_error=fail_on_file_error,
        output_path=str(tmp_path),
    )
    states, output = run(dag, capfd, caplog)
    ledger.scripted["page quota exhausted mid-batch (-60017)"] += 1
    assert states == {"parse": "failed" if fail_on_file_error else "success"}, output[-3000:]
    value = xcom(dag, "parse")
    by_state = sorted(r["state"] for r in value["results"])
    assert by_state == ["done", "done", "failed"]
    failed = next(r for r in value["results"] if r["state"] == "failed")
    assert failed["err_msg"].startswith("-60017")
    assert failed["output_path"] is None
    if fail_on_file_error:
        assert "1 of 3 files failed" in output and "MinerUTaskFailedError" in output
    assert emu.pages_used == 4
    assert not ledger.account(request, names, accounted_documents(value, output, names))
    # the quota is now used up: the next submit is refused at once with -60017
    with pytest.raises(Exception, match="-60017"):
        MinerUHook().submit_task(sample_url(emu, "invoice.pdf"))


# -- upload URLs that expired before the upload --------------------------------------------------

EXPIRED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>AccessDenied</Code>\n'
    "  <Message>Request has expired.</Message>\n  <RequestId>65F1A2B3C4D5E6F708192A3D</RequestId>\n</Error>\n"
)


@pytest.mark.usefixtures("airflow_db")
def test_expired_upload_urls_never_lose_documents_silently(
    mineru_emulator_factory, monkeypatch, capfd, caplog, tmp_path, ledger, request
):
    """
    Every upload URL MinerU hands out is already expired (``upload_url_ttl=0``). Whatever the
    operator does (re-request, or stop), it must end with the documents parsed or a clear error
    naming the expiry, never a success with documents missing.
    """
    emu = mineru_emulator_factory(token=TEST_TOKEN, upload_url_ttl=0.0)
    set_conn(monkeypatch, emu)
    names = ["invoice", "annual_report"]
    dag = parse_dag(
        MinerUUploadFilesOperator,
        paths=[{"path": str(SAMPLES / f"{n}.pdf"), "data_id": n} for n in names],
        deferrable=False,
        output_path=str(tmp_path),
    )
    states, output = run(dag, capfd, caplog)
    if states["parse"] == "failed":
        assert "upload URL has expired" in output
        assert all(f"{name}.pdf" in output for name in names)  # the error names every file it could not upload
        assert "Signature=" not in output  # presigned URLs stay out of the log
        assert [r for r in emu.requests_to("upload") if r.status == 200] == []
    else:
        value = xcom(dag, "parse")
        assert not ledger.account(request, names, accounted_documents(value, output, names))


@pytest.mark.usefixtures("airflow_db")
def test_expired_upload_url_is_re_requested(emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request):
    set_conn(monkeypatch, emulator)
    emulator.inject(Fault(endpoint="upload", http_status=403, body=EXPIRED, content_type="application/xml"))
    dag = parse_dag(
        MinerUUploadFilesOperator,
        paths=pdf_paths(),
        deferrable=False,
        upload_concurrency=1,
        output_path=str(tmp_path),
    )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "success"}, output[-3000:]
    value = xcom(dag, "parse")
    assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))
    stored = [r for r in emulator.requests_to("upload") if r.fault is None and r.status == 200]
    assert len(stored) == 3  # each document stored, and parsed, once


async def test_not_found_while_waiting_names_the_batch(mineru_conn):
    from airflow_provider_mineru.waiting.polling import MinerUPoller, wait_blocking

    lost = "0b5e1c9e-lost-batch"
    trigger = MinerUBatchTrigger(batch_ids=[lost], expected_files=[1], end_time=time.time() + 10, poll_interval=0.05)
    (event,) = [e.payload async for e in trigger.run()]
    assert event["status"] == "error" and event["error"]["code"] == "-60012"
    assert lost in event["message"]
    outcome = await asyncio.to_thread(
        wait_blocking,
        MinerUPoller(wait=BATCH_WAIT, ids=[lost]),
        MinerUHook().get_batch,
        poll_interval=0.05,
        end_time=time.time() + 10,
        log=trigger.log,
    )
    assert lost in outcome.message
