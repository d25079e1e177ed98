"""Task states: progression with progress, document failures, scripted failures, stuck states, quota."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from emulator_client import Api, sample

from mineru_emulator import MinerUEmulator, Timings
from mineru_emulator._pdf import make_pdf


def states_seen(api: Api, task_id: str, timeout: float = 10.0) -> tuple[list[str], list[dict[str, Any]]]:
    seen: list[str] = []
    progress: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = api.task(task_id)
        if not seen or seen[-1] != data["state"]:
            seen.append(data["state"])
        if data["state"] == "running":
            progress.append(data["extract_progress"])
        if data["state"] in ("done", "failed"):
            break
        time.sleep(0.005)
    return seen, progress


def test_progression_with_advancing_progress(mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(timings=Timings(pending=0.15, per_page=0.1, converting=0.15))
    api = Api(emu)
    task_id = api.submit(emu.sample_url("research_paper.pdf"))
    seen, progress = states_seen(api, task_id)
    assert seen == ["pending", "running", "converting", "done"]
    assert {p["total_pages"] for p in progress} == {4}
    extracted = [p["extracted_pages"] for p in progress]
    assert extracted == sorted(extracted)
    assert extracted[0] < extracted[-1] <= 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", progress[0]["start_time"])


def test_total_pages_is_the_documents_count_with_page_ranges(mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(timings=Timings(pending=0.0, per_page=0.2, converting=0.0))
    api = Api(emu)
    task_id = api.submit(emu.sample_url("research_paper.pdf"), page_ranges="2-3")
    seen, progress = states_seen(api, task_id)
    assert seen[-1] == "done"
    assert progress and all(p["total_pages"] == 4 for p in progress)
    assert max(p["extracted_pages"] for p in progress) <= 2


def test_waiting_file_until_put(mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(timings=Timings(pending=0.1, per_page=0.05, converting=0.05))
    api = Api(emu)
    data = api.ok(api.post("/file-urls/batch", {"files": [{"name": "annual_report.pdf"}]}))
    time.sleep(0.3)
    assert api.batch(data["batch_id"])["extract_result"][0]["state"] == "waiting-file"
    assert requests.put(data["file_urls"][0], data=sample("annual_report.pdf"), timeout=5).status_code == 200
    assert api.batch(data["batch_id"])["extract_result"][0]["state"] == "pending"
    seen: list[str] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        item = api.batch(data["batch_id"])["extract_result"][0]
        if not seen or seen[-1] != item["state"]:
            seen.append(item["state"])
        if item["state"] == "running":
            assert item["extract_progress"]["total_pages"] == 3
        if item["state"] == "done":
            break
        time.sleep(0.005)
    assert seen == ["pending", "running", "converting", "done"]


class _Origin:
    """A server for documents with chosen statuses/bodies (for URL task failures)."""

    def __init__(self, routes: dict[str, tuple[int, bytes]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = routes.get(self.path, (404, b"not found"))
                if status == 0:
                    time.sleep(3)  # longer than the emulator's fetch timeout
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin() -> Any:
    server = _Origin(
        {
            "/empty.pdf": (200, b""),
            "/corrupt.pdf": (200, b"%PDF-1.4 this is not really a pdf"),
            "/long.pdf": (200, make_pdf([[f"page {i}"] for i in range(5)])),
            "/big.pdf": (200, b"%PDF" + b"x" * 5000),
            "/slow.pdf": (0, b"late"),
            "/gone.pdf": (410, b"gone"),
            "/word.docx": (200, b"PK\x03\x04 fake office file"),
        }
    )
    yield server
    server.close()


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/empty.pdf", "-60004"),
        ("/corrupt.pdf", "-60003"),
        ("/long.pdf", "-60006"),
        ("/big.pdf", "-60005"),
        ("/slow.pdf", "-60008"),
        ("/gone.pdf", "-60008"),
        ("/missing.pdf", "-60008"),
    ],
)
def test_document_failures(mineru_emulator_factory, origin: Any, path: str, code: str) -> None:
    timings = Timings(pending=0.01, per_page=0.001, converting=0.001, fetch_timeout=0.5)
    emu = mineru_emulator_factory(timings=timings, max_pages=4, max_file_bytes=4096)
    api = Api(emu)
    data = api.wait_task(api.submit(origin.url + path))
    assert data["state"] == "failed", data
    assert data["err_msg"].startswith(code), data["err_msg"]
    assert "full_zip_url" not in data


def test_unreachable_url_fails_with_60008(api: Api) -> None:
    data = api.wait_task(api.submit("http://127.0.0.1:9/nothing-listens-here.pdf"))
    assert data["state"] == "failed"
    assert "-60008" in data["err_msg"] and "URL is reachable" in data["err_msg"]


def test_office_document_is_done(api: Api, origin: Any) -> None:
    data = api.wait_task(api.submit(origin.url + "/word.docx"))
    assert data["state"] == "done", data


def test_demo_urls_work_offline(api: Api) -> None:
    for url in (
        "https://cdn-mineru.openxlab.org.cn/demo/example.pdf",
        "https://static.openxlab.org.cn/opendatalab/pdf/demo.pdf",
    ):
        data = api.wait_task(api.submit(url))
        assert data["state"] == "done", data
        text = api.download_zip(data["full_zip_url"]).read("full.md").decode()
        assert "demo" in text.lower() or "example" in text.lower()


def test_other_unreachable_public_urls_fail(api: Api) -> None:
    data = api.wait_task(api.submit("https://no-such-host.invalid/demo/example.pdf"))
    assert data["state"] == "failed"


def test_fail_next_tasks(api: Api) -> None:
    emu = api.emu
    emu.fail_next_tasks("-60010: parsing failed", count=2)
    ids = [api.submit(emu.sample_url("invoice.pdf")) for _ in range(3)]
    results = [api.wait_task(i) for i in ids]
    assert [r["state"] for r in results] == ["failed", "failed", "done"]
    assert results[0]["err_msg"] == "-60010: parsing failed"
    assert "full_zip_url" not in results[0]


def test_fail_next_tasks_with_match(api: Api) -> None:
    emu = api.emu
    emu.fail_next_tasks("boom", match="invoice")
    other = api.submit(emu.sample_url("annual_report.pdf"))
    target = api.submit(emu.sample_url("invoice.pdf"))
    assert api.wait_task(other)["state"] == "done"
    assert api.wait_task(target)["err_msg"] == "boom"


def test_fail_next_applies_to_batch_uploads(api: Api) -> None:
    api.emu.fail_next_tasks("bad scan", match="receipt")
    batch_id = api.upload_batch({"a.pdf": sample("invoice.pdf"), "receipt.png": sample("scanned_receipt.png")})
    items = api.wait_batch(batch_id)
    assert [i["state"] for i in items] == ["done", "failed"]
    assert items[1]["err_msg"] == "bad scan"


@pytest.mark.parametrize("state", ["uploading", "running", "pending", "converting"])
def test_stick(api: Api, state: str) -> None:
    emu = api.emu
    emu.stick(state)
    stuck = api.submit(emu.sample_url("invoice.pdf"))
    normal = api.submit(emu.sample_url("invoice.pdf"))
    assert api.wait_task(normal)["state"] == "done"
    time.sleep(0.1)
    data = api.task(stuck)
    assert data["state"] == state
    if state == "running":
        assert data["extract_progress"]["extracted_pages"] == 0


def test_stick_with_match_in_batch(api: Api) -> None:
    api.emu.stick("uploading", count=1, match="b.pdf")
    batch_id = api.upload_batch({"a.pdf": sample("invoice.pdf"), "b.pdf": sample("invoice.pdf")})
    time.sleep(0.2)
    items = api.batch(batch_id)["extract_result"]
    assert [i["state"] for i in items] == ["done", "uploading"]


def test_stick_rejects_terminal_states(emu: MinerUEmulator) -> None:
    with pytest.raises(ValueError, match="non-terminal"):
        emu.stick("done")


def test_page_quota(mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(page_quota=5)
    api = Api(emu)
    first = api.wait_task(api.submit(emu.sample_url("annual_report.pdf")))  # 3 pages
    assert first["state"] == "done"
    assert emu.pages_used == 3
    second = api.wait_task(api.submit(emu.sample_url("research_paper.pdf")))  # 4 > 2 left
    assert second["state"] == "failed"
    assert second["err_msg"].startswith("-60017") and "quota" in second["err_msg"].lower()
    third = api.wait_task(api.submit(emu.sample_url("invoice.pdf"), page_ranges="1"))  # 1 page
    assert third["state"] == "done"
    fourth = api.wait_task(api.submit(emu.sample_url("invoice.pdf"), page_ranges="-1"))
    assert fourth["state"] == "done"
    assert emu.pages_used == 5
    for path, body in (
        ("/extract/task", {"url": emu.sample_url("invoice.pdf")}),
        ("/file-urls/batch", {"files": [{"name": "a.pdf"}]}),
        ("/extract/task/batch", {"files": [{"url": emu.sample_url("invoice.pdf")}]}),
    ):
        payload = api.post(path, body).json()
        assert payload["code"] == -60017, payload


def test_page_ranges_outside_the_document_fail_the_task(api: Api) -> None:
    data = api.wait_task(api.submit(api.emu.sample_url("invoice.pdf"), page_ranges="5-9"))
    assert data["state"] == "failed"
    assert "page_ranges" in data["err_msg"]


def test_reset_forgets_everything(api: Api) -> None:
    emu = api.emu
    task_id = api.submit(emu.sample_url("invoice.pdf"))
    assert api.wait_task(task_id)["state"] == "done"
    emu.stick("running")
    emu.fail_next_tasks("x")
    emu.reset()
    assert emu.requests == []
    assert emu.task_count == 0
    assert api.get(f"/extract/task/{task_id}").json()["code"] == -60012
    assert api.wait_task(api.submit(emu.sample_url("invoice.pdf")))["state"] == "done"
