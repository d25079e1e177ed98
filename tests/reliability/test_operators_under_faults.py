"""
Representative faults through real operators and DAGs (``dag.test()``), deferrable and blocking.

The hook-level matrix (``test_fault_matrix.py``) covers every call × fault; here the same faults
hit a whole run at once, and the assertions are the ones a user cares about: the DAG succeeds,
every document's Markdown landed, nothing was submitted twice, permanent errors fail fast with
MinerU's code, message and ``trace_id``, and a retry of the Airflow task resumes.
"""

from __future__ import annotations

import re

import pytest

from airflow_provider_mineru.operators.mineru import (
    MinerUSubmitBatchOperator,
    MinerUSubmitTaskOperator,
    MinerUUploadFilesOperator,
)
from mineru_emulator import Fault
from tests.helpers import parse_dag
from tests.helpers.reliability import (
    MODES,
    PDFS,
    RETRY_ONCE,
    SAMPLES,
    accounted_documents,
    make_dag,
    pdf_paths,
    pdf_urls,
    run,
    sample_url,
    set_conn,
    xcom,
)

pytestmark = pytest.mark.usefixtures("airflow_db")

MODE_PARAMS = [pytest.param(flag, id=name) for name, flag in MODES]
NGINX_502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"


def _all_fired(faults):
    return {f.label: (f.fired, f.times) for f in faults if f.fired != f.times}


class TestTransientFaultsAreAbsorbed:
    @pytest.mark.parametrize("deferrable", MODE_PARAMS)
    def test_upload_files_operator(self, emulator, monkeypatch, capfd, caplog, tmp_path, deferrable, ledger, request):
        set_conn(monkeypatch, emulator)
        faults = [
            emulator.inject(Fault(endpoint="file_urls", http_status=503, retry_after=0.05)),
            emulator.inject(Fault(endpoint="upload", reset=True)),
            emulator.inject(Fault(endpoint="upload", http_status=502, body=NGINX_502)),
            emulator.inject(Fault(endpoint="get_batch", http_status=429, times=2)),
            emulator.inject(Fault(endpoint="get_batch", malformed_json=True)),
            emulator.inject(Fault(endpoint="get_batch", http_status=503, times=6)),  # beyond the hook's 3 retries
            emulator.inject(Fault(endpoint="download", truncated=True)),
            emulator.inject(Fault(endpoint="download", http_status=503)),
        ]
        dag = parse_dag(
            MinerUUploadFilesOperator,
            paths=pdf_paths(),
            deferrable=deferrable,
            upload_concurrency=2,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "success"}, output[-3000:]
        assert not _all_fired(faults)
        assert "will poll again" in output  # the 503s beyond the hook's retries were absorbed by the wait
        value = xcom(dag, "parse")
        assert [r["state"] for r in value["results"]] == ["done"] * 3
        assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))
        # nothing twice: one batch, one upload URL request answered, each file stored once
        assert emulator.batch_count == 1
        assert len([r for r in emulator.requests_to("file_urls") if r.fault is None]) == 1
        stored = [r.path.split("?")[0] for r in emulator.requests_to("upload") if r.fault is None]
        assert len(stored) == len(set(stored)) == 3

    @pytest.mark.parametrize("deferrable", MODE_PARAMS)
    def test_url_batch_operator(self, emulator, monkeypatch, capfd, caplog, tmp_path, deferrable, ledger, request):
        set_conn(monkeypatch, emulator)
        faults = [
            emulator.inject(Fault(endpoint="submit_batch", reset=True)),
            emulator.inject(Fault(endpoint="submit_batch", http_status=502, body=NGINX_502)),
            emulator.inject(Fault(endpoint="get_batch", code=-60009, code_as_string=True)),
            emulator.inject(Fault(endpoint="get_batch", truncated=True)),
            emulator.inject(Fault(endpoint="get_batch", code=-10001, times=5)),  # beyond the hook's retries
            emulator.inject(Fault(endpoint="download", reset=True, times=2)),
        ]
        dag = parse_dag(
            MinerUSubmitBatchOperator,
            urls=pdf_urls(emulator),
            deferrable=deferrable,
            **RETRY_ONCE,  # a reset after sending a submit is not re-sent by the hook: the Airflow retry sends it
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "success"}, output[-3000:]
        assert not _all_fired(faults)
        assert (
            "MinerUAmbiguousSubmitError" in output
            and "at most one duplicate task may exist for: annual_report" in output
        )
        assert "will poll again" in output
        value = xcom(dag, "parse")
        assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))
        assert emulator.batch_count == 1  # the reset and the 502 came before MinerU processed the batch
        assert emulator.task_count == 0 and emulator.file_count == 3

    @pytest.mark.parametrize("deferrable", MODE_PARAMS)
    def test_single_task_operator(self, emulator, monkeypatch, capfd, caplog, tmp_path, deferrable, ledger, request):
        set_conn(monkeypatch, emulator)
        faults = [
            emulator.inject(Fault(endpoint="submit_task", http_status=429, retry_after=0.2)),
            emulator.inject(Fault(endpoint="submit_task", reset=True)),
            emulator.inject(Fault(endpoint="get_task", http_status=500)),
            emulator.inject(Fault(endpoint="get_task", code=-60007)),
            emulator.inject(Fault(endpoint="get_task", malformed_json=True)),
            emulator.inject(Fault(endpoint="download", truncated=True)),
        ]
        dag = parse_dag(
            MinerUSubmitTaskOperator,
            url=sample_url(emulator, "invoice.pdf"),
            data_id="invoice",
            deferrable=deferrable,
            **RETRY_ONCE,  # the reset after sending the submit fails the first try (never re-sent by the hook)
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "success"}, output[-3000:]
        assert not _all_fired(faults)
        assert "MinerUAmbiguousSubmitError" in output and "duplicate task may exist for: invoice" in output
        assert emulator.task_count == 1  # the emulator resets before processing: nothing was paid twice
        value = xcom(dag, "parse")
        assert not ledger.account(request, ["invoice"], accounted_documents(value, output, ["invoice"]))
        assert emulator.task_count == 1
        submits = emulator.requests_to("submit_task")
        assert submits[1].time - submits[0].time >= 0.18  # Retry-After honoured inside a DAG run too


