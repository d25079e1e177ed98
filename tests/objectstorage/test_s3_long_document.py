"""A long PDF split, and its slices' results stitched, with an ``s3://`` output_path (moto), in real Airflow."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mineru.version_compat import ObjectStoragePath
from tests.long_documents.emulated import text_pdf
from tests.objectstorage.test_s3_operator import make_dag, run

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_a_split_pdf_is_stitched_into_one_folder_on_s3(mineru_conn, bucket, aws_conn, monkeypatch, tmp_path):
    conn = json.loads(mineru_conn.connection_json())
    conn["extra"].update({"retry_backoff": 0.01, "max_retries": 3, "timeout": 5, "max_pages": 200})
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
    source = text_pdf(tmp_path / "manual.pdf", 450)
    output = ObjectStoragePath(f"s3://{bucket.name}/out/", conn_id=aws_conn)
    state, result = run(make_dag(paths=[str(source)], output_path=output))
    assert state == "success"
    (row,) = result["results"]
    assert row["output_path"] == f"s3://{aws_conn}@{bucket.name}/out/manual"
    assert [p["page_range"] for p in row["parts"]] == ["1-200", "201-400", "401-450"]
    keys = bucket.keys("out/manual/")
    assert "out/manual/.mineru-complete.json" in keys and "out/manual/full.md" in keys
    assert {k.split("/")[3] for k in keys if k.startswith("out/manual/parts/")} == {"0-1-200", "1-201-400", "2-401-450"}
    layout = json.loads(bucket.read("out/manual/layout.json"))
    assert [page["page_idx"] for page in layout["pdf_info"]] == list(range(450))
    marker = json.loads(bucket.read("out/manual/.mineru-complete.json"))
    assert "full.md" in marker["files"] and "parts/1-201-400/full.md" in marker["files"]


def test_a_long_pdf_on_s3_is_counted_with_ranged_reads_split_and_stitched(mineru_conn, bucket, monkeypatch, tmp_path):
    """An ``s3://`` input over max_pages is split like a local one (counted with ranged reads, copied, split)."""
    conn = json.loads(mineru_conn.connection_json())
    conn["extra"].update({"retry_backoff": 0.01, "max_retries": 3, "timeout": 5, "max_pages": 20})
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
    bucket.client.put_object(
        Bucket=bucket.name, Key="long/manual.pdf", Body=text_pdf(tmp_path / "m.pdf", 45).read_bytes()
    )
    state, result = run(make_dag(paths=[bucket.url("long/manual.pdf")], output_path=str(tmp_path / "out")))
    assert state == "success"
    (row,) = result["results"]
    assert [p["page_range"] for p in row["parts"]] == ["1-20", "21-40", "41-45"]
    sent = [[f["name"] for f in r.json["files"]] for r in mineru_conn.requests_to("file_urls")]
    assert sent == [["manual.pages-1-20.pdf", "manual.pages-21-40.pdf", "manual.pages-41-45.pdf"]]
    layout = json.loads((tmp_path / "out" / "manual" / "layout.json").read_text("utf-8"))
    assert [page["page_idx"] for page in layout["pdf_info"]] == list(range(45))
