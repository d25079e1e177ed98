"""
OpenLineage: the operators' lineage methods, and what the OpenLineage provider's listener really
emits (its file transport) during an ``airflow dags test`` run against the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("airflow.providers.openlineage", reason="apache-airflow-providers-openlineage not installed")

SAMPLES = Path(__file__).resolve().parents[1] / "dags" / "sample_documents"
PRODUCER = "pkg:pypi/airflow-provider-mineru@"


@pytest.mark.parametrize(
    ("location", "namespace", "name"),
    [
        ("s3://bucket/in/a.pdf", "s3://bucket", "in/a.pdf"),
        ("gs://b/k/x.pdf", "gs://b", "k/x.pdf"),
        ("https://cdn.example:8443/demo/a.pdf?Signature=secret", "https://cdn.example:8443", "/demo/a.pdf"),
        ("/data/docs/a.pdf", "file", "/data/docs/a.pdf"),
        ("file:///data/out/a", "file", "/data/out/a"),
    ],
)
def test_dataset_names_follow_the_openlineage_naming_spec(location, namespace, name):
    from airflow_provider_mineru.lineage import dataset_for

    dataset = dataset_for(location)
    assert (dataset.namespace, dataset.name) == (namespace, name)


def test_object_storage_path_input():
    from airflow_provider_mineru.lineage import dataset_for
    from airflow_provider_mineru.version_compat import ObjectStoragePath

    dataset = dataset_for(ObjectStoragePath("s3://bucket/key/doc.pdf"))
    assert (dataset.namespace, dataset.name) == ("s3://bucket", "key/doc.pdf")


def test_on_start_needs_no_connection_and_cuts_globs():
    from airflow_provider_mineru.operators.mineru import MinerUSubmitBatchOperator, MinerUUploadFilesOperator

    upload = MinerUUploadFilesOperator(
        task_id="u", paths=["/docs/**/*.pdf", {"path": "s3://b/one.pdf", "data_id": "one"}], mineru_conn_id="nope"
    )
    lineage = upload.get_openlineage_facets_on_start()
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", "/docs"), ("s3://b", "one.pdf")]
    assert lineage.outputs == []
    urls = MinerUSubmitBatchOperator(task_id="b", urls=["https://h/a.pdf", {"url": "https://h/b.pdf?x=1"}])
    assert [d.name for d in urls.get_openlineage_facets_on_start().inputs] == ["/a.pdf", "/b.pdf"]


DAG_FILE = """
import os
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator, MinerUUploadFilesOperator

BASE = os.environ["MINERU_TEST_ROOT"]
with DAG(dag_id="mineru_lineage", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    MinerUUploadFilesOperator(
        task_id="upload",
        paths=[{samples!r} + "/invoice.pdf", {samples!r} + "/annual_report.pdf"],
        output_path=os.environ["MINERU_TEST_OUTPUT"],
        deferrable=True,
        poll_interval=0.2,
    )
    MinerUSubmitTaskOperator(
        task_id="url",
        url=BASE + "/samples/research_paper.pdf",
        data_id="paper-1",
        output_path=os.environ["MINERU_TEST_OUTPUT"],
        poll_interval=0.2,
    )
"""


def _dags_test(dag_file: str, dag_id: str, mineru_conn, tmp_path) -> tuple[subprocess.CompletedProcess, Path]:
    """``airflow dags test dag_id`` with the OpenLineage listener writing to a file: (the run, the file)."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{dag_id}.py").write_text(dag_file.replace("{samples!r}", repr(str(SAMPLES))))
    events_file = tmp_path / "openlineage.jsonl"
    output = tmp_path / "out"
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mineru-tests",
        "MINERU_TEST_ROOT": mineru_conn.root_url,
        "MINERU_TEST_OUTPUT": str(output),
    }
    env.pop("AIRFLOW__OPENLINEAGE__DISABLED", None)
    run = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id], env=env, capture_output=True, text=True, timeout=240
    )
    return run, events_file


def _by_task(events: list[dict]) -> dict[tuple[str, str], dict]:
    by_task: dict[tuple[str, str], dict] = {}
    for event in events:
        by_task.setdefault((event["job"]["name"].rsplit(".", 1)[-1], event["eventType"]), event)
    return by_task


