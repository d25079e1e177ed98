"""
Every example DAG in ``dags/`` on a real deployment (PostgreSQL, separate scheduler, triggerer,
api-server / webserver and DAG processor, LocalExecutor), triggered and watched through the REST API.

For each run: the run succeeds; from the emulator's request log, every document reached MinerU
exactly once; each deferrable MinerU task wrote a ``.trigger.<job id>.log`` (the triggerer process
ran its trigger); the Markdown on disk (or in S3) holds the sample documents' text.
"""

from __future__ import annotations

import uuid

import pytest

from tests.deployment.checks import (
    DEMO_TEXT,
    RACE_MESSAGE,
    SAMPLE_TEXT,
    endpoint_count,
    markdown_texts,
    run_and_wait,
    states,
    submitted_documents,
    task_log_dir,
    trigger_job_ids,
    trigger_logs,
    triggerer_jobs,
)
from tests.deployment.conftest import ENABLED, FIGURES
from tests.deployment.harness import AIRFLOW_3, AWS_CONN_ID, REPO, DeploymentError, wait_for

pytestmark = pytest.mark.skipif(not ENABLED, reason="deployment suite: set MINERU_DEPLOYMENT=1")

SAMPLE_FILES = ["annual_report.pdf", "invoice.pdf", "research_paper.pdf", "scanned_receipt.png"]
DEMO_URLS = [
    "https://cdn-mineru.openxlab.org.cn/demo/example.pdf",
    "https://static.openxlab.org.cn/opendatalab/pdf/demo.pdf",
]
MISSING_URL = "https://cdn-mineru.openxlab.org.cn/demo/this-document-does-not-exist.pdf"


def demo_texts() -> list[str]:
    from mineru_emulator._samples import DEMO_PDF_TEXT

    return [DEMO_PDF_TEXT[url][0][0] for url in DEMO_URLS]


def check_run(local, dag_id: str, run_id: str, record: dict) -> None:
    assert record["state"] == "success", (dag_id, states(local, dag_id, run_id), local.where_logs())


def check_deferred(local, dag_id: str, run_id: str, task_id: str, map_indexes: list[int] | None = None) -> None:
    """The task's trigger ran in a triggerer process (its job id names the trigger log file)."""
    for map_index in map_indexes or [-1]:
        logs = trigger_logs(local, dag_id, run_id, task_id, map_index)
        assert logs, f"{dag_id}.{task_id}[{map_index}] never deferred (no trigger log). {local.where_logs()}"
        text = "".join(p.read_text(errors="replace") for p in logs)
        assert "Trigger fired event" in text or "trigger completed" in text.lower() or "fired" in text, logs
        if AIRFLOW_3:
            jobs = triggerer_jobs(local)
            for job_id in trigger_job_ids(logs):
                assert job_id in jobs and jobs[job_id]["hostname"].startswith("triggerer"), (job_id, jobs)


def no_race(local) -> None:
    assert RACE_MESSAGE not in local.processes["scheduler"].log.read_text(errors="replace"), (
        "the scheduler failed a resumed task (apache/airflow#66374): " + local.where_logs()
    )


@pytest.fixture
def emulator_log(local):
    """The emulator's request log starts empty for each test; call it for the log so far."""
    local.emulator("DELETE", "requests")
    return local.requests_log


def test_parse_files(local, emulator_log):
    output = local.output / f"parse-files-{uuid.uuid4().hex[:6]}"
    run_id, record, seconds = run_and_wait(local, "mineru_parse_files", {"output_path": str(output)})
    FIGURES["local.mineru_parse_files_run_s"] = seconds
    check_run(local, "mineru_parse_files", run_id, record)
    log = emulator_log()
    assert submitted_documents(log) == dict.fromkeys(SAMPLE_FILES, 1)
    assert endpoint_count(log, "upload") == len(SAMPLE_FILES)
    check_deferred(local, "mineru_parse_files", run_id, "parse_documents")
    texts = markdown_texts(output)
    for stem, text in SAMPLE_TEXT.items():
        assert text in texts[stem]
    assert set(texts) == {"annual_report", "invoice", "research_paper", "scanned_receipt"}
    no_race(local)


def test_incremental_second_run_pays_nothing(local, emulator_log):
    """``mineru_incremental`` twice through the REST API, same output_path: the second run sends nothing."""
    output = local.output / f"incremental-{uuid.uuid4().hex[:6]}"
    conf = {"output_path": str(output)}
    run_id, record, seconds = run_and_wait(local, "mineru_incremental", conf)
    FIGURES["local.mineru_incremental_first_run_s"] = seconds
    check_run(local, "mineru_incremental", run_id, record)
    assert submitted_documents(emulator_log()) == dict.fromkeys(SAMPLE_FILES, 1)
    check_deferred(local, "mineru_incremental", run_id, "parse_new_documents")
    local.emulator("DELETE", "requests")
    run_id, record, seconds = run_and_wait(local, "mineru_incremental", conf)
    FIGURES["local.mineru_incremental_second_run_s"] = seconds
    check_run(local, "mineru_incremental", run_id, record)
    log = emulator_log()
    assert submitted_documents(log) == {}
    assert endpoint_count(log, "upload", ok_only=False) == 0 and endpoint_count(log, "file_urls", ok_only=False) == 0
    assert local.api.xcom("mineru_incremental", run_id, "report") == {
        "parsed": 0,
        "reused": 4,
        "failed": 0,
        "skipped_attempts": 0,
        "tombstoned": 0,
    }
    texts = markdown_texts(output)
    assert set(texts) == {"annual_report", "invoice", "research_paper", "scanned_receipt"}
    no_race(local)


