"""Input folders with symbolic links, and files that change between their check and their upload."""

from __future__ import annotations

import os

import pytest

from airflow_provider_mineru.connection.config import MinerULimits
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.inputs.sources import resolve_sources
from tests.helpers.hostile_server import empty

PDF = b"%PDF-1.4\n" + b"x" * 2000


@pytest.fixture
def folders(tmp_path):
    inside = tmp_path / "in"
    outside = tmp_path / "private"
    inside.mkdir()
    outside.mkdir()
    (inside / "a.pdf").write_bytes(PDF)
    (outside / "secret.pdf").write_bytes(PDF)
    (outside / "docs").mkdir()
    (outside / "docs" / "deep.pdf").write_bytes(PDF)
    return inside, outside


def test_symlink_out_of_the_folder_is_refused_by_default(folders):
    inside, outside = folders
    os.symlink(outside / "secret.pdf", inside / "b.pdf")
    with pytest.raises(MinerUValidationError, match="follow_symlinks=True") as info:
        resolve_sources(inside, MinerULimits())
    assert "invalid paths" in str(info.value)
    assert "b.pdf" in str(info.value)


def test_symlinked_folder_out_of_the_folder_is_refused(folders):
    inside, outside = folders
    os.symlink(outside / "docs", inside / "linked")
    names = {s.name for s in resolve_sources(inside, MinerULimits(), follow_symlinks=True)}
    try:
        found = resolve_sources(inside, MinerULimits())
    except MinerUValidationError as error:
        assert "outside" in str(error)
    else:  # pathlib did not descend into the linked folder: nothing outside was taken
        assert {s.name for s in found} == {"a.pdf"}
    assert "a.pdf" in names


def test_symlink_out_of_a_glob_folder_is_refused(folders):
    inside, outside = folders
    os.symlink(outside / "secret.pdf", inside / "b.pdf")
    with pytest.raises(MinerUValidationError, match="outside"):
        resolve_sources(str(inside / "*.pdf"), MinerULimits())


def test_follow_symlinks_allows_it(folders):
    inside, outside = folders
    os.symlink(outside / "secret.pdf", inside / "b.pdf")
    found = resolve_sources(inside, MinerULimits(), follow_symlinks=True)
    assert [s.name for s in found] == ["a.pdf", "b.pdf"]


def test_symlink_inside_the_folder_and_a_named_link_are_used(folders):
    inside, outside = folders
    os.symlink(inside / "a.pdf", inside / "alias.pdf")
    assert [s.name for s in resolve_sources(inside, MinerULimits())] == ["a.pdf", "alias.pdf"]
    os.symlink(outside / "secret.pdf", inside.parent / "named.pdf")
    assert [s.name for s in resolve_sources(inside.parent / "named.pdf", MinerULimits())] == ["named.pdf"]


def test_operator_takes_follow_symlinks(folders, mineru_conn):
    from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

    inside, outside = folders
    os.symlink(outside / "secret.pdf", inside / "b.pdf")
    refused = MinerUUploadFilesOperator(task_id="up", paths=[str(inside)])
    with pytest.raises(MinerUValidationError, match=r"paths\[0\]"):
        refused.prepare()
    allowed = MinerUUploadFilesOperator(task_id="up2", paths=[str(inside)], follow_symlinks=True)
    allowed.prepare()
    assert [os.path.basename(p) for p in allowed.sources()] == ["a.pdf", "b.pdf"]
    assert mineru_conn.requests_to("file_urls") == []


# -- files that change after their check --------------------------------------------------------


@pytest.mark.parametrize("change", ["grow", "shrink", "rewrite"])
def test_file_changed_after_its_check_is_not_uploaded(hostile, hostile_conn, tmp_path, change):
    hostile.routes["/up/a.pdf"] = empty()
    path = tmp_path / "a.pdf"
    path.write_bytes(PDF)
    hook = MinerUHook(hostile_conn(max_retries=3))
    (source,) = hook.resolve_sources(path)
    if change == "grow":
        path.write_bytes(PDF + b"more")
    elif change == "shrink":
        path.write_bytes(PDF[:100])
    else:  # same size, new content
        path.write_bytes(PDF.replace(b"x", b"y"))
        os.utime(path, ns=(source.mtime_ns + 10**9, source.mtime_ns + 10**9))
    with pytest.raises(MinerUValidationError, match="changed after it was checked") as info:
        hook.upload_file(f"{hostile.origin}/up/a.pdf?Signature=s", source)
    assert "a.pdf" in str(info.value)
    assert hostile.requests == []  # nothing was sent


def test_file_growing_during_its_upload_is_not_reported_uploaded(hostile, hostile_conn, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(PDF * 1000)  # 2 MB: the PUT is still streaming when the server appends
    hook = MinerUHook(hostile_conn())
    (source,) = hook.resolve_sources(path)
    received: list[int] = []

    def append_while_receiving(h):
        received.append(len(h.rfile.read(4096)))
        with open(path, "ab") as handle:
            handle.write(b"appended while uploading")
        rest = int(h.headers["Content-Length"]) - received[0]
        while rest > 0:
            rest -= len(h.rfile.read(min(rest, 65536)))
        empty()(h)

    hostile.read_bodies = False
    hostile.routes["/up/a.pdf"] = append_while_receiving
    with pytest.raises(MinerUValidationError, match="changed while it was uploaded"):
        hook.upload_file(f"{hostile.origin}/up/a.pdf?Signature=s", source)
    assert int(hostile.requests[0].headers["Content-Length"]) == source.size  # exactly the checked size


def test_file_shrinking_during_its_upload_fails_instead_of_hanging(hostile, hostile_conn, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(PDF * 4000)  # 8 MB
    hook = MinerUHook(hostile_conn(timeout=2))
    (source,) = hook.resolve_sources(path)

    def truncate_while_receiving(h):
        h.rfile.read(4096)
        with open(path, "r+b") as handle:
            handle.truncate(1000)
        try:
            while h.rfile.read(65536):
                pass
        except OSError:
            pass

    hostile.read_bodies = False
    hostile.routes["/up/a.pdf"] = truncate_while_receiving
    with pytest.raises(MinerUValidationError, match="shorter"):
        hook.upload_file(f"{hostile.origin}/up/a.pdf?Signature=s", source)


def test_unchanged_file_uploads(hostile, hostile_conn, tmp_path):
    hostile.routes["/up/a.pdf"] = empty()
    path = tmp_path / "a.pdf"
    path.write_bytes(PDF)
    hook = MinerUHook(hostile_conn())
    (source,) = hook.resolve_sources(path)
    assert hook.upload_file(f"{hostile.origin}/up/a.pdf?Signature=s", source) == len(PDF)
    assert hostile.requests[0].body == PDF
