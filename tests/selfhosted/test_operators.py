"""Operators, sensors and the example DAG on ``api_flavor="mineru-api"`` (real Airflow, the V1 emulator room)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from airflow_provider_mineru.operators.mineru import (
    MinerUDownloadResultsOperator,
    MinerUSubmitBatchOperator,
    MinerUSubmitTaskOperator,
    MinerUUploadFilesOperator,
)
from airflow_provider_mineru.sensors.mineru import MinerUBatchSensor
from mineru_emulator.mineru_api import Fault
from tests.helpers import load_example, new_dag, parse_dag, run_dag, xcom
from tests.helpers.selfhosted_samples import SCAN, file_server, make_docx

MODES = [pytest.param(True, id="deferrable"), pytest.param(False, id="blocking")]
pytestmark = pytest.mark.usefixtures("airflow_db")


class TestExampleDag:
    @pytest.mark.parametrize("deferrable", MODES)
    def test_folder_with_a_scan_on_a_flash_server(self, v1_conn, samples, tmp_path, monkeypatch, capfd, deferrable):
        folder, texts = samples
        monkeypatch.setenv("MINERU_EXAMPLE_TIER", "flash")
        monkeypatch.setenv("MINERU_EXAMPLE_DOCUMENTS", str(folder))
        dag = load_example(
            "mineru_self_hosted", deferrable=deferrable, output=tmp_path / "out", monkeypatch=monkeypatch
        ).dag
        states, output = run_dag(dag, capfd, run_conf={"output_path": str(tmp_path / "out")})
        assert set(states.values()) == {"success"}, output[-3000:]
        for name, words in texts.items():
            stem = name.rsplit(".", 1)[0]
            assert words in (tmp_path / "out" / stem / "full.md").read_text(), name
            assert (tmp_path / "out" / stem / "documents.jsonl").is_file()
        result = xcom(dag, "parse_documents")
        failed = [e for e in result["results"] if e["state"] == "failed"]
        assert [e["file_name"] for e in failed] == [SCAN] and "parse_failed" in failed[0]["err_msg"]
        assert {e["state"] for e in result["results"]} == {"done", "failed"}
        assert len(result["batch_ids"]) == 1 and result["batch_ids"][0].startswith("job_")
        pages = xcom(dag, "documents")
        assert any(texts["report.pdf"] in p["text"] for p in pages)
        assert {p["metadata"]["page_number"] for p in pages if p["metadata"]["file_name"] == "report.pdf"} == {1, 2}
        assert len(v1_conn.requests_to("submit")) == 1

    def test_the_same_dag_on_both_flavors_by_changing_the_connection(
        self, mineru_conn, v1_server, tmp_path, monkeypatch, capfd
    ):
        from tests.selfhosted.conftest import v1_connection

        folder = tmp_path / "docs"
        folder.mkdir()
        make_docx(folder / "alpha.docx", "Alpha memo about otters")
        make_docx(folder / "beta.docx", "Beta memo about herons")
        monkeypatch.setenv("MINERU_EXAMPLE_DOCUMENTS", str(folder))
        cloud_conn = json.loads(mineru_conn.connection_json())
        cloud_conn["extra"].update({"retry_backoff": 0.01, "max_retries": 2})
        outputs = {}
        for flavor, conn in (("cloud", json.dumps(cloud_conn)), ("mineru-api", v1_connection(v1_server))):
            monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", conn)
            out = tmp_path / flavor
            dag = load_example("mineru_self_hosted", deferrable=True, output=out, monkeypatch=monkeypatch).dag
            states, output = run_dag(dag, capfd, run_conf={"output_path": str(out)})
            assert set(states.values()) == {"success"}, (flavor, output[-3000:])
            outputs[flavor] = sorted(p.relative_to(out).as_posix() for p in out.rglob("full.md"))
            assert all((out / p).read_text().strip() for p in outputs[flavor])
        assert outputs["cloud"] == outputs["mineru-api"] == ["alpha/full.md", "beta/full.md"]
        assert "Alpha memo about otters" in (tmp_path / "mineru-api" / "alpha" / "full.md").read_text()
        assert len(mineru_conn.requests_to("file_urls")) == 1 and len(v1_server.requests_to("submit")) == 1


class TestOperators:
    @pytest.mark.parametrize("deferrable", MODES)
    def test_url_task_and_batch(self, v1_conn, samples, tmp_path, capfd, deferrable):
        folder, texts = samples
        with file_server(folder) as root:
            with new_dag() as dag:
                MinerUSubmitTaskOperator(
                    task_id="one",
                    url=f"{root}/report.pdf",
                    tier="flash",
                    deferrable=deferrable,
                    poll_interval=0.1,
                    output_path=str(tmp_path / "one"),
                    page_ranges="1",
                )
                MinerUSubmitBatchOperator(
                    task_id="many",
                    urls=[f"{root}/memo.docx", {"url": f"{root}/table.csv", "is_ocr": False}, f"{root}/missing.docx"],
                    deferrable=deferrable,
                    poll_interval=0.1,
                    output_path=str(tmp_path / "many"),
                    fail_on_file_error=False,
                )
            states, output = run_dag(dag, capfd)
        assert states == {"one": "success", "many": "success"}, output[-3000:]
        one = xcom(dag, "one")
        assert one["state"] == "done" and one["task_id"].startswith("job_")
        markdown = (tmp_path / "one" / "report" / "full.md").read_text()
        assert texts["report.pdf"] in markdown and "Methods and equipment" not in markdown
        many = xcom(dag, "many")
        assert [e["state"] for e in many["results"]] == ["done", "done", "failed"]
        assert "404" in many["results"][2]["err_msg"]
        assert texts["table.csv"] in (tmp_path / "many" / "table" / "full.md").read_text()

    def test_download_operator_and_batch_sensor(self, v1_conn, samples, tmp_path, capfd):
        folder, texts = samples
        with new_dag() as dag:
            submit = MinerUUploadFilesOperator(
                task_id="submit",
                paths=[str(folder / "memo.docx"), str(folder / "page.html")],
                wait_for_completion=False,
            )
            wait = MinerUBatchSensor(task_id="wait", batch_id=submit.output, poke_interval=0.1)
            download = MinerUDownloadResultsOperator(
                task_id="download", results=submit.output, output_path=str(tmp_path)
            )
            submit >> wait >> download
        states, output = run_dag(dag, capfd)
        assert set(states.values()) == {"success"}, output[-3000:]
        assert texts["page.html"] in (tmp_path / "page" / "full.md").read_text()
        assert [e["state"] for e in xcom(dag, "download")["results"]] == ["done", "done"]

    @pytest.mark.parametrize("deferrable", MODES)
    def test_retry_resumes_the_same_v1_task(self, v1_conn, samples, tmp_path, capfd, deferrable):
        folder, _ = samples
        v1_conn.inject(Fault(endpoint="get_task", http_status=403, code="forbidden", message="no", times=1))
        dag = parse_dag(
            MinerUUploadFilesOperator,
            paths=str(folder / "memo.docx"),
            deferrable=deferrable,
            retries=1,
            retry_delay=timedelta(seconds=0),
            output_path=str(tmp_path),
        )
        states, output = run_dag(dag, capfd)
        assert states["parse"] == "success", output[-3000:]
        assert len(v1_conn.requests_to("submit")) == 1
        assert "Resuming the MinerU batch" in output
        assert (tmp_path / "memo" / "full.md").is_file()

    def test_a_restarted_server_is_submitted_to_again(self, v1_conn, samples, tmp_path, capfd):
        folder, _ = samples

        v1_conn.inject(Fault(endpoint="get_task", http_status=403, code="forbidden", message="no", restart=True))
        dag = parse_dag(
            MinerUUploadFilesOperator,
            paths=str(folder / "memo.docx"),
            deferrable=False,
            retries=1,
            retry_delay=timedelta(seconds=0),
            output_path=str(tmp_path),
        )
        states, output = run_dag(dag, capfd)
        assert states["parse"] == "success", output[-3000:]
        assert "the server forgot the task: restarted or past its retention" in output
        assert len(v1_conn.requests_to("submit")) == 2

    @pytest.mark.parametrize(
        ("kwargs", "words"),
        [
            ({"callback": "https://x.example/cb", "seed": "abc"}, "callback"),
            ({"extra_formats": ["docx"]}, "extra_formats"),
            ({"model_version": "vlm"}, "model_version"),
        ],
    )
    def test_options_mineru_api_cannot_honour_fail_before_any_request(self, v1_conn, capfd, kwargs, words):
        dag = parse_dag(MinerUSubmitTaskOperator, url="https://x.example/a.docx", **kwargs)
        states, output = run_dag(dag, capfd)
        assert states["parse"] == "failed"
        assert f"invalid {words}=" in output and "api_flavor 'mineru-api'" in output
        assert v1_conn.requests == []

    def test_tier_on_the_cloud_fails_before_any_request(self, mineru_conn, capfd, tmp_path):
        make_docx(tmp_path / "a.docx", "x")
        dag = parse_dag(MinerUUploadFilesOperator, paths=str(tmp_path / "a.docx"), tier="flash")
        states, output = run_dag(dag, capfd)
        assert states["parse"] == "failed"
        assert "invalid tier='flash'" in output and "api_flavor is 'cloud'" in output
        assert mineru_conn.requests == []
