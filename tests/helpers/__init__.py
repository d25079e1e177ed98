"""Helpers shared by the test modules: sample documents, waiting, example DAGs, running DAGs."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pendulum

#: The API token of the suite's ``mineru_default`` connection (checked never to show in logs, XCom, errors).
TEST_TOKEN = "test-token-0123456789"

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
SAMPLES = DAGS / "sample_documents"


def sample_url(emu: Any, name: str) -> str:
    """The URL at which the emulator serves one of the bundled sample documents."""
    return emu.base_url.split("/api/")[0] + f"/samples/{name}"


def wait_task(hook: Any, task_id: str, timeout: float = 20) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = hook.get_task(task_id)
        if result.is_terminal:
            return result
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def wait_batch(hook: Any, batch_id: str, expected: int, timeout: float = 20) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = hook.get_batch(batch_id)
        if result.is_complete(expected):
            return result
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not finish")


def load_example(name: str, *, deferrable: bool, output: Path, monkeypatch: Any) -> ModuleType:
    """Import an example DAG file fresh, with the example settings taken from the environment."""
    monkeypatch.setenv("MINERU_EXAMPLE_DEFERRABLE", str(deferrable).lower())
    monkeypatch.setenv("MINERU_EXAMPLE_OUTPUT", str(output))
    monkeypatch.setenv("MINERU_EXAMPLE_POLL_INTERVAL", "0.2")
    monkeypatch.syspath_prepend(str(DAGS))
    sys.modules.pop("_example_settings", None)
    spec = importlib.util.spec_from_file_location(f"example_{name}_{uuid.uuid4().hex}", DAGS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def new_dag(**kwargs: Any) -> Any:
    """A DAG with a unique id, for tests that build their own."""
    from airflow.providers.common.compat.sdk import DAG

    kwargs.setdefault("dag_id", f"test_{uuid.uuid4().hex[:12]}")
    return DAG(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, **kwargs)


def parse_dag(operator_class: Any, **kwargs: Any) -> Any:
    """A DAG with one task ``parse`` of ``operator_class`` (polling every 0.1 s unless given)."""
    kwargs.setdefault("poll_interval", 0.1)
    with new_dag() as dag:
        operator_class(task_id="parse", **kwargs)
    return dag


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in dag_run.get_task_instances()}


def run_dag(dag: Any, capfd: Any = None, **kwargs: Any) -> tuple[dict[str, str], str]:
    """Run a DAG with ``dag.test()``; return {task_id: state} and what the run printed (with ``capfd``)."""
    from tests.conftest import register_dag

    register_dag(dag)
    dag_run = dag.test(**kwargs)
    output = ""
    if capfd is not None:
        out, err = capfd.readouterr()
        output = out + err
    return task_states(dag_run), output


def xcom(dag: Any, task_id: str) -> Any:
    """The ``return_value`` XCom of a task in the DAG's latest run."""
    from airflow.models import DagRun

    dag_run = max(DagRun.find(dag_id=dag.dag_id), key=lambda run: run.id)
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)
