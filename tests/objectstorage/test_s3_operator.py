"""MinerUUploadFilesOperator with ObjectStoragePath objects (not URL strings) in real Airflow (``dag.test()``)."""

from __future__ import annotations

import uuid

import pendulum
import pytest

from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator
from airflow_provider_mineru.version_compat import ObjectStoragePath
from tests.objectstorage.conftest import INPUT_PREFIX, SAMPLE_PDFS, SAMPLES

pytestmark = pytest.mark.usefixtures("airflow_db")


def run(dag) -> tuple[str, dict]:
    """Run with ``dag.test()``; return the task's state and its XCom."""
    from tests.conftest import register_dag

    register_dag(dag)
    dag_run = dag.test()
    ti = dag_run.get_task_instance("parse")
    return str(ti.state).rsplit(".", 1)[-1].lower(), ti.xcom_pull(task_ids="parse")


def make_dag(**operator_kwargs):
    from airflow.providers.common.compat.sdk import DAG

    with DAG(
        dag_id=f"test_s3_{uuid.uuid4().hex[:12]}",
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        MinerUUploadFilesOperator(task_id="parse", deferrable=False, poll_interval=0.1, **operator_kwargs)
    return dag


def test_s3_path_object_in_file_scheme_path_object_out(mineru_conn, bucket, tmp_path):
    out = tmp_path / "out"
    dag = make_dag(paths=ObjectStoragePath(bucket.url(INPUT_PREFIX)), output_path=ObjectStoragePath(f"file://{out}"))
    state, result = run(dag)
    assert state == "success"
    assert [entry["file_name"] for entry in result["results"]] == [pdf.name for pdf in SAMPLE_PDFS]
    assert "Northwind Traders Annual Report 2024" in (out / "annual_report" / "full.md").read_text()
    found = sorted(p.name for p in out.iterdir() if p.name != ".mineru-ledger")
    assert found == [".mineru-manifests"] + [pdf.stem for pdf in SAMPLE_PDFS]
    assert len(mineru_conn.requests_to("upload")) == len(SAMPLE_PDFS)


def test_file_scheme_path_objects_in_s3_path_object_out(mineru_conn, bucket, aws_conn):
    paths = [ObjectStoragePath(f"file://{SAMPLES / name}") for name in ("invoice.pdf", "scanned_receipt.png")]
    output = ObjectStoragePath(f"s3://{bucket.name}/from-local/", conn_id=aws_conn)
    state, result = run(make_dag(paths=paths, output_path=output))
    assert state == "success"
    assert [entry["output_path"] for entry in result["results"]] == [
        f"s3://{aws_conn}@{bucket.name}/from-local/{stem}" for stem in ("invoice", "scanned_receipt")
    ]
    assert "Invoice INV-2024-0042" in bucket.read("from-local/invoice/full.md").decode()
    images = bucket.keys("from-local/scanned_receipt/images/")
    assert len(images) == 1 and bucket.read(images[0]) == (SAMPLES / "scanned_receipt.png").read_bytes()


def test_s3_prefix_to_s3_second_run_reuses(mineru_conn, bucket, aws_conn):
    """The ledger in the bucket: the second run over an unchanged S3 prefix uploads nothing."""
    paths = ObjectStoragePath(bucket.url(INPUT_PREFIX))
    output = ObjectStoragePath(f"s3://{bucket.name}/incremental/", conn_id=aws_conn)
    state, first = run(make_dag(paths=paths, output_path=output))
    assert state == "success" and first["counts"]["parsed"] == len(SAMPLE_PDFS)
    state, second = run(make_dag(paths=paths, output_path=output))
    assert state == "success"
    assert second["counts"]["reused"] == len(SAMPLE_PDFS) and second["counts"]["parsed"] == 0
    assert len(mineru_conn.requests_to("upload")) == len(SAMPLE_PDFS)
    assert all(row["reused"] and row["output_path"].startswith(f"s3://{aws_conn}@") for row in second["results"])
    assert bucket.keys("incremental/.mineru-ledger/entries/")
