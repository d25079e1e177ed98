"""The triggers on ``api_flavor="mineru-api"``: the first run imports nothing on the triggerer's event loop."""

from __future__ import annotations

from airflow_provider_mineru.hooks.mineru import MinerUHook
from tests.helpers.selfhosted_samples import file_server
from tests.triggers.test_event_loop import run_first_run_probe


def test_v1_triggers_first_run_imports_nothing_on_the_event_loop(v1_conn, samples):
    folder, _ = samples
    with file_server(folder) as root:
        hook = MinerUHook()
        task_id = hook.submit_task(f"{root}/memo.docx")
        batch_id = hook.submit_batch([f"{root}/memo.docx", f"{root}/page.html"])
        measured = run_first_run_probe(task_id, batch_id)
    assert measured["statuses"] == ["done", "done"]
    assert measured["imported_in_loop"] == []
