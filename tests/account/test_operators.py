"""
The account wired into the real operators, against the emulator: budget admission
(``on_budget_exhausted`` skip / fail / defer), the shared limiters and a 429, the manifest.

Every test counts in an account store of its own (``account_store`` = a temporary folder), so the
budgets of one test never see another's pages.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import pytest

from airflow_provider_mineru.account.manifest import read_manifest
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator, MinerUUploadFilesOperator
from tests.helpers import parse_dag, run_dag, sample_url, xcom
from tests.helpers.pdf_samples import xref_stream_pdf

pytestmark = pytest.mark.usefixtures("airflow_db")

MODES = [pytest.param(True, id="deferrable"), pytest.param(False, id="blocking")]


def set_conn(monkeypatch, emulator, store, **extra):
    """``mineru_default`` at the emulator, with fast retries, its own account store and ``extra``."""
    conn = json.loads(emulator.connection_json())
    conn.setdefault("extra", {}).update(
        {"retry_backoff": 0.01, "max_retries": 3, "timeout": 5, "account_store": str(store), **extra}
    )
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
    return conn


def pdfs(folder, *pages):
    """One PDF per page count, named ``doc_<i>.pdf``, each with its own bytes (the ledger copies identical ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [xref_stream_pdf(folder / f"doc_{i}.pdf", n, pad_bytes=100 * i) for i, n in enumerate(pages)]


def uploaded_names(emulator) -> list[str]:
    """Every file name the operator asked upload URLs for."""
    names = []
    for request in emulator.requests_to("file_urls"):
        names.extend(f["name"] for f in request.json["files"])
    return names


class TaskStateStore:
    """The ``task_state_store`` of a task run outside a worker (Airflow 3.3's own needs the supervisor)."""

    def __init__(self):
        self.values = {}

    def get(self, key):
        return self.values[key]

    def set(self, key, value):
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key):
        self.values.pop(key, None)


def direct_context(run_id="run_1"):
    pushed: dict = {}
    ti = SimpleNamespace(
        dag_id="account_dag",
        run_id=run_id,
        task_id="parse",
        map_index=-1,
        try_number=1,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )
    return {"ti": ti, "run_id": run_id, "task_state_store": TaskStateStore()}, pushed


@pytest.mark.parametrize("deferrable", MODES)
def test_skip_parses_what_fits_and_reports_the_rest(emulator, monkeypatch, tmp_path, capfd, deferrable):
    set_conn(monkeypatch, emulator, tmp_path / "account", daily_page_budget=5)
    pdfs(tmp_path / "in", 2, 2, 2)
    out = tmp_path / "out"
    dag = parse_dag(
        MinerUUploadFilesOperator,
        paths=str(tmp_path / "in" / "*.pdf"),
        on_budget_exhausted="skip",
        deferrable=deferrable,
        output_path=str(out),
    )
    states, output = run_dag(dag, capfd)
    assert states == {"parse": "success"}, output[-3000:]
    value = xcom(dag, "parse")
    assert [r["state"] for r in value["results"]] == ["done", "done", "deferred_budget"]
    assert value["results"][2]["file_name"] == "doc_2.pdf"
    assert "resets at" in value["results"][2]["err_msg"]
    assert value["counts"]["deferred_budget"] == 1
    assert uploaded_names(emulator) == ["doc_0.pdf", "doc_1.pdf"]  # no request for the third
    lines = read_manifest(value["manifest"])
    assert value["manifest"].startswith(str(out / ".mineru-manifests"))
    assert [(line["input"].rsplit("/", 1)[-1], line["outcome"]) for line in lines] == [
        ("doc_0.pdf", "done"),
        ("doc_1.pdf", "done"),
        ("doc_2.pdf", "deferred_budget"),
    ]
    assert [line["pages"] for line in lines[:2]] == [2, 2]  # our count (these PDFs have no text for MinerU to count)
    assert all(line["batch_id"] for line in lines[:2])


