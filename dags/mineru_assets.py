"""
Schedule on data: a DAG that parses documents updates an asset, and another DAG runs when it does.

``mineru_asset_producer`` parses the sample documents with ``outlets=[MINERU_MARKDOWN]``; each run
emits one asset event whose ``extra`` says how many documents were parsed or failed, how many
pages, and where the Markdown landed. ``mineru_asset_consumer`` is scheduled on that asset and
reads the summary. (On Airflow 2.11 assets are called datasets; the compat import handles it.)
"""

from __future__ import annotations

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEFERRABLE, POLL_INTERVAL, SAMPLE_DOCUMENTS
from airflow.providers.common.compat.sdk import DAG, Asset, task

from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

MINERU_MARKDOWN = Asset(f"file://{DEFAULT_OUTPUT}/assets")

with DAG(
    dag_id="mineru_asset_producer",
    description="Parse the sample documents with MinerU; each run updates the MinerU Markdown asset.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example"],
) as producer:
    # [START howto_operator_mineru_outlets]
    MinerUUploadFilesOperator(
        task_id="parse_documents",
        paths=str(SAMPLE_DOCUMENTS),
        output_path=f"{DEFAULT_OUTPUT}/assets",
        outlets=[MINERU_MARKDOWN],
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_mineru_outlets]

with DAG(
    dag_id="mineru_asset_consumer",
    description="Runs when the MinerU Markdown asset is updated and reads the run's summary.",
    doc_md=__doc__,
    schedule=[MINERU_MARKDOWN],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example"],
) as consumer:

    @task
    def use_new_markdown(**context) -> list[dict]:
        """Read the summary MinerU attached to the asset events that triggered this run."""
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        summaries = [event.extra for asset_events in events.values() for event in asset_events]
        for summary in summaries:
            print(
                f"{summary.get('done')} documents parsed ({summary.get('pages')} pages, "
                f"{summary.get('failed')} failed) in {summary.get('output_path')}"
            )
        return summaries

    use_new_markdown()
