"""
The ``mineru-api`` flavor in the deployment shape: the same upload operator, pointed at the
``mineru_selfhosted`` connection (the emulator's open-source-server flavor), deferred to the real
triggerer and run by the executor, triggered through the REST API.
"""

from __future__ import annotations

import uuid

import pytest

from tests.deployment.checks import markdown_texts, run_and_wait, trigger_logs
from tests.deployment.conftest import ENABLED, FIGURES
from tests.deployment.harness import AIRFLOW_3

pytestmark = [
    pytest.mark.skipif(not ENABLED, reason="deployment suite: set MINERU_DEPLOYMENT=1"),
    pytest.mark.skipif(not AIRFLOW_3, reason="the suite's DAGs are an Airflow 3 DAG bundle"),
]


def test_self_hosted_flavor_in_the_triggerer(local):
    from tests.helpers.selfhosted_samples import SCAN, write_samples

    name = f"v1-{uuid.uuid4().hex[:6]}"
    folder = local.inputs / name
    texts = write_samples(folder)
    output = local.output / name
    run_id, record, seconds = run_and_wait(
        local, "mineru_deploy_self_hosted", {"paths": str(folder), "output_path": str(output)}
    )
    FIGURES["local.mineru_api_flavor_run_s"] = seconds
    assert record["state"] == "success", local.where_logs()
    logs = trigger_logs(local, "mineru_deploy_self_hosted", run_id, "parse")
    assert logs, f"the task never deferred to the triggerer. {local.where_logs()}"
    landed = markdown_texts(output)
    for file_name, text in texts.items():
        if file_name == SCAN:  # a scan fails on a server without OCR weights, the others are kept
            continue
        stem = file_name.rsplit(".", 1)[0]
        assert text in landed[stem], (file_name, sorted(landed))
    assert SCAN.rsplit(".", 1)[0] not in landed
