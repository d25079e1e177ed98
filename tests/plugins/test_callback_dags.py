"""
The callback example DAGs end to end: submit with ``callback=``, MinerU calls the api-server, the
asset-scheduled DAG downloads what the events name. Real Airflow 3 (``dag.test()``), the emulator's
real callbacks, the plugin inside Airflow's API server app.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path

import pytest

from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS
from tests.plugins.conftest import SECRET, asset_events, finished_attempts, mineru_connection, set_connection, wait_for

pytestmark = [
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="FastAPI plugins (the api-server) are Airflow 3 only"),
    pytest.mark.usefixtures("airflow_db"),
]

DAGS = Path(__file__).resolve().parents[2] / "dags"


def load_example(output: Path, monkeypatch):
    monkeypatch.setenv("MINERU_EXAMPLE_OUTPUT", str(output))
    monkeypatch.syspath_prepend(str(DAGS))
    sys.modules.pop("_example_settings", None)
    spec = importlib.util.spec_from_file_location(f"callbacks_{uuid.uuid4().hex}", DAGS / "mineru_callback_asset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def consume_events_in_test_runs(monkeypatch, task_ids: list[str]) -> None:
    """Give the run ``dag.test()`` creates the asset events, as the scheduler does for an asset-triggered run."""
    from airflow.models import dagrun as dagrun_module
    from airflow.models.asset import AssetEvent, AssetModel
    from sqlalchemy import select

    from airflow_provider_mineru.callbacks import callback_asset

    real = dagrun_module.get_or_create_dagrun

    def with_events(**kwargs):
        run = real(**kwargs)
        session = kwargs["session"]
        query = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        events = session.scalars(query.where(AssetModel.uri == callback_asset().uri)).all()
        run.consumed_asset_events.extend(e for e in events if e.extra.get("task_id") in task_ids)
        session.commit()
        return run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", with_events)


def test_submit_then_download_on_callback(api_server, callback_emulator, monkeypatch, tmp_path):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    from airflow_provider_mineru.callbacks import callback_url
    from tests.conftest import register_dag

    emu = callback_emulator
    set_connection(monkeypatch, "mineru_default", mineru_connection(emu, callback_secret=SECRET))
    monkeypatch.setenv("MINERU_CALLBACK_URL", callback_url(api_server))
    module = load_example(tmp_path, monkeypatch)
    register_dag(module.submit_dag)
    register_dag(module.download_dag)  # declares callback_asset("mineru_default")

    run = module.submit_dag.test()
    assert str(run.state).endswith("success")

    # MinerU (the emulator) calls back once per document and the endpoint accepts each at once
    def callback_tasks() -> list[str]:
        return sorted({c["task_id"] for c in emu.callbacks}) if len({c["task_id"] for c in emu.callbacks}) == 2 else []

    task_ids = wait_for(callback_tasks)
    for task_id in task_ids:
        assert [a["status"] for a in wait_for(lambda t=task_id: finished_attempts(emu, t))] == [200]
    events = {e["data_id"]: e for e in asset_events() if e["task_id"] in task_ids}
    assert sorted(events) == ["callback-demo", "callback-example"]
    assert all(e["state"] == "done" for e in events.values())
    assert [c["url"] for c in emu.callbacks] == [f"{api_server}/mineru/callback/mineru_default"] * 2

    # the seed was sent to MinerU, but the UI's rendered templates show it masked
    sent = [r.json for r in emu.requests_to("submit_task")]
    assert [body["seed"] for body in sent] == [SECRET, SECRET]
    with create_session() as session:
        rendered = (
            session.query(RenderedTaskInstanceFields)
            .filter(RenderedTaskInstanceFields.dag_id == "mineru_callback_submit")
            .all()
        )
        fields = [r.rendered_fields for r in rendered]
    assert len(fields) == 2
    assert all(f["seed"] == "***" for f in fields), fields
    assert SECRET not in json.dumps(fields)

    # the consumer: a run triggered by those events downloads the documents they name
    consume_events_in_test_runs(monkeypatch, task_ids)
    run = module.download_dag.test()
    assert str(run.state).endswith("success")
    for data_id in ("callback-demo", "callback-example"):
        assert (tmp_path / "callbacks" / data_id / "full.md").is_file()
