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


@pytest.mark.usefixtures("airflow_db")
def test_dags_test_emits_inputs_outputs_and_facets(mineru_conn, tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "mineru_lineage.py").write_text(DAG_FILE.replace("{samples!r}", repr(str(SAMPLES))))
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
        [sys.executable, "-m", "airflow", "dags", "test", "mineru_lineage"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert events_file.exists(), (run.stdout + run.stderr)[-4000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    by_task = {}
    for event in events:
        job = event["job"]["name"]
        by_task.setdefault((job.rsplit(".", 1)[-1], event["eventType"]), event)

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
    run_facet = complete["run"]["facets"]["mineru"]
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
