"""Per-page RAG documents from real results."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mineru.operators.mineru import MinerUDocumentsOperator, MinerUUploadFilesOperator
from airflow_provider_mineru.results.rag_documents import block_text, page_documents
from tests.helpers import SAMPLES, new_dag, run_dag, xcom


def test_page_grouping_and_text():
    blocks = [
        {"type": "text", "text": "Title", "text_level": 1, "page_idx": 0},
        {"type": "text", "text": "Body one.", "page_idx": 0},
        {"type": "table", "table_body": "<table><tr><td>1</td></tr></table>", "table_caption": ["T1"], "page_idx": 1},
        {"type": "image", "img_path": "images/x.jpg", "img_caption": [], "page_idx": 1},
    ]
    docs = page_documents(blocks, file_name="a.pdf", data_id="a", output_path="/out/a")
    assert [d["metadata"]["page_number"] for d in docs] == [1, 2]
    assert docs[0]["text"] == "# Title\n\nBody one."
    assert "<table>" in docs[1]["text"]
    assert "T1" in docs[1]["text"]
    assert docs[1]["metadata"]["block_types"] == ["image", "table"]
    assert block_text({"type": "image"}) == ""


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("limit", [100, 2])
def test_documents_operator(mineru_conn, capfd, tmp_path, limit):
    with new_dag() as dag:
        parse = MinerUUploadFilesOperator(
            task_id="parse", paths=[str(SAMPLES / "annual_report.pdf")], output_path=str(tmp_path), poll_interval=0.1
        )
        MinerUDocumentsOperator(task_id="documents", results=parse.output, max_xcom_documents=limit)
    states, _ = run_dag(dag, capfd)
    assert states == {"parse": "success", "documents": "success"}
    lines = (tmp_path / "annual_report" / "documents.jsonl").read_text().splitlines()
    pages = [json.loads(line) for line in lines]
    assert [p["metadata"]["page_number"] for p in pages] == [1, 2, 3]
    assert "Northwind Traders" in pages[0]["text"]
    assert pages[0]["metadata"]["file_name"] == "annual_report.pdf"
    value = xcom(dag, "documents")
    if limit == 100:
        assert value == pages
    else:
        assert value == {"documents_paths": [str(tmp_path / "annual_report" / "documents.jsonl")], "count": 3}
