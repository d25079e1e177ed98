"""Result landing on object storage: a re-run leaves no file of the older result, the marker comes last."""

from __future__ import annotations

import io
import zipfile

from airflow_provider_mineru.results.landing import MARKER_NAME, land_result_zip, read_marker


def _zip(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    buf.seek(0)
    return buf


def test_a_new_result_replaces_the_old_one_on_s3(bucket) -> None:
    target = bucket.url("out/doc")
    land_result_zip(_zip({"full.md": b"old", "images/stale.jpg": b"x"}), target, identity={"task_id": "a"})
    assert read_marker(target, {"task_id": "a"}) is not None
    extracted = land_result_zip(_zip({"full.md": b"new", "images/fresh.jpg": b"y"}), target, identity={"task_id": "b"})
    assert extracted.files == ("full.md", "images/fresh.jpg")
    assert bucket.keys("out/doc/") == [f"out/doc/{MARKER_NAME}", "out/doc/full.md", "out/doc/images/fresh.jpg"]
    assert bucket.read("out/doc/full.md") == b"new"
    assert read_marker(target, {"task_id": "b"}) is not None
    assert read_marker(target, {"task_id": "a"}) is None
