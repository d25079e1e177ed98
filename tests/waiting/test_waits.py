"""The two kinds of wait: each supplies its own fetch, XCom, summary and failure words."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.waiting.waits import (
    BATCH_WAIT,
    TASK_WAIT,
    WAITS,
    BatchWait,
    TaskWait,
    WaitedDocuments,
    wait_of_xcom,
)

DONE = DocumentResult(state=MinerUState.DONE, raw_state="done", task_id="t1", file_name="a.pdf", data_id="a")
FAILED = DocumentResult(state=MinerUState.FAILED, raw_state="failed", file_name="b.pdf", err_msg="bad")


class RecordingHook:
    """Only what a wait calls on a hook: which method, with which id."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def get_task(self, task_id: str) -> str:
        self.calls.append(("get_task", task_id))
        return "task"

    def get_batch(self, batch_id: str) -> str:
        self.calls.append(("get_batch", batch_id))
        return "batch"

    async def aget_task(self, task_id: str) -> str:
        self.calls.append(("aget_task", task_id))
        return "task"

    async def aget_batch(self, batch_id: str) -> str:
        self.calls.append(("aget_batch", batch_id))
        return "batch"


def test_every_wait_is_known_by_its_json_name():
    assert WAITS == {"task": TASK_WAIT, "batch": BATCH_WAIT}


def test_an_xcom_tells_its_wait():
    assert wait_of_xcom({"task_id": "t1"}) is TASK_WAIT
    assert wait_of_xcom({"batch_ids": ["b1"], "results": []}) is BATCH_WAIT


@pytest.mark.parametrize(
    ("wait", "sync", "async_"), [(TASK_WAIT, "get_task", "aget_task"), (BATCH_WAIT, "get_batch", "aget_batch")]
)
def test_each_wait_fetches_with_its_own_endpoint(wait, sync, async_):
    import asyncio

    hook = RecordingHook()
    wait.fetch(hook, "x1")
    asyncio.run(wait.afetch(hook, "x1"))
    assert hook.calls == [(sync, "x1"), (async_, "x1")]


def test_task_xcom_shape():
    value = TASK_WAIT.xcom(WaitedDocuments(["t1"], [DONE], sources=["https://x/a.pdf"]), ["/out/a"])
    assert value == {
        "task_id": "t1",
        "data_id": "a",
        "state": "done",
        "full_zip_url": None,
        "err_msg": None,
        "output_path": "/out/a",
        "source": "https://x/a.pdf",
    }
    assert TASK_WAIT.ids_summary(["t1"]) == {"task_id": "t1"}
    assert TASK_WAIT.failure(["t1"], [FAILED], 1) == "MinerU task t1 failed"
    assert TASK_WAIT.ids_xcom_key == "mineru_task_ids"


def test_batch_xcom_shape_and_spill(tmp_path):
    value = BATCH_WAIT.xcom(WaitedDocuments(["b1"], [DONE, FAILED], ["b1", "b1"]), ["/out/a", None])
    assert [entry["file_name"] for entry in value["results"]] == ["a.pdf", "b.pdf"]
    assert {entry["batch_id"] for entry in value["results"]} == {"b1"}
    assert BATCH_WAIT.ids_summary(["b1"]) == {"batch_ids": ["b1"]}
    assert BATCH_WAIT.failure(["b1"], [FAILED], 2) == "1 of 2 files failed"
    assert BATCH_WAIT.ids_xcom_key == "mineru_batch_ids"
    big = {"batch_ids": ["b1"], "results": [{"x": "y" * 1000}] * 1200}
    log = logging.getLogger("test.waits")
    spilled = BATCH_WAIT.shrink(big, tmp_path, done=1200, failed=0, log=log)
    assert spilled["count"] == 1200 and (tmp_path / "mineru-results-b1.jsonl").exists()
    assert TASK_WAIT.shrink(big, tmp_path, done=1, failed=0, log=log) is big


def test_no_module_above_the_waits_branches_on_a_kind_string():
    """Operators, sensors, triggers, the poller and the finishing step ask their wait instead."""
    import ast
    from pathlib import Path

    import airflow_provider_mineru as package

    root = Path(package.__file__).parent
    modules = [
        "operators/base.py",
        "operators/mineru.py",
        "sensors/base.py",
        "sensors/mineru.py",
        "triggers/mineru.py",
        "waiting/polling.py",
        "waiting/finish.py",
        "submission/resume.py",
    ]
    for name in modules:
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                texts = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                assert not {"task", "batch"} & set(texts), f"{name}:{node.lineno} compares with a kind string"


def test_the_classes_are_the_public_face():
    assert isinstance(TASK_WAIT, TaskWait) and isinstance(BATCH_WAIT, BatchWait)
    assert repr(TASK_WAIT) == "TaskWait()"
