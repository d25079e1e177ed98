"""Every kind of injected fault, from Python."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest
import requests
from emulator_client import TOKEN, Api

from mineru_emulator import Fault, MinerUEmulator


def test_http_status_with_retry_after(api: Api) -> None:
    fault = api.emu.inject(Fault(endpoint="submit_task", http_status=429, retry_after=2, times=2))
    for _ in range(2):
        response = api.post("/extract/task", {"url": api.emu.sample_url("invoice.pdf")})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        payload = response.json()
        assert payload["code"] == -10001 and len(payload["trace_id"]) == 32
    api.ok(api.post("/extract/task", {"url": api.emu.sample_url("invoice.pdf")}))
    assert fault.fired == 2
    assert api.emu.task_count == 1  # the faulted submits created nothing
    assert [r.fault for r in api.emu.requests_to("submit_task")] == ["http_429", "http_429", None]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(api: Api, status: int) -> None:
    api.emu.inject(Fault(endpoint="get_task", http_status=status, retry_after=0.5))
    response = api.get("/extract/task/x")
    assert response.status_code == status
    assert response.headers["Retry-After"] == "0.5"
    assert api.get("/extract/task/x").json()["code"] == -60012


def test_error_code_in_an_envelope(api: Api) -> None:
    api.emu.inject(Fault(endpoint="submit_task", code=-60009))
    response = api.post("/extract/task", {"url": api.emu.sample_url("invoice.pdf")})
    assert response.status_code == 200
    payload = response.json()
    assert payload["code"] == -60009
    assert "queue" in payload["msg"].lower()
    assert len(payload["trace_id"]) == 32


def test_code_as_string_and_http_400(api: Api) -> None:
    api.emu.inject(Fault(endpoint="get_batch", code=-60012, code_as_string=True, http_status=400))
    response = api.get("/extract-results/batch/x")
    assert response.status_code == 400
    assert response.json()["code"] == "-60012"


def test_dict_msg_is_sent_as_is(api: Api) -> None:
    msg = {"en": "queue is full", "zh": "队列已满"}
    api.emu.inject(Fault(code=-60009, msg=msg))
    payload = api.get("/extract/task/x").json()
    assert payload["msg"] == msg


def test_unknown_code(api: Api) -> None:
    api.emu.inject(Fault(code=-99999, msg="brand new error"))
    payload = api.get("/extract/task/x").json()
    assert payload == {**payload, "code": -99999, "msg": "brand new error"}


def test_auth_code_fault_in_http401_shape(api: Api) -> None:
    api.emu.inject(Fault(code="A0211", http_status=401))
    response = api.get("/extract/task/x")
    assert response.status_code == 401
    assert response.json()["msgCode"] == "A0211"


def test_malformed_json(api: Api) -> None:
    api.emu.inject(Fault(endpoint="get_task", malformed_json=True))
    response = api.get("/extract/task/x")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):  # noqa: PT011 - json or requests' JSONDecodeError
        response.json()


def test_html_body(api: Api) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    api.emu.inject(Fault(endpoint="get_task", http_status=502, body=page))
    response = api.get("/extract/task/x")
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == page
    api.emu.inject(Fault(endpoint="get_task", body=b"\x00binary", content_type="application/octet-stream"))
    response = api.get("/extract/task/x")
    assert response.status_code == 200 and response.content == b"\x00binary"


def test_truncated_json(emu: MinerUEmulator) -> None:
    emu.inject(Fault(endpoint="get_task", truncated=True))
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    conn.request("GET", "/api/v4/extract/task/x", headers={"Authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    announced = int(response.getheader("Content-Length"))
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    assert announced > 0
    conn.close()


def test_truncated_with_requests(api: Api) -> None:
    api.emu.inject(Fault(endpoint="get_task", truncated=True))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get("/extract/task/x")


def test_truncated_submit_still_creates_the_task(api: Api) -> None:
    api.emu.inject(Fault(endpoint="submit_task", truncated=True))
    with pytest.raises(requests.RequestException):
        api.post("/extract/task", {"url": api.emu.sample_url("invoice.pdf")})
    assert api.emu.task_count == 1  # the answer was lost, not the request


def test_truncated_empty_body_cuts_the_status_line(api: Api) -> None:
    batch = api.ok(api.post("/file-urls/batch", {"files": [{"name": "a.pdf"}]}))
    api.emu.inject(Fault(endpoint="upload", truncated=True))
    with pytest.raises(requests.ConnectionError):
        requests.put(batch["file_urls"][0], data=b"%PDF-1.4", timeout=5)


def test_download_truncated_mid_stream(api: Api) -> None:
    url = api.wait_task(api.submit(api.emu.sample_url("annual_report.pdf")))["full_zip_url"]
    full = requests.get(url, timeout=5).content
    api.emu.inject(Fault(endpoint="download", truncated=True))
    response = requests.get(url, stream=True, timeout=5)
    assert response.headers["Content-Length"] == str(len(full))
    received = bytearray()

    def read_all() -> None:
        for chunk in response.iter_content(256):
            received.extend(chunk)

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        read_all()
    assert 0 < len(received) < len(full)
    assert full.startswith(bytes(received))
    assert requests.get(url, timeout=5).content == full  # the fault is used up


def test_reset(api: Api) -> None:
    api.emu.inject(Fault(endpoint="get_task", reset=True))
    with pytest.raises(requests.ConnectionError):
        api.get("/extract/task/x")
    assert api.get("/extract/task/x").json()["code"] == -60012
    (first, _) = api.emu.requests_to("get_task")
    assert first.fault == "reset" and first.status == 0


def test_reset_is_an_rst(emu: MinerUEmulator) -> None:
    emu.inject(Fault(reset=True))
    sock = socket.create_connection(("127.0.0.1", emu.port), timeout=5)
    sock.sendall(b"GET /api/v4/extract/task/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n\r\n")
    with pytest.raises(ConnectionResetError):  # an RST, not an orderly close (which reads b"")
        sock.recv(1024)
    sock.close()


def test_delay_then_normal_answer(api: Api) -> None:
    api.emu.inject(Fault(endpoint="get_task", delay=0.3))
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.session.get(api.base + "/extract/task/x", timeout=0.1)
    started = time.monotonic()
    assert api.get("/extract/task/x").json()["code"] == -60012
    assert time.monotonic() - started < 0.25


def test_delay_combined_with_status(api: Api) -> None:
    api.emu.inject(Fault(endpoint="get_task", delay=0.1, http_status=503))
    started = time.monotonic()
    assert api.get("/extract/task/x").status_code == 503
    assert time.monotonic() - started >= 0.1


def test_match_and_wildcard(api: Api) -> None:
    emu = api.emu
    fault = emu.inject(Fault(http_status=500, match="/extract/task/special", times=5))
    assert api.get("/extract/task/other").json()["code"] == -60012
    assert api.get("/extract/task/special").status_code == 500
    assert fault.fired == 1
    # "*" does not apply to the admin API nor to the sample documents
    emu.inject(Fault(http_status=500, times=10))
    assert requests.get(emu.root_url + "/__emulator__/health", timeout=5).status_code == 200
    assert requests.get(emu.sample_url("invoice.pdf"), timeout=5).status_code == 200
    assert api.get("/extract/task/x").status_code == 500


def test_faults_apply_in_order_and_clear(api: Api) -> None:
    emu = api.emu
    emu.inject(Fault(endpoint="get_task", http_status=502))
    emu.inject(Fault(endpoint="get_task", http_status=503))
    assert api.get("/extract/task/x").status_code == 502
    assert api.get("/extract/task/x").status_code == 503
    emu.inject(Fault(endpoint="get_task", http_status=500, times=100))
    emu.clear_faults()
    assert api.get("/extract/task/x").status_code == 200


def test_faults_on_upload_use_oss_xml(api: Api) -> None:
    batch = api.ok(api.post("/file-urls/batch", {"files": [{"name": "a.pdf"}]}))
    api.emu.inject(Fault(endpoint="upload", http_status=503))
    response = requests.put(batch["file_urls"][0], data=b"%PDF-1.4", timeout=5)
    assert response.status_code == 503
    assert response.text.lstrip().startswith("<?xml")


def test_fault_names(api: Api) -> None:
    api.emu.inject(Fault(endpoint="get_task", http_status=503, name="gateway-down"))
    api.get("/extract/task/x")
    assert api.emu.requests_to("get_task")[-1].fault == "gateway-down"


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        Fault(endpoint="nope")
    with pytest.raises(ValueError, match="times"):
        Fault(times=0)


def test_fault_to_dict_is_json(api: Api) -> None:
    fault = Fault(endpoint="download", body=b"\xffoops", truncated=True)
    data = json.loads(json.dumps(fault.to_dict()))
    assert data["endpoint"] == "download" and data["label"].startswith("body")
