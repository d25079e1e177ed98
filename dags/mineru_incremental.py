"""
Parse a folder every day, paying only for what is new or changed (the document ledger).

The scheduled-extraction example. Each run lists the folder, and the ledger under
``<output_path>/.mineru-ledger/`` decides per file: unchanged since a run that landed its result
(reused: no request, no upload, 0 pages), the same bytes under a new name (copied, 0 pages), new,
changed or parsed with other options (sent to MinerU), or failed too often (skipped). The task log
says which and why, one line per file; the XCom's ``counts`` sums it up. With ``sync="scoped"`` a
file deleted from the folder has its output moved to ``<output_path>/.mineru-tombstones/<date>/``
(never more than ``max_delete_fraction`` of the folder in one run).

Run it twice: the second run sends nothing. Point ``documents`` at your own folder, glob or
``s3://`` prefix.
"""

from __future__ import annotations

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEFERRABLE, INCREMENTAL_SCHEDULE, POLL_INTERVAL, SAMPLE_DOCUMENTS
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

with DAG(
    dag_id="mineru_incremental",
    description="Parse a folder every day, paying only for the documents that are new or changed.",
    doc_md=__doc__,
    schedule=INCREMENTAL_SCHEDULE,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mineru", "example"],
    params={
        "documents": Param(str(SAMPLE_DOCUMENTS), type="string", description="Folder, glob or s3:// prefix"),
        "output_path": Param(f"{DEFAULT_OUTPUT}/incremental", type="string", description="Results and ledger"),
    },
) as dag:
    # [START howto_operator_mineru_incremental]
    parse = MinerUUploadFilesOperator(
        task_id="parse_new_documents",
        paths="{{ params.documents }}",
        output_path="{{ params.output_path }}",  # the ledger lives here too: incremental=True by default
        sync="scoped",  # a file deleted from the folder: its output goes to the tombstones
        max_attempts_per_document=3,  # a file that keeps failing is not paid for again and again
        language="en",
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_mineru_incremental]

    @task
    def report(result: dict) -> dict:
        """Log what this run paid for and what it reused."""
        counts = result["counts"]
        print(
            f"{counts['parsed']} parsed, {counts['reused']} reused (0 pages), {counts['failed']} failed, "
            f"{counts['skipped_attempts']} skipped after too many failures, {counts['tombstoned']} tombstoned"
        )
        return counts

    report(parse.output)
