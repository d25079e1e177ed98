"""The cloud v4 API on the wire, without any I/O: bodies, envelopes, what is never re-sent."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mineru.clients.v4_wire import (
    ParseOptions,
    build_batch_body,
    build_task_body,
    join_url,
    parse_response,
)
from airflow_provider_mineru.connection.config import MinerULimits
from airflow_provider_mineru.exceptions import (
    MinerUAuthError,
    MinerUProtocolError,
    MinerUTransientError,
    MinerUValidationError,
)


def test_task_body_carries_only_the_options_that_are_set():
    body = build_task_body("https://x/a.pdf", ParseOptions(language="en"), data_id="a", page_ranges="1-2")
    assert body == {"url": "https://x/a.pdf", "language": "en", "data_id": "a", "page_ranges": "1-2"}


def test_batch_body_applies_the_batch_ocr_default_per_file():
    body = build_batch_body(
        ["https://x/a.pdf", {"url": "https://x/b.pdf", "is_ocr": False}],
        ParseOptions(is_ocr=True),
        key="url",
        limits=MinerULimits(),
    )
    assert [f["is_ocr"] for f in body["files"]] == [True, False] and "is_ocr" not in {k for k in body if k != "files"}


def test_bad_options_are_named_before_any_request():
    with pytest.raises(MinerUValidationError, match="seed"):
        ParseOptions(callback="https://cb.example/x").to_body()
    with pytest.raises(MinerUValidationError, match="tier"):
        ParseOptions(tier="flash").to_body()
    with pytest.raises(MinerUValidationError):
        build_batch_body(["a.pdf", "a.pdf"], ParseOptions(), key="name", limits=MinerULimits())


def test_envelopes_decode_to_data_or_a_typed_error():
    ok = json.dumps({"code": 0, "msg": "ok", "trace_id": "t", "data": {"task_id": "x"}}).encode()
    assert parse_response(200, {}, ok) == {"task_id": "x"}
    denied = json.dumps({"code": "A0202", "msg": "token invalid", "trace_id": "tr-1"}).encode()
    with pytest.raises(MinerUAuthError) as raised:
        parse_response(401, {}, denied)
    assert raised.value.trace_id == "tr-1"
    with pytest.raises(MinerUTransientError) as busy:
        parse_response(429, {"Retry-After": "3"}, b"slow down")
    assert busy.value.retry_after == 3.0
    with pytest.raises(MinerUProtocolError):
        parse_response(200, {}, b"<html>gateway</html>")


def test_join_url():
    assert join_url("https://mineru.net/api/v4/", "/extract/task") == "https://mineru.net/api/v4/extract/task"
