"""
Parse every PDF under an S3 prefix with MinerU and write the Markdown under another prefix.

The prefix is searched recursively (``**/*.pdf``); drop the pattern to parse every document MinerU
reads (Word, PowerPoint, images) under it.

Each document is streamed from S3 to MinerU's upload URL, and each result zip (held in a temporary
file meanwhile) is extracted into ``s3://<bucket>/<output_prefix>/<file stem>/`` (``full.md``,
``images/``, the JSON files), all through Airflow's object storage (``ObjectStoragePath``).
Needs ``pip install 'airflow-provider-mineru[s3]'`` and an ``aws`` connection (``aws_default``
unless the ``aws_conn_id`` param says otherwise; for MinIO or another S3-compatible server put
``endpoint_url`` in its extra). Any other object store Airflow supports
(``gs://``, ``abfs://``, ``file://``…) works the same way.
"""

from __future__ import annotations

import pendulum
from _example_settings import DEFERRABLE, POLL_INTERVAL, summarize_results
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

#: The Airflow connection ObjectStoragePath uses for ``s3://`` (overridable per run).
AWS_CONN_ID = "aws_default"

#: ``s3://<conn_id>@<bucket>/<prefix>``: ObjectStoragePath reads the connection id from the URL.
INPUT_URL = "s3://{{ params.aws_conn_id }}@{{ params.bucket }}/{{ params.input_prefix }}**/*.pdf"
OUTPUT_URL = "s3://{{ params.aws_conn_id }}@{{ params.bucket }}/{{ params.output_prefix }}"

with DAG(
    dag_id="mineru_s3_to_s3",
    description="Parse every PDF under an S3 prefix with MinerU and write the Markdown under another prefix.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example", "s3"],
    params={
        "bucket": Param("mineru-documents", type="string", description="The S3 bucket"),
        "input_prefix": Param("incoming/", type="string", description="Every PDF under it is parsed"),
        "output_prefix": Param("markdown/", type="string", description="Each document lands in <prefix><stem>/"),
        "aws_conn_id": Param(AWS_CONN_ID, type="string", description="The aws connection for s3://"),
    },
) as dag:
    # [START howto_operator_mineru_s3_to_s3]
    parse = MinerUUploadFilesOperator(
        task_id="parse_s3_documents",
        paths=INPUT_URL,  # a glob: every PDF under the prefix, recursively
        output_path=OUTPUT_URL,
        language="en",
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_mineru_s3_to_s3]

    @task
    def summarize(result: dict) -> list[dict]:
        """Read each document's Markdown back from S3 and log a short summary."""
        return summarize_results(result)

    summarize(parse.output)