class TestPermanentFaultsFailFast:
    def test_quota_on_submit(self, emulator, monkeypatch, capfd, caplog):
        set_conn(monkeypatch, emulator)
        emulator.inject(Fault(endpoint="submit_task", code=-60017, msg="page quota exceeded: 2000 of 2000 used"))
        with make_dag() as dag:
            MinerUSubmitTaskOperator(task_id="parse", url=sample_url(emulator, "invoice.pdf"), deferrable=False)
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "failed"}
        assert "MinerUQuotaError" in output
        assert re.search(r"MinerU error -60017: page quota exceeded: 2000 of 2000 used \(trace_id=[0-9a-f]{32}", output)
        assert len(emulator.requests_to("submit_task")) == 1
        assert emulator.task_count == 0

    def test_expired_token_on_upload_urls(self, emulator, monkeypatch, capfd, caplog):
        set_conn(monkeypatch, emulator)
        emulator.inject(Fault(endpoint="file_urls", code="A0211", http_status=401, msg="token expired"))
        with make_dag() as dag:
            MinerUUploadFilesOperator(task_id="parse", paths=[str(SAMPLES / "invoice.pdf")], deferrable=False)
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "failed"}
        assert re.search(r"MinerU error A0211: token expired \(trace_id=[0-9a-f]{32}, HTTP 401\)", output)
        assert len(emulator.requests_to("file_urls")) == 1
        assert emulator.requests_to("upload") == []

    @pytest.mark.parametrize("deferrable", MODE_PARAMS)
    def test_permission_error_while_waiting(self, emulator, monkeypatch, capfd, caplog, deferrable):
        set_conn(monkeypatch, emulator)
        emulator.inject(Fault(endpoint="get_batch", code=-60013, msg="no permission for this batch"))
        with make_dag() as dag:
            MinerUSubmitBatchOperator(
                task_id="parse", urls=[sample_url(emulator, "invoice.pdf")], deferrable=deferrable, poll_interval=0.1
            )
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "failed"}
        assert "MinerUAuthError" in output
        assert re.search(
            r"MinerU error -60013: polling MinerU batch \S+: no permission for this batch \(trace_id=[0-9a-f]{32}",
            output,
        )
        assert len(emulator.requests_to("get_batch")) == 1


