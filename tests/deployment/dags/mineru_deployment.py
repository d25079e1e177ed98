"""
DAGs of the deployment suite (a second DAG bundle next to the examples, Airflow 3 only).

- ``mineru_deploy_upload_deferrable`` / ``mineru_deploy_upload_blocking``: upload ``params.paths``
  (``retries=1``), waiting in the triggerer or in the worker slot; the fault tests kill processes
  while they wait or upload.
- ``mineru_deploy_url``: one URL, deferrable single-task trigger (``retries=1``).
- ``mineru_deploy_self_hosted``: upload ``params.paths`` to the ``mineru_selfhosted`` connection
  (the emulator's ``mineru-api`` flavor), waiting in the triggerer: the same operator, another
  connection.
- ``mineru_deploy_budget_skip`` / ``mineru_deploy_budget_defer``: upload ``params.paths`` to the
  ``mineru_budget`` connection (a small ``daily_page_budget``), ``on_budget_exhausted`` skip / defer.
- ``mineru_deploy_mapped``: one mapped ``MinerUSubmitTaskOperator`` over ``params.count`` URLs of
  the emulator's sample documents, each into its own folder under ``params.output_path``.
- ``mineru_deploy_ledger_mapped``: one mapped ``MinerUUploadFilesOperator`` (blocking wait) per item
  of ``params.paths`` (lists of files that overlap), all into one ``params.output_path``: the ledger
  and its claims are shared by the task instances.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator, MinerUUploadFilesOperator

EMULATOR = os.environ.get("MINERU_EMULATOR_URL", "http://127.0.0.1:8710")
OUTPUT = os.environ.get("MINERU_EXAMPLE_OUTPUT", "/tmp/mineru-output")
SAMPLES = ["annual_report.pdf", "research_paper.pdf", "invoice.pdf", "scanned_receipt.png"]
DEFAULTS = {"retries": 1, "retry_delay": timedelta(seconds=2)}
COMMON = {
    "schedule": None,
    "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"),
    "catchup": False,
    "tags": ["mineru", "deployment-suite"],
    "default_args": DEFAULTS,
}


def upload_dag(dag_id: str, folder: str, *, retries: int | None = None, **operator: object) -> DAG:
    """A DAG of one ``MinerUUploadFilesOperator`` over ``params.paths`` into ``params.output_path``."""
    common = COMMON if retries is None else {**COMMON, "default_args": {"retries": retries}}
    with DAG(dag_id=dag_id, params={"paths": "", "output_path": f"{OUTPUT}/{folder}"}, **common) as dag:
        MinerUUploadFilesOperator(
            task_id="parse",
            paths="{{ params.paths }}",
            output_path="{{ params.output_path }}",
            poll_interval=1,
            **{"deferrable": True, **operator},
        )
    return dag


for deferrable in (True, False):
    upload_dag(f"mineru_deploy_upload_{'deferrable' if deferrable else 'blocking'}", "upload", deferrable=deferrable)

with DAG(dag_id="mineru_deploy_url", params={"url": "", "output_path": f"{OUTPUT}/url"}, **COMMON):
    MinerUSubmitTaskOperator(
        task_id="parse",
        url="{{ params.url }}",
        output_path="{{ params.output_path }}",
        deferrable=True,
        poll_interval=1,
    )

with DAG(dag_id="mineru_deploy_mapped", params={"count": 20, "output_path": f"{OUTPUT}/mapped"}, **COMMON):

    @task
    def documents(**context) -> list[dict]:
        """``count`` distinct URLs (a query string per copy) of the sample documents, one folder each."""
        params = context["params"]
        return [
            {
                "url": f"{EMULATOR}/samples/{SAMPLES[i % len(SAMPLES)]}?copy={i}",
                "output_path": f"{params['output_path']}/{i:02d}",
            }
            for i in range(int(params["count"]))
        ]

    MinerUSubmitTaskOperator.partial(task_id="parse", deferrable=True, poll_interval=1).expand_kwargs(documents())

# Documents done ~2 s after submission: triggers that would fire within seconds of deferral
# (apache/airflow#66374). ``mineru_deploy_fast`` keeps the provider's default minimum between
# deferring and resuming; ``mineru_deploy_fast_unguarded`` turns it off (``min_defer_seconds=0``).
for name, guard in (("mineru_deploy_fast", {}), ("mineru_deploy_fast_unguarded", {"min_defer_seconds": 0})):
    upload_dag(name, "fast", retries=0, **guard)

# The ``mineru_budget`` connection (a daily page budget in an S3 account store): skip or defer what does not fit.
upload_dag("mineru_deploy_budget_skip", "budget", retries=0, mineru_conn_id="mineru_budget", on_budget_exhausted="skip")
upload_dag("mineru_deploy_budget_defer", "budget", retries=0, mineru_conn_id="mineru_budget")

upload_dag(
    "mineru_deploy_self_hosted", "v1", mineru_conn_id="mineru_selfhosted", tier="flash", fail_on_file_error=False
)

with DAG(dag_id="mineru_deploy_ledger_mapped", params={"paths": [], "output_path": f"{OUTPUT}/ledger"}, **COMMON):

    @task
    def file_lists(**context) -> list[list[str]]:
        """``params.paths``: one list of files per mapped task instance."""
        return [list(paths) for paths in context["params"]["paths"]]

    MinerUUploadFilesOperator.partial(
        task_id="parse", output_path="{{ params.output_path }}", deferrable=False, poll_interval=1
    ).expand(paths=file_lists())
