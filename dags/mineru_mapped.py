"""
Dynamic task mapping: one mapped MinerU task per URL, each waiting and downloading on its own.
"""

from __future__ import annotations

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEFERRABLE, DEMO_URLS, POLL_INTERVAL
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator

with DAG(
    dag_id="mineru_mapped",
    description="Dynamic task mapping: one mapped MinerU task per URL, each waiting and downloading on its own.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example"],
) as dag:

    @task
    def list_documents() -> list[str]:
        """In a real DAG this would list new documents (an API, a bucket, a table)."""
        return DEMO_URLS

    # [START howto_operator_mineru_mapped]
    parsed = MinerUSubmitTaskOperator.partial(
        task_id="parse",
        output_path=f"{DEFAULT_OUTPUT}/mapped",
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
    ).expand(url=list_documents())
    # [END howto_operator_mineru_mapped]

    @task
    def collect(results: list[dict]) -> list[str]:
        paths = [r["output_path"] for r in results]
        print(f"{len(paths)} documents parsed: {paths}")
        return paths

    collect(parsed.output)
