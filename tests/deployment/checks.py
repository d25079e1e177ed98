"""What the deployment tests read back: the emulator's request log, trigger logs, results on disk."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

from tests.deployment.harness import AIRFLOW_3, Deployment, wait_for

#: A line of each sample document's first page, which must come back in its Markdown.
SAMPLE_TEXT = {
    "annual_report": "Northwind Traders Annual Report 2024",
    "invoice": "Invoice INV-2024-0042",
    "research_paper": "Adaptive Batching for Document Parsing Pipelines",
}
#: The first line of the emulator's stand-ins for MinerU's public demo PDFs.
DEMO_TEXT = "MinerU Example Document"
#: The scheduler's words when the Airflow race (apache/airflow#66374, #71580, #72716) fails a resumed task.
RACE_MESSAGE = "finished with state success, but the task instance's state attribute is"

#: Example DAGs run on both Airflow lines; the callback ones need Airflow 3 (api-server plugin).
EXAMPLES = [
    "mineru_parse_files",
    "mineru_parse_urls",
    "mineru_mapped",
    "mineru_task_then_sensor",
    "mineru_s3_to_s3",
    "mineru_incremental",
]
ASSET_EXAMPLES = ["mineru_asset_producer", "mineru_asset_consumer"]
CALLBACK_EXAMPLES = ["mineru_callback_submit", "mineru_callback_download"]


def example_dag_ids() -> list[str]:
    """Every example DAG the deployment runs on this Airflow line."""
    return EXAMPLES + ASSET_EXAMPLES + (CALLBACK_EXAMPLES if AIRFLOW_3 else [])


def submitted_documents(log: list[dict]) -> Counter:
    """How often each document reached MinerU: URL of a task or batch entry, or name of an upload."""
    counts: Counter = Counter()
    for record in log:
        body = record.get("json") or {}
        if record.get("status") != 200 or not isinstance(body, dict):
            continue
        if record["endpoint"] == "submit_task":
            counts[body.get("url")] += 1
        elif record["endpoint"] == "submit_batch":
            for item in body.get("files", []):
                counts[item.get("url")] += 1
        elif record["endpoint"] == "file_urls":
            for item in body.get("files", []):
                counts[item.get("name")] += 1
    return counts


def endpoint_count(log: list[dict], endpoint: str, *, ok_only: bool = True) -> int:
    """Requests to one endpoint (answered 200 when ``ok_only``)."""
    return sum(1 for r in log if r["endpoint"] == endpoint and (not ok_only or r.get("status") == 200))


def task_log_dir(deployment: Deployment, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Path:
    """The folder of one task instance's log files."""
    folder = deployment.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return folder / f"map_index={map_index}" if map_index >= 0 else folder


def trigger_logs(deployment: Deployment, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[Path]:
    """The ``attempt=N.log.trigger.<triggerer job id>.log`` files: written by the triggerer process."""
    folder = task_log_dir(deployment, dag_id, run_id, task_id, map_index)
    return sorted(folder.glob("attempt=*.log.trigger.*.log")) if folder.exists() else []


def trigger_job_ids(paths: list[Path]) -> set[int]:
    """The triggerer job ids in trigger log file names."""
    return {int(m.group(1)) for p in paths if (m := re.search(r"\.trigger\.(\d+)\.log$", p.name))}


def triggerer_jobs(deployment: Deployment) -> dict[int, dict]:
    """Airflow 3's job records of triggerers (id -> record): hostname says which process it was."""
    jobs = deployment.api.get("/jobs?job_type=TriggererJob&limit=100")["jobs"]
    return {job["id"]: job for job in jobs}


def markdown_texts(folder: Path) -> dict[str, str]:
    """``{document folder name: full.md text}`` under ``folder``."""
    return {p.parent.name: p.read_text(encoding="utf-8") for p in folder.rglob("full.md")}


def run_and_wait(deployment: Deployment, dag_id: str, conf: dict | None = None, timeout: float = 300) -> tuple:
    """Trigger through the REST API and wait; ``(run_id, run record, seconds)``."""
    started = time.monotonic()
    run_id = deployment.api.trigger(dag_id, conf)
    record = deployment.api.wait_run(dag_id, run_id, timeout=timeout, logs=deployment.where_logs())
    return run_id, record, round(time.monotonic() - started, 1)


def wait_task_state(
    deployment: Deployment, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 120
) -> dict:
    """Wait until the (unmapped) task instance is in one of ``states``; its record."""

    def check() -> dict | None:
        for ti in deployment.api.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id and ti["state"] in states:
                return ti
        return None

    return wait_for(check, timeout=timeout, what=f"{dag_id}.{task_id} in {states}", logs=deployment.where_logs())


def states(deployment: Deployment, dag_id: str, run_id: str) -> dict[str, str]:
    """``{task_id[map_index]: state}`` of a run."""
    out = {}
    for ti in deployment.api.task_instances(dag_id, run_id):
        key = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
        out[key] = ti["state"]
    return out
