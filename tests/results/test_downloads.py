"""
Result downloads: bounded concurrency, atomic landing, resume from the completion marker, a
streaming size bound, typed errors naming the document, redirects without our headers.

A small loopback file server stands in for the CDN (real sockets): it counts the downloads in
flight, records every request's headers, and can redirect, delay or send oversized bodies.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mineru.exceptions import MinerUResultError
from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.results.downloads import ResultDownloader
from airflow_provider_mineru.results.landing import MARKER_NAME, land_result_zip, read_marker
from airflow_provider_mineru.waiting.finish import finish_wait
from airflow_provider_mineru.waiting.waits import BATCH_WAIT, WaitedDocuments

log = logging.getLogger(__name__)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def result_zip(tag: str) -> bytes:
    return zip_bytes(
        {
            "full.md": f"# {tag}\n".encode(),
            f"{tag}_content_list.json": json.dumps([{"type": "text", "page_idx": 0}]).encode(),
            "images/a.jpg": b"\xff\xd8" + tag.encode() * 100,
        }
    )


class FileServer:
    """A threaded loopback HTTP server: ``/zip/<name>`` serves ``self.files[name]``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.delay = 0.0
        self.redirect_to: str | None = None
        self.endless = False
        self.declare_length: int | None = None
        self.headers_seen: list[dict[str, str]] = []
        self.gets = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.gets += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
                try:
                    self._answer()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                if server.delay:
                    time.sleep(server.delay)
                name = self.path.rsplit("/", 1)[-1].split("?", 1)[0]
                if server.redirect_to and not self.path.startswith("/final/"):
                    self.send_response(302)
                    self.send_header("Location", f"{server.redirect_to}/final/{name}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.endless:
                    self.send_response(200)
                    if server.declare_length is not None:
                        self.send_header("Content-Length", str(server.declare_length))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b"\0" * 65536
                    try:
                        for _ in range(16 * 64):  # at most 64 MiB, never more
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                    return
                body = server.files.get(name)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cdn() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def set_connection(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    conn = {
        "conn_type": "mineru",
        "host": "http://127.0.0.1:9/api/v4",  # never called: downloads only
        "password": "test-token-0123456789",
        "extra": {"retry_backoff": 0.01, "max_retries": 1, "timeout": 10, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))


def done_documents(cdn: FileServer, count: int) -> list[DocumentResult]:
    documents = []
    for i in range(count):
        name = f"doc{i:03d}"
        cdn.files[f"{name}.zip"] = result_zip(name)
        documents.append(
            DocumentResult(
                task_id=f"task-{i}",
                state=MinerUState.DONE,
                raw_state="done",
                file_name=f"{name}.pdf",
                full_zip_url=f"{cdn.url}/zip/{name}.zip?sig=abc",
            )
        )
    return documents


def finish(documents: list[DocumentResult], output: Path) -> dict[str, Any]:
    downloader = ResultDownloader(MinerUHook(), str(output), log)
    finished = finish_wait(BATCH_WAIT, WaitedDocuments(["batch-1"], documents), downloader, fail_on_file_error=True)
    assert finished.error is None
    return finished.value


# -- concurrency -----------------------------------------------------------------------------------


def test_downloads_run_sixteen_at_a_time_by_default(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch)
    cdn.delay = 1.0  # long enough for all 16 threads to reach the server on a busy machine
    documents = done_documents(cdn, 32)
    started = time.monotonic()
    value = finish(documents, tmp_path / "out")
    elapsed = time.monotonic() - started
    assert cdn.max_in_flight == 16
    assert elapsed < 32 * 1.0 / 4  # sequential would take 32 s
    outputs = [entry["output_path"] for entry in value["results"]]
    assert outputs == [str(tmp_path / "out" / f"doc{i:03d}") for i in range(32)]  # input order kept
    assert all((Path(p) / "full.md").read_text() == f"# doc{i:03d}\n" for i, p in enumerate(outputs))


def test_download_concurrency_is_a_connection_extra(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch, download_concurrency=3)
    cdn.delay = 0.5
    finish(done_documents(cdn, 9), tmp_path / "out")
    assert cdn.max_in_flight == 3


def test_download_concurrency_extra_is_validated(monkeypatch) -> None:
    from airflow_provider_mineru.exceptions import MinerUValidationError

    set_connection(monkeypatch, download_concurrency=0)
    with pytest.raises(MinerUValidationError, match="download_concurrency"):
        MinerUHook().config  # noqa: B018


# -- resume ----------------------------------------------------------------------------------------


def test_a_second_run_downloads_nothing(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch)
    documents = done_documents(cdn, 12)
    first = finish(documents, tmp_path / "out")
    assert cdn.gets == 12
    assert all((Path(e["output_path"]) / MARKER_NAME).is_file() for e in first["results"])
    second = finish(documents, tmp_path / "out")
    assert cdn.gets == 12  # nothing downloaded again
    assert second == first


def test_a_retry_after_a_partial_download_fetches_only_the_rest(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch)
    documents = done_documents(cdn, 6)
    missing = cdn.files.pop("doc003.zip")
    with pytest.raises(MinerUResultError, match=r"doc003\.pdf"):
        finish(documents, tmp_path / "out")
    assert cdn.gets == 6  # every other download was let finish before the error
    cdn.files["doc003.zip"] = missing
    cdn.gets = 0
    finish(documents, tmp_path / "out")
    assert cdn.gets == 1


def test_a_marker_of_another_task_is_not_trusted(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch)
    documents = done_documents(cdn, 1)
    finish(documents, tmp_path / "out")
    other = DocumentResult(
        task_id="another-task",
        state=MinerUState.DONE,
        raw_state="done",
        file_name="doc000.pdf",
        full_zip_url=documents[0].full_zip_url,
    )
    finish([other], tmp_path / "out")
    assert cdn.gets == 2


def test_a_marker_whose_files_are_gone_is_not_trusted(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch)
    documents = done_documents(cdn, 1)
    finish(documents, tmp_path / "out")
    (tmp_path / "out" / "doc000" / "full.md").unlink()
    finish(documents, tmp_path / "out")
    assert cdn.gets == 2
    assert (tmp_path / "out" / "doc000" / "full.md").is_file()


# -- atomic landing --------------------------------------------------------------------------------


def test_a_new_result_replaces_the_old_one_entirely(tmp_path: Path) -> None:
    target = tmp_path / "doc"
    old = tmp_path / "old.zip"
    old.write_bytes(zip_bytes({"full.md": b"old", "images/stale.jpg": b"x", "old_model.json": b"[]"}))
    land_result_zip(old, target, identity={"task_id": "a"})
    new = tmp_path / "new.zip"
    new.write_bytes(zip_bytes({"full.md": b"new", "images/fresh.jpg": b"y"}))
    extracted = land_result_zip(new, target, identity={"task_id": "b"})
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        MARKER_NAME,
        "full.md",
        "images/fresh.jpg",
    ]
    assert extracted.target == str(target)
    assert read_marker(target, {"task_id": "b"}) is not None
    assert read_marker(target, {"task_id": "a"}) is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_a_failed_extraction_leaves_the_earlier_result_untouched(tmp_path: Path) -> None:
    target = tmp_path / "doc"
    good = tmp_path / "good.zip"
    good.write_bytes(zip_bytes({"full.md": b"good"}))
    land_result_zip(good, target, identity={"task_id": "a"})
    data = bytearray(zip_bytes({"a.md": b"a" * 1000, "full.md": b"b" * 1000}))
    second = data.find(b"PK\x03\x04", 10)
    data[second - 20 : second - 10] = b"\xff" * 10  # corrupt the first member's data: CRC error
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bytes(data))
    with pytest.raises(MinerUResultError):
        land_result_zip(broken, target, identity={"task_id": "b"})
    assert (target / "full.md").read_bytes() == b"good"
    assert read_marker(target, {"task_id": "a"}) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.zip", "doc", "good.zip"]


