"""
The event loop's worst lag during a trigger's first run (issue 11: no trigger blocks the triggerer's
event loop more than 50 ms), over many fresh interpreters.

Each run is the unit test's probe (``tests/triggers/test_event_loop.py``, ``run_first_run_probe``,
reused, not copied): a fresh interpreter with Airflow's triggerer module loaded imports the
provider's trigger module, then runs one ``MinerUTaskTrigger`` and one ``MinerUBatchTrigger`` (3
documents) to completion against the emulator while a 2 ms ticker records the loop's worst lag.
The emulator runs in its own process; each run submits a new task and a new batch first.

Reported: the worst lag of every run and their min / median / max, the modules first imported on
the loop's thread (must be none), the load average before and after. Run it with the interpreter
of the Airflow line to measure, on a quiet machine (``--max-load`` waits for one)::

    python bench/bench_loop_lag.py --runs 20 --json /tmp/lag-af3.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common

TARGET_MS = 50.0


def wait_quiet(max_load: float, timeout: float) -> float:
    """
    Wait until the 1-minute load average is below ``max_load`` (at most ``timeout`` seconds).

    :param max_load: the load average to wait for.
    :param timeout: give up waiting after this many seconds (the run goes on; the load is reported).
    :return: the 1-minute load average when the wait ended.
    """
    deadline = time.monotonic() + timeout
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def run(args: argparse.Namespace) -> dict[str, Any]:
    _common.airflow_home()
    os.environ["AIRFLOW__MINERU__MIN_DEFER_SECONDS"] = "0"
    import airflow

    from airflow_provider_mineru.hooks.mineru import MinerUHook
    from tests.helpers import sample_url
    from tests.triggers.test_event_loop import run_first_run_probe

    results: dict[str, Any] = {
        "machine": _common.machine(),
        "airflow": airflow.__version__,
        "python": sys.version.split()[0],
        "runs": args.runs,
        "target_ms": TARGET_MS,
    }
    results["load_before"] = [round(x, 2) for x in os.getloadavg()]
    results["load_when_started"] = round(wait_quiet(args.max_load, args.wait_quiet), 2)
    runs = []
    with _common.emulator_process(pending=0.05, per_page=0.02, converting=0.05) as emu:
        os.environ["AIRFLOW_CONN_MINERU_DEFAULT"] = emu.connection_json(retry_backoff=0.01, max_retries=3, timeout=5)
        hook = MinerUHook()
        for index in range(args.runs):
            task_id = hook.submit_task(sample_url(emu, "invoice.pdf"))
            batch_id = hook.submit_batch([sample_url(emu, "invoice.pdf") + f"?n={index}-{i}" for i in range(3)])
            load = os.getloadavg()[0]
            started = time.monotonic()
            measured = run_first_run_probe(task_id, batch_id)
            runs.append(
                {
                    "worst_ms": round(measured["worst"] * 1000, 1),
                    "statuses": measured["statuses"],
                    "imported_in_loop": measured["imported_in_loop"],
                    "load_1min": round(load, 2),
                    "seconds": round(time.monotonic() - started, 2),
                }
            )
    worst = [r["worst_ms"] for r in runs]
    results.update(
        worst_ms=worst,
        min_ms=min(worst),
        median_ms=round(statistics.median(worst), 1),
        max_ms=max(worst),
        over_target=sum(1 for w in worst if w > TARGET_MS),
        all_done=all(r["statuses"] == ["done", "done"] for r in runs),
        imported_in_loop=sorted({m for r in runs for m in r["imported_in_loop"]}),
        load_after=[round(x, 2) for x in os.getloadavg()],
        details=runs,
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--max-load", type=float, default=2.0, help="wait for a 1-minute load average below this")
    parser.add_argument("--wait-quiet", type=float, default=300.0, help="wait at most this long for it (s)")
    parser.add_argument("--json", help="write the figures as JSON here")
    args = parser.parse_args()
    results = run(args)
    print(json.dumps({k: v for k, v in results.items() if k != "details"}, indent=2))
    print(
        f"Airflow {results['airflow']}: worst loop lag of {args.runs} first runs: min {results['min_ms']} ms, "
        f"median {results['median_ms']} ms, max {results['max_ms']} ms; {results['over_target']} over "
        f"{TARGET_MS:.0f} ms (load {results['load_when_started']} -> {results['load_after'][0]})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if results["all_done"] and not results["imported_in_loop"] else 1


if __name__ == "__main__":
    sys.exit(main())
