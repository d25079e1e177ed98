"""
The hook against hostile servers on loopback: redirects, oversized answers, slow answers, odd URLs.

Every test here failed before the hardening of issue 12 (except where a docstring says the async
path already behaved).
"""

from __future__ import annotations

import asyncio
import logging
import time
import tracemalloc

import pytest

from airflow_provider_mineru.exceptions import (
    MinerUConnectionError,
    MinerURefusedResponseError,
    MinerUTransientError,
    MinerUValidationError,
)
from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.utils.bounded_http import MAX_ANSWER_BYTES
from tests.helpers.hostile_server import empty, huge, ok, redirect, trickle

MIB = 1024 * 1024
TASK = "/api/v4/extract/task"
POLL = "/api/v4/extract/task/t-1"
FILE_URLS = "/api/v4/file-urls/batch"
PDF = "https://example.org/a.pdf"


def run(coro):
    return asyncio.run(coro)


# -- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_get_redirected_to_another_origin_is_refused_without_sending_headers(
    hostile, other_host, hostile_conn, status, mode
):
    other_host.routes[POLL] = ok({"task_id": "t-1", "state": "done"})
    hostile.routes[POLL] = redirect(status, f"{other_host.origin}{POLL}")
    hook = MinerUHook(hostile_conn(headers={"X-Api-Key": "team-key-123"}, max_retries=3))
    with pytest.raises(MinerURefusedResponseError) as info:
        hook.get_task("t-1") if mode == "sync" else run(hook.aget_task("t-1"))
    assert other_host.hostport in str(info.value)
    assert "another host" in str(info.value)
    assert other_host.requests == []  # neither X-Api-Key nor the token went there
    assert len(hostile.requests) == 1  # not retried


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_post_redirected_is_not_resent_with_its_body(hostile, other_host, hostile_conn, status, mode):
    other_host.routes[TASK] = ok({"task_id": "t-9"})
    hostile.routes[TASK] = redirect(status, f"{other_host.origin}{TASK}")
    hook = MinerUHook(hostile_conn())
    call = {"callback": "https://airflow.example/cb", "seed": "callback_seed_secret"}
    with pytest.raises(MinerURefusedResponseError) as info:
        hook.submit_task(PDF, **call) if mode == "sync" else run(hook.asubmit_task(PDF, **call))
    assert other_host.hostport in str(info.value)
    assert other_host.requests == []
    assert "callback_seed_secret" not in str(info.value)


def test_same_origin_redirect_is_refused_too(hostile, hostile_conn):
    """Decision (docs/reliability.md): API calls never follow a redirect, not even to the same host."""
    hostile.routes[POLL] = redirect(302, "/api/v4/extract/task/t-2")
    hostile.routes["/api/v4/extract/task/t-2"] = ok({"task_id": "t-2", "state": "done"})
    with pytest.raises(MinerURefusedResponseError, match="to the same host"):
        MinerUHook(hostile_conn()).get_task("t-1")
    assert [r.path for r in hostile.requests] == [POLL]


def test_upload_put_redirected_to_another_origin_is_refused(hostile, other_host, hostile_conn, tmp_path):
    other_host.routes["/up/a.pdf"] = empty()
    hostile.routes["/up/a.pdf"] = redirect(307, f"{other_host.origin}/up/a.pdf")
    source = tmp_path / "a.pdf"
    source.write_bytes(b"%PDF-1.4 " + b"x" * 1000)
    hook = MinerUHook(hostile_conn(max_retries=3))
    with pytest.raises(MinerURefusedResponseError) as info:
        hook.upload_file(f"{hostile.origin}/up/a.pdf?Signature=abc", source)
    assert other_host.hostport in str(info.value)
    assert other_host.requests == []
    assert len(hostile.requests) == 1
    assert "Signature" not in str(info.value)


