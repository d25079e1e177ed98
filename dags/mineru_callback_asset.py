"""
Callbacks instead of polling: MinerU tells Airflow when a document is parsed, and a DAG runs on it.

``mineru_callback_submit`` submits the demo documents with ``callback=`` pointing at the provider's
api-server endpoint (``<api-server>/mineru/callback/mineru_default``) and does not wait: no worker
slot, no triggerer, no polling. When MinerU finishes a document it POSTs the task state there; the
endpoint verifies the checksum with the connection's ``uid`` and ``callback_secret`` extras and
records an asset event on ``callback_asset("mineru_default")``. ``mineru_callback_download`` is
scheduled on that asset and downloads the documents named in the events that triggered it.

Needs Airflow 3 (the endpoint is an api-server plugin), an api-server MinerU can reach (set
``MINERU_CALLBACK_URL``), and the connection extras ``uid`` and ``callback_secret``. See
docs/callbacks.md.

The seed: the endpoint checks callbacks against the connection's ``callback_secret``, so the tasks
must be submitted with that value as ``seed``. It is read at run time with a template
(``callback_seed_template()``), never written in the DAG file; reading it through the connection's
``extra_dejson`` registers it with Airflow's secrets masker (the extra's name contains "secret"), so
the Rendered Template view and the task logs show ``***``.
"""

from __future__ import annotations

import os

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEMO_URLS
from airflow.providers.common.compat.sdk import DAG, AirflowSkipException, task

from airflow_provider_mineru.callbacks import callback_asset, callback_seed_template, callback_url
from airflow_provider_mineru.operators.mineru import MinerUDownloadResultsOperator, MinerUSubmitTaskOperator

CONN_ID = "mineru_default"
#: How MinerU reaches the api-server (public HTTPS in production; see docs/callbacks.md).
CALLBACK_URL = os.environ.get("MINERU_CALLBACK_URL") or callback_url("http://localhost:8080", CONN_ID)
#: One asset per connection: every verified callback of ``mineru_default`` lands here.
MINERU_CALLBACKS = callback_asset(CONN_ID)

with DAG(
    dag_id="mineru_callback_submit",
    description="Submit documents with a MinerU callback and return at once: no polling.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example", "callbacks"],
) as submit_dag:
    # [START howto_operator_mineru_callback]
    MinerUSubmitTaskOperator.partial(
        task_id="submit",
        mineru_conn_id=CONN_ID,
        callback=CALLBACK_URL,
        seed=callback_seed_template(CONN_ID),  # "{{ conn.get('mineru_default').extra_dejson.callback_secret }}"
        wait_for_completion=False,  # MinerU calls back; nothing waits
    ).expand_kwargs(
        [
            {"url": DEMO_URLS[0], "data_id": "callback-example"},
            {"url": DEMO_URLS[1], "data_id": "callback-demo"},
        ]
    )
    # [END howto_operator_mineru_callback]

with DAG(
    dag_id="mineru_callback_download",
    description="Runs on MinerU's callbacks and downloads the documents they name.",
    doc_md=__doc__,
    schedule=[MINERU_CALLBACKS],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example", "callbacks"],
) as download_dag:
    # [START howto_operator_mineru_callback_download]
    @task
    def callback_results(**context) -> list[dict]:
        """The task states MinerU posted: the ``extra`` of each asset event that triggered this run."""
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        states = [dict(event.extra) for asset_events in events.values() for event in asset_events]
        if not states:
            raise AirflowSkipException("No MinerU callback triggered this run (it was started by hand).")
        for state in states:
            print(f"MinerU task {state['task_id']} ({state.get('data_id')}): {state['state']}")
        return states

    MinerUDownloadResultsOperator(
        task_id="download",
        mineru_conn_id=CONN_ID,
        results=callback_results(),
        output_path=f"{DEFAULT_OUTPUT}/callbacks",
    )
    # [END howto_operator_mineru_callback_download]
