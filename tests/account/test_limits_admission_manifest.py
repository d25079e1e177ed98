"""Account extras, the admission decision, and the run manifest (local and moto S3)."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_mineru.account.admission import AdmissionAction, OnBudgetExhausted, decide_admission
from airflow_provider_mineru.account.budget import BudgetStatus, Reservation
from airflow_provider_mineru.account.limits import ACCOUNT_CONN_FIELDS, AccountLimits
from airflow_provider_mineru.account.manifest import ManifestRow, manifest_path, read_manifest, write_manifest
from airflow_provider_mineru.exceptions import MinerUValidationError

# ------------------------------------------------------------------------------------------ limits


def test_defaults_are_minerus_published_limits(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    limits = AccountLimits.from_extra({})
    assert (limits.daily_page_budget, limits.daily_file_budget, limits.submit_rpm, limits.query_rpm) == (
        None,
        None,
        300,
        1000,
    )
    assert limits.account_store == str(tmp_path / "mineru-account")
    assert not limits.store_is_shared_across_machines


def test_extras_are_read_from_text_too():
    limits = AccountLimits.from_extra(
        {
            "daily_page_budget": "2000",
            "daily_file_budget": 0,
            "submit_rpm": "120",
            "query_rpm": " ",
            "account_store": "s3://aws_prod@my-bucket/mineru/account/",
        }
    )
    assert (limits.daily_page_budget, limits.daily_file_budget, limits.submit_rpm, limits.query_rpm) == (
        2000,
        0,
        120,
        1000,
    )
    assert limits.account_store == "s3://aws_prod@my-bucket/mineru/account"
    assert limits.store_is_shared_across_machines


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"daily_page_budget": -1}, "connection extra daily_page_budget=-1: must be a whole number from 0"),
        ({"daily_file_budget": 2.5}, "connection extra daily_file_budget=2.5: must be a whole number"),
        ({"submit_rpm": 0}, "connection extra submit_rpm=0: must be a whole number from 1 to 100000"),
        ({"query_rpm": "lots"}, "connection extra query_rpm='lots': must be a whole number"),
        ({"query_rpm": True}, "connection extra query_rpm=True"),
        ({"account_store": "gs://bucket/x"}, "account_store='gs://bucket/x': must be an s3:// URL or a local"),
        ({"account_store": "relative/dir"}, "must be an absolute directory path"),
        ({"account_store": "s3://Bad_Bucket"}, "must be s3://[aws_conn_id@]bucket[/prefix]"),
        ({"account_store": 5}, "account_store=5: must be text"),
    ],
)
def test_invalid_extras_name_the_extra_and_the_rule(extra, words):
    with pytest.raises(MinerUValidationError) as error:
        AccountLimits.from_extra(extra)
    assert words in str(error.value)


def test_form_fields_have_the_connection_forms_shape():
    for name, spec in ACCOUNT_CONN_FIELDS.items():
        assert set(spec) == {"label", "schema", "description"}, name
        assert "null" in spec["schema"]["type"]


# --------------------------------------------------------------------------------------- admission

RESETS = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)


def _reservation(admitted, pages_left=0):
    status = (
        BudgetStatus.GRANTED if len(admitted) == 4 else (BudgetStatus.PARTIAL if admitted else BudgetStatus.EXHAUSTED)
    )
    return Reservation(status, "2026-12-01", 0, len(admitted), RESETS, tuple(admitted), pages_left, None)


PAGES = [5, 50, 3, 2000]


def test_everything_fits_is_submitted_whatever_the_policy():
    for policy in OnBudgetExhausted:
        admission = decide_admission(PAGES, _reservation([0, 1, 2, 3]), policy, None)
        assert (admission.action, admission.send) == (AdmissionAction.SUBMIT, (0, 1, 2, 3))


def test_defer_sends_what_fits_and_waits_for_the_reset():
    admission = decide_admission(PAGES, _reservation([0, 2]), OnBudgetExhausted.DEFER, 100)
    assert admission.action is AdmissionAction.DEFER
    assert (admission.send, admission.later, admission.never_fits) == ((0, 2), (1,), (3,))
    assert admission.resume_at == RESETS
    assert "resets at 2026-12-02 00:00 UTC" in admission.message


def test_skip_reports_the_rest_as_deferred_budget():
    admission = decide_admission(PAGES, _reservation([0]), OnBudgetExhausted.SKIP, 100)
    assert (admission.action, admission.send, admission.skipped) == (AdmissionAction.SUBMIT, (0,), (1, 2))
    assert admission.resume_at is None


def test_fail_sends_nothing_and_releases():
    admission = decide_admission(PAGES, _reservation([0, 2]), OnBudgetExhausted.FAIL, None)
    assert (admission.action, admission.send, admission.release_reservation) == (AdmissionAction.FAIL, (), True)
    assert "2 of 4 documents do not fit" in admission.message


def test_defer_with_only_never_fitting_documents_left_does_not_wait_forever():
    admission = decide_admission(PAGES, _reservation([0, 1, 2]), OnBudgetExhausted.DEFER, 100)
    assert (admission.action, admission.never_fits, admission.later) == (AdmissionAction.SUBMIT, (3,), ())


def test_policy_is_validated():
    assert OnBudgetExhausted.parse("skip") is OnBudgetExhausted.SKIP
    with pytest.raises(MinerUValidationError, match="on_budget_exhausted"):
        OnBudgetExhausted.parse("wait")


# ---------------------------------------------------------------------------------------- manifest

ROWS = [
    ManifestRow("/in/a.pdf", "done", pages=12, data_id="a_pdf", batch_id="b-1", output="/out/a"),
    ManifestRow("/in/b.docx", "failed", pages=1, data_id="b_docx", batch_id="b-1", error_code="-60010", error="x"),
    ManifestRow("/in/c.pdf", "deferred_budget", pages=300),
]


def test_manifest_is_written_beside_the_outputs(tmp_path):
    where = write_manifest(
        tmp_path / "out",
        ROWS,
        dag_id="parse_docs",
        run_id="manual__2026-12-07T17:00:00+00:00",
        task_id="parse",
        map_index=3,
    )
    assert where.startswith(
        str(tmp_path / "out" / ".mineru-manifests" / "parse_docs" / "manual__2026-12-07T17_00_00_00_00-")
    )
    assert where.endswith("/parse-3.jsonl")
    lines = read_manifest(where)
    assert [line["outcome"] for line in lines] == ["done", "failed", "deferred_budget"]
    assert lines[1] == {
        "v": 1,
        "input": "/in/b.docx",
        "outcome": "failed",
        "pages": 1,
        "data_id": "b_docx",
        "task_id": None,
        "batch_id": "b-1",
        "error_code": "-60010",
        "error": "x",
        "output": None,
    }
    assert not list((tmp_path / "out").rglob(".tmp-*"))


def test_a_later_try_replaces_the_manifest(tmp_path):
    args = {"dag_id": "d", "run_id": "r", "task_id": "t"}
    write_manifest(tmp_path, ROWS, **args)
    where = write_manifest(tmp_path, ROWS[:1], **args)
    assert len(read_manifest(where)) == 1
    assert where == str(manifest_path(tmp_path, **args))


def test_unknown_outcome_is_refused():
    with pytest.raises(ValueError, match="outcome"):
        ManifestRow("x", "maybe")


def test_manifest_on_object_storage(aws_conn, s3_client, s3_bucket):
    where = write_manifest(f"s3://{aws_conn}@{s3_bucket}/out", ROWS, dag_id="d", run_id="r", task_id="t")
    body = s3_client.get_object(Bucket=s3_bucket, Key="out/.mineru-manifests/d/r/t.jsonl")["Body"].read()
    assert body.count(b"\n") == 3
    assert [line["input"] for line in read_manifest(where)] == ["/in/a.pdf", "/in/b.docx", "/in/c.pdf"]
