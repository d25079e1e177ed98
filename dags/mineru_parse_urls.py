"""
Parse a batch of document URLs with per-file options; one URL fails, and the rest are kept.

``fail_on_file_error=False`` makes the task succeed with a partial result: the failed file is
listed with MinerU's ``err_msg`` and the others are downloaded. The next task reports both.
"""

from __future__ import annotations

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEFERRABLE, DEMO_URLS, MISSING_URL, POLL_INTERVAL
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_mineru.operators.mineru import MinerUSubmitBatchOperator

with DAG(
    dag_id="mineru_parse_urls",
    description="Parse a batch of document URLs with per-file options; one URL fails, and the rest are kept.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example"],
) as dag:
    # [START howto_operator_mineru_submit_batch]
    parse_urls = MinerUSubmitBatchOperator(
        task_id="parse_urls",
        urls=[
            {"url": DEMO_URLS[0], "data_id": "demo-example", "page_ranges": "1-"},
            {"url": DEMO_URLS[1], "data_id": "demo-paper", "is_ocr": True},
            {"url": MISSING_URL, "data_id": "missing-document"},
        ],
        language="en",
        enable_formula=True,
        output_path=f"{DEFAULT_OUTPUT}/urls",
        fail_on_file_error=False,
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_mineru_submit_batch]

    @task
    def report(result: dict) -> dict:
        done = [r for r in result["results"] if r["state"] == "done"]
        failed = [r for r in result["results"] if r["state"] == "failed"]
        for entry in done:
            print(f"parsed {entry['data_id']} -> {entry['output_path']}")
        for entry in failed:
            print(f"failed {entry['data_id']}: {entry['err_msg']}")
        return {"done": len(done), "failed": len(failed)}

    report(parse_urls.output)