# -- bounded reads ----------------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_huge_answer_is_refused_without_holding_it(hostile, hostile_conn, declare_length, mode):
    """A 300 MiB answer: at most MAX_ANSWER_BYTES (16 MiB) is read, then refused (not retried)."""
    hostile.routes[POLL] = huge(200, 300 * MIB, declare_length=declare_length)
    hook = MinerUHook(hostile_conn(timeout=30, max_retries=2))
    hook.config  # noqa: B018 (the connection is read before measuring)
    tracemalloc.start()
    try:
        with pytest.raises(MinerURefusedResponseError, match=r"larger than|more than"):
            hook.get_task("t-1") if mode == "sync" else run(hook.aget_task("t-1"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_ANSWER_BYTES, f"peak {peak / MIB:.0f} MiB"
    assert len(hostile.requests) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_huge_error_body_is_read_bounded_and_quoted_cut(hostile, hostile_conn, mode):
    hostile.routes[POLL] = huge(500, 400 * MIB, declare_length=True)
    hook = MinerUHook(hostile_conn(timeout=30))
    hook.config  # noqa: B018
    tracemalloc.start()
    try:
        with pytest.raises(MinerUTransientError) as info:
            hook.get_task("t-1") if mode == "sync" else run(hook.aget_task("t-1"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB, f"peak {peak / MIB:.0f} MiB"
    assert "HTTP 500" in str(info.value)
    assert len(str(info.value)) < 600  # the body is quoted cut, with an ellipsis
    assert "…" in str(info.value)


# -- the time-out bounds the whole request ------------------------------------------------------


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_trickling_server_fails_within_the_timeout(hostile, hostile_conn, in_headers, mode):
    """One byte per 0.5 s with ``timeout=1``: fails after about 1 s (the sync path took 20 s before)."""
    hostile.routes[POLL] = trickle(interval=0.5, total=40, in_headers=in_headers)
    hook = MinerUHook(hostile_conn(timeout=1))
    hook.config  # noqa: B018
    started = time.monotonic()
    with pytest.raises(MinerUConnectionError):
        hook.get_task("t-1") if mode == "sync" else run(hook.aget_task("t-1"))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0, elapsed


def test_trickled_submit_times_out_as_possible_duplicate(hostile, hostile_conn, caplog):
    hostile.routes[TASK] = trickle(interval=0.5, total=40)
    with pytest.raises(MinerUConnectionError, match="time-out") as info:
        MinerUHook(hostile_conn(timeout=1)).submit_task(PDF, data_id="doc-1")
    assert info.value.ambiguous is True


def test_normal_calls_still_work_with_a_short_timeout(hostile, hostile_conn):
    hostile.routes[POLL] = ok({"task_id": "t-1", "state": "running"})
    hook = MinerUHook(hostile_conn(timeout=1))
    for _ in range(5):
        assert hook.get_task("t-1").state.value == "running"
    time.sleep(1.2)  # a deadline of an earlier call must not break the pooled connection
    assert hook.get_task("t-1").state.value == "running"


# -- URLs in answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/a.pdf", "gopher://x/", "javascript:alert(1)", "http://"]
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_upload_url_with_another_scheme_is_refused_at_once(hostile, hostile_conn, url, mode):
    hostile.routes[FILE_URLS] = ok({"batch_id": "b-1", "file_urls": [url]})
    hook = MinerUHook(hostile_conn(max_retries=3))
    with pytest.raises(MinerURefusedResponseError, match="only http"):
        hook.request_upload_urls(["a.pdf"]) if mode == "sync" else run(hook.arequest_upload_urls(["a.pdf"]))
    assert len(hostile.requests) == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/r.zip", "data:,x"])
def test_full_zip_url_with_another_scheme_is_refused_at_once(hostile, hostile_conn, tmp_path, url):
    hook = MinerUHook(hostile_conn(max_retries=3))
    with pytest.raises(MinerURefusedResponseError, match="full_zip_url"):
        hook.download_result(url, tmp_path / "r.zip")
    with pytest.raises(MinerURefusedResponseError):
        hook.upload_file(url, tmp_path)
    assert hostile.requests == []
    assert not (tmp_path / "r.zip").exists()


# -- ids in URL paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["..", ".", "a/../b", "x?y=1", "x#frag", "a\nb", "a b", "%2e%2e", "", "a" * 300])
def test_ids_that_would_change_the_url_are_refused_before_any_request(hostile, hostile_conn, value):
    hook = MinerUHook(hostile_conn())
    with pytest.raises(MinerUValidationError, match="task_id"):
        hook.get_task(value)
    with pytest.raises(MinerUValidationError, match="batch_id"):
        hook.get_batch(value)
    with pytest.raises(MinerUValidationError, match="task_id"):
        run(hook.aget_task(value))
    assert hostile.requests == []


# -- headers, Authorization, and what the logs show ----------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_token_wins_over_an_authorization_header(hostile, hostile_conn, mode):
    hostile.routes[POLL] = ok({"task_id": "t-1", "state": "done"})
    hook = MinerUHook(hostile_conn(headers={"authorization": "Basic b3RoZXI=", "X-Team": "data"}))
    hook.get_task("t-1") if mode == "sync" else run(hook.aget_task("t-1"))
    (seen,) = hostile.requests
    auth = [v for k, v in seen.headers.items() if k.lower() == "authorization"]
    assert auth == ["Bearer hostile-test-token-0123"]
    assert seen.headers["X-Team"] == "data"


def test_presigned_signature_is_not_in_urllib3_debug_logs(hostile, hostile_conn, tmp_path, caplog):
    hostile.routes["/bucket/a.pdf"] = empty()
    source = tmp_path / "a.pdf"
    source.write_bytes(b"%PDF-1.4 " + b"x" * 100)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    url = f"{hostile.origin}/bucket/a.pdf?Expires=1&OSSAccessKeyId=K&Signature=SIG0123456789secret"
    MinerUHook(hostile_conn()).upload_file(url, source)
    assert hostile.requests[0].path.endswith("Signature=SIG0123456789secret")  # the server got it
    assert "bucket/a.pdf" in caplog.text  # urllib3 did log the request line
    assert "SIG0123456789secret" not in caplog.text
