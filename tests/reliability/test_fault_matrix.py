"""
The fault matrix at the hook level: every call × every fault, over real sockets to the emulator.

Calls: ``submit_task`` (``POST /extract/task``), ``submit_batch`` (``POST /extract/task/batch``),
``file_urls`` (``POST /file-urls/batch``), ``upload`` (the presigned ``PUT``), ``get_task`` and
``get_batch`` (polls), ``download`` (the result zip). The API calls also run through the async
half of the hook (what the triggers use).

What each case asserts, from the emulator's request log:

- a lost answer to a **paid submit** (``submit_task``, ``submit_batch``: a reset or read time-out
  after sending, a cut-short or unreadable ``200`` body) is never re-sent by the hook: it raises
  ``MinerUAmbiguousSubmitError`` after exactly one request, naming the documents (a later Airflow
  try may submit once more: at most one duplicate per lost answer);
- any other **transient** fault is absorbed: the call returns a real result, the fault fired as many times
  as injected, exactly one clean answer followed, the document is not lost, and nothing was
  created twice (except where the faulted request *was processed*: a truncated answer or a read
  time-out on a create call, which the table in ``docs/reliability.md`` lists as duplicates);
- a fault that **never clears** is retried ``max_retries`` times (3 here), then raised typed;
- a **permanent** fault fails at once (one request) with MinerU's message, code and ``trace_id``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_mineru.exceptions import (
    MinerUAmbiguousSubmitError,
    MinerUAuthError,
    MinerUError,
    MinerUInvalidRequestError,
    MinerUNotFoundError,
    MinerUQuotaError,
    MinerUResultError,
    MinerUTransientError,
    MinerUUploadURLExpiredError,
)
from airflow_provider_mineru.hooks.mineru import MinerUHook
from mineru_emulator import Fault
from tests.helpers.reliability import SAMPLES, sample_url, set_conn, wait_task, wait_until

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
TRANSIENT_CODES = ["-10001", "-60001", "-60007", "-60009", "-60020", "-60021", "-60022"]
READ_TIMEOUT = 0.25  # the connection's ``timeout`` extra in read-time-out cases
SLOW_ANSWER = 0.45  # the emulator's delay: longer than READ_TIMEOUT
RETRY_AFTER = 0.2


# -- the calls -----------------------------------------------------------------------------------


@dataclass
class Call:
    """One MinerU call: how to set it up, make it (sync/async), and check its result is real."""

    name: str
    endpoint: str
    creates: bool  # a POST that creates tasks (a duplicate costs quota or an orphan batch)
    api: bool  # speaks MinerU's JSON envelope (False: object storage / CDN)
    prepare: Callable[[MinerUHook, Any, Any], Any]
    act: Callable[[MinerUHook, Any], Any]
    aact: Callable[[MinerUHook, Any], Any] | None
    check: Callable[[Any, Any, Any], None]
    created: Callable[[Any], int] = lambda emu: 0


def _nothing(hook, emu, tmp_path):
    return {
        "url": sample_url(emu, "invoice.pdf"),
        "urls": [sample_url(emu, n) for n in ("invoice.pdf", "annual_report.pdf")],
    }


def _granted(hook, emu, tmp_path):
    grant = hook.request_upload_urls([{"name": "invoice.pdf", "data_id": "invoice"}])
    return {"grant": grant, "task_id": emu.batch_task_ids(grant.batch_id)[0]}


def _submitted(hook, emu, tmp_path):
    return {"task_id": hook.submit_task(sample_url(emu, "invoice.pdf"), data_id="invoice")}


def _batched(hook, emu, tmp_path):
    return {"batch_id": hook.submit_batch([sample_url(emu, "invoice.pdf"), sample_url(emu, "annual_report.pdf")])}


def _finished(hook, emu, tmp_path):
    result = wait_task(hook, hook.submit_task(sample_url(emu, "invoice.pdf")))
    assert result.full_zip_url
    return {"zip_url": result.full_zip_url, "target": tmp_path / "result"}


def _check_task(emu, state, task_id):
    assert emu.task_state(task_id) is not None


def _check_batch(emu, state, batch_id):
    assert len(emu.batch_task_ids(batch_id)) == 2


def _check_grant(emu, state, grant):
    assert len(grant.file_urls) == 1
    assert len(emu.batch_task_ids(grant.batch_id)) == 1


def _check_uploaded(emu, state, sent):
    assert sent == (SAMPLES / "invoice.pdf").stat().st_size
    # the document reached MinerU: its task left ``waiting-file``
    wait_until(lambda: emu.task_state(state["task_id"])["state"] != "waiting-file")


def _check_polled_task(emu, state, result):
    assert result.task_id == state["task_id"] and result.data_id == "invoice"


def _check_polled_batch(emu, state, result):
    assert result.batch_id == state["batch_id"] and len(result.files) == 2


def _check_downloaded(emu, state, extracted):
    assert extracted.markdown == "full.md"
    assert (state["target"] / "full.md").read_text().strip()


CALLS = {
    c.name: c
    for c in [
        Call(
            "submit_task",
            "submit_task",
            True,
            True,
            _nothing,
            lambda h, s: h.submit_task(s["url"], data_id="invoice"),
            lambda h, s: h.asubmit_task(s["url"], data_id="invoice"),
            _check_task,
            lambda emu: emu.task_count,
        ),
        Call(
            "submit_batch",
            "submit_batch",
            True,
            True,
            _nothing,
            lambda h, s: h.submit_batch(s["urls"]),
            lambda h, s: h.asubmit_batch(s["urls"]),
            _check_batch,
            lambda emu: emu.batch_count,
        ),
        Call(
            "file_urls",
            "file_urls",
            True,
            True,
            _nothing,
            lambda h, s: h.request_upload_urls([{"name": "invoice.pdf", "data_id": "invoice"}]),
            lambda h, s: h.arequest_upload_urls([{"name": "invoice.pdf", "data_id": "invoice"}]),
            _check_grant,
            lambda emu: emu.batch_count,
        ),
        Call(
            "upload",
            "upload",
            False,
            False,
            _granted,
            lambda h, s: h.upload_file(s["grant"].file_urls[0], SAMPLES / "invoice.pdf"),
            None,
            _check_uploaded,
        ),
        Call(
            "get_task",
            "get_task",
            False,
            True,
            _submitted,
            lambda h, s: h.get_task(s["task_id"]),
            lambda h, s: h.aget_task(s["task_id"]),
            _check_polled_task,
        ),
        Call(
            "get_batch",
            "get_batch",
            False,
            True,
            _batched,
            lambda h, s: h.get_batch(s["batch_id"]),
            lambda h, s: h.aget_batch(s["batch_id"]),
            _check_polled_batch,
        ),
        Call(
            "download",
            "download",
            False,
            False,
            _finished,
            lambda h, s: h.download_and_extract(s["zip_url"], s["target"]),
            None,
            _check_downloaded,
        ),
    ]
}
API_CALLS = [name for name, call in CALLS.items() if call.api]
ASYNC_CALLS = [name for name, call in CALLS.items() if call.aact is not None]


# -- the transient faults ------------------------------------------------------------------------


@dataclass
class Transient:
    """A transient fault: how to build it for an endpoint, and which calls it applies to."""

    name: str
    build: Callable[[str], Fault]
    api_only: bool = False  # object storage / the CDN never answer MinerU envelopes or JSON
    slow: bool = False  # a read time-out: the connection's timeout is cut to READ_TIMEOUT


TRANSIENTS = [
    Transient("http_429_retry_after", lambda ep: Fault(endpoint=ep, http_status=429, retry_after=RETRY_AFTER)),
    Transient("http_429", lambda ep: Fault(endpoint=ep, http_status=429)),
    Transient("http_500", lambda ep: Fault(endpoint=ep, http_status=500)),
    Transient("http_502", lambda ep: Fault(endpoint=ep, http_status=502)),
    Transient("http_503", lambda ep: Fault(endpoint=ep, http_status=503, times=2)),
    *[
        Transient(f"code_{code}", lambda ep, code=code: Fault(endpoint=ep, code=int(code)), api_only=True)
        for code in TRANSIENT_CODES
    ],
    Transient(
        "code_-60009_as_string_http_503",
        lambda ep: Fault(endpoint=ep, code="-60009", code_as_string=True, http_status=503),
        api_only=True,
    ),
    Transient("reset", lambda ep: Fault(endpoint=ep, reset=True)),
    Transient("read_timeout", lambda ep: Fault(endpoint=ep, delay=SLOW_ANSWER), slow=True),
    Transient("truncated", lambda ep: Fault(endpoint=ep, truncated=True)),
    Transient("malformed_json", lambda ep: Fault(endpoint=ep, malformed_json=True), api_only=True),
    Transient("proxy_html_502", lambda ep: Fault(endpoint=ep, http_status=502, body=NGINX_502)),
]


#: Calls that make MinerU parse (and bill) documents, and the faults that lose their answer after sending.
PAID_SUBMITS = ("submit_task", "submit_batch")
LOST_ANSWERS = ("reset", "read_timeout", "truncated", "malformed_json")


def _lost_answer(call: str, fault: Transient) -> bool:
    return call in PAID_SUBMITS and fault.name in LOST_ANSWERS


def _cases(calls: list[str], *, lost: bool = False) -> list[Any]:
    return [
        pytest.param(call, fault, id=f"{call}-{fault.name}")
        for fault in TRANSIENTS
        for call in calls
        if not (fault.api_only and not CALLS[call].api) and _lost_answer(call, fault) is lost
    ]


def _processed_by_fault(call: Call, fault: Transient) -> bool:
    """Whether the faulted request was processed anyway (the emulator answers truncated/late answers)."""
    return fault.name in ("truncated", "read_timeout")


def _file_transfer_waits(call: Call, fault: Transient) -> bool:
    """Uploads and downloads read with max(timeout, 300 s): a 0.6 s slow answer is waited for, not retried."""
    return fault.slow and not call.api


def _logged(capfd: Any, caplog: Any) -> str:
    """Everything logged so far (structlog on Airflow 3 prints; Airflow 2 logs through ``logging``)."""
    out, err = capfd.readouterr()
    return out + err + caplog.text


def _expect_after(emu: Any, call: Call, fault: Transient, injected: Fault, logs: str) -> None:
    requests = emu.requests_to(call.endpoint)
    assert injected.fired == injected.times, f"the fault did not fire as injected: {requests}"
    if _file_transfer_waits(call, fault):
        assert len(requests) == 1 and requests[0].status == 200  # one slow answer, waited for
        return
    clean = [r for r in requests if r.fault is None]
    assert len(clean) == 1, [(r.status, r.fault) for r in requests]  # retried until one clean answer, then stop
    assert clean[0].status == 200
    if fault.name == "http_429_retry_after":
        faulted = next(r for r in requests if r.fault)
        assert clean[0].time - faulted.time >= RETRY_AFTER - 0.02  # Retry-After was honoured
    if call.creates:
        # nothing created twice, unless the faulted request was processed before its answer was lost
        expected = 2 if _processed_by_fault(call, fault) else 1
        wait_until(lambda: call.created(emu) >= expected, timeout=3)
        assert call.created(emu) == expected
        if fault.slow:
            assert "may have reached MinerU" in logs  # the possible duplicate is logged, by data_id
            assert "data_id invoice" in logs or call.name == "submit_batch"
    if fault.slow:
        wait_until(lambda: len(emu.requests_to(call.endpoint)) == 2, timeout=3)  # let the late answer land


@pytest.mark.parametrize(("call_name", "fault"), _cases(list(CALLS)))
def test_transient_fault_is_absorbed(call_name, fault, emulator, monkeypatch, tmp_path, capfd, caplog, ledger, request):
    call = CALLS[call_name]
    set_conn(monkeypatch, emulator, timeout=READ_TIMEOUT if fault.slow else 5)
    hook = MinerUHook()
    state = call.prepare(hook, emulator, tmp_path)
    emulator.clear_requests()
    injected = emulator.inject(fault.build(call.endpoint))

    result = call.act(hook, state)

    call.check(emulator, state, result)
    assert not ledger.account(request, [call.name], [call.name])
    _expect_after(emulator, call, fault, injected, _logged(capfd, caplog))


@pytest.mark.parametrize(("call_name", "fault"), _cases(ASYNC_CALLS))
async def test_transient_fault_is_absorbed_async(
    call_name, fault, emulator, monkeypatch, tmp_path, capfd, caplog, ledger, request
):
    import asyncio

    call = CALLS[call_name]
    set_conn(monkeypatch, emulator, timeout=READ_TIMEOUT if fault.slow else 5)
    hook = MinerUHook()
    state = await asyncio.to_thread(call.prepare, MinerUHook(), emulator, tmp_path)
    emulator.clear_requests()
    injected = emulator.inject(fault.build(call.endpoint))

    result = await call.aact(hook, state)

    call.check(emulator, state, result)
    assert not ledger.account(request, [call.name], [call.name])
    await asyncio.to_thread(_expect_after, emulator, call, fault, injected, _logged(capfd, caplog))


def _expect_not_resent(emu: Any, call: Call, fault: Transient, error: MinerUAmbiguousSubmitError) -> None:
    if fault.slow:  # the emulator records the late request once it has answered it
        wait_until(lambda: emu.requests_to(call.endpoint), timeout=3)
    assert len(emu.requests_to(call.endpoint)) == 1  # sent once, never re-sent by the hook
    assert "at most one duplicate task may exist for: " in str(error)
    assert error.documents == (["invoice"] if call.name == "submit_task" else ["invoice.pdf", "annual_report.pdf"])
    assert not error.retryable
    # the emulator processes a cut-short or late answer, not a reset or an unreadable body
    expected = 1 if fault.name in ("truncated", "read_timeout") else 0
    if expected:
        wait_until(lambda: call.created(emu) >= expected, timeout=3)
    assert call.created(emu) == expected


@pytest.mark.parametrize(("call_name", "fault"), _cases(list(CALLS), lost=True))
def test_lost_answer_to_a_paid_submit_is_never_resent(
    call_name, fault, emulator, monkeypatch, tmp_path, ledger, request
):
    call = CALLS[call_name]
    set_conn(monkeypatch, emulator, timeout=READ_TIMEOUT if fault.slow else 5)
    hook = MinerUHook()
    state = call.prepare(hook, emulator, tmp_path)
    emulator.clear_requests()
    emulator.inject(fault.build(call.endpoint))

    with pytest.raises(MinerUAmbiguousSubmitError) as info:
        call.act(hook, state)

    assert not ledger.account(request, [call.name], [call.name])  # reported, by name, as a typed error
    _expect_not_resent(emulator, call, fault, info.value)


@pytest.mark.parametrize(("call_name", "fault"), _cases(ASYNC_CALLS, lost=True))
async def test_lost_answer_to_a_paid_submit_is_never_resent_async(
    call_name, fault, emulator, monkeypatch, tmp_path, ledger, request
):
    import asyncio

    call = CALLS[call_name]
    set_conn(monkeypatch, emulator, timeout=READ_TIMEOUT if fault.slow else 5)
    state = await asyncio.to_thread(call.prepare, MinerUHook(), emulator, tmp_path)
    emulator.clear_requests()
    emulator.inject(fault.build(call.endpoint))

    with pytest.raises(MinerUAmbiguousSubmitError) as info:
        await call.aact(MinerUHook(), state)

    assert not ledger.account(request, [call.name], [call.name])
    await asyncio.to_thread(_expect_not_resent, emulator, call, fault, info.value)


@pytest.mark.parametrize("call_name", list(CALLS))
def test_fault_that_never_clears_is_retried_within_bounds(call_name, emulator, monkeypatch, tmp_path):
    call = CALLS[call_name]
    set_conn(monkeypatch, emulator)  # max_retries 3
    hook = MinerUHook()
    state = call.prepare(hook, emulator, tmp_path)
    emulator.clear_requests()
    emulator.inject(Fault(endpoint=call.endpoint, http_status=503, times=100))

    with pytest.raises(MinerUTransientError) as info:
        call.act(hook, state)

    assert info.value.http_status == 503
    assert len(emulator.requests_to(call.endpoint)) == 1 + 3
    if call.api:
        assert re.fullmatch(r"[0-9a-f]{32}", info.value.trace_id or "")
    if call.creates:
        assert call.created(emulator) == 0  # nothing half-created: the caller gets the error


def test_retry_after_is_capped_by_the_connection(emulator, monkeypatch):
    """A server asking for an absurd wait (Retry-After: 3600) waits at most ``retry_max_after``."""
    import time

    set_conn(monkeypatch, emulator, retry_max_after=0.2)
    hook = MinerUHook()
    task_id = hook.submit_task(sample_url(emulator, "invoice.pdf"))
    emulator.inject(Fault(endpoint="get_task", http_status=429, retry_after=3600))
    started = time.monotonic()
    assert hook.get_task(task_id).task_id == task_id
    assert 0.18 <= time.monotonic() - started < 5


# -- read time-outs on create calls: logged as possible duplicates ------------------------------


def test_truncated_answer_to_an_upload_url_request_is_logged_as_possible_duplicate(
    emulator, monkeypatch, capfd, caplog
):
    """``POST /file-urls/batch`` costs nothing until a file is uploaded: it is retried, the orphan batch logged."""
    call = CALLS["file_urls"]
    set_conn(monkeypatch, emulator)
    hook = MinerUHook()
    state = call.prepare(hook, emulator, None)
    emulator.inject(Fault(endpoint=call.endpoint, truncated=True, times=1))
    emulator.inject(Fault(endpoint=call.endpoint, delay=SLOW_ANSWER))
    set_conn(monkeypatch, emulator, timeout=READ_TIMEOUT)
    call.act(MinerUHook(), state)
    wait_until(lambda: call.created(emulator) == 3, timeout=3)  # two orphan grants, nobody uploads to them
    assert "may have reached MinerU" in _logged(capfd, caplog)


# -- permanent faults ----------------------------------------------------------------------------


PERMANENT_API = [
    ("auth_401_A0211", dict(code="A0211", http_status=401), MinerUAuthError, "A0211", 401),
    ("auth_A0202", dict(code="A0202"), MinerUAuthError, "A0202", 200),
    ("quota_-60017", dict(code=-60017), MinerUQuotaError, "-60017", 200),
    ("daily_limit_-60018", dict(code=-60018), MinerUQuotaError, "-60018", 200),
    ("bad_param_-10002", dict(code=-10002), MinerUInvalidRequestError, "-10002", 200),
    ("http_400_-500", dict(code=-500, http_status=400), MinerUInvalidRequestError, "-500", 400),
    ("not_found_-60012", dict(code=-60012), MinerUNotFoundError, "-60012", 200),
    ("unknown_code_-99999", dict(code=-99999), MinerUError, "-99999", 200),
]


@pytest.mark.parametrize(
    ("call_name", "fields", "error", "code", "status"),
    [
        pytest.param(call, fields, error, code, status, id=f"{call}-{name}")
        for name, fields, error, code, status in PERMANENT_API
        for call in API_CALLS
    ],
)
def test_permanent_api_fault_fails_fast_with_message_code_and_trace_id(
    call_name, fields, error, code, status, emulator, monkeypatch, tmp_path
):
    call = CALLS[call_name]
    set_conn(monkeypatch, emulator)
    hook = MinerUHook()
    state = call.prepare(hook, emulator, tmp_path)
    created_before = call.created(emulator)
    emulator.clear_requests()
    message = f"scripted {code} for the reliability suite"
    emulator.inject(Fault(endpoint=call.endpoint, msg={"en": message, "zh": "测试"}, **fields))

    with pytest.raises(error) as info:
        call.act(hook, state)

    assert type(info.value) is error  # the exact class, not a transient one
    assert len(emulator.requests_to(call.endpoint)) == 1  # failed fast: never retried
    assert info.value.code == code
    assert info.value.http_status == status
    assert re.fullmatch(r"[0-9a-f]{32}", info.value.trace_id or "")
    text = str(info.value)
    assert message in text and code in text and info.value.trace_id in text
    assert call.created(emulator) == created_before


OSS_FORBIDDEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>SignatureDoesNotMatch</Code>\n'
    "  <Message>The request signature we calculated does not match.</Message>\n"
    "  <RequestId>65F1A2B3C4D5E6F708192A3B</RequestId>\n</Error>\n"
)
OSS_NO_SUCH_KEY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>NoSuchKey</Code>\n'
    "  <Message>The specified key does not exist.</Message>\n"
    "  <RequestId>65F1A2B3C4D5E6F708192A3C</RequestId>\n</Error>\n"
)


@pytest.mark.parametrize(
    ("call_name", "status", "body", "error"),
    [
        pytest.param("upload", 403, OSS_FORBIDDEN, MinerUInvalidRequestError, id="upload-oss_403_signature"),
        pytest.param("upload", 404, OSS_NO_SUCH_KEY, MinerUInvalidRequestError, id="upload-oss_404"),
        pytest.param("download", 403, OSS_FORBIDDEN, MinerUResultError, id="download-oss_403"),
        pytest.param("download", 404, OSS_NO_SUCH_KEY, MinerUResultError, id="download-oss_404"),
    ],
)
def test_permanent_storage_fault_fails_fast_with_its_message(
    call_name, status, body, error, emulator, monkeypatch, tmp_path
):
    call = CALLS[call_name]
    set_conn(monkeypatch, emulator)
    hook = MinerUHook()
    state = call.prepare(hook, emulator, tmp_path)
    emulator.clear_requests()
    emulator.inject(Fault(endpoint=call.endpoint, http_status=status, body=body, content_type="application/xml"))

    with pytest.raises(error) as info:
        call.act(hook, state)

    assert type(info.value) is error
    assert len(emulator.requests_to(call.endpoint)) == 1
    assert info.value.http_status == status
    code = "SignatureDoesNotMatch" if status == 403 else "NoSuchKey"
    assert code in str(info.value)
    assert "Signature=" not in str(info.value)  # presigned query strings stay out of errors


@pytest.mark.parametrize("call_name", ["upload", "download"])
def test_storage_error_keeps_the_request_id_as_trace_id(call_name, emulator, monkeypatch, tmp_path):
    call = CALLS[call_name]
    set_conn(monkeypatch, emulator)
    hook = MinerUHook()
    state = call.prepare(hook, emulator, tmp_path)
    emulator.inject(Fault(endpoint=call.endpoint, http_status=403, body=OSS_FORBIDDEN, content_type="application/xml"))
    with pytest.raises(MinerUError) as info:
        call.act(hook, state)
    assert info.value.trace_id == "65F1A2B3C4D5E6F708192A3B"


def test_expired_upload_url_fails_fast_with_a_clear_error(mineru_emulator_factory, monkeypatch):
    """``upload_url_ttl=0``: the presigned URL is already past its ``Expires`` when the PUT arrives."""
    emu = mineru_emulator_factory(upload_url_ttl=0.0)
    set_conn(monkeypatch, emu)
    hook = MinerUHook()
    grant = hook.request_upload_urls(["invoice.pdf"])
    with pytest.raises(MinerUUploadURLExpiredError) as info:
        hook.upload_file(grant.file_urls[0], SAMPLES / "invoice.pdf")
    assert "expired" in str(info.value) and info.value.http_status == 403
    assert len(emu.requests_to("upload")) == 1  # not retried: the same URL can never succeed
    assert "Signature=" not in str(info.value)


def test_download_answered_with_a_page_instead_of_the_zip_fails_clearly(emulator, monkeypatch, tmp_path):
    """A CDN or proxy answering HTTP 200 with an HTML page: a clear result error, nothing extracted."""
    set_conn(monkeypatch, emulator)
    hook = MinerUHook()
    state = _finished(hook, emulator, tmp_path)
    emulator.clear_requests()
    emulator.inject(Fault(endpoint="download", body="<html><body>Please log in to the hotel Wi-Fi</body></html>"))
    with pytest.raises(MinerUResultError, match="not a readable zip archive"):
        hook.download_and_extract(state["zip_url"], state["target"])
    assert len(emulator.requests_to("download")) == 1  # observed: not retried (see docs/reliability.md)
    assert not state["target"].exists() or not any(state["target"].iterdir())
