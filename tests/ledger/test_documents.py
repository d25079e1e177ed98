"""Document ids for RAG stores are stable across runs and change with content, options and page."""

from __future__ import annotations

from airflow_provider_mineru.ledger import document_id
from tests.ledger.conftest import file_key


def test_document_ids_are_stable_and_distinct() -> None:
    key = file_key(b"a")
    assert document_id(key, 1) == document_id(file_key(b"a"), 1)
    assert len(document_id(key, 1)) == 32
    ids = {
        document_id(key, 1),
        document_id(key, 2),
        document_id(file_key(b"b"), 1),
        document_id(file_key(b"a", is_ocr=True), 1),
    }
    assert len(ids) == 4
    assert document_id(key, 1, source="/in/a.pdf") != document_id(key, 1, source="/in/copy.pdf")
