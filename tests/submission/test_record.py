"""The typed submission record: JSON round trip, sealing, fingerprints, the store, the retry decision."""

from __future__ import annotations

import json
import os
import socket
import time
from types import SimpleNamespace

import pytest

from airflow_provider_mineru.exceptions import (
    MinerUAmbiguousSubmitError,
    MinerUConnectionError,
    MinerUProtocolError,
    MinerUTransientError,
)
from airflow_provider_mineru.submission.record import (
    SUBMISSION_VERSION,
    Identity,
    SentBatch,
    Submission,
    SubmittedInput,
    file_fingerprint,
    options_fingerprint,
    output_stem,
    url_fingerprint,
)
from airflow_provider_mineru.utils.retries import answer_lost
from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

TOKEN = "token-for-the-mac"


def _submission(**overrides) -> Submission:
    inputs = [
        SubmittedInput("https://x/a.pdf", "a.pdf", "a", url_fingerprint("https://x/a.pdf")),
        SubmittedInput("https://x/b.pdf", "b.pdf", "b_id", url_fingerprint("https://x/b.pdf", {"data_id": "b_id"})),
    ]
    values = dict(
        kind="batch",
        identity=Identity("dag", "run", "parse", 3),
        options_fingerprint=options_fingerprint("MinerUSubmitBatchOperator", {"language": "en"}),
        inputs=inputs,
    )
    values.update(overrides)
    return Submission(**values)


class TestSubmission:
    def test_json_round_trip(self):
        submission = _submission()
        position = submission.add_batch("batch-1", [1, 0])
        submission.add_failures("batch-1", {"a.pdf": "cannot read"})
        assert position == 0
        data = json.loads(json.dumps(submission.to_dict()))
        assert data["version"] == SUBMISSION_VERSION
        again = Submission.from_dict(data)
        assert again == submission
        assert again.slots() == [[0, 1], [0, 0]]
        assert again.unsent() == []
        assert again.sources() == ["https://x/a.pdf", "https://x/b.pdf"]

    def test_what_one_send_made_is_recorded_once(self):
        submission = _submission()
        assert submission.record_sent(SentBatch("batch-1", (1, 0)))  # upload URLs granted: nothing sent yet
        assert not submission.record_sent(SentBatch("batch-1", (1, 0), {"a.pdf": "403"}))  # its failures
        assert submission.record_sent(SentBatch("batch-2", (0,), {}))  # expired URL, sent again
        assert submission.ids == ["batch-1", "batch-2"] and submission.expected_files == [2, 1]
        assert submission.failed_files == {"batch-1": {"a.pdf": "403"}}
        assert submission.slots() == [[1, 0], [0, 0]]

    def test_unsent_and_unanswered(self):
        submission = _submission(unanswered=[0, 1])
        assert submission.unsent() == [0, 1]
        submission.add_batch("batch-1", [1])
        assert submission.unsent() == [0] and submission.unanswered == [0]

    @pytest.mark.parametrize(
        "broken",
        [
            {"version": 0},
            {"version": 99},
            {"kind": "something"},
            {"ids": ["a", "b"]},  # expected_files no longer matches
            {"inputs": [{"source": "x"}]},
            {"identity": "dag/run"},
            {"unanswered": None},
        ],
    )
    def test_other_formats_are_refused(self, broken):
        data = _submission().to_dict()
        data.update(broken)
        assert Submission.from_dict(data) is None

    def test_a_slot_outside_the_batches_is_refused(self):
        data = _submission().to_dict()
        data["inputs"][0]["slot"] = [5, 0]
        assert Submission.from_dict(data) is None

    def test_seal_holds_only_with_the_same_token(self):
        sealed = _submission().sealed(TOKEN)
        assert Submission.unseal(sealed, TOKEN)[0] == _submission()
        assert TOKEN not in json.dumps(sealed)
        refused, why = Submission.unseal(sealed, "another-token")
        assert refused is None and "signature" in why

    def test_any_edit_breaks_the_seal(self):
        sealed = _submission().sealed(TOKEN)
        sealed["ids"] = ["someone-elses-batch"]
        sealed["expected_files"] = [2]
        refused, why = Submission.unseal(sealed, TOKEN)
        assert refused is None and "signature" in why

    def test_todays_record_format_is_refused(self):
        legacy = {"ids": ["b"], "expected_files": [2], "failed_files": {}, "slots": [[0, 0], [0, 1]]}
        assert Submission.unseal(legacy, TOKEN)[0] is None
        assert Submission.unseal("not a dict", TOKEN)[0] is None

    def test_identity_from_context(self):
        ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=None)
        assert Identity.from_context({"ti": ti}) == Identity("d", "r", "t", -1)
        assert Identity.from_context({"ti": ti, "run_id": "other"}).run_id == "other"


