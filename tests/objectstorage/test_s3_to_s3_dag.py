"""
The example DAG ``mineru_s3_to_s3`` end to end: real Airflow (``dag.test()``), the MinerU emulator and
a real S3-compatible server (moto), both over loopback sockets; deferrable and blocking.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import load_example, run_dag, xcom
from tests.objectstorage.conftest import INPUT_PREFIX, SAMPLE_PDFS

MODES = [pytest.param(True, id="deferrable"), pytest.param(False, id="blocking")]
#: A line of each sample PDF's first page, which must come back in its Markdown.
EXPECTED_TEXT = {
    "annual_report": "Northwind Traders Annual Report 2024",
    "invoice": "Invoice INV-2024-0042",
    "research_paper": "Adaptive Batching for Document Parsing Pipelines",
}

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.mark.parametrize("deferrable", MODES)
def test_s3_to_s3(mineru_conn, bucket, aws_conn, monkeypatch, tmp_path, deferrable):
    example = load_example(
        "mineru_s3_to_s3", deferrable=deferrable, output=tmp_path / "local-output", monkeypatch=monkeypatch
    )
    dag = example.dag
    run_conf = {
        "bucket": bucket.name,
        "input_prefix": INPUT_PREFIX,
        "output_prefix": "markdown/",
        "aws_conn_id": aws_conn,
    }
    states, _ = run_dag(dag, run_conf=run_conf)
    assert states == {"parse_s3_documents": "success", "summarize": "success"}, states

    # Every PDF under incoming/ went up in one MinerU batch, streamed from S3 byte for byte.
    assert len(mineru_conn.requests_to("file_urls")) == 1
    (body,) = [r.json for r in mineru_conn.requests_to("file_urls")]
    assert [f["name"] for f in body["files"]] == [pdf.name for pdf in SAMPLE_PDFS]  # README.txt skipped
    uploads = mineru_conn.requests_to("upload")
    assert len(uploads) == len(SAMPLE_PDFS)
    assert sorted(u.body_size for u in uploads) == sorted(pdf.stat().st_size for pdf in SAMPLE_PDFS)
    assert mineru_conn.requests_to("get_task") == []  # batch polls only

    # The results landed under markdown/<stem>/ in the bucket, and nowhere on the local disk.
    keys = bucket.keys("markdown/")
    for stem, text in EXPECTED_TEXT.items():
        prefix = f"markdown/{stem}/"
        assert f"{prefix}full.md" in keys
        assert text in bucket.read(f"{prefix}full.md").decode("utf-8")
        members = {key.removeprefix(prefix) for key in keys if key.startswith(prefix)}
        assert {"layout.json", f"{stem}_content_list.json", f"{stem}_model.json", f"{stem}_origin.pdf"} <= members
        assert json.loads(bucket.read(f"{prefix}{stem}_content_list.json"))  # valid, non-empty JSON
    # the result folders, the run manifest, the ledger's own files (markdown/.mineru-ledger/)
    assert {key.split("/")[1] for key in keys} - {".mineru-ledger"} == {*EXPECTED_TEXT, ".mineru-manifests"}
    (manifest,) = [key for key in keys if key.split("/")[1] == ".mineru-manifests"]
    assert manifest.endswith(".jsonl")
    assert not (tmp_path / "local-output").exists()
    inputs = [f"{INPUT_PREFIX}{pdf.name}" for pdf in SAMPLE_PDFS] + [f"{INPUT_PREFIX}README.txt"]
    assert bucket.keys(INPUT_PREFIX) == sorted(inputs)  # the inputs are left as they were

    # The XCom points at the S3 folders, and the next task read the Markdown back from S3.
    result = xcom(dag, "parse_s3_documents")
    outputs = {entry["file_name"]: entry["output_path"] for entry in result["results"]}
    assert outputs == {f"{stem}.pdf": f"s3://{aws_conn}@{bucket.name}/markdown/{stem}" for stem in EXPECTED_TEXT}
    assert all(entry["state"] == "done" for entry in result["results"])
    summaries = {s["file"]: s["title"] for s in xcom(dag, "summarize")}
    assert summaries == {f"{stem}.pdf": text for stem, text in EXPECTED_TEXT.items()}
