"""
Faults the way production has them, on the LocalExecutor deployment (Airflow 3 only; the suite's own
DAGs in ``tests/deployment/dags`` run with ``retries=1``):

- ``kill -9`` of the triggerer while tasks are deferred, a second triggerer started: the runs
  succeed, each document submitted once, and the second triggerer ran the triggers;
- ``kill -9`` of the task's process during a blocking wait and during an upload: the retry resumes,
  no second submit and no second upload of what already reached MinerU;
- the api-server restarted mid-run;
- the Airflow race apache/airflow#66374 / #71580 / #72716: triggers that fire within seconds of
  deferral must not make the scheduler fail the resumed task.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.deployment.checks import (
    RACE_MESSAGE,
    SAMPLE_TEXT,
    endpoint_count,
    markdown_texts,
    states,
    submitted_documents,
    task_log_dir,
    trigger_job_ids,
    trigger_logs,
    triggerer_jobs,
    wait_task_state,
)
from tests.deployment.conftest import ENABLED, FIGURES
from tests.deployment.harness import AIRFLOW_3, REPO, Deployment, wait_for

pytestmark = [
    pytest.mark.skipif(not ENABLED, reason="deployment suite: set MINERU_DEPLOYMENT=1"),
    pytest.mark.skipif(not AIRFLOW_3, reason="the suite's fault DAGs are an Airflow 3 DAG bundle"),
]

SAMPLES = REPO / "dags" / "sample_documents"
#: Pages of the long document: with the emulator's 0.25 s per page it stays in ``running`` ~30 s.
LONG_PAGES = 120


def make_long_pdf(target: Path, pages: int) -> Path:
    """A PDF of ``pages`` pages (the annual report's pages repeated); the emulator takes 0.25 s per page."""
    from pypdf import PdfReader, PdfWriter

    if not target.exists():
        writer = PdfWriter()
        source = PdfReader(SAMPLES / "annual_report.pdf").pages
        while len(writer.pages) < pages:
            for page in source:
                writer.add_page(page)
        with target.open("wb") as out:
            writer.write(out)
    return target


@pytest.fixture(scope="module")
def long_pdf(local) -> Path:
    """A 120-page PDF that keeps MinerU busy for ~30 s."""
    return make_long_pdf(local.inputs / "long_report.pdf", LONG_PAGES)


@pytest.fixture
def fresh_log(local):
    local.emulator("DELETE", "requests")
    local.emulator("DELETE", "faults")
    yield local.requests_log
    local.emulator("DELETE", "faults")


def task_pid(local: Deployment, dag_id: str, run_id: str, task_id: str) -> int:
    """The PID Airflow recorded for the running task, checked to descend from the scheduler the harness started."""
    ti = wait_for(
        lambda: next(
            (t for t in local.api.task_instances(dag_id, run_id) if t["task_id"] == task_id and t.get("pid")), None
        ),
        timeout=60,
        what=f"the pid of {dag_id}.{task_id}",
    )
    pid = int(ti["pid"])
    scheduler = local.processes["scheduler"].pid
    current = pid
    for _ in range(10):  # walk up the parents: scheduler -> executor worker -> supervisor -> task
        if current == scheduler:
            return pid
        stat = Path(f"/proc/{current}/stat").read_text()
        current = int(stat.rsplit(")", 1)[1].split()[1])
        if current <= 1:
            break
    raise AssertionError(f"pid {pid} of {dag_id}.{task_id} is not a descendant of the scheduler {scheduler}")


def upload_names(log: list[dict]) -> Counter:
    """Completed uploads (HTTP 200 with a body) per file extension."""
    return Counter(
        Path(r["path"].split("?")[0]).suffix
        for r in log
        if r["endpoint"] == "upload" and r["status"] == 200 and r["body_size"]
    )


def test_triggerer_killed_while_deferred(local, fresh_log, long_pdf):
    """kill -9 of the triggerer while two tasks are deferred; a second triggerer adopts their triggers."""
    out = local.output / f"triggerer-kill-{uuid.uuid4().hex[:6]}"
    upload_run = local.api.trigger(
        "mineru_deploy_upload_deferrable", {"paths": str(long_pdf), "output_path": f"{out}/upload"}
    )
    url_run = local.api.trigger(
        "mineru_deploy_url", {"url": f"{local.emulator_url}/samples/research_paper.pdf", "output_path": f"{out}/url"}
    )
    wait_task_state(local, "mineru_deploy_upload_deferrable", upload_run, "parse", {"deferred"}, timeout=120)
    first = local.processes["triggerer"]
    jobs_before = set(triggerer_jobs(local))
    first.kill9()
    killed_at = time.monotonic()
    second = local.start_triggerer()
    try:
        # The second triggerer's job picks the orphaned triggers up once the first one's heartbeat is stale.
        def adopted() -> set[int] | None:
            new = set(triggerer_jobs(local)) - jobs_before
            ids = trigger_job_ids(trigger_logs(local, "mineru_deploy_upload_deferrable", upload_run, "parse"))
            return (ids & new) or None

        wait_for(
            adopted, timeout=120, interval=0.5, what="the second triggerer to run the trigger", logs=local.where_logs()
        )
        FIGURES["faults.triggerer_adoption_after_kill9_s"] = round(time.monotonic() - killed_at, 1)
        for dag_id, run_id in (("mineru_deploy_upload_deferrable", upload_run), ("mineru_deploy_url", url_run)):
            record = local.api.wait_run(dag_id, run_id, timeout=240, logs=local.where_logs())
            assert record["state"] == "success", (dag_id, states(local, dag_id, run_id), local.where_logs())
        FIGURES["faults.triggerer_kill9_run_s"] = round(time.monotonic() - killed_at, 1)
        counts = submitted_documents(fresh_log())
        assert counts == {long_pdf.name: 1, f"{local.emulator_url}/samples/research_paper.pdf": 1}, counts
        assert "Northwind Traders" in markdown_texts(out / "upload")["long_report"]
        assert SAMPLE_TEXT["research_paper"] in " ".join(markdown_texts(out / "url").values())
    finally:
        # Keep one triggerer named "triggerer" for the next tests.
        local.processes["triggerer"] = second


def test_task_killed_during_blocking_wait(local, fresh_log, long_pdf):
    """kill -9 of the task process while it polls in its worker slot; the retry resumes the batch."""
    dag_id = "mineru_deploy_upload_blocking"
    out = local.output / f"blocking-kill-{uuid.uuid4().hex[:6]}"
    run_id = local.api.trigger(dag_id, {"paths": str(long_pdf), "output_path": str(out)})
    wait_for(lambda: endpoint_count(fresh_log(), "get_batch") >= 2, timeout=120, what="the blocking wait to poll")
    pid = task_pid(local, dag_id, run_id, "parse")
    os.kill(pid, 9)
    killed_at = time.monotonic()
    record = local.api.wait_run(dag_id, run_id, timeout=240, logs=local.where_logs())
    FIGURES["faults.blocking_wait_kill9_to_success_s"] = round(time.monotonic() - killed_at, 1)
    assert record["state"] == "success", (states(local, dag_id, run_id), local.where_logs())
    log = fresh_log()
    assert submitted_documents(log) == {long_pdf.name: 1}
    assert endpoint_count(log, "upload") == 1
    tries = local.api.tries(dag_id, run_id, "parse")
    assert sorted(t["try_number"] for t in tries) == [1, 2], tries
    second = (task_log_dir(local, dag_id, run_id, "parse") / "attempt=2.log").read_text(errors="replace")
    assert "Resuming" in second, second[-2000:]
    assert "Northwind Traders" in markdown_texts(out)["long_report"]


def test_task_killed_during_upload(local, fresh_log):
    """kill -9 of the task process while one file is still uploading; the retry uploads only what is missing."""
    dag_id = "mineru_deploy_upload_deferrable"
    out = local.output / f"upload-kill-{uuid.uuid4().hex[:6]}"
    # The PNG's PUT hangs 20 s (the PDFs' go through): the task is killed in the middle of uploading.
    local.emulator("POST", "faults", {"endpoint": "upload", "match": ".png", "delay": 20, "times": 1})
    run_id = local.api.trigger(dag_id, {"paths": str(SAMPLES), "output_path": str(out)})
    wait_for(lambda: upload_names(fresh_log())[".pdf"] >= 3, timeout=120, what="the three PDFs to be uploaded")
    pid = task_pid(local, dag_id, run_id, "parse")
    os.kill(pid, 9)
    record = local.api.wait_run(dag_id, run_id, timeout=240, logs=local.where_logs())
    log = fresh_log()
    # The retry resumes the first batch and sends only the PNG (whose PUT never completed) again.
    assert upload_names(log)[".pdf"] == 3, "a PDF that had reached MinerU was uploaded again"
    counts = submitted_documents(log)
    assert all(counts[name] == 1 for name in ("annual_report.pdf", "invoice.pdf", "research_paper.pdf")), counts
    assert counts["scanned_receipt.png"] <= 2, counts
    assert record["state"] == "success", (states(local, dag_id, run_id), local.where_logs())
    texts = markdown_texts(out)
    for stem, text in SAMPLE_TEXT.items():
        assert text in texts[stem]


def test_api_server_restarted_mid_run(local, fresh_log):
    """
    The api-server (REST and execution API) goes away and comes back while a task is deferred.

    The document takes ~2 minutes (480 pages), longer than the restart: a task cannot start while the
    execution API is down (Airflow fails the try), so the trigger must fire after it is back.
    """
    dag_id = "mineru_deploy_upload_deferrable"
    very_long = make_long_pdf(local.inputs / "very_long_report.pdf", 480)
    out = local.output / f"api-restart-{uuid.uuid4().hex[:6]}"
    run_id = local.api.trigger(dag_id, {"paths": str(very_long), "output_path": str(out)})
    wait_task_state(local, dag_id, run_id, "parse", {"deferred"}, timeout=120)
    stopped_at = time.monotonic()
    local.processes["api-server"].stop()
    FIGURES["faults.api_server_stop_s"] = round(time.monotonic() - stopped_at, 1)
    time.sleep(3)
    restarted_at = time.monotonic()
    local.start_api()
    FIGURES["faults.api_server_start_s"] = round(time.monotonic() - restarted_at, 1)
    assert local.api.task_instances(dag_id, run_id)[0]["state"] == "deferred", local.where_logs()
    record = local.api.wait_run(dag_id, run_id, timeout=300, logs=local.where_logs())
    assert record["state"] == "success", (states(local, dag_id, run_id), local.where_logs())
    assert submitted_documents(fresh_log()) == {very_long.name: 1}
    assert "Northwind Traders" in markdown_texts(out)["very_long_report"]


def race_hits(local: Deployment, dag_id: str, since: int) -> int:
    """How often the scheduler failed a resumed ``dag_id`` task the racy way, after byte ``since`` of its log."""
    text = local.processes["scheduler"].log.read_bytes()[since:].decode(errors="replace")
    return sum(1 for line in text.splitlines() if RACE_MESSAGE in line and f"<TaskInstance: {dag_id}.parse " in line)


@pytest.fixture(scope="module")
def race_batches(local):
    """
    Six runs of each fast DAG at once (documents done ~2 s after submission, ``retries=0``): the
    guarded one with the provider's default ``min_defer_seconds``, the unguarded one with 0.
    """
    local.emulator("DELETE", "requests")
    since = local.processes["scheduler"].log.stat().st_size
    runs = {}
    for dag_id in ("mineru_deploy_fast", "mineru_deploy_fast_unguarded"):
        for i in range(6):
            conf = {"paths": str(SAMPLES / "invoice.pdf"), "output_path": str(local.output / f"{dag_id}-{i}")}
            runs[local.api.trigger(dag_id, conf)] = dag_id
    finished = {run_id: local.api.wait_run(dag_id, run_id, timeout=300) for run_id, dag_id in runs.items()}
    result = {}
    for dag_id in ("mineru_deploy_fast", "mineru_deploy_fast_unguarded"):
        failed = sum(1 for run_id, d in runs.items() if d == dag_id and finished[run_id]["state"] != "success")
        result[dag_id] = {"failed": failed, "race": race_hits(local, dag_id, since)}
    FIGURES["race.failed_runs_of_6"] = {d: r["failed"] for d, r in result.items()}
    return result, local.requests_log()


def test_default_minimum_avoids_the_early_fire_race(local, race_batches):
    """
    apache/airflow#66374, #71580, #72716: when a trigger fires within seconds of deferral, the executor's
    late "success" for the deferring try makes the scheduler fail the resumed task. With the provider's
    default ``min_defer_seconds`` no run fails, none the racy way.
    """
    result, log = race_batches
    assert result["mineru_deploy_fast"] == {"failed": 0, "race": 0}, (result, local.where_logs())
    assert submitted_documents(log) == {"invoice.pdf": 12}


@pytest.mark.xfail(strict=False, reason="timing-dependent: the race shows in some batches of six, not all")
def test_race_reproduced_without_the_minimum(local, race_batches):
    """The same runs with ``min_defer_seconds=0``: the scheduler fails resumed tasks (the Airflow race)."""
    result, _ = race_batches
    assert result["mineru_deploy_fast_unguarded"]["race"] >= 1, result