# -- size bound ------------------------------------------------------------------------------------


def test_a_result_over_max_result_mb_stops_while_streaming(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch, max_result_mb=2)
    cdn.endless = True  # no Content-Length: only the streamed bytes can tell
    destination = tmp_path / "r.zip"
    started = time.monotonic()
    with pytest.raises(MinerUResultError, match=r"max_result_mb=2\b.*partial file was removed"):
        MinerUHook().download_result(f"{cdn.url}/zip/big.zip", destination)
    assert time.monotonic() - started < 5
    assert not destination.exists()
    assert cdn.gets == 1  # not retried: a transient error it is not


def test_a_declared_length_over_the_bound_is_refused_before_writing(
    cdn: FileServer, tmp_path: Path, monkeypatch
) -> None:
    set_connection(monkeypatch, max_result_mb=1)
    cdn.endless, cdn.declare_length = True, 64 * 1024 * 1024
    destination = tmp_path / "r.zip"
    with pytest.raises(MinerUResultError, match="Content-Length"):
        MinerUHook().download_result(f"{cdn.url}/zip/big.zip", destination)
    assert not destination.exists()


def test_the_size_bound_names_the_document(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch, max_result_mb=1)
    documents = done_documents(cdn, 1)
    cdn.endless = True
    with pytest.raises(MinerUResultError, match=r"doc000\.pdf.*max_result_mb=1"):
        finish(documents, tmp_path / "out")
    assert not (tmp_path / "out" / "doc000").exists()


