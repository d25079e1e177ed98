"""
What a DAG author writes as paths, resolved to the files to upload (checked before any request).

Object storage sources are tested against moto S3 in ``tests/objectstorage``; symbolic links and
files changing before their upload in ``tests/hardening/test_sources.py``.
"""

from __future__ import annotations

import pytest

from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.sources import SourceFile, resolve_sources
from airflow_provider_mineru.validation import MinerULimits

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 1/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    (tmp_path / "docs" / "a.pdf").write_bytes(PDF)
    (tmp_path / "docs" / "deep" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    (tmp_path / "docs" / "notes.txt").write_text("not a document")
    (tmp_path / "docs" / ".hidden.pdf").write_bytes(PDF)
    return tmp_path / "docs"


def test_a_folder_is_searched_recursively_for_supported_documents(folder):
    found = resolve_sources(str(folder), MinerULimits())
    assert sorted(s.name for s in found) == ["a.pdf", "b.png"]
    assert all(isinstance(s, SourceFile) and s.is_local and s.size > 0 for s in found)


def test_globs_file_urls_and_lists(folder):
    assert [s.name for s in resolve_sources(f"{folder}/**/*.png", MinerULimits())] == ["b.png"]
    (found,) = resolve_sources(f"file://{folder}/a.pdf", MinerULimits())
    assert found.local_path == f"{folder}/a.pdf"
    listed = resolve_sources([str(folder / "a.pdf"), str(folder / "deep")], MinerULimits())
    assert [s.name for s in listed] == ["a.pdf", "b.png"]


def test_bad_paths_are_named_with_the_rule_they_broke(folder):
    with pytest.raises(MinerUValidationError, match=r"paths\[1\]"):
        resolve_sources([str(folder / "a.pdf"), str(folder / "missing.pdf")], MinerULimits())
    with pytest.raises(MinerUValidationError, match=r"notes\.txt"):
        resolve_sources(str(folder / "notes.txt"), MinerULimits())
    with pytest.raises(MinerUValidationError, match="matches no supported document"):
        resolve_sources(f"{folder}/*.docx", MinerULimits())