@pytest.mark.usefixtures("airflow_db")
def test_dags_test_emits_inputs_outputs_and_facets(mineru_conn, tmp_path):
    run, events_file = _dags_test(DAG_FILE, "mineru_lineage", mineru_conn, tmp_path)
    output = tmp_path / "out"
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert events_file.exists(), (run.stdout + run.stderr)[-4000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    by_task = _by_task(events)

    start = by_task[("upload", "START")]
    assert {(d["namespace"], d["name"]) for d in start["inputs"]} == {
        ("file", str(SAMPLES / "invoice.pdf")),
        ("file", str(SAMPLES / "annual_report.pdf")),
    }
    complete = by_task[("upload", "COMPLETE")]
    outputs = {d["name"]: d for d in complete["outputs"]}
    assert set(outputs) == {str(output / "invoice"), str(output / "annual_report")}
    facet = outputs[str(output / "invoice")]["facets"]["mineru"]
    assert facet["state"] == "done" and facet["fileName"] == "invoice.pdf" and facet["batchId"]
    assert facet["pages"] == 2
    assert facet["_schemaURL"].startswith("urn:airflow-provider-mineru:openlineage:")
    assert facet["_producer"].startswith(PRODUCER)  # ours, not the OpenLineage provider's
    run_facet = complete["run"]["facets"]["mineru"]
    assert run_facet["_producer"].startswith(PRODUCER)
    assert (run_facet["kind"], run_facet["documents"], run_facet["done"], run_facet["failed"]) == ("batch", 2, 2, 0)

    url_complete = by_task[("url", "COMPLETE")]
    host = mineru_conn.root_url.split("://", 1)[1]
    assert [(d["namespace"], d["name"]) for d in url_complete["inputs"]] == [
        (f"http://{host}", "/samples/research_paper.pdf")
    ]
    (paper,) = url_complete["outputs"]
    assert paper["name"] == str(output / "paper-1")
    assert paper["facets"]["mineru"]["dataId"] == "paper-1" and paper["facets"]["mineru"]["taskId"]
    assert mineru_conn.token not in events_file.read_text()


FAILING_DAG_FILE = """
import os
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

with DAG(dag_id="mineru_lineage_failed", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    MinerUUploadFilesOperator(
        task_id="upload",
        paths={samples!r},
        output_path=os.environ["MINERU_TEST_OUTPUT"],
        poll_interval=0.2,
        retries=0,
    )
"""


@pytest.mark.usefixtures("airflow_db")
def test_a_failed_run_reports_what_was_submitted_and_one_input_per_file(mineru_conn, tmp_path):
    mineru_conn.fail_next_tasks("cannot read page 3", count=2)
    run, events_file = _dags_test(FAILING_DAG_FILE, "mineru_lineage_failed", mineru_conn, tmp_path)
    assert events_file.exists(), (run.stdout + run.stderr)[-4000:]
    by_task = _by_task([json.loads(line) for line in events_file.read_text().splitlines() if line.strip()])
    assert ("upload", "FAIL") in by_task, (run.stdout + run.stderr)[-4000:]
    failed = by_task[("upload", "FAIL")]
    files = sorted(p for p in SAMPLES.iterdir() if not p.name.startswith("."))
    assert [(d["namespace"], d["name"]) for d in failed["inputs"]] == [("file", str(p)) for p in files]
    facet = failed["run"]["facets"]["mineru"]
    assert facet["_producer"].startswith(PRODUCER)
    assert (facet["kind"], facet["documents"], facet["done"], facet["failed"]) == ("batch", len(files), 2, 2)
    (batch_id,) = facet["ids"]
    assert batch_id and batch_id in (run.stdout + run.stderr)
    assert [(d["namespace"], d["name"]) for d in by_task[("upload", "START")]["inputs"]] == [("file", str(SAMPLES))]


# -- unit tests of the facets ------------------------------------------------------------------------


def _outcome(states: list[str]):
    from airflow_provider_mineru.models import DocumentResult
    from airflow_provider_mineru.waiting.events import WaitOutcome

    documents = [
        DocumentResult.from_dict(
            {"file_name": f"d{i}.pdf", "state": state, "err_msg": "bad" if state == "failed" else ""}
        )
        for i, state in enumerate(states)
    ]
    return WaitOutcome.of("done", "batch", ["b-1"], [("b-1", d) for d in documents])


def test_failure_lineage_carries_the_ids_and_counts_of_what_was_submitted():
    from airflow_provider_mineru.lineage import PRODUCER, failure_lineage

    inputs = ["/in/d0.pdf", "/in/d1.pdf", "/in/d2.pdf"]
    lineage = failure_lineage(inputs, ["b-1"], _outcome(["done", "failed", "failed"]), kind="batch")
    facet = lineage.run_facets["mineru"]
    assert (facet.kind, facet.ids, facet.documents, facet.done, facet.failed) == ("batch", ["b-1"], 3, 1, 2)
    assert facet._producer == PRODUCER
    assert [d.name for d in lineage.inputs] == inputs and lineage.outputs == []
    # a trigger event's payload is read the same way
    payload = failure_lineage(inputs, ["b-1"], _outcome(["done", "failed", "done"]).to_payload(), kind="batch")
    assert (payload.run_facets["mineru"].done, payload.run_facets["mineru"].failed) == (2, 1)
    # failed while submitting (a batch made, the next refused): the ids so far, the number of inputs
    submitting = failure_lineage(inputs, ["b-1"], None, kind="batch").run_facets["mineru"]
    assert (submitting.ids, submitting.documents, submitting.done, submitting.failed) == (["b-1"], 3, 0, 0)
    # failed before anything was sent (an input refused): nothing submitted, nothing counted
    early = failure_lineage(inputs, [], None, kind="batch").run_facets["mineru"]
    assert (early.ids, early.documents) == ([], 0)


def test_the_operator_reports_its_submission_on_failure():
    from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

    operator = MinerUUploadFilesOperator(task_id="u", paths="/in/", mineru_conn_id="nope")
    before = operator.get_openlineage_facets_on_failure(None)  # failed before execute got anywhere
    assert [d.name for d in before.inputs] == ["/in"] and before.run_facets["mineru"].ids == []
    operator._lineage_ids, operator._lineage_sources = ["b-1"], ["/in/d0.pdf", "/in/d1.pdf", "/in/d2.pdf"]
    operator._lineage_event = _outcome(["done", "failed", "failed"])
    lineage = operator.get_openlineage_facets_on_failure(None)
    assert [d.name for d in lineage.inputs] == ["/in/d0.pdf", "/in/d1.pdf", "/in/d2.pdf"]
    facet = lineage.run_facets["mineru"]
    assert (facet.ids, facet.documents, facet.failed) == (["b-1"], 3, 2)


def test_datasets_are_capped_and_the_counts_are_not(monkeypatch, tmp_path):
    from airflow_provider_mineru import lineage

    monkeypatch.setattr(lineage, "MAX_DATASETS", 5)
    assert len(lineage.input_datasets([f"/in/{i}.pdf" for i in range(12)])) == 5
    value = {
        "batch_ids": ["b"],
        "results": [{"state": "done", "output_path": str(tmp_path / str(i))} for i in range(12)],
    }
    result = lineage.operator_lineage([f"/in/{i}.pdf" for i in range(12)], value, kind="batch")
    assert (len(result.inputs), len(result.outputs), result.run_facets["mineru"].documents) == (5, 5, 12)
    assert result.outputs[0].facets["mineru"]._producer == lineage.PRODUCER


def test_a_large_xcom_kept_in_jsonl_is_still_counted(tmp_path):
    import json as _json

    from airflow_provider_mineru.lineage import operator_lineage

    path = tmp_path / "mineru-results-b.jsonl"
    rows = [{"state": "done", "output_path": str(tmp_path / "a")}, {"state": "failed", "err_msg": "x"}]
    path.write_text("\n".join(_json.dumps(r) for r in rows))
    value = {"batch_ids": ["b"], "results_path": str(path), "count": 2, "done": 1, "failed": 1}
    facet = operator_lineage(["/in/a.pdf", "/in/b.pdf"], value, kind="batch").run_facets["mineru"]
    assert (facet.documents, facet.done, facet.failed) == (2, 1, 1)
