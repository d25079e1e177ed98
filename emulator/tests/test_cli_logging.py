"""The console script, the pytest plugin, logging hygiene, the PDF writer and the sample documents."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import requests
from emulator_client import TOKEN, Api, sample

from mineru_emulator import Fault, MinerUEmulator, Timings
from mineru_emulator._pdf import make_pdf, make_png
from mineru_emulator._samples import SAMPLE_PDF_TEXT, sample_document, sample_names
from mineru_emulator.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO / "dags" / "sample_documents"

CHILD = """
import json, os, sys, urllib.request
conn = json.loads(os.environ["AIRFLOW_CONN_MINERU_DEFAULT"])
print(json.dumps(conn))
req = urllib.request.Request(conn["host"] + "/extract/task/made-up",
                             headers={"Authorization": "Bearer " + conn["password"]})
print(json.loads(urllib.request.urlopen(req, timeout=5).read())["code"])
sys.exit(3)
"""


def test_exec_runs_the_child_with_the_connection(capfd: pytest.CaptureFixture[str]) -> None:
    code = main(["--token", "tok-123", "--uid", "u9", "--exec", sys.executable, "-c", CHILD])
    assert code == 3
    # Other tests may have configured logging to stdout: read the child's lines, not log lines.
    out = [line for line in capfd.readouterr().out.splitlines() if line.startswith("{") or line == "-60012"]
    conn = json.loads(out[0])
    assert conn["conn_type"] == "mineru"
    assert conn["password"] == "tok-123"
    assert conn["extra"] == {"uid": "u9"}
    assert conn["host"].startswith("http://127.0.0.1:") and conn["host"].endswith("/api/v4")
    assert out[1] == "-60012"


def test_double_dash_form_and_module_entry_point() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mineru_emulator",
            "--prefix",
            "/api/v1",
            "--",
            sys.executable,
            "-c",
            "import os; print(os.environ['AIRFLOW_CONN_MINERU_DEFAULT'])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["host"].endswith("/api/v1")


def test_exec_without_command_is_an_error() -> None:
    assert main(["--exec"]) == 2


def test_serve_prints_the_export_line_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mineru_emulator", "--port", "0", "--token", "serve-tok"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("export ") for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            lines.append(line.strip())
        base_url = lines[0].rsplit(" ", 1)[1]
        export = next(line for line in lines if line.startswith("export "))
        prefix = "export AIRFLOW_CONN_MINERU_DEFAULT='"
        assert export.startswith(prefix) and export.endswith("'")
        conn = json.loads(export[len(prefix) : -1])
        assert conn["host"] == base_url and conn["password"] == "serve-tok"
        response = requests.get(base_url + "/extract/task/x", headers={"Authorization": "Bearer serve-tok"}, timeout=5)
        assert response.json()["code"] == -60012
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "GET /api/v4/extract/task/x 200" in stderr
        assert "serve-tok" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "mineru-emulator"
    assert script.exists()
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--exec" in result.stdout


# -- logging and secrets ---------------------------------------------------------------------------


def test_token_never_logged_nor_recorded(caplog: pytest.LogCaptureFixture) -> None:
    token = "super-secret-token-value"
    caplog.set_level(logging.DEBUG, logger="mineru_emulator")
    with MinerUEmulator(token=token, expired_tokens=["expired-secret-value"], timings=Timings.fast()) as emu:
        api = Api(emu, token=token)
        api.wait_task(api.submit(emu.sample_url("invoice.pdf")))
        batch_id = api.upload_batch({"a.pdf": sample("invoice.pdf")})
        api.wait_batch(batch_id)
        Api(emu, token="expired-secret-value").get("/extract/task/x")
        emu.inject(Fault(reset=True))
        with pytest.raises(requests.ConnectionError):
            api.get("/extract/task/x")
        recorded = json.dumps([r.to_dict() for r in emu.requests])
        admin_view = requests.get(emu.root_url + "/__emulator__/requests", timeout=5).text
    for text in (caplog.text, recorded, admin_view):
        assert token not in text
        assert "expired-secret-value" not in text
    # one line per request, without query strings (upload signatures)
    assert "Signature" not in caplog.text and "Expires=" not in caplog.text
    assert "POST /api/v4/extract/task 200" in caplog.text


def test_log_lines_one_per_request(caplog: pytest.LogCaptureFixture, api: Api) -> None:
    caplog.set_level(logging.INFO, logger="mineru_emulator")
    api.get("/extract/task/abc?x=1")
    assert caplog.messages[-1] == "GET /api/v4/extract/task/abc 200"


# -- PDF writer and samples ------------------------------------------------------------------------


def test_make_pdf_round_trips_through_pypdf() -> None:
    from pypdf import PdfReader

    pages = [["Title (with) parens \\ slash", "Second line, 100% plain."], [], ["Last page café"]]
    reader = PdfReader(io.BytesIO(make_pdf(pages)))
    assert len(reader.pages) == 3
    for page, lines in zip(reader.pages, pages, strict=True):
        text = page.extract_text()
        for line in lines:
            assert line in text


def test_make_png_is_valid() -> None:
    data = make_png(3, 2, lambda x, y: (x * 80, y * 120, 7))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    raw = zlib.decompress(data[idat + 4 : idat + 4 + length])
    assert raw == bytes([0, 0, 0, 7, 80, 0, 7, 160, 0, 7, 0, 0, 120, 7, 80, 120, 7, 160, 120, 7])


def test_committed_samples_match_the_generator() -> None:
    for name in sample_names():
        committed = (SAMPLES_DIR / name).read_bytes()
        assert committed == sample_document(name), f"{name} is stale: run scripts/make_sample_documents.py"


def test_sample_pdfs_are_small_multi_page_and_round_trip() -> None:
    from pypdf import PdfReader

    expected_pages = {"annual_report.pdf": 3, "research_paper.pdf": 4, "invoice.pdf": 2}
    for name, count in expected_pages.items():
        data = (SAMPLES_DIR / name).read_bytes()
        assert len(data) < 10_000
        reader = PdfReader(io.BytesIO(data))
        assert len(reader.pages) == count
        for page, lines in zip(reader.pages, SAMPLE_PDF_TEXT[name], strict=True):
            text = page.extract_text()
            for line in lines:
                assert line in text
    png = (SAMPLES_DIR / "scanned_receipt.png").read_bytes()
    assert png.startswith(b"\x89PNG") and int.from_bytes(png[16:20], "big") == 200


def test_make_sample_documents_script(tmp_path: Path) -> None:
    script = REPO / "scripts" / "make_sample_documents.py"
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(sample_names())
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


# -- pytest plugin ---------------------------------------------------------------------------------


def test_plugin_fixtures(mineru_emulator: MinerUEmulator, mineru_emulator_v1: MinerUEmulator) -> None:
    assert mineru_emulator.base_url.endswith("/api/v4")
    assert mineru_emulator_v1.base_url.endswith("/api/v1")
    assert mineru_emulator.token == TOKEN
    started = time.monotonic()
    api = Api(mineru_emulator_v1)
    assert api.wait_task(api.submit(mineru_emulator_v1.sample_url("annual_report.pdf")))["state"] == "done"
    assert time.monotonic() - started < 2


def test_importing_the_emulator_loads_neither_the_provider_nor_airflow_nor_pypdf() -> None:
    code = (
        "import sys, mineru_emulator as e, mineru_emulator.cli;"
        "import mineru_emulator.mineru_api, mineru_emulator.server;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('airflow_provider_mineru', 'airflow', 'pypdf'));"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