def test_fail_raises_a_quota_error_before_any_request(emulator, monkeypatch, tmp_path, capfd):
    set_conn(monkeypatch, emulator, tmp_path / "account", daily_page_budget=3)
    pdfs(tmp_path / "in", 2, 2)
    dag = parse_dag(
        MinerUUploadFilesOperator,
        paths=str(tmp_path / "in" / "*.pdf"),
        on_budget_exhausted="fail",
        output_path=str(tmp_path / "out"),
    )
    states, output = run_dag(dag, capfd)
    assert states == {"parse": "failed"}
    assert "MinerUBudgetExhaustedError" in output
    assert "1 of 2 documents do not fit" in output
    assert emulator.requests_to("file_urls") == []
    # Nothing stays reserved: the whole budget is still there.
    from airflow_provider_mineru.account.limits import AccountLimits
    from airflow_provider_mineru.account.shared import account_for

    limits = AccountLimits(daily_page_budget=3, account_store=str(tmp_path / "account"))
    assert account_for("mineru_default", limits).budget.usage().pages_used == 0


def test_on_budget_exhausted_is_checked_by_name(emulator, monkeypatch, tmp_path):
    set_conn(monkeypatch, emulator, tmp_path / "account")
    operator = MinerUSubmitTaskOperator(
        task_id="parse", url=sample_url(emulator, "invoice.pdf"), on_budget_exhausted="later"
    )
    with pytest.raises(MinerUValidationError, match="on_budget_exhausted"):
        operator.execute(direct_context()[0])
    assert emulator.requests_to("submit_task") == []


def test_defer_sends_what_fits_defers_to_midnight_and_resumes(emulator, monkeypatch, tmp_path):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_mineru.account.budget import next_utc_midnight

    set_conn(monkeypatch, emulator, tmp_path / "account", daily_page_budget=4)
    pdfs(tmp_path / "in", 2, 2, 2)
    kwargs = {
        "task_id": "parse",
        "paths": str(tmp_path / "in" / "*.pdf"),
        "poll_interval": 0.05,
        "output_path": str(tmp_path / "out"),
    }
    context, _ = direct_context()
    with pytest.raises(TaskDeferred) as deferred:
        MinerUUploadFilesOperator(**kwargs).execute(context)
    assert deferred.value.method_name == "execute_after_budget_reset"
    trigger = deferred.value.trigger
    assert type(trigger).__name__ == "DateTimeTrigger"
    assert trigger.moment == next_utc_midnight(time.time())
    assert uploaded_names(emulator) == ["doc_0.pdf", "doc_1.pdf"]  # what fits is sent before deferring

    # The budget resets (here: the connection's budget is raised); a new instance resumes, as a worker would.
    set_conn(monkeypatch, emulator, tmp_path / "account", daily_page_budget=100)
    value = MinerUUploadFilesOperator(**kwargs).execute_after_budget_reset(context, event={"status": "success"})
    assert [r["state"] for r in value["results"]] == ["done", "done", "done"]
    assert uploaded_names(emulator) == ["doc_0.pdf", "doc_1.pdf", "doc_2.pdf"]  # the first two not paid again
    assert "deferred_budget" not in (value.get("counts") or {})
    assert [line["outcome"] for line in read_manifest(value["manifest"])] == ["done"] * 3


def test_budget_is_settled_with_the_pages_mineru_reports(emulator, monkeypatch, tmp_path):
    """A URL counts 1 page until MinerU reports its total; the day is then charged the real count."""
    from airflow_provider_mineru.account.limits import AccountLimits
    from airflow_provider_mineru.account.shared import account_for

    set_conn(monkeypatch, emulator, tmp_path / "account", daily_page_budget=1000)
    context, _ = direct_context()
    value = MinerUSubmitTaskOperator(
        task_id="parse",
        url=sample_url(emulator, "annual_report.pdf"),
        poll_interval=0.05,
        output_path=str(tmp_path / "out"),
    ).execute(context)
    assert value["state"] == "done"
    limits = AccountLimits(daily_page_budget=1000, account_store=str(tmp_path / "account"))
    used = account_for("mineru_default", limits).budget.usage().pages_used
    billed = emulator.account_usage()["today"]["pages_billed"]
    assert used == billed > 1