@pytest.mark.timeout(900)  # the emulator parses the 600-page slice at the suite's 0.25 s a page
def test_long_document(local, emulator_log):
    """A 700-page PDF (over the 600-page limit): two slices in one batch, one stitched folder, one row.

    The emulator parses 600 pages at 0.25 s each here: the longest example run of the suite (~3 min).
    """
    import json

    output = local.output / f"long-{uuid.uuid4().hex[:6]}"
    conf = {"output_path": str(output), "pages": 700}
    run_id, record, seconds = run_and_wait(local, "mineru_long_document", conf, timeout=900)
    FIGURES["local.mineru_long_document_run_s"] = seconds
    check_run(local, "mineru_long_document", run_id, record)
    log = emulator_log()
    slices = ["long_manual.pages-1-600.pdf", "long_manual.pages-601-700.pdf"]
    assert submitted_documents(log) == dict.fromkeys(slices, 1)
    check_deferred(local, "mineru_long_document", run_id, "parse_long_document")
    folder = output / "long" / "long_manual"
    pages = json.loads((folder / "layout.json").read_text())["pdf_info"]
    assert [page["page_idx"] for page in pages] == list(range(700))
    summary = local.api.xcom("mineru_long_document", run_id, "check_stitched")
    assert summary == {"file": "long_manual.pdf", "pages": 700, "slices": ["1-600", "601-700"]}
    no_race(local)


def test_parse_urls(local, emulator_log):
    run_id, record, seconds = run_and_wait(local, "mineru_parse_urls")
    FIGURES["local.mineru_parse_urls_run_s"] = seconds
    check_run(local, "mineru_parse_urls", run_id, record)
    assert submitted_documents(emulator_log()) == {**dict.fromkeys(DEMO_URLS, 1), MISSING_URL: 1}
    check_deferred(local, "mineru_parse_urls", run_id, "parse_urls")
    assert local.api.xcom("mineru_parse_urls", run_id, "report") == {"done": 2, "failed": 1}
    texts = markdown_texts(local.output / "examples" / "urls")
    assert any(DEMO_TEXT in t for t in texts.values()), texts.keys()


def test_mapped(local, emulator_log):
    run_id, record, seconds = run_and_wait(local, "mineru_mapped")
    FIGURES["local.mineru_mapped_run_s"] = seconds
    check_run(local, "mineru_mapped", run_id, record)
    assert submitted_documents(emulator_log()) == dict.fromkeys(DEMO_URLS, 1)
    check_deferred(local, "mineru_mapped", run_id, "parse", [0, 1])
    texts = " ".join(markdown_texts(local.output / "examples" / "mapped").values())
    for text in demo_texts():
        assert text in texts


def test_task_then_sensor(local, emulator_log):
    run_id, record, seconds = run_and_wait(local, "mineru_task_then_sensor")
    FIGURES["local.mineru_task_then_sensor_run_s"] = seconds
    check_run(local, "mineru_task_then_sensor", run_id, record)
    assert submitted_documents(emulator_log()) == {DEMO_URLS[0]: 1}
    if trigger_logs(local, "mineru_task_then_sensor", run_id, "wait"):
        check_deferred(local, "mineru_task_then_sensor", run_id, "wait")
    else:  # the document was done before the sensor started: its first poke succeeds, nothing to defer
        first_try = (task_log_dir(local, "mineru_task_then_sensor", run_id, "wait") / "attempt=1.log").read_text()
        assert ": done" in first_try, local.where_logs()
    texts = " ".join(markdown_texts(local.output / "examples" / "sensor").values())
    assert demo_texts()[0] in texts


def test_s3_to_s3(local, emulator_log):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=local.moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    bucket = f"mineru-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    pdfs = sorted((REPO / "dags" / "sample_documents").glob("*.pdf"))
    for pdf in pdfs:
        client.upload_file(str(pdf), bucket, f"incoming/{pdf.name}")
    conf = {"bucket": bucket, "input_prefix": "incoming/", "output_prefix": "markdown/", "aws_conn_id": AWS_CONN_ID}
    run_id, record, seconds = run_and_wait(local, "mineru_s3_to_s3", conf)
    FIGURES["local.mineru_s3_to_s3_run_s"] = seconds
    check_run(local, "mineru_s3_to_s3", run_id, record)
    assert submitted_documents(emulator_log()) == {pdf.name: 1 for pdf in pdfs}
    check_deferred(local, "mineru_s3_to_s3", run_id, "parse_s3_documents")
    for stem, text in SAMPLE_TEXT.items():
        body = client.get_object(Bucket=bucket, Key=f"markdown/{stem}/full.md")["Body"].read().decode()
        assert text in body


