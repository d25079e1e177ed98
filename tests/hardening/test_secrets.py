"""The API token never shows: not in logs, errors, XCom, trigger serialization or the emulator's log."""

from __future__ import annotations

import json
import time
import uuid

import pendulum
import pytest

from airflow_provider_mineru.exceptions import MinerUError
from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.operators.mineru import MinerUSubmitBatchOperator, MinerUSubmitTaskOperator
from airflow_provider_mineru.triggers.mineru import MinerUTaskTrigger
from mineru_emulator import Fault, MinerUEmulator, Timings

SECRET = "sk-mineru-" + uuid.uuid4().hex


@pytest.fixture
def secret_emulator(monkeypatch):
    with MinerUEmulator(token=SECRET, timings=Timings(pending=0.05, per_page=0.02, converting=0.05)) as emu:
        conn = json.loads(emu.connection_json())
        conn["extra"].update({"retry_backoff": 0.01, "max_retries": 2})
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
        yield emu


def test_hook_errors_and_reprs(secret_emulator, caplog):
    hook = MinerUHook()
    assert SECRET not in repr(hook)
    assert SECRET not in repr(hook.config)
    secret_emulator.inject(Fault(endpoint="get_task", http_status=503, times=10))
    with pytest.raises(MinerUError) as info:
        hook.get_task("t")
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text
    trigger = MinerUTaskTrigger(mineru_task_id="t", end_time=time.time())
    assert SECRET not in json.dumps(trigger.serialize())
    assert SECRET not in json.dumps([r.__dict__ for r in secret_emulator.requests], default=str)


@pytest.mark.usefixtures("airflow_db")
def test_whole_dag_runs_never_print_the_token(secret_emulator, capfd, caplog, tmp_path):
    from airflow.providers.common.compat.sdk import DAG

    from tests.conftest import register_dag

    base = secret_emulator.base_url.split("/api/")[0]
    secret_emulator.fail_next_tasks("broken page", match="invoice")
    secret_emulator.inject(Fault(endpoint="get_batch", http_status=502, times=1))
    with DAG(
        dag_id=f"secrets_{uuid.uuid4().hex[:8]}", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")
    ) as dag:
        MinerUSubmitTaskOperator(
            task_id="one", url=f"{base}/samples/annual_report.pdf", output_path=str(tmp_path), poll_interval=0.1
        )
        MinerUSubmitBatchOperator(
            task_id="batch",
            urls=[f"{base}/samples/invoice.pdf", f"{base}/samples/research_paper.pdf"],
            deferrable=True,
            poll_interval=0.1,
            output_path=str(tmp_path),
        )
        MinerUSubmitTaskOperator(task_id="invalid", url=f"{base}/samples/x.pdf", data_id="bad id")
    register_dag(dag)
    dag_run = dag.test()
    out, err = capfd.readouterr()
    everything = out + err + caplog.text
    assert "broken page" in everything  # the run did log its failures...
    assert SECRET not in everything  # ...and never the token
    from airflow.models import DagRun

    run = DagRun.find(dag_id=dag.dag_id)[0]
    for task_id in ("one", "batch"):
        value = run.get_task_instance(task_id).xcom_pull(task_ids=task_id)
        assert SECRET not in json.dumps(value)
    assert dag_run is not None