@pytest.mark.parametrize("deferrable", MODES)
def test_a_task_skipped_whole_sends_nothing(emulator, monkeypatch, tmp_path, capfd, deferrable):
    set_conn(monkeypatch, emulator, tmp_path / "account", daily_file_budget=0)
    dag = parse_dag(
        MinerUSubmitTaskOperator,
        url=sample_url(emulator, "invoice.pdf"),
        on_budget_exhausted="skip",
        deferrable=deferrable,
        output_path=str(tmp_path / "out"),
    )
    states, output = run_dag(dag, capfd)
    assert states == {"parse": "success"}, output[-3000:]
    value = xcom(dag, "parse")
    assert value["state"] == "deferred_budget" and value["task_id"] is None
    assert value["counts"] == {"deferred_budget": 1}
    assert emulator.requests_to("submit_task") == []
    assert [line["outcome"] for line in read_manifest(value["manifest"])] == ["deferred_budget"]


def test_a_429_is_retried_and_slows_the_shared_limiter(emulator, monkeypatch, tmp_path):
    from airflow_provider_mineru.account import metrics
    from airflow_provider_mineru.account.limits import AccountLimits
    from airflow_provider_mineru.account.shared import account_for
    from airflow_provider_mineru.hooks.mineru import MinerUHook

    sent = []

    class Recorder:
        def __getattr__(self, name):
            return lambda stat, *args, tags=None, **kwargs: sent.append((stat, tags))

    monkeypatch.setattr(metrics, "Stats", Recorder())
    set_conn(monkeypatch, emulator, tmp_path / "account", retry_max_after=0.5)
    emulator.set_account_limits(submit_rpm=1)
    MinerUHook().submit_task(sample_url(emulator, "invoice.pdf"))  # takes the minute's one submit

    def next_minute_after_the_429():
        deadline = time.time() + 30
        while time.time() < deadline and not emulator.account_usage()["http_429"]["submit"]:
            time.sleep(0.02)
        emulator.advance_clock(61)

    mover = threading.Thread(target=next_minute_after_the_429, daemon=True)
    mover.start()
    context, _ = direct_context()
    value = MinerUSubmitTaskOperator(
        task_id="parse", url=sample_url(emulator, "annual_report.pdf"), poll_interval=0.05
    ).execute(context)
    mover.join(10)
    assert value["state"] == "done"
    assert emulator.account_usage()["http_429"]["submit"] >= 1
    bucket = account_for("mineru_default", AccountLimits(account_store=str(tmp_path / "account"))).store.read(
        "rate/mineru_default/submit"
    )
    assert bucket["factor"] < 1.0  # the deployment's submit rate was slowed down
    assert bucket["penalty_until"] > 0
    retries = [tags for stat, tags in sent if stat == "mineru.http_retries"]
    assert {"conn_id": "mineru_default", "flavor": "cloud", "status": "429"} in retries


def test_every_request_takes_a_token_of_the_shared_limiters(emulator, monkeypatch, tmp_path):
    """Submits and polls of one run are counted in the account store's two buckets (sync and async alike)."""
    import asyncio

    from airflow_provider_mineru.hooks.mineru import MinerUHook

    set_conn(monkeypatch, emulator, tmp_path / "account")
    hook = MinerUHook()
    task_id = hook.submit_task(sample_url(emulator, "invoice.pdf"))
    hook.get_task(task_id)
    asyncio.run(MinerUHook().aget_task(task_id))
    store = hook.transport.pacing.account.store
    assert store.read("rate/mineru_default/submit") is not None
    assert store.read("rate/mineru_default/query") is not None
    assert hook.transport.pacing.account.queries.round_trips >= 1