def test_assets(local, emulator_log):
    before = {r["dag_run_id"] for r in local.api.runs("mineru_asset_consumer")}
    run_id, record, _ = run_and_wait(local, "mineru_asset_producer")
    check_run(local, "mineru_asset_producer", run_id, record)
    assert submitted_documents(emulator_log()) == dict.fromkeys(SAMPLE_FILES, 1)
    check_deferred(local, "mineru_asset_producer", run_id, "parse_documents")

    def consumer_done() -> dict | None:
        runs = [r for r in local.api.runs("mineru_asset_consumer") if r["dag_run_id"] not in before]
        return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None

    consumer = wait_for(consumer_done, timeout=120, interval=1, what="mineru_asset_consumer", logs=local.where_logs())
    assert consumer["state"] == "success", local.where_logs()
    summaries = local.api.xcom("mineru_asset_consumer", consumer["dag_run_id"], "use_new_markdown")
    assert summaries[0]["done"] == len(SAMPLE_FILES), summaries


@pytest.mark.skipif(not AIRFLOW_3, reason="callbacks are an api-server plugin: Airflow 3 only")
def test_callbacks(local, emulator_log):
    before = {r["dag_run_id"] for r in local.api.runs("mineru_callback_download")}
    local.emulator("DELETE", "requests")
    run_id, record, _ = run_and_wait(local, "mineru_callback_submit")
    check_run(local, "mineru_callback_submit", run_id, record)
    assert submitted_documents(emulator_log()) == dict.fromkeys(DEMO_URLS, 1)
    # MinerU posts each task's end to the api-server; the plugin verifies it and records an asset event.
    delivered = wait_for(
        lambda: (lambda c: c if len(c) >= 2 else None)(
            [c for c in local.emulator("GET", "callbacks") if c["status"] == 200]
        ),
        timeout=120,
        what="two accepted callbacks",
        logs=local.where_logs(),
    )
    assert len({c["task_id"] for c in delivered}) == 2

    def downloads_done() -> list | None:
        runs = [r for r in local.api.runs("mineru_callback_download") if r["dag_run_id"] not in before]
        finished = [r for r in runs if r["state"] in ("success", "failed")]
        texts = markdown_texts(local.output / "examples" / "callbacks")
        return runs if runs and len(finished) == len(runs) and len(texts) >= 2 else None

    try:
        runs = wait_for(downloads_done, timeout=120, interval=2, what="mineru_callback_download runs")
    except DeploymentError:
        runs = [r for r in local.api.runs("mineru_callback_download") if r["dag_run_id"] not in before]
        landed = markdown_texts(local.output / "examples" / "callbacks")
        if len(runs) == 1 and runs[0]["state"] == "success" and len(landed) == 1:
            pytest.xfail(
                "callbacks recorded milliseconds apart started one mineru_callback_download run whose "
                "triggering_asset_events held only the first event; the second event started no run "
                "(Airflow's asset queue row was already there), so 1 of 2 documents was downloaded. "
                + local.where_logs()
            )
        raise
    assert all(r["state"] == "success" for r in runs), local.where_logs()
    texts = " ".join(markdown_texts(local.output / "examples" / "callbacks").values())
    for text in demo_texts():
        assert text in texts


def test_token_never_in_logs(local):
    """
    The MinerU token is in the connection of every Airflow process, and in none of their logs (task,
    trigger, scheduler, api-server...). The emulator, which is MinerU here, prints its own token when it starts.
    """
    # The emulators (MinerU here, both flavors) print their own token when they start.
    assert [p for p in local.logs_mention(local.token) if p.name not in ("emulator.log", "emulator-v1.log")] == []


def test_triggerer_event_loop_never_blocked(local):
    """
    Airflow logs "Triggerer's async thread was blocked for X seconds" above 0.2 s. On a machine shared
    with other jobs the loop's thread can starve for ~0.25 s without any trigger at fault, so the bar
    here is 0.5 s; the unit suite measures the 50 ms limit per trigger (tests/triggers/test_event_loop.py).
    """
    import re

    blocked = []
    for name, process in local.processes.items():
        if name.startswith("triggerer"):
            text = process.log.read_text(errors="replace")
            blocked += [float(s) for s in re.findall(r"async thread was blocked for ([0-9.]+) seconds", text)]
    started = len(list((local.home / "logs").rglob("attempt=*.log.trigger.*.log")))
    if not started:
        pytest.skip("no trigger ran in this session (run the example tests first)")
    FIGURES["local.triggerer_loop_blocked_s"] = sorted(blocked)
    assert max(blocked, default=0.0) < 0.5, (blocked, local.where_logs())
