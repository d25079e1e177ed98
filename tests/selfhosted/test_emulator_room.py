"""The emulator's mineru-api room on its own: CLI, imports, the real server's quirks it reproduces."""

from __future__ import annotations

import ast
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mineru_emulator.cli import main
from mineru_emulator.mineru_api import Fault

ROOM = Path(__file__).resolve().parents[2] / "emulator" / "src" / "mineru_emulator" / "mineru_api"

CHILD = """
import json, os, sys, urllib.request, urllib.error
conn = json.loads(os.environ["AIRFLOW_CONN_MINERU_DEFAULT"])
print(json.dumps(conn))
print(json.loads(urllib.request.urlopen(conn["host"] + "/v1/health", timeout=5).read())["version"])
try:
    urllib.request.urlopen(urllib.request.Request(conn["host"] + "/v1/tasks/job_x",
                           headers={"Authorization": "Bearer " + conn["password"]}), timeout=5)
except urllib.error.HTTPError as exc:
    print(json.loads(exc.read())["error"]["code"])
sys.exit(4)
"""


def test_cli_flavor_mineru_api_runs_a_command_against_it(capfd):
    code = main(["--flavor", "mineru-api", "--token", "key-1", "--exec", sys.executable, "-c", CHILD])
    assert code == 4
    # Other tests may have configured logging to stdout: keep the child's lines only.
    lines = [
        line
        for line in capfd.readouterr().out.splitlines()
        if line.startswith("{") or line in ("4.0.12", "job_not_found")
    ]
    conn = json.loads(lines[0])
    assert conn["extra"] == {"api_flavor": "mineru-api"} and conn["password"] == "key-1"
    assert conn["host"].startswith("http://127.0.0.1:") and "/api/" not in conn["host"]
    assert lines[1:3] == ["4.0.12", "job_not_found"]


def test_the_room_imports_nothing_from_the_provider():
    """The room imports itself and the emulator's shared rooms (``http``, ``faults``), nothing else of ours."""
    for path in ROOM.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("airflow"):
                assert node.module.startswith("mineru_emulator."), (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("airflow") for a in node.names), path.name


def test_a_pdf_with_too_little_text_is_taken_for_a_scan():
    from mineru_emulator._pdf import make_pdf
    from mineru_emulator.mineru_api.state import parse_document

    thin = parse_document("thin.pdf", make_pdf([["Title"], ["Page two."]]), page_range="", ocr_mode="auto")
    assert thin.error and thin.error["code"] == "parse_failed" and thin.slow
    rich = parse_document("rich.pdf", make_pdf([["A line of real words " * 6]]), page_range="", ocr_mode="auto")
    assert rich.error is None and "real words" in rich.markdown


@pytest.mark.parametrize(("path", "status"), [("/v1/health", 200), ("/v1/tiers", 200), ("/v1/tasks/job_x", 401)])
def test_public_and_private_routes(mineru_api_emulator, path, status):
    try:
        code = urllib.request.urlopen(mineru_api_emulator.root_url + path, timeout=5).status
    except urllib.error.HTTPError as exc:
        code = exc.code
    assert code == status


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "arg"),
    [
        ("GET", "/v1/health", "health", None),
        ("POST", "/v1/tiers", "tiers", None),
        ("POST", "/v1/tasks", "submit", None),
        ("GET", "/v1/tasks", "other", None),
        ("GET", "/v1/tasks/job_1", "get_task", "job_1"),
        ("POST", "/v1/tasks/job_1", "get_task", "job_1"),
        ("DELETE", "/v1/tasks/job_1", "cancel", "job_1"),
        ("GET", "/v1/tasks/job_1/result", "result", "job_1"),
        ("GET", "/v1/tasks/job_1/files", "other", None),
        ("GET", "/v1/files/file-1/content", "file_content", "file-1"),
        ("GET", "/v1/files/file-1", "other", None),
        ("GET", "/v1/health/", "other", None),
    ],
)
def test_route_table(method, path, endpoint, arg):
    from mineru_emulator.mineru_api import MinerUApiEmulator

    route, found, allowed = MinerUApiEmulator().routes.resolve(method, path)
    assert (route.endpoint, found, allowed) == (endpoint, arg, True)
    old, _, _ = MinerUApiEmulator(version="3.1.0").routes.resolve(method, path)
    assert old.endpoint == "other"  # a 3.x server has no V1 API


def test_route_table_names_every_fault_endpoint_and_takes_large_uploads():
    from mineru_emulator.mineru_api import ENDPOINTS, MinerUApiEmulator
    from mineru_emulator.mineru_api.contract import MAX_BODY

    routes = MinerUApiEmulator().routes
    assert set(routes.endpoints) == set(ENDPOINTS)
    assert {r.endpoint: r.max_body for r in routes.routes}["submit"] == MAX_BODY == 256 * 1024 * 1024


def _api(server):
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.api_key}"
    return session


def test_a_chunked_multipart_upload_is_read(mineru_api_emulator):
    """A ``Transfer-Encoding: chunked`` form (no Content-Length) is parsed like any other."""
    import requests

    api = _api(mineru_api_emulator)
    url = f"{mineru_api_emulator.root_url}/v1/tasks?tier=flash"
    html = b"<html><body><h1>Chunked</h1><p>Sent in pieces.</p></body></html>"
    prepared = requests.Request("POST", url, files=[("files", ("page.html", html))]).prepare()
    body, ctype = prepared.body, prepared.headers["Content-Type"]
    answer = api.post(url, data=iter([body[:50], body[50:]]), headers={"Content-Type": ctype}, timeout=10)
    assert answer.status_code == 202, answer.text
    assert answer.headers["Server"] == "uvicorn" and answer.headers["Content-Type"] == "application/json"
    task_id = answer.json()["task_id"]
    deadline = time.monotonic() + 10
    while (state := api.get(f"{mineru_api_emulator.root_url}/v1/tasks/{task_id}/result", timeout=5)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert state.json()["files"][0]["content"]["markdown"] == "# Chunked\n\nSent in pieces."
    log = mineru_api_emulator.requests_to("submit")
    assert [(r.method, r.status, r.body_size > len(html), r.has_authorization) for r in log] == [
        ("POST", 202, True, True)
    ]


def test_shared_fault_fields_delay_name_and_truncation(mineru_api_emulator):
    import requests

    root = mineru_api_emulator.root_url
    mineru_api_emulator.inject(Fault(endpoint="tiers", delay=0.3, name="slow"))
    started = time.monotonic()
    slow = requests.get(f"{root}/v1/tiers", timeout=5)
    assert time.monotonic() - started >= 0.3
    assert (slow.status_code, slow.json()["error"]["code"]) == (503, "service_unavailable")
    mineru_api_emulator.inject(Fault(endpoint="health", truncated=True))
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{root}/v1/health", timeout=5).json()
    assert [(r.endpoint, r.fault) for r in mineru_api_emulator.requests] == [("tiers", "slow"), ("health", "truncated")]


def test_an_emulator_bug_answers_like_the_servers_catch_all(mineru_api_emulator, monkeypatch):
    import requests

    from mineru_emulator.mineru_api import payloads

    def broken(version):
        raise RuntimeError("boom")

    monkeypatch.setattr(payloads, "health", broken)
    answer = requests.get(f"{mineru_api_emulator.root_url}/v1/health", timeout=5)
    assert answer.status_code == 500
    error = {"type": "api_error", "code": "internal_error", "message": "Internal server error: boom", "param": None}
    assert answer.json() == {"error": error}
