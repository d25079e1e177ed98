"""
Submit one URL without waiting, wait with a deferrable sensor, then download the result.

Useful when submitting and waiting belong to different tasks (or when something else submits):
the submit task finishes at once, the sensor waits in the triggerer, and the download operator
refreshes the state and extracts the zip.
"""

from __future__ import annotations

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEFERRABLE, DEMO_URLS, POLL_INTERVAL
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mineru.operators.mineru import MinerUDownloadResultsOperator, MinerUSubmitTaskOperator
from airflow_provider_mineru.sensors.mineru import MinerUTaskSensor

with DAG(
    dag_id="mineru_task_then_sensor",
    description="Submit one URL without waiting, wait with a deferrable sensor, then download the result.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example"],
) as dag:
    # [START howto_sensor_mineru_task]
    submit = MinerUSubmitTaskOperator(
        task_id="submit",
        url=DEMO_URLS[0],
        data_id="sensor-example",
        wait_for_completion=False,
    )
    wait = MinerUTaskSensor(
        task_id="wait",
        mineru_task_id="{{ ti.xcom_pull(task_ids='submit')['task_id'] }}",
        deferrable=DEFERRABLE,
        poke_interval=POLL_INTERVAL,
        timeout=3600,
    )
    download = MinerUDownloadResultsOperator(
        task_id="download",
        results=wait.output,
        output_path=f"{DEFAULT_OUTPUT}/sensor",
    )
    # [END howto_sensor_mineru_task]
    submit >> wait >> download
