"""
Parse a folder of documents on a self-hosted MinerU server (``mineru-api``) — or on the cloud.

The DAG is the same for both: only the ``mineru_default`` connection decides. For the open-source
server set its extra ``{"api_flavor": "mineru-api"}``, its Base URL to the server's root
(``http://mineru:8000``) and its password to the server's ``--api-key``. A server started with
``--tier flash`` needs ``tier="flash"`` for PDFs and images (``MINERU_EXAMPLE_TIER=flash`` here);
``tier`` is refused on the cloud, so leave it unset in a DAG meant for both.

Documents that fail (a scanned page on a server without OCR weights) are listed in the XCom with
their error while the others are saved (``fail_on_file_error=False``); the last task turns every
saved result into per-page documents for a RAG pipeline.
"""

from __future__ import annotations

import os

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEFERRABLE, POLL_INTERVAL, SAMPLE_DOCUMENTS, summarize_results
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_mineru.operators.mineru import MinerUDocumentsOperator, MinerUUploadFilesOperator

#: ``flash`` for a ``mineru-api --tier flash`` server; unset for the cloud.
TIER = os.environ.get("MINERU_EXAMPLE_TIER") or None

with DAG(
    dag_id="mineru_self_hosted",
    description="Parse documents on a self-hosted mineru-api server: the same operators, another connection.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example", "self-hosted"],
    params={
        "documents": Param(
            os.environ.get("MINERU_EXAMPLE_DOCUMENTS", str(SAMPLE_DOCUMENTS)),
            type="string",
            description="Folder, glob or URL to parse",
        ),
        "output_path": Param(DEFAULT_OUTPUT, type="string", description="Where the Markdown lands"),
    },
) as dag:
    # [START howto_operator_mineru_self_hosted]
    parse = MinerUUploadFilesOperator(
        task_id="parse_documents",
        paths="{{ params.documents }}",
        output_path="{{ params.output_path }}",
        tier=TIER,
        fail_on_file_error=False,
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_mineru_self_hosted]

    @task
    def summarize(result: dict) -> list[dict]:
        """Read each document's Markdown and log a short summary; list the documents that failed."""
        for entry in result["results"]:
            if entry["state"] == "failed":
                print(f"{entry['file_name']}: failed: {entry['err_msg']}")
        return summarize_results(result)

    documents = MinerUDocumentsOperator(task_id="documents", results=parse.output)
    summarize(parse.output) >> documents
