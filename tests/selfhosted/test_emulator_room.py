"""The emulator's mineru-api room on its own: CLI, imports, the real server's quirks it reproduces."""

from __future__ import annotations

import ast
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from airflow_provider_mineru.emulator.cli import main

ROOM = Path(__file__).resolve().parents[2] / "airflow_provider_mineru" / "emulator" / "mineru_api"

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
                assert node.module.startswith("airflow_provider_mineru.emulator."), (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("airflow") for a in node.names), path.name


def test_a_pdf_with_too_little_text_is_taken_for_a_scan():
    from airflow_provider_mineru.emulator._pdf import make_pdf
    from airflow_provider_mineru.emulator.mineru_api.state import parse_document

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
