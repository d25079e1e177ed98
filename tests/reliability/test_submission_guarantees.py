"""
"Never pay twice, never report the wrong document", through real DAG runs (``dag.test()``) and the
emulator's request log.

- inputs that change between tries (a URL, the order or content of a batch, a file's content) are
  sent anew; the earlier try's result is never reported as theirs;
- a crafted or foreign submission record (the Airflow Variable store of Airflow < 3.3) is ignored;
- a lost answer to a submit costs at most one duplicate (a truncated answer to a 200-URL batch:
  at most 400 accepted documents over all tries);
- an upload interrupted in the middle of a 40-file batch: the retry uploads only what had not
  reached MinerU; an unreadable file is a failure of that file only;
- inputs moved after the uploads, while the task is deferred: the run succeeds with every result.
"""

from __future__ import annotations

import shutil
import threading

import pytest

from airflow_provider_mineru.inputs.sources import SourceFile
from airflow_provider_mineru.operators.mineru import (
    MinerUSubmitBatchOperator,
    MinerUSubmitTaskOperator,
    MinerUUploadFilesOperator,
)
from mineru_emulator import Fault, Timings
from tests.helpers import TEST_TOKEN, parse_dag
from tests.helpers.reliability import (
    PDFS,
    RETRY_ONCE,
    SAMPLES,
    accounted_documents,
    make_dag,
    pdf_urls,
    run,
    sample_url,
    set_conn,
    wait_until,
    xcom,
)

pytestmark = pytest.mark.usefixtures("airflow_db")

#: Fails the first try after it submitted: the first poll is refused (permanent, not retried by the hook).
FAIL_FIRST_POLL = {"endpoint": "get_batch", "code": "A0211", "http_status": 401}


def _by_try(first: str, later: str) -> str:
    """A template rendering ``first`` in the first try and ``later`` in every retry."""
    return f"{{{{ '{first}' if ti.try_number == 1 else '{later}' }}}}"


def _batch_files(emu) -> list[list[str]]:
    """Per submitted URL batch (in order), the file names it held."""
    return [[f["url"].rsplit("/", 1)[-1] for f in r.json["files"]] for r in emu.requests_to("submit_batch")]


# -- changed inputs after a failed try ------------------------------------------------------------


def test_changed_url_is_submitted_and_never_given_the_old_result(
    emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request
):
    """Try 1 sends invoice.pdf and fails; the retry's URL is research_paper.pdf: it is submitted, not resumed."""
    set_conn(monkeypatch, emulator)
    emulator.inject(Fault(**FAIL_FIRST_POLL))
    old, new = sample_url(emulator, "invoice.pdf"), sample_url(emulator, "research_paper.pdf")
    dag = parse_dag(
        MinerUSubmitBatchOperator,
        urls=[sample_url(emulator, "annual_report.pdf"), _by_try(old, new)],
        deferrable=False,
        **RETRY_ONCE,
        output_path=str(tmp_path),
    )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "success"}, output[-3000:]
    assert _batch_files(emulator) == [["annual_report.pdf", "invoice.pdf"], ["research_paper.pdf"]]
    assert "changed: research_paper.pdf" in output
    value = xcom(dag, "parse")
    assert [r["file_name"] for r in value["results"]] == ["annual_report.pdf", "research_paper.pdf"]
    assert value["results"][1]["output_path"].endswith("research_paper")
    assert not (tmp_path / "invoice").exists()  # the old document's result landed nowhere
    names = ["annual_report.pdf", "research_paper.pdf"]
    assert not ledger.account(request, names, [r["file_name"] for r in value["results"] if r["state"] == "done"])


def test_changed_single_task_url_is_submitted_again(emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request):
    set_conn(monkeypatch, emulator)
    emulator.inject(Fault(endpoint="get_task", code="A0211", http_status=401))
    old, new = sample_url(emulator, "invoice.pdf"), sample_url(emulator, "research_paper.pdf")
    dag = parse_dag(
        MinerUSubmitTaskOperator,
        url=_by_try(old, new),
        deferrable=False,
        **RETRY_ONCE,
        output_path=str(tmp_path),
    )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "success"}, output[-3000:]
    submitted = [r.json["url"].rsplit("/", 1)[-1] for r in emulator.requests_to("submit_task")]
    assert submitted == ["invoice.pdf", "research_paper.pdf"]
    value = xcom(dag, "parse")
    assert value["output_path"].endswith("research_paper")
    assert not ledger.account(request, ["research_paper"], [value["output_path"].rsplit("/", 1)[-1]])