def test_account_extras_are_checked_by_the_hook_naming_the_field(emulator, monkeypatch, tmp_path):
    from airflow_provider_mineru.hooks.mineru import MinerUHook

    for extra, words in [
        ({"submit_rpm": 0}, "submit_rpm"),
        ({"query_rpm": "fast"}, "query_rpm"),
        ({"daily_page_budget": -1}, "daily_page_budget"),
        ({"daily_file_budget": 1.5}, "daily_file_budget"),
        ({"account_store": "relative/dir"}, "account_store"),
    ]:
        set_conn(monkeypatch, emulator, tmp_path / "account", **extra)
        with pytest.raises(MinerUValidationError, match=words):
            _ = MinerUHook().config


def test_deferred_budget_midnight_is_utc():
    from airflow_provider_mineru.account.budget import next_utc_midnight

    moment = next_utc_midnight(time.time())
    assert moment.tzinfo == dt.timezone.utc and (moment.hour, moment.minute) == (0, 0)


_RUN_OPERATOR = textwrap.dedent(
    """
    import json, sys
    from types import SimpleNamespace
    from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

    class Store(dict):
        def get(self, key):
            return self[key]
        def set(self, key, value):
            self[key] = value
        def delete(self, key):
            self.pop(key, None)

    ti = SimpleNamespace(dag_id="metrics", run_id="r1", task_id="parse", map_index=-1, try_number=1,
                         xcom_push=lambda key, value: None)
    operator = MinerUUploadFilesOperator(task_id="parse", paths=sys.argv[1], output_path=sys.argv[2],
                                         poll_interval=0.05, on_budget_exhausted="skip", model_version="vlm")
    print(json.dumps(operator.execute({"ti": ti, "run_id": "r1", "task_state_store": Store()})))
    """
)


def test_a_real_statsd_listener_receives_a_real_runs_metrics(monkeypatch, tmp_path):
    """One operator run against the emulator (a 429 on a poll, a budget that skips one file) → StatsD."""
    pytest.importorskip("statsd", reason="Airflow's StatsD metrics need the statsd package (apache-airflow[statsd])")
    from mineru_emulator import Fault, MinerUEmulator, Timings
    from tests.account.test_metrics import _jwt

    token = _jwt(time.time() + 10 * 86400)
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    pdfs(tmp_path / "in", 2, 2, 2)
    with MinerUEmulator(token=token, timings=Timings(pending=0.3, per_page=0.2, converting=0.2)) as emulator:
        conn = set_conn(monkeypatch, emulator, tmp_path / "account", daily_page_budget=4)
        emulator.inject(Fault(endpoint="get_batch", http_status=429, retry_after=0.1, times=1))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "AIRFLOW_HOME": str(tmp_path / "home"),
            "AIRFLOW_CONN_MINERU_DEFAULT": json.dumps(conn),
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(port),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
        }
        try:
            run = subprocess.run(
                [sys.executable, "-c", _RUN_OPERATOR, str(tmp_path / "in"), str(tmp_path / "out")],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert run.returncode == 0, run.stderr[-3000:]
            packets = []
            listener.settimeout(2)
            while True:
                try:
                    packets.extend(listener.recv(65535).decode().splitlines())
                except TimeoutError:
                    break
        finally:
            listener.close()
    value = json.loads(run.stdout.strip().splitlines()[-1])
    assert [r["state"] for r in value["results"]] == ["done", "done", "deferred_budget"]
    names = {packet.split(",", 1)[0].split(":", 1)[0] for packet in packets}
    common = "conn_id=mineru_default,flavor=cloud,model=vlm"
    expected = [
        f"airflow.mineru.documents,{common},outcome=done,error_code=none:2|c",
        f"airflow.mineru.documents,{common},outcome=deferred_budget,error_code=none:1|c",
        f"airflow.mineru.pages_submitted,{common}:4|c",
        f"airflow.mineru.queue_time,{common}:",
        f"airflow.mineru.parse_time,{common}:",
        "airflow.mineru.http_retries,conn_id=mineru_default,flavor=cloud,status=429:1|c",
        "airflow.mineru.budget_remaining,conn_id=mineru_default,kind=pages:0|g",
        "airflow.mineru.token_expiry_days,conn_id=mineru_default:",
    ]
    summed = _summed(packets)
    print("\n".join(sorted(summed)))  # the picture in docs/operations.md
    for prefix in expected:
        assert any(p.startswith(prefix) for p in summed), (prefix, sorted(summed))
    assert names <= {
        f"airflow.mineru.{n}"
        for n in (
            "documents",
            "pages_submitted",
            "queue_time",
            "parse_time",
            "http_retries",
            "rate_limited",
            "budget_remaining",
            "token_expiry_days",
        )
    } | {n for n in names if not n.startswith("airflow.mineru")}
    assert not any(".pdf" in p or str(tmp_path) in p for p in packets)  # no file name, no path


def _summed(packets: list[str]) -> list[str]:
    """Counters with the same name and tags added up (``name,tags:N|c``); other packets as they came."""
    totals: dict[str, int] = {}
    others = []
    for packet in packets:
        head, _, rest = packet.partition(":")
        if rest.endswith("|c"):
            totals[head] = totals.get(head, 0) + int(rest[:-2])
        else:
            others.append(packet)
    return [f"{head}:{n}|c" for head, n in totals.items()] + others


def test_two_worker_processes_share_one_budget_with_no_overspend(emulator, monkeypatch, tmp_path):
    """Two processes (two workers) run their own task at once against one 6-page budget: 6 pages billed."""
    conn = set_conn(monkeypatch, emulator, tmp_path / "account", daily_page_budget=6)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW_CONN_MINERU_DEFAULT": json.dumps(conn),
    }
    workers = []
    for worker in ("a", "b"):
        pdfs(tmp_path / worker, 2, 2, 2)
        script = _RUN_OPERATOR.replace('"r1"', f'"run_{worker}"').replace('model_version="vlm"', "model_version=None")
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", script, str(tmp_path / worker), str(tmp_path / f"out-{worker}")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    values = []
    for process in workers:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-3000:]
        values.append(json.loads(out.strip().splitlines()[-1]))
    states = [r["state"] for value in values for r in value["results"]]
    assert states.count("done") == 3 and states.count("deferred_budget") == 3, states
    assert len(uploaded_names(emulator)) == 3  # the skipped ones were never sent
    assert emulator.account_usage()["today"]["pages_billed"] == 6  # exactly the budget, no overspend