class TestFingerprints:
    def test_url_fingerprint_covers_url_and_per_file_options(self):
        base = url_fingerprint("https://x/a.pdf", {"data_id": "a"})
        assert base == url_fingerprint("https://x/a.pdf", {"data_id": "a"})
        assert base != url_fingerprint("https://x/b.pdf", {"data_id": "a"})
        assert base != url_fingerprint("https://x/a.pdf", {"data_id": "a", "page_ranges": "1-2"})
        assert base != url_fingerprint("https://x/a.pdf", {"data_id": "a", "is_ocr": True})

    def test_options_fingerprint(self):
        assert options_fingerprint("Op", {"language": "en"}) != options_fingerprint("Op", {"language": "ch"})
        assert options_fingerprint("Op", {}) != options_fingerprint("OtherOp", {})

    def test_file_fingerprint_follows_content_changes(self, tmp_path):
        path = tmp_path / "a.pdf"
        path.write_bytes(b"%PDF-1.4 one")
        first = file_fingerprint(str(path), "a.pdf", path.stat().st_size)
        assert first == file_fingerprint(str(path), "a.pdf", path.stat().st_size)
        later = time.time() + 5
        os.utime(path, (later, later))
        assert first != file_fingerprint(str(path), "a.pdf", path.stat().st_size)  # touched
        assert first != file_fingerprint(str(path), "a.pdf", 999)  # another size
        assert first != file_fingerprint(str(path), "a.pdf", path.stat().st_size, {"page_ranges": "1"})

    def test_a_vanished_file_still_has_a_fingerprint(self, tmp_path):
        assert file_fingerprint(str(tmp_path / "gone.pdf"), "gone.pdf", 10)
        assert file_fingerprint("s3://bucket/a.pdf", "a.pdf", 10) != file_fingerprint("s3://bucket/a.pdf", "a.pdf", 11)

    def test_output_stem(self):
        assert output_stem("report.v2.pdf", None) == "report.v2"
        assert output_stem("report.pdf", "my-id") == "my-id"


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.skipif(
    AIRFLOW_V_3_0_PLUS,
    reason="Airflow 3's Variable API works only inside a running task: covered there by "
    "tests/reliability/test_submission_guarantees.py::test_crafted_or_foreign_record_is_ignored",
)
class TestVariableStore:
    """The store of Airflow < 3.3 (an Airflow Variable), called directly (Airflow 2.11)."""

    def _context(self, task_id="parse", map_index=-1):
        ti = SimpleNamespace(dag_id="store_dag", run_id="run_1", task_id=task_id, map_index=map_index)
        return {"ti": ti, "run_id": "run_1"}

    def test_round_trip_and_clear(self):
        from airflow_provider_mineru.submission.store import SubmissionStore

        context = self._context()
        store = SubmissionStore(context)
        assert store.backend.startswith("Airflow Variable mineru_submission/store_dag/run_1/parse/-1")
        submission = _submission(identity=Identity.from_context(context))
        store.save_submission(submission, TOKEN)
        assert store.load_submission(Identity.from_context(context), TOKEN) == submission
        store.clear()
        assert store.load_submission(Identity.from_context(context), TOKEN) is None

    def test_record_of_another_task_instance_is_ignored(self, caplog):
        from airflow_provider_mineru.submission.store import SubmissionStore

        context = self._context()
        store = SubmissionStore(context)
        store.save_submission(_submission(identity=Identity("store_dag", "run_1", "parse", 4)), TOKEN)
        assert store.load_submission(Identity.from_context(context), TOKEN) is None
        assert "belongs to another task instance" in caplog.text
        store.clear()

    def test_record_sealed_with_another_token_is_ignored(self, caplog):
        from airflow_provider_mineru.submission.store import SubmissionStore

        context = self._context()
        store = SubmissionStore(context)
        store.save_submission(_submission(identity=Identity.from_context(context)), "someone-else")
        assert store.load_submission(Identity.from_context(context), TOKEN) is None
        assert "signature does not match" in caplog.text
        store.clear()


class TestRetryDecision:
    def _lost(self) -> MinerUConnectionError:
        error = MinerUConnectionError("reset")
        error.ambiguous = True
        return error

    def test_lost_answers(self):
        assert answer_lost(self._lost())
        assert answer_lost(MinerUProtocolError("cut short", http_status=200))
        assert not answer_lost(MinerUProtocolError("html", http_status=502))
        refused = MinerUConnectionError("refused")
        refused.ambiguous = False
        assert not answer_lost(refused)
        assert not answer_lost(MinerUTransientError("busy", code="-60009", http_status=200))

    def test_only_paid_submits_are_not_resent(self):
        from airflow_provider_mineru.clients import CloudClient, MinerUApiClient

        cloud = CloudClient()
        assert cloud.is_paid("POST", "extract/task")
        assert cloud.is_paid("POST", "extract/task/batch")
        assert not cloud.is_paid("POST", "file-urls/batch")  # a grant costs nothing
        assert not cloud.is_paid("GET", "extract/task/abc")
        assert MinerUApiClient().is_paid("POST", "/v1/tasks") and not MinerUApiClient().is_paid("GET", "/v1/tasks/x")

    def test_error_is_transient_family_but_not_retried_by_the_hook(self):
        error = MinerUAmbiguousSubmitError("lost", documents=["a"])
        assert isinstance(error, MinerUTransientError) and not error.retryable
        import pickle

        assert pickle.loads(pickle.dumps(error)).documents == ["a"]

    def test_connection_refused_is_retried_as_before(self, monkeypatch):
        """A submit that provably never reached MinerU (nothing listens) is retried ``max_retries`` times."""
        from airflow_provider_mineru.hooks.mineru import MinerUHook

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        conn = {
            "conn_type": "mineru",
            "host": f"http://127.0.0.1:{port}/api/v4",
            "password": TOKEN,
            "extra": {"retry_backoff": 0.01, "max_retries": 2, "timeout": 2},
        }
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
        from airflow_provider_mineru.utils.retries import RetryPolicy

        attempts = []
        hook = MinerUHook()
        original = RetryPolicy.delay

        def counted(policy, attempt, error):
            attempts.append(type(error).__name__)
            return original(policy, attempt, error)

        monkeypatch.setattr(RetryPolicy, "delay", counted)
        with pytest.raises(MinerUConnectionError) as info:
            hook.submit_batch(["https://example.invalid/a.pdf"])
        assert not isinstance(info.value, MinerUAmbiguousSubmitError)
        assert len(attempts) == 3  # the first try and both retries