def test_reordered_and_extended_batch_resumes_by_input_not_by_position(
    emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request
):
    """The retry gets the same three URLs reversed plus a new one: the three resume, only the new one is sent."""
    set_conn(monkeypatch, emulator)
    emulator.inject(Fault(**FAIL_FIRST_POLL))
    entries = pdf_urls(emulator)
    first = [e["url"] for e in entries]
    later = [*reversed(first), sample_url(emulator, "invoice.pdf", copy=7)]
    with make_dag(params={"first": first, "later": later}, render_template_as_native_obj=True) as dag:
        MinerUSubmitBatchOperator(
            task_id="parse",
            urls="{{ params.first if ti.try_number == 1 else params.later }}",
            deferrable=False,
            poll_interval=0.1,
            **RETRY_ONCE,
            output_path=str(tmp_path),
        )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "success"}, output[-3000:]
    assert _batch_files(emulator) == [[u.rsplit("/", 1)[-1] for u in first], ["invoice.pdf?copy=7"]]
    value = xcom(dag, "parse")
    assert [r["file_name"] for r in value["results"]] == [
        "invoice.pdf",
        "research_paper.pdf",
        "annual_report.pdf",
        "invoice.pdf",
    ]
    assert value["results"][3]["batch_id"] != value["results"][0]["batch_id"]
    names = [f"{i}" for i in range(4)]
    assert not ledger.account(request, names, [str(i) for i, r in enumerate(value["results"]) if r["state"] == "done"])


def test_changed_file_content_is_uploaded_again(emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request):
    """Between the tries one file is rewritten (other size and mtime): it is uploaded again, the others resume."""
    set_conn(monkeypatch, emulator)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in PDFS:
        shutil.copy(SAMPLES / f"{name}.pdf", inbox / f"{name}.pdf")
    emulator.inject(Fault(endpoint="get_batch", code=-60013))

    def rewrite(context):
        shutil.copy(SAMPLES / "research_paper.pdf", inbox / "invoice.pdf")

    dag = parse_dag(
        MinerUUploadFilesOperator,
        paths=[str(inbox / f"{name}.pdf") for name in PDFS],
        deferrable=False,
        on_retry_callback=rewrite,
        **RETRY_ONCE,
        output_path=str(tmp_path / "out"),
        incremental=False,  # identical copies: the ledger would pay for one; this test is about resuming
    )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "success"}, output[-3000:]
    assert "changed: invoice.pdf" in output
    stored = [r for r in emulator.requests_to("upload") if r.fault is None and r.status == 200]
    assert len(stored) == 4  # 3, then the changed file once more
    value = xcom(dag, "parse")
    batches = [r["batch_id"] for r in value["results"]]
    assert batches[0] == batches[1] != batches[2]
    names = [f"{n}.pdf" for n in PDFS]
    assert not ledger.account(request, names, accounted_documents(value, output, names))


# -- crafted or foreign records ------------------------------------------------------------------


def _craft(kind: str, emulator):
    """An upstream task that plants a record pointing this run's ``parse`` task at someone else's batch."""

    def plant(**context):
        from airflow.providers.common.compat.sdk import Variable

        from airflow_provider_mineru.hooks.mineru import MinerUHook
        from airflow_provider_mineru.submission.store import STATE_KEY

        foreign = MinerUHook().submit_batch([sample_url(emulator, "invoice.pdf", copy=i) for i in range(3)])
        ti = context["ti"]
        key = f"{STATE_KEY}/{ti.dag_id}/{context['run_id']}/parse/-1"
        legacy = {"ids": [foreign], "expected_files": [3], "failed_files": {}, "slots": [[0, 0], [0, 1], [0, 2]]}
        if kind == "legacy":  # today's format, as anyone who may edit Variables can write it
            Variable.set(key, legacy, serialize_json=True)
            return
        from airflow_provider_mineru.submission.record import Identity, Submission, SubmittedInput

        identity = Identity(ti.dag_id, context["run_id"], "parse" if kind == "unsigned" else "other_task", -1)
        inputs = [
            SubmittedInput(e["url"], e["url"].rsplit("/", 1)[-1], e["data_id"], "x", [0, i])
            for i, e in enumerate(pdf_urls(emulator))
        ]
        record = Submission("batch", identity, "x", inputs, ids=[foreign], expected_files=[3])
        # "unsigned": the right identity but no valid MAC; "foreign": validly sealed, for another task
        Variable.set(key, record.sealed(None if kind == "unsigned" else TEST_TOKEN), serialize_json=True)

    return plant