@pytest.mark.parametrize("deferrable", MODES)
def test_a_second_run_reuses_without_budget_and_still_skips_what_never_fit(
    emulator, monkeypatch, tmp_path, capfd, deferrable
):
    """
    The three stages together (ledger, budget, manifest): run 1 parses what fits and reports the
    rest; run 2, the same day, reuses the two results (no budget, no request) and reports the third
    again, with both stages' counts and every input in its manifest.
    """
    set_conn(monkeypatch, emulator, tmp_path / "account", daily_page_budget=5)
    pdfs(tmp_path / "in", 2, 2, 2)
    out = tmp_path / "out"
    values = []
    for _ in range(2):
        dag = parse_dag(
            MinerUUploadFilesOperator,
            paths=str(tmp_path / "in" / "*.pdf"),
            on_budget_exhausted="skip",
            deferrable=deferrable,
            output_path=str(out),
        )
        states, output = run_dag(dag, capfd)
        assert states == {"parse": "success"}, output[-3000:]
        values.append(xcom(dag, "parse"))
    second = values[1]
    assert [(r["state"], r.get("reused")) for r in second["results"]] == [
        ("done", True),
        ("done", True),
        ("deferred_budget", False),
    ]
    assert second["counts"]["reused"] == 2 and second["counts"]["deferred_budget"] == 1
    assert uploaded_names(emulator) == ["doc_0.pdf", "doc_1.pdf"]  # run 2 sent nothing
    lines = read_manifest(second["manifest"])
    outcomes = sorted((line["input"].rsplit("/", 1)[-1], line["outcome"]) for line in lines)
    assert outcomes == [("doc_0.pdf", "reused"), ("doc_1.pdf", "reused"), ("doc_2.pdf", "deferred_budget")]