class TestAirflowRetryResumes:
    @pytest.mark.parametrize("deferrable", MODE_PARAMS)
    def test_url_batch_retry_resumes(self, emulator, monkeypatch, capfd, caplog, tmp_path, deferrable, ledger, request):
        set_conn(monkeypatch, emulator)
        emulator.inject(Fault(endpoint="get_batch", code="A0211", http_status=401))  # fails the first try
        dag = parse_dag(
            MinerUSubmitBatchOperator,
            urls=pdf_urls(emulator),
            deferrable=deferrable,
            **RETRY_ONCE,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "success"}, output[-3000:]
        assert "A0211" in output and "Resuming the MinerU batch" in output
        assert emulator.batch_count == 1
        value = xcom(dag, "parse")
        assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))

    @pytest.mark.parametrize("deferrable", MODE_PARAMS)
    def test_upload_retry_resumes(self, emulator, monkeypatch, capfd, caplog, tmp_path, deferrable, ledger, request):
        set_conn(monkeypatch, emulator)
        emulator.inject(Fault(endpoint="get_batch", code=-60013))  # fails the first try after the uploads
        dag = parse_dag(
            MinerUUploadFilesOperator,
            paths=pdf_paths(),
            deferrable=deferrable,
            **RETRY_ONCE,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "success"}, output[-3000:]
        assert "Resuming the MinerU batch" in output
        assert emulator.batch_count == 1
        assert len(emulator.requests_to("upload")) == 3
        value = xcom(dag, "parse")
        assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))

    @pytest.mark.parametrize("deferrable", MODE_PARAMS)
    def test_retry_after_failed_download_resumes(
        self, emulator, monkeypatch, capfd, caplog, tmp_path, deferrable, ledger, request
    ):
        """The results cannot be downloaded in the first try: the retry resumes and downloads them."""
        set_conn(monkeypatch, emulator)
        # every download of the first try fails beyond the hook's retries (4 attempts)
        emulator.inject(Fault(endpoint="download", http_status=503, times=4))
        dag = parse_dag(
            MinerUSubmitBatchOperator,
            urls=pdf_urls(emulator),
            deferrable=deferrable,
            **RETRY_ONCE,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        assert states == {"parse": "success"}, output[-3000:]
        value = xcom(dag, "parse")
        assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))
        assert emulator.batch_count == 1, "the retry resubmitted the batch instead of resuming it"

    def test_retry_after_partial_upload_failure_uploads_only_the_rest(
        self, emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request
    ):
        set_conn(monkeypatch, emulator)
        forbidden = (
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
            "<Message>Access denied by bucket policy.</Message></Error>"
        )
        emulator.inject(Fault(endpoint="upload", http_status=403, body=forbidden, content_type="application/xml"))
        dag = parse_dag(
            MinerUUploadFilesOperator,
            paths=pdf_paths(),
            deferrable=False,
            upload_concurrency=1,
            **RETRY_ONCE,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        assert "AccessDenied" in output  # the first try's upload error is shown
        assert states == {"parse": "success"}, output[-3000:]
        value = xcom(dag, "parse")
        assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))
        stored = [r for r in emulator.requests_to("upload") if r.fault is None and r.status == 200]
        assert len(stored) == 3, f"{len(stored)} documents stored (and parsed) for 3 files"

    def test_retry_after_a_failed_file_resubmits_only_that_file(
        self, emulator, monkeypatch, capfd, caplog, tmp_path, ledger, request
    ):
        set_conn(monkeypatch, emulator)
        emulator.fail_next_tasks("-60010: parsing failed", match="invoice")  # may succeed on resubmit
        dag = parse_dag(
            MinerUSubmitBatchOperator,
            urls=pdf_urls(emulator),
            deferrable=False,
            **RETRY_ONCE,
            output_path=str(tmp_path),
        )
        states, output = run(dag, capfd, caplog)
        assert "-60010: parsing failed" in output
        assert states == {"parse": "success"}, output[-3000:]
        value = xcom(dag, "parse")
        assert not ledger.account(request, PDFS, accounted_documents(value, output, PDFS))
        assert emulator.file_count == 3 + 1, f"{emulator.file_count} documents parsed for 3 (+1 retried)"