def test_max_result_mb_default_is_documented() -> None:
    from airflow_provider_mineru.connection.config import MinerULimits
    from airflow_provider_mineru.connection.form import CONN_FIELDS, DEFAULT_MAX_RESULT_MB

    assert MinerULimits().max_result_bytes == DEFAULT_MAX_RESULT_MB * 1024 * 1024
    assert CONN_FIELDS["max_result_mb"]["schema"]["default"] == DEFAULT_MAX_RESULT_MB
    docs = (Path(__file__).parents[2] / "docs" / "connection.md").read_text()
    assert f"| `max_result_mb` | Max result zip size (MB) | number, at least 1 | `{DEFAULT_MAX_RESULT_MB}` |" in docs


# -- typed errors ----------------------------------------------------------------------------------


def test_an_output_path_under_a_file_raises_our_error_with_the_document_name(
    cdn: FileServer, tmp_path: Path, monkeypatch
) -> None:
    set_connection(monkeypatch)
    documents = done_documents(cdn, 1)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(MinerUResultError, match=r"doc000\.pdf") as caught:
        finish(documents, blocker / "out")
    assert not isinstance(caught.value, OSError)


def test_several_failures_are_named_in_one_error(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch)
    documents = done_documents(cdn, 4)
    cdn.files.pop("doc001.zip")
    cdn.files.pop("doc002.zip")
    with pytest.raises(MinerUResultError, match=r"2 of 4 results.*doc001\.pdf.*doc002\.pdf"):
        finish(documents, tmp_path / "out")
    assert read_marker(tmp_path / "out" / "doc000") is not None
    assert read_marker(tmp_path / "out" / "doc003") is not None


# -- redirects -------------------------------------------------------------------------------------


def test_downloads_follow_redirects_without_any_header_of_ours(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch, headers={"X-Api-Key": "gateway-secret"})
    with FileServer() as other:
        other.files["doc000.zip"] = result_zip("doc000")
        cdn.redirect_to = other.url
        documents = done_documents(cdn, 1)
        finish(documents, tmp_path / "out")
        assert (tmp_path / "out" / "doc000" / "full.md").is_file()
        for seen in cdn.headers_seen + other.headers_seen:
            assert "authorization" not in seen
            assert "x-api-key" not in seen
        assert other.gets == 1


def test_resumed_documents_still_count_pages(cdn: FileServer, tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch)
    documents = done_documents(cdn, 3)
    downloader = ResultDownloader(MinerUHook(), tmp_path / "out", log)
    downloader.download_all(documents)
    again = ResultDownloader(MinerUHook(), tmp_path / "out", log)
    again.download_all(documents)
    assert (downloader.pages, again.pages, again.resumed) == (3, 3, 3)


# -- XCom size -------------------------------------------------------------------------------------


def failed_documents(count: int) -> list[DocumentResult]:
    return [
        DocumentResult(
            state=MinerUState.FAILED,
            raw_state="failed",
            file_name=f"scan-{i:05d}.pdf",
            err_msg="the file is damaged and cannot be parsed (-60011)",
        )
        for i in range(count)
    ]


def finish_failed(documents: list[DocumentResult], output: Path | None) -> dict[str, Any]:
    waited = WaitedDocuments([f"batch-{i}" for i in range(len(documents) // 200 + 1)], documents)
    downloader = ResultDownloader(MinerUHook(), None if output is None else str(output), log)
    return finish_wait(BATCH_WAIT, waited, downloader, fail_on_file_error=False).value


def test_a_large_batch_xcom_goes_to_a_jsonl_file_beside_the_output(tmp_path: Path, monkeypatch) -> None:
    from airflow_provider_mineru.results.rag_documents import iter_result_entries
    from airflow_provider_mineru.results.xcom import XCOM_MAX_BYTES

    set_connection(monkeypatch)
    value = finish_failed(failed_documents(10_000), tmp_path / "out")
    assert len(json.dumps(value)) < XCOM_MAX_BYTES
    assert value["results_path"] == str(tmp_path / "out" / "mineru-results-batch-0.jsonl")
    assert (value["count"], value["done"], value["failed"]) == (10_000, 0, 10_000)
    assert len(value["batch_ids"]) == 51
    entries = list(iter_result_entries(value))
    assert [e["file_name"] for e in entries] == [f"scan-{i:05d}.pdf" for i in range(10_000)]


def test_a_small_batch_xcom_keeps_its_shape(tmp_path: Path, monkeypatch) -> None:
    set_connection(monkeypatch)
    value = finish_failed(failed_documents(200), tmp_path / "out")
    assert set(value) == {"batch_ids", "results"}
    assert len(value["results"]) == 200
    assert not (tmp_path / "out").exists()
