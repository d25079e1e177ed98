"""The one rule for local disk versus object storage."""

from __future__ import annotations

import pathlib

import pytest

from airflow_provider_mineru.utils.storage_paths import (
    is_local_location,
    is_local_path,
    is_object_storage_path,
    join_relative,
    local_path_text,
    relative_key,
    safe_name,
    storage_path,
)


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("/data/a.pdf", True),
        ("docs/a.pdf", True),
        ("file:///data/a.pdf", True),
        ("C:/data/a.pdf", True),
        ("s3://bucket/a.pdf", False),
        ("memory://x/a.pdf", False),
        ("gs://b/k", False),
    ],
)
def test_locations_as_text(text, local):
    assert is_local_location(text) is local


def test_file_urls_and_home_become_local_paths():
    assert local_path_text("file:///data/a.pdf") == "/data/a.pdf"
    assert storage_path("file:///data/out") == pathlib.Path("/data/out")
    assert storage_path("~/out") == pathlib.Path.home() / "out"
    assert storage_path(None) is None
    with pytest.raises(TypeError, match="path must be"):
        storage_path(42)


def test_object_storage_urls_become_object_storage_paths():
    path = storage_path("memory://bucket/out")
    assert is_object_storage_path(path) and not is_local_path(path)
    assert storage_path(path) is path
    assert is_local_path(pathlib.Path("/x")) and not is_object_storage_path("/x")


def test_relative_keys_and_joins():
    root = storage_path("memory://bucket/out")
    assert relative_key(join_relative(root, "a/b.md"), root) == "a/b.md"
    assert relative_key(pathlib.Path("/elsewhere/x"), pathlib.Path("/out")) is None


def test_safe_names():
    assert safe_name("a b/c?.pdf") == "a_b_c_.pdf"
    assert safe_name("x" * 200, 80) == "x" * 80
