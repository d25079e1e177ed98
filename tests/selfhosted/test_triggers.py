"""The triggers on ``api_flavor="mineru-api"``: the first run imports nothing on the triggerer's event loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from airflow_provider_mineru.hooks.mineru import MinerUHook
from tests.selfhosted.samples import file_server
from tests.triggers.test_event_loop import _PROBE


def test_v1_triggers_first_run_imports_nothing_on_the_event_loop(v1_conn, samples):
    folder, _ = samples
    with file_server(folder) as root:
        hook = MinerUHook()
        task_id = hook.submit_task(f"{root}/memo.docx")
        batch_id = hook.submit_batch([f"{root}/memo.docx", f"{root}/page.html"])
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, task_id, batch_id],
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert probe.returncode == 0, probe.stderr[-3000:]
    measured = json.loads(probe.stdout.strip().splitlines()[-1])
    assert measured["statuses"] == ["done", "done"]
    assert measured["imported_in_loop"] == []
