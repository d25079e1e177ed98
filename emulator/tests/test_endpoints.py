"""Happy paths of every endpoint, under /api/v4, /api/v1 and no prefix."""

from __future__ import annotations

import http.client
import json
import re

import pytest
import requests
from emulator_client import FAST, TOKEN, Api, sample

from mineru_emulator import MinerUEmulator

PREFIXES = ["/api/v4", "/api/v1", ""]


@pytest.fixture(params=PREFIXES, ids=["v4", "v1", "no-prefix"])
def any_api(request: pytest.FixtureRequest, mineru_emulator_factory) -> Api:
    return Api(mineru_emulator_factory(prefix=request.param))


def test_base_url_and_connection_strings(mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(prefix="api/v1/", token="t/k n", uid="u-1")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", emu.base_url)
    conn = json.loads(emu.connection_json())
    assert conn == {"conn_type": "mineru", "host": emu.base_url, "password": "t/k n", "extra": {"uid": "u-1"}}
    assert emu.connection_uri() == f"mineru://:t%2Fk%20n@127.0.0.1:{emu.port}/api%2Fv1?scheme=http&uid=u-1"


def test_url_task_lifecycle(any_api: Api) -> None:
    emu = any_api.emu
    task_id = any_api.submit(emu.sample_url("annual_report.pdf"), data_id="report-2024", is_ocr=True)
    assert re.fullmatch(r"[0-9a-f-]{36}", task_id)
    data = any_api.wait_task(task_id)
    assert data["task_id"] == task_id
    assert data["data_id"] == "report-2024"
    assert data["state"] == "done", data
    assert data["err_msg"] == ""
    assert data["full_zip_url"].startswith(emu.root_url + "/cdn/pdf/")
    assert "extract_progress" not in data
    zf = any_api.download_zip(data["full_zip_url"])
    assert "Northwind Traders Annual Report 2024" in zf.read("full.md").decode()
    assert emu.task_count == 1
    assert emu.batch_count == 0


def test_upload_batch_lifecycle(any_api: Api) -> None:
    emu = any_api.emu
    body = {
        "files": [{"name": "invoice.pdf", "data_id": "inv-1"}, {"name": "Receipt.PNG", "is_ocr": True}],
        "language": "en",
        "enable_table": True,
    }
    data = any_api.ok(any_api.post("/file-urls/batch", body))
    batch_id = data["batch_id"]
    urls = data["file_urls"]
    assert len(urls) == 2
    assert re.match(rf"http://127\.0\.0\.1:{emu.port}/api-upload/{batch_id}/[0-9a-f-]{{36}}\.pdf\?", urls[0])
    assert "Expires=" in urls[0] and "OSSAccessKeyId=EMULATOR" in urls[0] and "Signature=" in urls[0]
    assert urls[1].split("?")[0].endswith(".png")

    items = any_api.batch(batch_id)["extract_result"]
    assert [i["state"] for i in items] == ["waiting-file", "waiting-file"]
    assert [i["file_name"] for i in items] == ["invoice.pdf", "Receipt.PNG"]
    assert items[0]["data_id"] == "inv-1" and "data_id" not in items[1]

    assert requests.put(urls[0], data=sample("invoice.pdf"), timeout=10).status_code == 200
    assert requests.put(urls[1], data=sample("scanned_receipt.png"), timeout=10).status_code == 200
    items = any_api.wait_batch(batch_id)
    assert [i["state"] for i in items] == ["done", "done"], items
    assert all(i["full_zip_url"].endswith(".zip") for i in items)
    assert emu.batch_count == 1
    assert emu.file_count == 2


def test_url_batch_lifecycle(any_api: Api) -> None:
    emu = any_api.emu
    files = [
        {"url": emu.sample_url("research_paper.pdf"), "page_ranges": "1-2"},
        {"url": emu.sample_url("invoice.pdf"), "data_id": "x.y-z_1"},
        {"url": "https://cdn-mineru.openxlab.org.cn/demo/example.pdf"},
    ]
    data = any_api.ok(any_api.post("/extract/task/batch", {"files": files, "model_version": "vlm"}))
    items = any_api.wait_batch(data["batch_id"])
    assert [i["file_name"] for i in items] == ["research_paper.pdf", "invoice.pdf", "example.pdf"]
    assert [i["state"] for i in items] == ["done"] * 3, items
    assert items[1]["data_id"] == "x.y-z_1"


def test_keep_alive_on_one_connection(emu: MinerUEmulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    body = json.dumps({"url": emu.sample_url("invoice.pdf")})
    conn.request("POST", "/api/v4/extract/task", body=body, headers=headers)
    first = conn.getresponse()
    task_id = json.loads(first.read())["data"]["task_id"]
    sock = conn.sock
    for _ in range(5):
        conn.request("GET", f"/api/v4/extract/task/{task_id}", headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") is not None
        assert json.loads(response.read())["data"]["task_id"] == task_id
        assert conn.sock is sock  # the same socket: HTTP/1.1 keep-alive
    # Errors keep the connection alive too (the body is always read).
    conn.request("POST", "/api/v4/extract/task", body="not json", headers=headers)
    response = conn.getresponse()
    assert json.loads(response.read())["code"] == -500
    conn.request("GET", "/__emulator__/health")
    assert conn.getresponse().status == 200
    assert conn.sock is sock
    conn.close()


def test_unknown_path_and_method(api: Api) -> None:
    response = api.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["code"] == -10002
    response = api.session.delete(api.base + "/extract/task/abc", timeout=5)
    assert response.status_code == 405
    assert requests.get(api.emu.root_url + "/elsewhere", timeout=5).status_code == 401


def test_samples_served_without_auth(emu: MinerUEmulator) -> None:
    listing = requests.get(emu.root_url + "/samples/", timeout=5).json()
    assert set(listing["samples"]) >= {"annual_report.pdf", "research_paper.pdf", "invoice.pdf"}
    response = requests.get(emu.sample_url("invoice.pdf"), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.content == sample("invoice.pdf")
    assert requests.get(emu.sample_url("nope.pdf"), timeout=5).status_code == 404


def test_many_concurrent_clients(emu: MinerUEmulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    api = Api(emu)
    ids = [api.submit(emu.sample_url("invoice.pdf"), data_id=f"d{i}") for i in range(10)]

    def poll(task_id: str) -> str:
        return Api(emu).wait_task(task_id)["state"]

    with ThreadPoolExecutor(max_workers=10) as pool:
        states = list(pool.map(poll, ids))
    assert states == ["done"] * 10
    assert emu.task_count == 10


def test_stop_closes_keep_alive_connections() -> None:
    emu = MinerUEmulator(timings=FAST).start()
    session = requests.Session()
    health = emu.root_url + "/__emulator__/health"
    assert session.get(health, timeout=5).status_code == 200
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(health, timeout=5)
    with pytest.raises(RuntimeError):
        _ = emu.base_url
