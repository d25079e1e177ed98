"""Asset (dataset) events: a parse run emits one event whose extra summarises it."""

from __future__ import annotations

import pytest

from tests.helpers import load_example


def asset_events(uri: str) -> list[dict]:
    from airflow.utils.session import create_session

    from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

    with create_session() as session:
        if AIRFLOW_V_3_0_PLUS:
            from airflow.models.asset import AssetEvent, AssetModel

            rows = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            return [e.extra for e in rows.filter(AssetModel.uri == uri).all()]
        from airflow.models.dataset import DatasetEvent, DatasetModel

        rows = session.query(DatasetEvent).join(DatasetModel, DatasetEvent.dataset_id == DatasetModel.id)
        return [e.extra for e in rows.filter(DatasetModel.uri == uri).all()]


@pytest.mark.usefixtures("airflow_db")
def test_producer_emits_summary(mineru_conn, tmp_path, monkeypatch):
    from tests.conftest import register_dag

    module = load_example("mineru_assets", deferrable=True, output=tmp_path, monkeypatch=monkeypatch)
    register_dag(module.producer)
    register_dag(module.consumer)
    run = module.producer.test()
    assert str(run.state).endswith("success")
    events = asset_events(module.MINERU_MARKDOWN.uri)
    assert events, "no asset event"
    extra = events[-1]
    assert extra["documents"] == 4
    assert extra["done"] == 4
    assert extra["failed"] == 0
    assert extra["pages"] >= 9  # 3 + 4 + 2 pages of PDFs, and the image
    assert extra["output_path"] == str(tmp_path / "assets")
    assert len(extra["batch_ids"]) == 1
