"""
What a DAG author writes as paths, resolved to the files to upload (checked before any request).

Object storage sources are tested against moto S3 in ``tests/objectstorage``; symbolic links and
files changing before their upload in ``tests/hardening/test_sources.py``.
"""

from __future__ import annotations

import pytest

from airflow_provider_mineru.connection.config import MinerULimits
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.inputs.sources import SourceFile, resolve_sources

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


def test_a_folders_skipped_files_are_logged_with_their_count_and_names(folder, caplog):
    with caplog.at_level("WARNING", logger="airflow_provider_mineru.inputs.sources"):
        resolve_sources(str(folder), MinerULimits())
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert f"skipped 2 of 4 files in {folder}" in record.getMessage()
    assert "notes.txt" in record.getMessage() and ".hidden.pdf" in record.getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="airflow_provider_mineru.inputs.sources"):
        resolve_sources(f"{folder}/**/*", MinerULimits())  # a glob's matches too
    assert "skipped 1 of 3 files" in caplog.text and "notes.txt" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="airflow_provider_mineru.inputs.sources"):
        resolve_sources(str(folder / "a.pdf"), MinerULimits())
    assert caplog.records == []  # nothing skipped, nothing said


def test_a_long_list_of_skipped_names_is_cut(tmp_path, caplog):
    (tmp_path / "a.pdf").write_bytes(PDF)
    for index in range(25):
        (tmp_path / f"note{index:02d}.txt").write_text("x")
    with caplog.at_level("WARNING", logger="airflow_provider_mineru.inputs.sources"):
        resolve_sources(str(tmp_path), MinerULimits())
    message = caplog.records[0].getMessage()
    assert "skipped 25 of 26 files" in message
    assert "note19.txt and 5 more" in message and "note20.txt" not in message


def test_a_pdf_that_is_not_a_pdf_is_refused_naming_the_file(folder):
    (folder / "report.pdf").write_bytes(b"<!DOCTYPE html><html><body>Session expired</body></html>")
    with pytest.raises(MinerUValidationError) as raised:
        resolve_sources([str(folder / "a.pdf"), str(folder)], MinerULimits())
    message = str(raised.value)
    assert "paths[1]" in message and "report.pdf" in message
    assert "must be a PDF" in message and "looks like HTML" in message
    (folder / "report.pdf").unlink()
    (folder / "photo.jpg").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    with pytest.raises(MinerUValidationError, match=r"photo\.jpg.*must be a JPEG image.*a PNG image"):
        resolve_sources(str(folder / "photo.jpg"), MinerULimits())


def test_only_the_first_bytes_are_read(folder, monkeypatch):
    import builtins

    reads: list[int] = []
    real_open = builtins.open

    class Spy:
        def __init__(self, handle):
            self.handle = handle

        def read(self, size=-1):
            reads.append(size)
            return self.handle.read(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def spying_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return Spy(handle) if str(path).endswith("b.png") else handle

    monkeypatch.setattr(builtins, "open", spying_open)
    (folder / "deep" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 1_000_000)
    resolve_sources(str(folder / "deep"), MinerULimits())
    assert reads == [1024]


def test_object_storage_heads_are_one_ranged_read():
    from airflow_provider_mineru.inputs.sources import _read_object_head

    class FS:
        calls: list[tuple[str, int, int]] = []

        def cat_file(self, path, start=None, end=None):
            self.calls.append((path, start, end))
            return b"%PDF-1.7\n" + b"x" * (end - start - 9)

    class Path:
        fs, path = FS(), "bucket/in/a.pdf"

        def open(self, mode):
            raise AssertionError("no whole-object read")

    assert _read_object_head(Path(), 64) == b"%PDF-1.7\n" + b"x" * 55
    assert FS.calls == [("bucket/in/a.pdf", 0, 64)]