@pytest.mark.parametrize("kind", ["legacy", "unsigned", "foreign"])
def test_crafted_or_foreign_record_is_ignored(kind, emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request):
    from airflow.providers.common.compat.standard.operators import PythonOperator

    from airflow_provider_mineru.submission import store as resume

    set_conn(monkeypatch, emulator)
    init = resume.SubmissionStore.__init__

    def variable_store(self, context):  # the store of Airflow < 3.3, on every Airflow
        init(self, {k: v for k, v in context.items() if k != "task_state_store"})

    monkeypatch.setattr(resume.SubmissionStore, "__init__", variable_store)
    with make_dag() as dag:
        plant = PythonOperator(task_id="plant", python_callable=_craft(kind, emulator))
        parse = MinerUSubmitBatchOperator(
            task_id="parse", urls=pdf_urls(emulator), deferrable=False, poll_interval=0.1, output_path=str(tmp_path)
        )
        plant >> parse
    states, output = run(dag, capfd, caplog)
    assert states == {"plant": "success", "parse": "success"}, output[-3000:]
    assert "Ignoring the MinerU submission record" in output
    assert "Resuming the MinerU batch" not in output
    assert emulator.batch_count == 2  # the planted batch, and the task's own
    value = xcom(dag, "parse")
    assert [r["data_id"] for r in value["results"]] == PDFS
    assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))


# -- a lost answer to a submit --------------------------------------------------------------------


def test_truncated_answer_to_a_200_url_batch_costs_at_most_one_duplicate(
    mineru_emulator_factory, monkeypatch, capfd, caplog, ledger, request
):
    emu = mineru_emulator_factory(
        token=TEST_TOKEN, timings=Timings(pending=0.01, per_page=0.0, converting=0.0, fetch_timeout=60)
    )
    set_conn(monkeypatch, emu)
    emu.inject(Fault(endpoint="submit_batch", truncated=True))
    names = [f"doc_{i}" for i in range(200)]
    urls = [{"url": sample_url(emu, "invoice.pdf", copy=i), "data_id": name} for i, name in enumerate(names)]
    # fail_on_file_error=False: a document the loaded emulator could not fetch (-60008) is reported, not resent
    dag = parse_dag(
        MinerUSubmitBatchOperator,
        urls=urls,
        deferrable=False,
        fail_on_file_error=False,
        retries=3,
        retry_delay=RETRY_ONCE["retry_delay"],
    )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "success"}, output[-3000:]
    assert "MinerUAmbiguousSubmitError" in output and "at most one duplicate task may exist for: doc_0, doc_1" in output
    assert "got no answer; MinerU may have accepted it" in output  # the retry says why it sends again
    assert len(emu.requests_to("submit_batch")) == 2  # one per Airflow try, never re-sent by the hook
    assert emu.file_count <= 400, f"{emu.file_count} documents accepted for 200"
    value = xcom(dag, "parse")
    assert [r["data_id"] for r in value["results"]] == names
    accounted = [  # no output_path here: done, or failed with its err_msg in the log
        r["data_id"]
        for r in value["results"]
        if r["state"] == "done" or (r["state"] == "failed" and r["err_msg"] and r["err_msg"] in output)
    ]
    assert not ledger.account(request, names, accounted)


# -- uploads interrupted -------------------------------------------------------------------------


class WorkerKilled(Exception):
    """Stands for the worker dying in the middle of the uploads."""


def _inbox(tmp_path, count: int):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(count):
        shutil.copy(SAMPLES / "invoice.pdf", inbox / f"doc_{i:02d}.pdf")
    return inbox


def test_upload_interrupted_mid_batch_retry_uploads_only_the_rest(
    emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request
):
    """40 files, 4 at a time; the try dies at the 15th file. The retry uploads only what never arrived."""
    set_conn(monkeypatch, emulator)
    inbox = _inbox(tmp_path, 40)
    opened = {"count": 0}
    lock = threading.Lock()
    real_open = SourceFile.open

    def dying_open(self):
        with lock:
            opened["count"] += 1
            if opened["count"] == 15:
                raise WorkerKilled("the worker was killed")
        return real_open(self)

    monkeypatch.setattr(SourceFile, "open", dying_open)
    dag = parse_dag(
        MinerUUploadFilesOperator,
        paths=str(inbox),
        deferrable=False,
        upload_concurrency=4,
        **RETRY_ONCE,
        output_path=str(tmp_path / "out"),
        incremental=False,  # identical copies: the ledger would pay for one; this test is about resuming
    )
    states, output = run(dag, capfd, caplog)
    assert "the worker was killed" in output
    assert states == {"parse": "success"}, output[-3000:]
    stored = [r for r in emulator.requests_to("upload") if r.fault is None and r.status == 200]
    assert len(stored) <= 40 + 4, f"{len(stored)} uploads for 40 files"
    assert "not uploaded:" in output
    value = xcom(dag, "parse")
    names = [f"doc_{i:02d}.pdf" for i in range(40)]
    assert [r["file_name"] for r in value["results"]] == names
    assert not ledger.account(request, names, accounted_documents(value, output, names))


