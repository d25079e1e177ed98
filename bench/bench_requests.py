"""
Request count (target 6): one single-URL task from submit to download, counted by the emulator.

Against the emulator (its own process, loopback, default timings: a 3-page PDF is done about
0.45 s after it is submitted), three ways:

``hook``        ``submit_task``, ``get_task`` every ``--poll-interval`` s until terminal,
                ``download_and_extract``;
``operator``    ``MinerUSubmitTaskOperator.execute()`` (blocking wait), with a stand-in task
                context (an in-memory ``task_state_store`` and XCom);
``deferrable``  the same operator with ``deferrable=True``: ``execute()`` until it defers, the
                trigger's ``run()`` until its event, then ``execute_complete()``.

Each prints the requests per endpoint from the emulator's log and checks
``requests <= 3 + polls``, where polls are the ``GET /extract/task/{id}`` requests. Run::

    python bench/bench_requests.py
    python bench/bench_requests.py --poll-interval 0.05 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common


def _flow_hook(emu: _common.EmulatorProcess, url: str, out_dir: Path, poll_interval: float) -> dict[str, Any]:
    from airflow_provider_mineru.hooks.mineru import MinerUHook

    hook = MinerUHook()
    task_id = hook.submit_task(url)
    deadline = time.monotonic() + 60
    while True:
        document = hook.get_task(task_id)
        if document.is_terminal or time.monotonic() > deadline:
            break
        time.sleep(poll_interval)
    extracted = hook.download_and_extract(document.full_zip_url, out_dir / "hook")
    return {"state": document.state.value, "files": len(extracted.files)}


def _flow_operator(emu: _common.EmulatorProcess, url: str, out_dir: Path, poll_interval: float) -> dict[str, Any]:
    from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator

    op = MinerUSubmitTaskOperator(
        task_id="parse", url=url, output_path=str(out_dir / "operator"), poll_interval=poll_interval, deferrable=False
    )
    result = op.execute(_common.task_context())
    return {"state": result["state"], "output_path": result["output_path"]}


def _flow_deferrable(emu: _common.EmulatorProcess, url: str, out_dir: Path, poll_interval: float) -> dict[str, Any]:
    from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator

    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 2
        from airflow.exceptions import TaskDeferred

    op = MinerUSubmitTaskOperator(
        task_id="parse", url=url, output_path=str(out_dir / "deferrable"), poll_interval=poll_interval, deferrable=True
    )
    context = _common.task_context()
    try:
        result = op.execute(context)
        return {"state": result["state"], "deferred": False}
    except TaskDeferred as deferred:
        trigger, method = deferred.trigger, deferred.method_name

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    payload = asyncio.run(first_event())
    result = getattr(op, method)(context, payload)
    return {"state": result["state"], "deferred": True, "output_path": result["output_path"]}


FLOWS = {"hook": _flow_hook, "operator": _flow_operator, "deferrable": _flow_deferrable}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import os

    _common.airflow_home()
    started = time.monotonic()
    out: dict[str, Any] = {
        "benchmark": "requests",
        "params": {"poll_interval_s": args.poll_interval},
        "flows": {},
        "machine": _common.machine(),
    }
    with tempfile.TemporaryDirectory(prefix="mineru-bench-requests-") as tmp, _common.emulator_process() as emu:
        os.environ["AIRFLOW_CONN_MINERU_DEFAULT"] = emu.connection_json()
        url = f"{emu.root_url}/samples/annual_report.pdf"
        for name in args.flows:
            emu.clear_requests()
            detail = FLOWS[name](emu, url, Path(tmp), args.poll_interval)
            log = [r for r in emu.requests_log() if r["endpoint"] not in ("admin", "sample")]
            counts = Counter(r["endpoint"] for r in log)
            polls = counts.get("get_task", 0)
            total = sum(counts.values())
            flow = {
                **detail,
                "requests": dict(counts),
                "total": total,
                "polls": polls,
                "bound": 3 + polls,
                "within_bound": total <= 3 + polls,
                "non_200": sum(1 for r in log if r["status"] != 200),
                "token_sent_to_download": any(r["has_authorization"] for r in log if r["endpoint"] == "download"),
            }
            out["flows"][name] = flow
            print(
                f"{name:>10}: {total} requests = {dict(counts)}; polls {polls}; 3 + polls = {3 + polls} -> "
                f"{'within' if flow['within_bound'] else 'OVER'} the bound (state {detail['state']}, "
                f"token sent to the CDN: {flow['token_sent_to_download']})",
                flush=True,
            )
    out["all_within_bound"] = all(f["within_bound"] for f in out["flows"].values())
    out["elapsed_s"] = time.monotonic() - started
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--flows", nargs="+", choices=list(FLOWS), default=list(FLOWS))
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    _common.write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
