"""
Parse a folder of documents with MinerU and read the Markdown in the next task.

The main example: uploads the bundled sample documents (PDFs and a PNG), waits in the triggerer
(deferrable), extracts each result into ``<output_path>/<file stem>/`` and summarises the Markdown.
Point ``documents`` at your own folder, glob or ``s3://`` prefix to parse your files.
"""

from __future__ import annotations

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEFERRABLE, POLL_INTERVAL, SAMPLE_DOCUMENTS, summarize_results
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

with DAG(
    dag_id="mineru_parse_files",
    description="Parse a folder of documents with MinerU and read the Markdown in the next task.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example"],
    params={
        "documents": Param(str(SAMPLE_DOCUMENTS), type="string", description="Folder, glob or URL to parse"),
        "output_path": Param(DEFAULT_OUTPUT, type="string", description="Where the Markdown lands"),
    },
) as dag:
    # [START howto_operator_mineru_upload_files]
    parse = MinerUUploadFilesOperator(
        task_id="parse_documents",
        paths="{{ params.documents }}",
        output_path="{{ params.output_path }}",
        language="en",
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_mineru_upload_files]

    @task
    def summarize(result: dict) -> list[dict]:
        """Read each document's Markdown and log a short summary."""
        return summarize_results(result)

    summarize(parse.output)
