"""MinerUHook against the emulator over real sockets: every endpoint, sync and async, errors and retries."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_mineru.exceptions import (
    MinerUAuthError,
    MinerUConnectionError,
    MinerUInvalidRequestError,
    MinerUNotFoundError,
    MinerUProtocolError,
    MinerUQuotaError,
    MinerUTransientError,
    MinerUValidationError,
)
from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.models import MinerUState
from mineru_emulator import Fault
from tests.helpers import SAMPLES, sample_url, wait_batch, wait_task

DEMO_URL = "https://cdn-mineru.openxlab.org.cn/demo/example.pdf"


class TestSingleTask:
    def test_submit_wait_download(self, mineru_conn, tmp_path):
        hook = MinerUHook()
        task_id = hook.submit_task(sample_url(mineru_conn, "research_paper.pdf"), data_id="paper-1", is_ocr=False)
        result = wait_task(hook, task_id)
        assert result.state is MinerUState.DONE
        assert result.data_id == "paper-1"
        extracted = hook.download_and_extract(result.full_zip_url, tmp_path / "paper")
        markdown = (tmp_path / "paper" / extracted.markdown).read_text()
        assert len(markdown) > 50
        # the result zip is downloaded without the API token (another host in the real service)
        downloads = mineru_conn.requests_to("download")
        assert downloads and not any(r.has_authorization for r in downloads)
        submit = mineru_conn.requests_to("submit_task")[0]
        assert submit.json["data_id"] == "paper-1"
        assert submit.json["is_ocr"] is False

    async def test_async_endpoints(self, mineru_conn):
        hook = MinerUHook()
        task_id = await hook.asubmit_task(sample_url(mineru_conn, "invoice.pdf"))
        for _ in range(200):
            result = await hook.aget_task(task_id)
            if result.is_terminal:
                break
            await asyncio.sleep(0.05)
        assert result.state is MinerUState.DONE
        batch_id = await hook.asubmit_batch([sample_url(mineru_conn, "invoice.pdf")])
        batch = await hook.aget_batch(batch_id)
        assert batch.batch_id == batch_id
        grant = await hook.arequest_upload_urls(["a.pdf", "b.pdf"])
        assert len(grant.file_urls) == 2

    def test_unknown_task_is_not_found(self, mineru_conn):
        with pytest.raises(MinerUNotFoundError) as info:
            MinerUHook().get_task("no-such-task")
        assert info.value.code == "-60012"
        assert info.value.trace_id


class TestBatches:
    def test_url_batch_with_per_file_options(self, mineru_conn):
        hook = MinerUHook()
        files = [
            {"url": sample_url(mineru_conn, "annual_report.pdf"), "data_id": "report", "page_ranges": "1-2"},
            sample_url(mineru_conn, "invoice.pdf"),
        ]
        batch_id = hook.submit_batch(files, is_ocr=True, language="en", extra_formats=["html"])
        body = mineru_conn.requests_to("submit_batch")[0].json
        assert body["files"][0] == {"url": files[0]["url"], "data_id": "report", "page_ranges": "1-2", "is_ocr": True}
        assert body["files"][1]["is_ocr"] is True
        assert body["language"] == "en" and body["extra_formats"] == ["html"]
        result = wait_batch(hook, batch_id, 2)
        assert [f.state for f in result.files] == [MinerUState.DONE, MinerUState.DONE]
        assert result.files[0].data_id == "report"

    def test_upload_batch_streams_without_content_type(self, mineru_conn):
        hook = MinerUHook()
        paths = [SAMPLES / "invoice.pdf", SAMPLES / "scanned_receipt.png"]
        grant = hook.request_upload_urls([p.name for p in paths])
        assert "presigned" in repr(grant) and "Signature" not in repr(grant)
        before = hook.get_batch(grant.batch_id)
        assert {f.state for f in before.files} == {MinerUState.WAITING_FILE}
        for url, path in zip(grant.file_urls, paths, strict=True):
            assert hook.upload_file(url, path) == path.stat().st_size
        uploads = mineru_conn.requests_to("upload")
        assert len(uploads) == 2
        assert all(not r.content_type and not r.has_authorization for r in uploads)
        result = wait_batch(hook, grant.batch_id, 2)
        assert [f.file_name for f in result.files] == ["invoice.pdf", "scanned_receipt.png"]
        assert all(f.state is MinerUState.DONE for f in result.files)


class TestErrors:
    def test_wrong_token_is_auth_error_without_retry(self, mineru_conn, monkeypatch):
        conn = json.loads(mineru_conn.connection_json())
        conn["password"] = "wrong-token"
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
        with pytest.raises(MinerUAuthError) as info:
            MinerUHook().get_task("x")
        assert info.value.code == "A0202"
        assert len(mineru_conn.requests_to("get_task")) == 1
        assert "wrong-token" not in str(info.value)

    @pytest.mark.parametrize("status", [429, 500, 502, 503])
    def test_transient_http_status_is_retried(self, mineru_conn, status):
        fault = mineru_conn.inject(Fault(endpoint="submit_task", http_status=status, times=2, retry_after=0.01))
        task_id = MinerUHook().submit_task(sample_url(mineru_conn, "invoice.pdf"))
        assert task_id
        assert fault.fired == 2
        assert mineru_conn.task_count == 1

    @pytest.mark.parametrize("code", ["-10001", "-60001", "-60007", "-60009", "-60020", "-60021", "-60022"])
    def test_transient_codes_are_retried(self, mineru_conn, code):
        mineru_conn.inject(Fault(endpoint="get_task", code=code, times=1, code_as_string=code.endswith("9")))
        with pytest.raises(MinerUNotFoundError):
            MinerUHook().get_task("unknown")
        assert len(mineru_conn.requests_to("get_task")) == 2

    def test_retries_are_bounded(self, mineru_conn):
        mineru_conn.inject(Fault(endpoint="get_batch", http_status=503, times=100))
        with pytest.raises(MinerUTransientError) as info:
            MinerUHook().get_batch("b")
        assert info.value.http_status == 503
        assert len(mineru_conn.requests_to("get_batch")) == 4  # 1 + max_retries (3)

    @pytest.mark.parametrize(
        ("fault", "error"),
        [
            (Fault(endpoint="get_task", malformed_json=True, times=10), MinerUProtocolError),
            (Fault(endpoint="get_task", truncated=True, times=10), MinerUTransientError),
            (Fault(endpoint="get_task", reset=True, times=10), MinerUConnectionError),
            (
                Fault(endpoint="get_task", http_status=502, body="<html><h1>502 Bad Gateway</h1></html>", times=10),
                MinerUTransientError,
            ),
        ],
    )
    def test_broken_responses_are_clear_errors(self, mineru_conn, fault, error):
        mineru_conn.inject(fault)
        with pytest.raises(error) as info:
            MinerUHook().get_task("t")
        assert "KeyError" not in str(info.value)

    def test_html_body_is_quoted(self, mineru_conn):
        mineru_conn.inject(Fault(endpoint="get_task", http_status=502, body="<html>Bad Gateway</html>", times=10))
        with pytest.raises(MinerUTransientError, match="Bad Gateway"):
            MinerUHook().get_task("t")

    @pytest.mark.parametrize(
        ("code", "error"),
        [
            ("-60017", MinerUQuotaError),
            ("-60018", MinerUQuotaError),
            ("-60005", MinerUInvalidRequestError),
            ("-60013", MinerUAuthError),
            ("-99999", None),
        ],
    )
    def test_permanent_codes_fail_at_once(self, mineru_conn, code, error):
        from airflow_provider_mineru.exceptions import MinerUError

        mineru_conn.inject(Fault(endpoint="submit_task", code=code, msg={"en": "english text", "zh": "中文"}))
        with pytest.raises(error or MinerUError) as info:
            MinerUHook().submit_task(sample_url(mineru_conn, "invoice.pdf"))
        assert info.value.code == code
        assert "english text" in str(info.value)
        assert len(mineru_conn.requests_to("submit_task")) == 1

    def test_read_timeout_is_retried(self, mineru_conn, monkeypatch):
        conn = json.loads(mineru_conn.connection_json())
        conn["extra"].update({"timeout": 0.3, "retry_backoff": 0.01})
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
        mineru_conn.inject(Fault(endpoint="get_batch", delay=1.0, times=1))
        with pytest.raises(MinerUNotFoundError):
            MinerUHook().get_batch("unknown")


class TestValidationBeforeRequest:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"url": "https://x.test/a.txt"}, "url"),
            ({"url": "ftp://x.test/a.pdf"}, "url"),
            ({"url": "https://x.test/a.pdf", "data_id": "bad id"}, "data_id"),
            ({"url": "https://x.test/a.pdf", "data_id": "x" * 129}, "data_id"),
            ({"url": "https://x.test/a.pdf", "callback": "https://cb.test/hook"}, "seed"),
            ({"url": "https://x.test/a.pdf", "callback": "https://cb.test/hook", "seed": "bad-seed"}, "seed"),
            ({"url": "https://x.test/a.pdf", "page_ranges": "1-x"}, "page_ranges"),
            ({"url": "https://x.test/a.pdf", "extra_formats": ["pdf"]}, "extra_formats"),
            ({"url": "https://x.test/a.pdf", "model_version": "v3"}, "model_version"),
            ({"url": "https://x.test/a.pdf", "language": " "}, "language"),
            ({"url": "https://x.test/a.pdf", "unknown_option": 1}, "options"),
        ],
    )
    def test_submit_task(self, mineru_conn, kwargs, field):
        with pytest.raises(MinerUValidationError) as info:
            MinerUHook().submit_task(**kwargs)
        assert info.value.field == field
        assert mineru_conn.requests == []

    def test_batch_over_200(self, mineru_conn):
        with pytest.raises(MinerUValidationError, match="200"):
            MinerUHook().submit_batch([f"https://x.test/{i}.pdf" for i in range(201)])
        assert mineru_conn.requests == []

    def test_duplicate_upload_names(self, mineru_conn):
        with pytest.raises(MinerUValidationError, match="duplicate"):
            MinerUHook().request_upload_urls(["a.pdf", "b.pdf", "a.pdf"])
        assert mineru_conn.requests == []


class TestConnection:
    @pytest.mark.parametrize("prefix", ["/api/v4", "/api/v1"])
    def test_uri_form_and_prefixes(self, prefix, monkeypatch):
        from mineru_emulator import MinerUEmulator

        with MinerUEmulator(token="tok-uri", prefix=prefix) as emu:
            monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", emu.connection_uri())
            hook = MinerUHook()
            assert hook.config.base_url == emu.base_url
            ok, message = hook.test_connection()
            assert ok, message
            assert emu.task_count == 0  # the Test button costs no quota

    def test_test_connection_reports_bad_token(self, mineru_conn, monkeypatch):
        conn = json.loads(mineru_conn.connection_json())
        conn["password"] = "nope"
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
        ok, message = MinerUHook().test_connection()
        assert not ok and "A0202" in message

    def test_token_expiring_soon_is_reported(self, monkeypatch):
        import base64

        from mineru_emulator import MinerUEmulator

        claims = base64.urlsafe_b64encode(json.dumps({"exp": time.time() + 3 * 86400}).encode()).decode().rstrip("=")
        token = f"eyJhbGciOiJIUzI1NiJ9.{claims}.sig"
        with MinerUEmulator(token=token) as emu:
            monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", emu.connection_json())
            ok, message = MinerUHook().test_connection()
        assert ok and "expires on" in message


class TestBaseUrl:
    @pytest.mark.parametrize(
        ("host", "schema", "port", "extra", "expected"),
        [
            ("https://mineru.net/api/v4", None, None, {}, "https://mineru.net/api/v4"),
            ("https://mineru.net/api/v4/", None, None, {}, "https://mineru.net/api/v4"),
            ("http://gateway:8000/api/v1", None, None, {}, "http://gateway:8000/api/v1"),
            ("mineru.net", None, None, {}, "https://mineru.net/api/v4"),
            ("gateway", "api/v1", 8000, {"scheme": "http"}, "http://gateway:8000/api/v1"),
            ("gateway", "https", 8443, {}, "https://gateway:8443/api/v4"),
            ("http://127.0.0.1", None, 8710, {}, "http://127.0.0.1:8710/api/v4"),
        ],
    )
    def test_forms(self, host, schema, port, extra, expected):
        from airflow_provider_mineru.connection.config import base_url_from_connection

        assert base_url_from_connection(host, schema, port, extra) == expected

    def test_missing_host(self):
        from airflow_provider_mineru.connection.config import base_url_from_connection

        with pytest.raises(MinerUValidationError, match="base URL"):
            base_url_from_connection("", None, None, {})
