"""Metrics: low-cardinality tags only, and the names and tags a real StatsD listener receives."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from airflow_provider_mineru.account import metrics


@pytest.mark.parametrize(
    "value",
    [
        "/data/in/report.pdf",
        "s3://bucket/key.pdf",
        "https://cdn-mineru.openxlab.org.cn/pdf/abc.zip",
        "report.pdf",
        "Annual Report 2026.docx",
        "C:\\docs\\a.pdf",
        "file:///tmp/x",
        "a" * 200,
        "../etc",
    ],
)
def test_no_tag_value_can_be_a_path_url_or_file_name(value):
    for kind in ("word", "conn", "code"):
        assert metrics.tag_value(value, kind) == metrics.OTHER


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("mineru_default", "conn"),
        ("mineru.prod", "conn"),
        ("vlm", "word"),
        ("MinerU-HTML", "word"),
        ("deferred_budget", "word"),
        ("-60010", "code"),
        ("A0202", "code"),
        (429, "code"),
    ],
)
def test_known_shapes_are_kept(value, kind):
    assert metrics.tag_value(value, kind) == str(value)


def test_every_metric_function_tags_only_low_cardinality_values(monkeypatch):
    sent = []

    class Recorder:
        def __getattr__(self, name):
            return lambda stat, *args, tags=None, **kwargs: sent.append((name, stat, tags))

    monkeypatch.setattr(metrics, "Stats", Recorder())
    url = "s3://bucket/in/secret-report.pdf"
    metrics.document_finished(url, flavor=url, model=url, outcome=url, error_code=url)
    metrics.pages_submitted(url, 3, flavor=url, model=url)
    metrics.queue_time(url, 1.0, flavor=url, model=url)
    metrics.parse_time(url, 1.0, flavor=url, model=url)
    metrics.http_retry(url, flavor=url, status=url)
    metrics.rate_limited(url, kind=url)
    metrics.budget_remaining(url, pages=1, files=2)
    metrics.token_expiry_days(url, _jwt(time.time() + 86400))
    assert len(sent) == 9
    for _, stat, tags in sent:
        assert stat.startswith("mineru.")
        assert set(tags) <= {"conn_id", "flavor", "model", "outcome", "error_code", "status", "kind"}
        assert all(value == metrics.OTHER for name, value in tags.items() if name != "kind")


def _jwt(exp: float) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part({'exp': exp})}.c2ln"


def test_token_expiry_days_only_for_jwts(monkeypatch):
    monkeypatch.setattr(metrics, "Stats", type("S", (), {"gauge": staticmethod(lambda *a, **k: None)}))
    assert metrics.token_expiry_days("c", "not-a-jwt") is None
    assert metrics.token_expiry_days("c", _jwt(1000 + 3 * 86400), now=1000) == pytest.approx(3)


_EMIT = textwrap.dedent(
    """
    from airflow_provider_mineru.account import metrics
    tags = dict(flavor="cloud", model="vlm")
    metrics.document_finished("mineru_default", outcome="failed", error_code="-60010", **tags)
    metrics.document_finished("mineru_default", outcome="done", **tags)
    metrics.pages_submitted("mineru_default", 42, **tags)
    metrics.queue_time("mineru_default", 1.5, **tags)
    metrics.parse_time("mineru_default", 12.25, **tags)
    metrics.http_retry("mineru_default", flavor="cloud", status=429)
    metrics.rate_limited("mineru_default", kind="submit")
    metrics.budget_remaining("mineru_default", pages=1958, files=None)
    metrics.token_expiry_days("mineru_default", {token!r}, now=0)
    metrics.document_finished("/data/in/secret report.pdf", outcome="done", flavor="cloud", model="vlm")
    """
)


def test_a_real_statsd_listener_receives_names_and_tags(tmp_path):
    pytest.importorskip("statsd", reason="Airflow's StatsD metrics need the statsd package (apache-airflow[statsd])")
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(20)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
    }
    try:
        subprocess.run([sys.executable, "-c", _EMIT.format(token=_jwt(2.5 * 86400))], env=env, check=True, timeout=120)
        packets = []
        listener.settimeout(2)
        while True:
            try:
                packets.extend(listener.recv(65535).decode().splitlines())
            except TimeoutError:
                break
    finally:
        listener.close()
    got = sorted(packets)
    common = "conn_id=mineru_default,flavor=cloud,model=vlm"
    expected_prefixes = [
        f"airflow.mineru.documents,{common},outcome=failed,error_code=-60010:1|c",
        f"airflow.mineru.documents,{common},outcome=done,error_code=none:1|c",
        f"airflow.mineru.pages_submitted,{common}:42|c",
        f"airflow.mineru.queue_time,{common}:1500",
        f"airflow.mineru.parse_time,{common}:12250",
        "airflow.mineru.http_retries,conn_id=mineru_default,flavor=cloud,status=429:1|c",
        "airflow.mineru.rate_limited,conn_id=mineru_default,kind=submit:1|c",
        "airflow.mineru.budget_remaining,conn_id=mineru_default,kind=pages:1958|g",
        "airflow.mineru.token_expiry_days,conn_id=mineru_default:2.5|g",
        "airflow.mineru.documents,conn_id=other,flavor=cloud,model=vlm,outcome=done,error_code=none:1|c",
    ]
    for prefix in expected_prefixes:
        assert any(packet.startswith(prefix) for packet in got), (prefix, got)
    assert not any("secret" in packet or "/data" in packet for packet in got)


def test_queue_times_are_handed_to_the_trigger_unless_the_operator_sent_them(monkeypatch):
    """The operator's poll before deferring saw a document parsing: it sent queue times, the trigger must not."""
    from airflow_provider_mineru.account.timings import TransitionTimes
    from airflow_provider_mineru.models import DocumentResult, MinerUState

    sent = []

    class Recorder:
        def __getattr__(self, name):
            return lambda stat, value, tags=None, **kwargs: sent.append((stat, value.total_seconds()))

    monkeypatch.setattr(metrics, "Stats", Recorder())
    now = [100.0]

    def watcher(submitted_at: float | None) -> TransitionTimes:
        return TransitionTimes("c", flavor="cloud", model="vlm", submitted_at=submitted_at, clock=lambda: now[0])

    def see(times: TransitionTimes, key: str, state: MinerUState, at: float) -> None:
        now[0] = at
        times.saw(key, DocumentResult(state=state, raw_state=state.value))

    operator = watcher(90.0)
    see(operator, "b/0", MinerUState.PENDING, 91.0)
    trigger = watcher(operator.handover())  # nothing parsing yet: the trigger counts from the submit
    see(trigger, "b/0", MinerUState.RUNNING, 104.0)
    see(trigger, "b/0", MinerUState.DONE, 109.0)
    assert sent == [("mineru.queue_time", 14.0), ("mineru.parse_time", 5.0)]

    operator = watcher(90.0)
    see(operator, "b/0", MinerUState.RUNNING, 93.0)  # sent here
    assert operator.handover() is None
