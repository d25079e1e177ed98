"""
The self-hosted flavor end to end against the real ``mineru-api`` 4.0.12 (see ``conftest.py``).

The server runs ``--tier flash`` without model weights: DOCX, HTML, CSV and text PDFs parse; the
scanned PNG tries to fetch OCR weights and fails cleanly (per file) while the others succeed.
"""

from __future__ import annotations

import json
import shutil

import pytest

from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator
from tests.helpers import load_example, parse_dag, run_dag, xcom
from tests.helpers.selfhosted_samples import SCAN, TEXTS, file_server
from tests.live.conftest import SAMPLES, live_connection

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_health_version_and_key(live_conn):
    ok, message = MinerUHook().test_connection()
    assert ok, message
    assert "mineru-api 4.0." in message


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "blocking"])
def test_example_dag_parses_a_folder_and_the_scan_fails_cleanly(live_conn, tmp_path, monkeypatch, capfd, deferrable):
    folder = tmp_path / "inputs"
    shutil.copytree(SAMPLES, folder)
    out = tmp_path / "out"
    monkeypatch.setenv("MINERU_EXAMPLE_TIER", "flash")
    monkeypatch.setenv("MINERU_EXAMPLE_DOCUMENTS", str(folder))
    dag = load_example("mineru_self_hosted", deferrable=deferrable, output=out, monkeypatch=monkeypatch).dag
    states, output = run_dag(dag, capfd, run_conf={"output_path": str(out)})
    assert set(states.values()) == {"success"}, output[-4000:]
    for name, words in TEXTS.items():
        markdown = (out / name.rsplit(".", 1)[0] / "full.md").read_text()
        assert words in markdown, (name, markdown[:500])
    html = out / "page"
    links = [line[4:-1] for line in (html / "full.md").read_text().splitlines() if line.startswith("![](")]
    assert links and all((html / link).is_file() for link in links)
    result = xcom(dag, "parse_documents")
    by_name = {e["file_name"]: e for e in result["results"]}
    assert by_name[SCAN]["state"] == "failed" and by_name[SCAN]["err_msg"]
    assert {by_name[n]["state"] for n in TEXTS} == {"done"}
    assert not (out / "scan").exists()
    documents = xcom(dag, "documents")
    assert any(TEXTS["report.pdf"] in d["text"] for d in documents)


def test_url_task_from_a_loopback_file_server(live_conn, tmp_path, capfd):
    with file_server(SAMPLES) as root:
        dag = parse_dag(
            MinerUSubmitTaskOperator, url=f"{root}/report.pdf", tier="flash", output_path=str(tmp_path), poll_interval=1
        )
        states, output = run_dag(dag, capfd)
    assert states["parse"] == "success", output[-4000:]
    assert xcom(dag, "parse")["state"] == "done"
    assert TEXTS["report.pdf"] in (tmp_path / "report" / "full.md").read_text()


def test_wrong_key_fails_with_an_auth_error(live_server, monkeypatch, capfd):
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", live_connection(live_server, password="wrong-key"))
    ok, message = MinerUHook().test_connection()
    assert not ok and "refused the API key" in message
    dag = parse_dag(MinerUSubmitTaskOperator, url="http://127.0.0.1:9/a.docx", retries=0)
    states, output = run_dag(dag, capfd)
    assert states["parse"] == "failed"
    assert "MinerUAuthError" in output and "invalid_api_key" in output
    assert json.loads(live_connection(live_server))["password"] not in output
