"""
Scale-out on CeleryExecutor: Redis, two ``airflow celery worker`` processes with distinct hostnames,
results shared through object storage (moto's S3 server), so no worker depends on another's disk.

Ten concurrent runs of ``mineru_parse_files`` (4 documents each) and one run of
``mineru_deploy_mapped`` over 20 URLs: every run succeeds, the task instances ran on both workers,
each document reached MinerU once, and the Markdown is in the bucket.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from tests.deployment.checks import SAMPLE_TEXT, endpoint_count, states, submitted_documents, wait_task_state
from tests.deployment.conftest import ENABLED, FIGURES, finish_deployment, start_deployment
from tests.deployment.harness import AIRFLOW_3, AWS_CONN_ID, BUDGET_BUCKET, BUDGET_PAGES

pytestmark = [
    pytest.mark.skipif(not ENABLED, reason="deployment suite: set MINERU_DEPLOYMENT=1"),
    pytest.mark.skipif(not AIRFLOW_3, reason="the Celery scenario runs on the Airflow 3 line"),
]

RUNS = 10
MAPPED = 20


@pytest.fixture(scope="module")
def celery(request):
    deployment = start_deployment("celery", executor="CeleryExecutor", celery_workers=2)
    try:
        deployment.wait_dags(["mineru_parse_files", "mineru_deploy_mapped"], timeout=240)
        yield deployment
    finally:
        finish_deployment(deployment, request.session)


def test_concurrent_runs_on_two_workers(celery):
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=celery.moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    bucket = f"mineru-celery-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    base = f"s3://{AWS_CONN_ID}@{bucket}"
    celery.emulator("DELETE", "requests")
    started = time.monotonic()
    runs = [
        ("mineru_parse_files", celery.api.trigger("mineru_parse_files", {"output_path": f"{base}/run-{i:02d}"}))
        for i in range(RUNS)
    ]
    runs.append(
        (
            "mineru_deploy_mapped",
            celery.api.trigger("mineru_deploy_mapped", {"count": MAPPED, "output_path": f"{base}/mapped"}),
        )
    )
    finished = {
        run_id: celery.api.wait_run(dag_id, run_id, timeout=600, logs=celery.where_logs()) for dag_id, run_id in runs
    }
    FIGURES["celery.10_runs_plus_20_mapped_wall_s"] = round(time.monotonic() - started, 1)
    failed = {
        run_id: states(celery, dag_id, run_id) for dag_id, run_id in runs if finished[run_id]["state"] != "success"
    }
    assert not failed, (failed, celery.where_logs())

    hosts: Counter = Counter()
    for dag_id, run_id in runs:
        for ti in celery.api.task_instances(dag_id, run_id):
            hosts[ti["hostname"]] += 1
    FIGURES["celery.task_instances_per_worker"] = dict(hosts)
    assert {"worker1", "worker2"} <= set(hosts), hosts
    assert set(hosts) <= {"worker1", "worker2"}, hosts

    log = celery.requests_log()
    counts = submitted_documents(log)
    # Ten batches of the same four files, and twenty distinct URLs, each once.
    assert endpoint_count(log, "file_urls") == RUNS
    assert {name: n for name, n in counts.items() if not str(name).startswith("http")} == dict.fromkeys(
        ["annual_report.pdf", "invoice.pdf", "research_paper.pdf", "scanned_receipt.png"], RUNS
    )
    urls = [u for u in counts if str(u).startswith("http")]
    assert len(urls) == MAPPED and all(counts[u] == 1 for u in urls), counts
    FIGURES["celery.submits_per_document"] = max(counts[u] for u in urls)

    keys = {
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
    }
    for i in range(RUNS):
        for stem in SAMPLE_TEXT:
            key = f"run-{i:02d}/{stem}/full.md"
            assert key in keys, key
    for stem, text in SAMPLE_TEXT.items():
        assert text in s3.get_object(Bucket=bucket, Key=f"run-00/{stem}/full.md")["Body"].read().decode()
    mapped = sorted(k for k in keys if k.startswith("mapped/") and k.endswith("/full.md"))
    assert len(mapped) == MAPPED, mapped

    # Last, because retries=1 hides it above: no task needed its retry (the trigger clash of issue 9
    # failed every first try of the mapped single-task triggers with -60012, "polling MinerU task parse").
    retried = sorted(
        f"{dag_id}.{ti['task_id']}[{ti['map_index']}]"
        for dag_id, run_id in runs
        for ti in celery.api.task_instances(dag_id, run_id)
        if ti["try_number"] != 1
    )
    FIGURES["celery.task_instances_retried"] = len(retried)
    assert not retried, (retried, celery.where_logs())


def test_ledger_8_mapped_overlapping_inputs_pay_once_and_kill9_pays_nothing_twice(celery):
    """
    Issue 21 on CeleryExecutor, the ledger and its claims in the bucket (S3 ``If-None-Match`` creates):
    8 mapped task instances over overlapping file lists submit each distinct content once, while the
    task process of the one holding the long PDF is killed (``kill -9``) in its blocking wait; then a
    second run pays nothing, and every entry that says done has its complete folder.
    """
    import json
    import os
    from pathlib import Path

    import boto3

    from tests.deployment.harness import REPO, wait_for
    from tests.deployment.test_faults import make_long_pdf

    dag_id = "mineru_deploy_ledger_mapped"
    celery.wait_dags([dag_id], timeout=240)
    samples = REPO / "dags" / "sample_documents"
    names = ["annual_report.pdf", "research_paper.pdf", "invoice.pdf", "scanned_receipt.png"]
    long_pdf = make_long_pdf(celery.inputs / "long_report.pdf", 60)  # ~16 s at the emulator's 0.25 s per page
    # task instance 0 alone holds the long PDF; every sample is in 4 of the 8 lists
    lists = [[str(long_pdf), str(samples / names[0])]] + [
        [str(samples / names[i % 4]), str(samples / names[(i + 1) % 4])] for i in range(1, 8)
    ]
    s3 = boto3.client(
        "s3",
        endpoint_url=celery.moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    bucket = f"mineru-ledger-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    conf = {"paths": lists, "output_path": f"s3://{AWS_CONN_ID}@{bucket}/out"}
    celery.emulator("DELETE", "requests")
    started = time.monotonic()
    first = celery.api.trigger(dag_id, conf)

    def long_pdf_polled() -> bool:
        log = celery.requests_log()
        return submitted_documents(log)[long_pdf.name] == 1 and endpoint_count(log, "get_batch") >= 1

    wait_for(long_pdf_polled, timeout=300, what="the long PDF to be submitted and polled")
    ti = next(t for t in celery.api.task_instances(dag_id, first) if t["task_id"] == "parse" and t["map_index"] == 0)
    pid, workers = int(ti["pid"]), {p.pid for n, p in celery.processes.items() if n.startswith("celery-")}
    parent = pid
    for _ in range(10):  # only a descendant of a Celery worker the harness started is killed
        parent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if parent in workers or parent <= 1:
            break
    assert parent in workers, (pid, workers)
    os.kill(pid, 9)
    record = celery.api.wait_run(dag_id, first, timeout=240, logs=celery.where_logs())
    assert record["state"] == "success", (states(celery, dag_id, first), celery.where_logs())
    FIGURES["celery.ledger_mapped_first_run_with_kill9_s"] = round(time.monotonic() - started, 1)
    paid = submitted_documents(celery.requests_log())
    assert dict(paid) == dict.fromkeys([long_pdf.name, *names], 1), paid  # 8 instances, 5 contents, each once
    assert len(celery.api.tries(dag_id, first, "parse", map_index=0)) >= 2  # the killed try, then its retry

    celery.emulator("DELETE", "requests")
    second = celery.api.trigger(dag_id, conf)
    record = celery.api.wait_run(dag_id, second, timeout=240, logs=celery.where_logs())
    assert record["state"] == "success", (states(celery, dag_id, second), celery.where_logs())
    FIGURES["celery.ledger_mapped_both_runs_s"] = round(time.monotonic() - started, 1)
    log = celery.requests_log()
    assert endpoint_count(log, "file_urls") == 0 and endpoint_count(log, "upload") == 0, submitted_documents(log)
    for index, files in enumerate(lists):
        counts = celery.api.xcom(dag_id, second, "parse", map_index=index)["counts"]
        assert counts["reused"] == len(files) and counts["parsed"] == 0, (index, counts)

    keys = {
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
    }
    entries = [k for k in keys if k.startswith("out/.mineru-ledger/entries/")]
    assert len(entries) == 5, entries
    for key in entries:  # no entry says done without a complete folder
        entry = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert entry["state"] == "done", entry
        for output in entry["outputs"]:
            marker = json.loads(
                s3.get_object(Bucket=bucket, Key=f"out/{output['folder']}/.mineru-complete.json")["Body"].read()
            )
            missing = [f for f in marker["files"] if f"out/{output['folder']}/{f}" not in keys]
            assert not missing, (output, missing)


def test_a_daily_page_budget_holds_across_two_workers_and_the_triggerer(celery):
    """
    Four runs at once on one connection with ``daily_page_budget=10`` (S3 account store): three
    ``on_budget_exhausted="skip"``, one ``"defer"``, 3 distinct 2-page PDFs each (24 pages asked).
    MinerU accepts exactly 10 pages; the skip runs report the rest ``deferred_budget``; the defer run
    waits in the triggerer for the next UTC midnight.
    """
    import boto3

    from mineru_emulator._pdf import make_pdf

    boto3.client(
        "s3",
        endpoint_url=celery.moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUDGET_BUCKET)
    root = celery.output / f"budget-{uuid.uuid4().hex[:6]}"
    names: set[str] = set()
    runs = []
    celery.emulator("DELETE", "requests")
    billed_before = sum(celery.emulator("GET", "account")["pages_billed"].values())
    for i, dag_id in enumerate(["mineru_deploy_budget_skip"] * 3 + ["mineru_deploy_budget_defer"]):
        folder = root / f"in-{i}"
        folder.mkdir(parents=True)
        for j in range(3):
            name = f"budget_{i}_{j}.pdf"
            (folder / name).write_bytes(make_pdf([[f"run {i} document {j} page 1"], [f"run {i} document {j} page 2"]]))
            names.add(name)
        runs.append((dag_id, celery.api.trigger(dag_id, {"paths": str(folder), "output_path": str(root / f"out-{i}")})))
    for dag_id, run_id in runs[:3]:
        record = celery.api.wait_run(dag_id, run_id, timeout=240, logs=celery.where_logs())
        assert record["state"] == "success", (states(celery, dag_id, run_id), celery.where_logs())
    defer_dag, defer_run = runs[3]
    wait_task_state(celery, defer_dag, defer_run, "parse", {"deferred"}, timeout=120)

    accepted = {n: c for n, c in submitted_documents(celery.requests_log()).items() if n in names}
    assert all(c == 1 for c in accepted.values()), accepted
    pages_accepted = 2 * len(accepted)
    FIGURES["celery.budget_pages_accepted"] = pages_accepted
    assert pages_accepted == BUDGET_PAGES  # 24 pages asked: the budget is spent exactly, never overspent
    skipped = sum(celery.api.xcom(d, r, "parse")["counts"].get("deferred_budget", 0) for d, r in runs[:3])
    sent_by_skip_runs = sum(1 for n in accepted if not n.startswith("budget_3_"))
    assert skipped == 9 - sent_by_skip_runs
    FIGURES["celery.budget_skipped_documents"] = skipped
    hosts = {ti["hostname"] for d, r in runs for ti in celery.api.task_instances(d, r)}
    FIGURES["celery.budget_hosts"] = sorted(hosts)
    billed = sum(celery.emulator("GET", "account")["pages_billed"].values()) - billed_before
    assert billed <= BUDGET_PAGES
