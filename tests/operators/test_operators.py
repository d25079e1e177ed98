"""Operators and sensors in real Airflow (``dag.test()``): failures, partial results, time-outs, retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_mineru.operators.mineru import (
    MinerUDownloadResultsOperator,
    MinerUSubmitBatchOperator,
    MinerUSubmitTaskOperator,
    MinerUUploadFilesOperator,
)
from airflow_provider_mineru.sensors.mineru import MinerUBatchSensor, MinerUTaskSensor
from tests.helpers import SAMPLES, new_dag, parse_dag, run_dag, sample_url, xcom

MODES = [pytest.param(True, id="deferrable"), pytest.param(False, id="blocking")]

pytestmark = pytest.mark.usefixtures("airflow_db")
make_dag = new_dag
run = run_dag


class TestSubmitTask:
    @pytest.mark.parametrize("deferrable", MODES)
    def test_failed_task_fails_with_err_msg(self, mineru_conn, capfd, deferrable, tmp_path):
        mineru_conn.fail_next_tasks("the document is damaged beyond repair")
        dag = parse_dag(
            MinerUSubmitTaskOperator,
            url=sample_url(mineru_conn, "invoice.pdf"),
            deferrable=deferrable,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd)
        assert states["parse"] == "failed"
        assert "the document is damaged beyond repair" in output
        assert "MinerUTaskFailedError" in output
        # no result: only the run manifest, and the ledger noting the failure
        assert sorted(p.name for p in tmp_path.iterdir()) == [".mineru-ledger", ".mineru-manifests"]

    @pytest.mark.parametrize("deferrable", MODES)
    def test_timeout_says_how_far_it_got(self, mineru_conn, capfd, deferrable):
        mineru_conn.stick("running")
        dag = parse_dag(
            MinerUSubmitTaskOperator,
            url=sample_url(mineru_conn, "annual_report.pdf"),
            deferrable=deferrable,
            timeout=1,
        )
        states, output = run(dag, capfd)
        assert states["parse"] == "failed"
        assert "timed out" in output
        assert "running" in output

    @pytest.mark.parametrize("deferrable", MODES)
    def test_retry_resumes_instead_of_resubmitting(self, mineru_conn, capfd, deferrable, tmp_path):
        from mineru_emulator import Fault

        # The first poll meets a permanent error, so the first try fails after submitting.
        mineru_conn.inject(Fault(endpoint="get_task", code="A0211", times=1))
        dag = parse_dag(
            MinerUSubmitTaskOperator,
            url=sample_url(mineru_conn, "invoice.pdf"),
            deferrable=deferrable,
            retries=1,
            retry_delay=timedelta(seconds=0),
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd)
        assert "A0211" in output
        assert states["parse"] == "success", output[-3000:]
        assert len(mineru_conn.requests_to("submit_task")) == 1
        assert "Resuming the MinerU task" in output
        from airflow_provider_mineru.version_compat import AIRFLOW_V_3_3_PLUS

        assert ("in the task_state_store" in output) == AIRFLOW_V_3_3_PLUS
        assert (tmp_path / "invoice" / "full.md").is_file()

    def test_failed_task_can_be_a_result_not_a_failure(self, mineru_conn, capfd):
        mineru_conn.fail_next_tasks("scan too blurry")
        dag = parse_dag(
            MinerUSubmitTaskOperator,
            url=sample_url(mineru_conn, "invoice.pdf"),
            fail_on_file_error=False,
        )
        states, _ = run(dag, capfd)
        assert states["parse"] == "success"
        value = xcom(dag, "parse")
        assert value["state"] == "failed"
        assert value["err_msg"] == "scan too blurry"

    def test_mapped_results_download(self, mineru_conn, capfd, tmp_path):
        with make_dag() as dag:
            parsed = MinerUSubmitTaskOperator.partial(task_id="parse", wait_for_completion=False).expand(
                url=[sample_url(mineru_conn, "invoice.pdf"), sample_url(mineru_conn, "research_paper.pdf")]
            )
            wait = MinerUTaskSensor.partial(task_id="wait", poke_interval=0.1, timeout=30).expand(
                mineru_task_id=parsed.output.map(lambda v: v["task_id"])
            )
            download = MinerUDownloadResultsOperator(task_id="download", results=wait.output, output_path=str(tmp_path))
            wait >> download
        states, output = run(dag, capfd)
        assert states["download"] == "success", output[-3000:]
        # no data_id and no URL in a sensor's XCom: each folder is named by its MinerU task id
        folders = list(tmp_path.iterdir())
        assert len(folders) == 2
        assert all((folder / "full.md").is_file() for folder in folders)

    @pytest.mark.parametrize("deferrable", MODES)
    def test_same_folder_whichever_way_the_task_was_waited_for(self, mineru_conn, capfd, deferrable, tmp_path):
        """submit (no wait) -> sensor -> download lands where the waiting operator lands: <output>/<URL stem>/."""
        url = sample_url(mineru_conn, "invoice.pdf")
        with make_dag() as dag:
            submit = MinerUSubmitTaskOperator(task_id="submit", url=url, wait_for_completion=False)
            wait = MinerUTaskSensor(
                task_id="wait",
                mineru_task_id="{{ ti.xcom_pull('submit')['task_id'] }}",
                poke_interval=0.1,
                timeout=30,
                deferrable=deferrable,
            )
            download = MinerUDownloadResultsOperator(
                task_id="download", results=submit.output, output_path=str(tmp_path / "later")
            )
            waited = MinerUSubmitTaskOperator(
                task_id="waited", url=url, output_path=str(tmp_path / "waited"), deferrable=deferrable
            )
            submit >> wait >> download
        states, output = run(dag, capfd)
        assert set(states.values()) == {"success"}, output[-3000:]
        assert xcom(dag, "submit")["source"] == url
        assert [p.name for p in (tmp_path / "later").iterdir()] == ["invoice"]
        waited_folders = sorted(p.name for p in (tmp_path / "waited").iterdir())
        assert waited_folders == [".mineru-ledger", ".mineru-manifests", "invoice"]
        assert xcom(dag, "download")["output_path"] == str(tmp_path / "later" / "invoice")
        assert waited.task_id in states

    def test_outage_while_checking_the_earlier_submission_never_pays_twice(self, mineru_conn, capfd):
        from mineru_emulator import Fault

        # try 1: fails after submitting; try 2: MinerU unreachable while it checks; try 3: resumes
        mineru_conn.inject(Fault(endpoint="get_batch", code="A0211", times=1))
        mineru_conn.inject(Fault(endpoint="get_batch", http_status=503, times=4))
        dag = parse_dag(
            MinerUSubmitBatchOperator,
            urls=[sample_url(mineru_conn, "invoice.pdf")],
            deferrable=False,
            retries=2,
            retry_delay=timedelta(seconds=0),
        )
        states, output = run(dag, capfd)
        assert states["parse"] == "success", output[-3000:]
        assert mineru_conn.batch_count == 1
        assert "Resuming the MinerU batch" in output

    def test_validation_error_before_any_request(self, mineru_conn, capfd):
        with make_dag() as dag:
            MinerUSubmitTaskOperator(
                task_id="parse", url=sample_url(mineru_conn, "a.pdf"), data_id="not valid!", retries=3
            )
        states, output = run(dag, capfd)
        assert states["parse"] == "failed"
        assert "invalid data_id='not valid!'" in output
        assert mineru_conn.requests == []

    def test_templated_arguments(self, mineru_conn, capfd, tmp_path):
        with make_dag(params={"doc": "invoice"}) as dag:
            MinerUSubmitTaskOperator(
                task_id="parse",
                url=sample_url(mineru_conn, "{{ params.doc }}.pdf"),
                data_id="{{ params.doc }}-{{ task.task_id }}",
                page_ranges="1-{{ 1 + 0 }}",
                output_path=str(tmp_path) + "/{{ params.doc }}",
                deferrable=False,
                poll_interval=0.1,
            )
        states, _ = run(dag, capfd)
        assert states["parse"] == "success"
        body = mineru_conn.requests_to("submit_task")[0].json
        assert body["data_id"] == "invoice-parse"
        assert body["page_ranges"] == "1-1"
        assert (tmp_path / "invoice" / "invoice-parse" / "full.md").is_file()


class TestBatches:
    @pytest.mark.parametrize("deferrable", MODES)
    def test_failed_file_fails_task_after_saving_others(self, mineru_conn, capfd, deferrable, tmp_path):
        mineru_conn.fail_next_tasks("unsupported scan quality", match="invoice")
        dag = parse_dag(
            MinerUSubmitBatchOperator,
            urls=[sample_url(mineru_conn, "annual_report.pdf"), sample_url(mineru_conn, "invoice.pdf")],
            deferrable=deferrable,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd)
        assert states["parse"] == "failed"
        assert "1 of 2 files failed" in output
        assert "invoice.pdf: unsupported scan quality" in output
        assert (tmp_path / "annual_report" / "full.md").is_file()
        value = xcom(dag, "parse")
        assert [r["state"] for r in value["results"]] == ["done", "failed"]
        assert value["results"][1]["err_msg"] == "unsupported scan quality"

    def test_more_than_200_urls_are_split(self, mineru_conn, capfd):
        urls = [sample_url(mineru_conn, "invoice.pdf") + f"?copy={i}" for i in range(205)]
        with make_dag() as dag:
            MinerUSubmitBatchOperator(task_id="parse", urls=urls, wait_for_completion=False)
        states, _ = run(dag, capfd)
        assert states["parse"] == "success"
        batches = mineru_conn.requests_to("submit_batch")
        assert [len(r.json["files"]) for r in batches] == [200, 5]
        value = xcom(dag, "parse")
        assert len(value["batch_ids"]) == 2
        assert len(value["results"]) == 205

    @pytest.mark.parametrize("deferrable", MODES)
    def test_upload_files_then_download_operator(self, mineru_conn, capfd, deferrable, tmp_path):
        with make_dag() as dag:
            upload = MinerUUploadFilesOperator(
                task_id="upload",
                paths=[str(SAMPLES / "*.pdf"), {"path": str(SAMPLES / "scanned_receipt.png"), "data_id": "receipt"}],
                wait_for_completion=False,
                upload_concurrency=2,
            )
            wait = MinerUBatchSensor(
                task_id="wait",
                batch_id=upload.output if deferrable else "{{ ti.xcom_pull('upload')['batch_ids'] }}",
                deferrable=deferrable,
                poke_interval=0.1,
                timeout=60,
            )
            download = MinerUDownloadResultsOperator(
                task_id="download", results=upload.output, output_path=str(tmp_path)
            )
            upload >> wait >> download
        states, output = run(dag, capfd)
        assert states == {"upload": "success", "wait": "success", "download": "success"}, output[-3000:]
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["annual_report", "invoice", "receipt", "research_paper"]
        assert mineru_conn.requests_to("get_task") == []

    @pytest.mark.parametrize("deferrable", MODES)
    def test_failed_upload_is_a_failed_file_not_a_lost_batch(self, mineru_conn, capfd, deferrable, tmp_path):
        from mineru_emulator import Fault

        mineru_conn.inject(
            Fault(endpoint="upload", match=".png", http_status=403, body="<Error><Code>AccessDenied</Code></Error>")
        )
        with make_dag() as dag:
            MinerUUploadFilesOperator(
                task_id="upload",
                paths=[str(SAMPLES / "invoice.pdf"), str(SAMPLES / "scanned_receipt.png")],
                output_path=str(tmp_path),
                fail_on_file_error=False,
                deferrable=deferrable,
                poll_interval=0.1,
            )
        states, output = run(dag, capfd)
        assert states["upload"] == "success", output[-2000:]
        value = xcom(dag, "upload")
        assert [(r["file_name"], r["state"]) for r in value["results"]] == [
            ("invoice.pdf", "done"),
            ("scanned_receipt.png", "failed"),
        ]
        assert "AccessDenied" in value["results"][1]["err_msg"]
        assert (tmp_path / "invoice" / "full.md").is_file()
        assert len(mineru_conn.requests_to("file_urls")) == 1

    def test_bad_file_is_refused_before_any_request(self, mineru_conn, capfd, tmp_path):
        (tmp_path / "notes.txt").write_text("not a document")
        (tmp_path / "empty.pdf").write_bytes(b"")
        with make_dag() as dag:
            MinerUUploadFilesOperator(task_id="txt", paths=[str(tmp_path / "notes.txt")])
            MinerUUploadFilesOperator(task_id="empty", paths=[str(tmp_path / "empty.pdf")])
            MinerUUploadFilesOperator(task_id="missing", paths=[str(tmp_path / "missing.pdf")])
        states, output = run(dag, capfd)
        assert states == {"txt": "failed", "empty": "failed", "missing": "failed"}
        assert "unsupported file type '.txt'" in output
        assert "empty" in output
        assert "no such file" in output
        assert mineru_conn.requests == []


class TestSensors:
    @pytest.mark.parametrize("deferrable", MODES)
    def test_task_sensor_fails_on_failed_task(self, mineru_conn, capfd, deferrable):
        mineru_conn.fail_next_tasks("cannot read page 3")
        with make_dag() as dag:
            submit = MinerUSubmitTaskOperator(
                task_id="submit", url=sample_url(mineru_conn, "invoice.pdf"), wait_for_completion=False
            )
            wait = MinerUTaskSensor(
                task_id="wait",
                mineru_task_id="{{ ti.xcom_pull(task_ids='submit')['task_id'] }}",
                deferrable=deferrable,
                poke_interval=0.1,
                timeout=30,
            )
            submit >> wait
        states, output = run(dag, capfd)
        assert states == {"submit": "success", "wait": "failed"}
        assert "cannot read page 3" in output
