"""The hook on ``api_flavor="mineru-api"``, against the V1 emulator room over real sockets."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_mineru.clients.mineru_api import MinerUApiClient
from airflow_provider_mineru.clients.mineru_api_results import content_list_from_structured
from airflow_provider_mineru.clients.mineru_api_wire import FORGOT_TASK, MinerUUnsupportedServerError, to_v1_page_range
from airflow_provider_mineru.clients.v4_wire import ParseOptions
from airflow_provider_mineru.connection.config import MinerULimits
from airflow_provider_mineru.exceptions import (
    MinerUAuthError,
    MinerUInvalidRequestError,
    MinerUNotFoundError,
    MinerUTransientError,
    MinerUValidationError,
)
from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.inputs.sources import resolve_sources
from airflow_provider_mineru.models import MinerUState
from mineru_emulator.mineru_api import Fault
from tests.helpers.selfhosted_samples import SCAN, file_server
from tests.selfhosted.conftest import v1_connection


def _sources(folder, names):
    return [resolve_sources(str(folder / n), MinerULimits(), model_version="mineru-api")[0] for n in names]


def _wait(hook, task_id, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        batch = hook.get_batch(task_id)
        if batch.is_complete():
            return batch
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


class TestMapping:
    @pytest.mark.parametrize(
        ("cloud", "v1"),
        [("2,4-6", "2,4-6"), ("15-", "15-r1"), ("2--2", "2-r2"), ("-3--1", "r3-r1"), ("7", "7")],
    )
    def test_page_ranges_become_page_range(self, cloud, v1):
        assert to_v1_page_range(cloud) == v1

    @pytest.mark.parametrize("option", ["callback", "extra_formats", "model_version", "seed"])
    def test_options_the_server_cannot_honour_name_option_and_flavor(self, option):
        value = {"callback": "https://x.example/cb", "extra_formats": ["docx"], "model_version": "vlm", "seed": "s"}
        with pytest.raises(MinerUValidationError, match=rf"{option}=.*api_flavor 'mineru-api'"):
            MinerUApiClient().job_options(ParseOptions(**{option: value[option]}))

    def test_is_ocr_and_tier(self):
        assert MinerUApiClient().job_options(ParseOptions(is_ocr=True, tier="flash")) == {
            "output_formats": ["markdown", "zip"],
            "tier": "flash",
            "ocr_mode": "ocr",
        }
        with pytest.raises(MinerUValidationError, match="tier"):
            MinerUApiClient().job_options(ParseOptions(tier="turbo"))

    def test_tier_on_the_cloud_flavor_is_refused(self):
        from airflow_provider_mineru.clients.cloud import CloudClient

        with pytest.raises(MinerUValidationError, match=r"tier=.*api_flavor 'mineru-api' only.*'cloud'"):
            CloudClient().task_body("https://x.example/a.pdf", ParseOptions(tier="flash"))

    def test_uploads_are_grouped_by_per_file_options(self):
        plan = MinerUApiClient().batch_body(
            ["a.docx", {"name": "b.pdf", "page_ranges": "2-"}, "c.html", {"name": "d.pdf", "is_ocr": True}],
            ParseOptions(tier="flash"),
            key="name",
            limits=MinerULimits(),
        )
        assert [g["indices"] for g in plan["groups"]] == [[0, 2], [1], [3]]
        assert plan["groups"][1]["options"]["page_range"] == "2-r1"
        assert plan["groups"][2]["options"]["ocr_mode"] == "ocr"

    def test_content_list_from_structured_content(self):
        blocks = content_list_from_structured(
            {
                "pages": [
                    {"page_idx": 0, "blocks": [{"type": "doc_title", "level": 1, "content": "T"}]},
                    {
                        "page_idx": 1,
                        "blocks": [{"type": "table", "content": "| a |"}, {"type": "text", "content": "x"}],
                    },
                ]
            }
        )
        assert blocks == [
            {"type": "text", "text": "T", "page_idx": 0, "text_level": 1},
            {"type": "table", "page_idx": 1, "table_body": "| a |"},
            {"type": "text", "text": "x", "page_idx": 1},
        ]

    def test_unknown_flavor_is_a_validation_error(self, monkeypatch):
        monkeypatch.setenv(
            "AIRFLOW_CONN_MINERU_DEFAULT",
            json.dumps({"conn_type": "mineru", "host": "http://127.0.0.1:9", "extra": {"api_flavor": "v1"}}),
        )
        with pytest.raises(MinerUValidationError, match="api_flavor"):
            MinerUHook().config  # noqa: B018

    def test_root_url_gets_no_api_v4(self, v1_conn):
        assert MinerUHook().config.base_url == v1_conn.root_url


class TestEndpoints:
    def test_upload_folder_partial_task_and_cloud_layout(self, v1_conn, samples, tmp_path):
        folder, texts = samples
        hook = MinerUHook()
        names = [*texts, SCAN]
        submitted = hook.client.submit_uploads(
            hook.transport, [{"name": n} for n in names], _sources(folder, names), ParseOptions(tier="flash")
        )
        assert len(submitted) == 1 and submitted[0][1] == list(range(len(names)))
        batch = _wait(hook, submitted[0][0])
        states = {d.file_name: d.state for d in batch.files}
        assert states == {**{n: MinerUState.DONE for n in texts}, SCAN: MinerUState.FAILED}
        assert "parse_failed" in batch.files[-1].err_msg
        for document in batch.done:
            target = tmp_path / "out" / document.file_name
            extracted = hook.download_and_extract(document.full_zip_url, target)
            assert extracted.markdown == "full.md" and extracted.content_list
            assert texts[document.file_name] in (target / "full.md").read_text()
            assert (target / "structured_content.json").is_file() and (target / "middle_json.json").is_file()
        html = tmp_path / "out" / "page.html"
        links = [line[4:-1] for line in (html / "full.md").read_text().splitlines() if line.startswith("![](")]
        assert links and all((html / link).is_file() for link in links)

    def test_url_task_from_a_loopback_file_server(self, v1_conn, samples, tmp_path):
        folder, texts = samples
        hook = MinerUHook()
        with file_server(folder) as root:
            task_id = hook.submit_task(f"{root}/memo.docx")
            deadline = time.time() + 10
            while not (document := hook.get_task(task_id)).is_terminal and time.time() < deadline:
                time.sleep(0.05)
        assert document.state is MinerUState.DONE and document.file_name == "memo.docx"
        hook.download_and_extract(document.full_zip_url, tmp_path / "memo")
        assert texts["memo.docx"] in (tmp_path / "memo" / "full.md").read_text()
        assert asyncio.run(hook.aget_task(task_id)).state is MinerUState.DONE

    def test_restart_makes_known_ids_forgotten(self, v1_conn):
        hook = MinerUHook()
        task_id = hook.submit_task("http://127.0.0.1:9/gone.docx")
        v1_conn.restart()
        with pytest.raises(MinerUNotFoundError, match=FORGOT_TASK):
            hook.get_batch(task_id)
        with pytest.raises(MinerUNotFoundError, match="restarted or past its retention"):
            asyncio.run(hook.aget_task(task_id))

    def test_retention_forgets_finished_tasks(self, mineru_api_emulator_factory, monkeypatch):
        server = mineru_api_emulator_factory(api_key="k", retention_seconds=0.2)
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", v1_connection(server))
        hook = MinerUHook()
        task_id = hook.submit_task("http://127.0.0.1:9/gone.docx")
        time.sleep(0.6)
        with pytest.raises(MinerUNotFoundError, match=FORGOT_TASK):
            hook.get_task(task_id)

    def test_wrong_key_is_an_auth_error(self, v1_server, monkeypatch):
        conn = json.loads(v1_connection(v1_server))
        conn["password"] = "not-the-key"
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
        with pytest.raises(MinerUAuthError, match=r"invalid_api_key|API key"):
            MinerUHook().submit_task("https://x.example/a.docx")
        ok, message = MinerUHook().test_connection()
        assert not ok and "refused the API key" in message

    def test_test_connection_names_the_version(self, v1_conn):
        ok, message = MinerUHook().test_connection()
        assert ok and "mineru-api 4.0.12" in message

    @pytest.mark.parametrize("status", [429, 503])
    def test_429_and_503_are_retried(self, v1_conn, status):
        fault = v1_conn.inject(Fault(endpoint="get_task", http_status=status, times=2, retry_after=0))
        hook = MinerUHook()
        task_id = hook.submit_task("http://127.0.0.1:9/x.docx")
        assert hook.get_task(task_id).task_id == task_id
        assert fault.fired == 2

    @pytest.mark.parametrize(
        "fault", [{"http_status": 200, "body": b'{"task_id": "job_'}, {"reset": True}], ids=["cut-short", "reset"]
    )
    def test_a_lost_answer_to_a_submit_is_never_sent_again(self, v1_conn, fault):
        """As on the cloud: a POST /v1/tasks that may have arrived costs at most one duplicate."""
        from airflow_provider_mineru.exceptions import MinerUAmbiguousSubmitError

        v1_conn.inject(Fault(endpoint="submit", times=5, **fault))
        with pytest.raises(MinerUAmbiguousSubmitError):
            MinerUHook().submit_task("http://127.0.0.1:9/x.docx")
        deadline = time.monotonic() + 5  # the server thread records a reset request after resetting it
        while not v1_conn.requests_to("submit") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert len(v1_conn.requests_to("submit")) == 1

    def test_transient_errors_are_raised_when_retries_run_out(self, v1_conn):
        v1_conn.inject(Fault(endpoint="get_task", http_status=503, times=10))
        hook = MinerUHook()
        with pytest.raises(MinerUTransientError):
            hook.get_task("job_0123456789abcdef01234567")

    def test_pdf_without_tier_on_a_flash_server_is_an_invalid_request(self, v1_conn):
        with pytest.raises(MinerUInvalidRequestError, match=r"quality_tier_unavailable|tier='flash'") as info:
            MinerUHook().submit_task("http://127.0.0.1:9/x.pdf")
        assert not info.value.retryable

    @pytest.mark.parametrize(("version", "words"), [("3.1.0", "3.x"), ("4.1.0", "4.1.0"), ("5.0.0", "5.0.0")])
    def test_unsupported_versions_are_refused_by_name(self, mineru_api_emulator_factory, monkeypatch, version, words):
        server = mineru_api_emulator_factory(api_key="k", version=version)
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", v1_connection(server))
        with pytest.raises(MinerUUnsupportedServerError, match=words):
            MinerUHook().get_task("job_0123456789abcdef01234567")
        assert not server.requests_to("get_task")

    def test_the_key_is_not_sent_to_other_hosts(self, v1_conn, tmp_path):
        with pytest.raises(MinerUValidationError, match="not on this connection's server"):
            MinerUHook().download_and_extract("http://127.0.0.2:1/v1/tasks/job_x/result", tmp_path)

    def test_upload_urls_do_not_exist_on_mineru_api(self, v1_conn):
        with pytest.raises(MinerUValidationError, match="no upload URLs"):
            MinerUHook().request_upload_urls(["a.pdf"])


def test_a_task_submitted_without_the_zip_output_is_done_with_nothing_to_download(v1_conn, samples):
    import urllib.request

    folder, _ = samples
    with file_server(folder) as root:
        job = {"files": [{"source": {"type": "url", "url": f"{root}/memo.docx"}}], "output_formats": ["markdown"]}
        request = urllib.request.Request(
            v1_conn.root_url + "/v1/tasks",
            data=json.dumps(job).encode(),
            headers={"Authorization": f"Bearer {v1_conn.api_key}", "Content-Type": "application/json"},
        )
        task_id = json.loads(urllib.request.urlopen(request, timeout=5).read())["task_id"]
    hook = MinerUHook()
    deadline = time.time() + 10
    while not (document := hook.get_task(task_id)).is_terminal and time.time() < deadline:
        time.sleep(0.05)
    assert document.state is MinerUState.DONE
    assert document.full_zip_url is None and "output_formats" in document.err_msg


def test_hook_submit_batch_that_needs_two_tasks_is_refused_before_sending(v1_conn):
    hook = MinerUHook()
    with pytest.raises(MinerUValidationError, match="must fit one mineru-api task"):
        hook.submit_batch(["http://127.0.0.1:9/a.docx", {"url": "http://127.0.0.1:9/b.docx", "is_ocr": True}])
    assert v1_conn.requests_to("submit") == []
    batch_id = hook.submit_batch(["http://127.0.0.1:9/a.docx", "http://127.0.0.1:9/b.docx"])
    assert len(hook.get_batch(batch_id).files) == 2