def test_unreadable_file_is_a_failure_of_that_file_only(
    emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request
):
    set_conn(monkeypatch, emulator)
    inbox = _inbox(tmp_path, 3)
    real_open = SourceFile.open

    def guarded_open(self):
        if self.name == "doc_01.pdf":
            raise PermissionError(13, "Permission denied", self.location)
        return real_open(self)

    monkeypatch.setattr(SourceFile, "open", guarded_open)
    dag = parse_dag(
        MinerUUploadFilesOperator,
        paths=str(inbox),
        deferrable=False,
        fail_on_file_error=False,
        output_path=str(tmp_path / "out"),
        incremental=False,  # identical copies: the ledger would pay for one; this test is about resuming
    )
    states, output = run(dag, capfd, caplog)
    assert states == {"parse": "success"}, output[-3000:]
    value = xcom(dag, "parse")
    assert [r["state"] for r in value["results"]] == ["done", "failed", "done"]
    assert "Permission denied" in value["results"][1]["err_msg"]
    names = ["doc_00.pdf", "doc_01.pdf", "doc_02.pdf"]
    assert not ledger.account(request, names, accounted_documents(value, output, names))


# -- inputs moved after deferral -------------------------------------------------------------------


def test_inputs_moved_after_deferral_still_succeed(
    mineru_emulator_factory, monkeypatch, capfd, caplog, tmp_path, ledger, request
):
    """An "archive after upload" inbox: the files are moved away while the task is deferred."""
    emu = mineru_emulator_factory(token=TEST_TOKEN, timings=Timings(pending=1.0, per_page=0.01, converting=0.01))
    set_conn(monkeypatch, emu)
    inbox = _inbox(tmp_path, 3)
    archive = tmp_path / "archive"

    def archive_after_upload():
        wait_until(lambda: len(emu.requests_to("get_batch")) >= 2, timeout=60)  # the trigger polls: deferred
        shutil.move(str(inbox), str(archive))

    mover = threading.Thread(target=archive_after_upload, daemon=True)
    mover.start()
    dag = parse_dag(
        MinerUUploadFilesOperator,
        paths=str(inbox / "*.pdf"),
        deferrable=True,
        output_path=str(tmp_path / "out"),
    )
    states, output = run(dag, capfd, caplog)
    mover.join(10)
    assert archive.exists() and not inbox.exists()
    assert states == {"parse": "success"}, output[-3000:]
    value = xcom(dag, "parse")
    names = ["doc_00.pdf", "doc_01.pdf", "doc_02.pdf"]
    assert [r["state"] for r in value["results"]] == ["done"] * 3
    assert not ledger.account(request, names, accounted_documents(value, output, names))


def test_resumed_task_takes_its_inputs_from_the_deferral_not_from_the_paths(
    mineru_emulator_factory, monkeypatch, tmp_path
):
    """
    The operator defers with no defer kwargs (``dag.test()`` on Airflow 3.3.2 drops them): the
    trigger carries each input's source, the files are moved away, and ``execute_complete`` gets
    everything from the event alone, resolving nothing.
    """
    import asyncio
    from types import SimpleNamespace

    from airflow.providers.common.compat.sdk import TaskDeferred

    # Pending long enough that the check before deferring never finds the batch done already.
    emulator = mineru_emulator_factory(token=TEST_TOKEN, timings=Timings(pending=1.0, per_page=0.01, converting=0.01))
    set_conn(monkeypatch, emulator)
    inbox = _inbox(tmp_path, 2)
    operator = MinerUUploadFilesOperator(
        task_id="parse",
        paths=str(inbox / "*.pdf"),
        deferrable=True,
        poll_interval=0.05,
        min_defer_seconds=0,
        output_path=str(tmp_path / "out"),
        incremental=False,  # identical copies: the ledger would pay for one; this test is about resuming
    )
    pushed: dict = {}
    ti = SimpleNamespace(
        dag_id="handover",
        run_id="run_1",
        task_id="parse",
        map_index=-1,
        try_number=1,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )
    context = {"ti": ti, "run_id": "run_1"}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert not deferred.value.kwargs
    sources = [str(inbox / "doc_00.pdf"), str(inbox / "doc_01.pdf")]
    assert deferred.value.trigger.serialize()[1]["sources"] == sources

    async def first_event():
        async for event in deferred.value.trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    shutil.move(str(inbox), str(tmp_path / "archive"))
    resumed = MinerUUploadFilesOperator(
        task_id="parse", paths=str(inbox / "*.pdf"), output_path=str(tmp_path / "out"), incremental=False
    )
    assert event["sources"] == sources
    value = resumed.execute_complete(context, event=event)
    assert [r["state"] for r in value["results"]] == ["done", "done"]
    assert [r["output_path"].rsplit("/", 1)[-1] for r in value["results"]] == ["doc_00", "doc_01"]
