"""
DAG parse cost (target 5): what importing the operators module adds over importing Airflow.

Each figure from a fresh interpreter (``--runs`` of them, median and best; one warm-up run
first writes the bytecode caches):

- ``import airflow.sdk`` (``import airflow`` on Airflow 2), then
  ``import airflow_provider_mineru.operators.mineru``, each timed with ``perf_counter`` inside
  the interpreter (start-up noise cancels out); the second figure is what the provider adds;
- the same against ``from airflow.sdk import DAG`` (``from airflow import DAG`` on Airflow 2),
  the first line of any DAG file;
- a control: an empty operator module (``BaseOperator`` through the same compat import), the
  least any operator module costs over the same baseline;
- ``python -X importtime``: the modules the provider import brings in, slowest first, and
  whether any heavy package (aiohttp, requests, pypdf, the HTTP provider's hook) is among them.

Run with the interpreter of the Airflow to measure::

    /work/.venv-af3/bin/python bench/bench_parse.py
    /work/.venv-af2/bin/python bench/bench_parse.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

TARGET = "airflow_provider_mineru.operators.mineru"

#: The least any operator module costs: Airflow's BaseOperator, through the same compat import.
CONTROL = "_mineru_bench_control"
_CONTROL_SOURCE = """
from airflow.providers.common.compat.sdk import BaseOperator


class NoopOperator(BaseOperator):
    def execute(self, context):
        return None
"""

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
{baseline}
t1 = time.perf_counter()
before = set(sys.modules)
import {target}
t2 = time.perf_counter()
added = sorted(set(sys.modules) - before)
print(json.dumps({{"baseline_ms": (t1 - t0) * 1000, "provider_ms": (t2 - t1) * 1000, "added": added}}))
"""


def _airflow_major() -> int:
    from importlib.metadata import version

    return int(version("apache-airflow").split(".")[0])


def _probe(baseline: str, target: str = TARGET) -> dict[str, Any]:
    code = _PROBE.format(baseline=baseline, target=target)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_CONTROL_DIR, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


_CONTROL_DIR = ""


def _importtime(baseline: str) -> list[dict[str, Any]]:
    """Modules the provider import brings in after ``baseline``: ``{"module", "depth", "self_ms", "cumulative_ms"}``."""
    with tempfile.TemporaryDirectory() as marker_dir:
        # An empty module imported between the two: everything importtime prints after it is ours.
        Path(marker_dir, "_mineru_bench_marker.py").write_text("")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [marker_dir, os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"{baseline}\nimport _mineru_bench_marker\nimport {TARGET}"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        name = name[1:]  # one space after the bar, then two per nesting level
        rows.append(
            {
                "module": name.strip(),
                "depth": (len(name) - len(name.lstrip())) // 2,
                "self_ms": int(self_us) / 1000,
                "cumulative_ms": int(cumulative_us) / 1000,
            }
        )
    marker = max(i for i, r in enumerate(rows) if r["module"] == "_mineru_bench_marker")
    # ... up to our module's own line (Airflow 2 imports more at interpreter exit).
    end = next(i for i, r in enumerate(rows) if i > marker and r["depth"] == 0 and r["module"] == TARGET)
    return rows[marker + 1 : end + 1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    _common.airflow_home()
    started = time.monotonic()
    major = _airflow_major()
    baseline = "import airflow.sdk" if major >= 3 else "import airflow"
    dag_baseline = "from airflow.sdk import DAG" if major >= 3 else "from airflow import DAG"
    global _CONTROL_DIR
    control_dir = tempfile.TemporaryDirectory(prefix="mineru-bench-parse-")
    _CONTROL_DIR = control_dir.name
    Path(_CONTROL_DIR, f"{CONTROL}.py").write_text(_CONTROL_SOURCE)
    _probe(baseline)  # warm-up: bytecode caches, airflow.cfg in the temporary home
    _probe(baseline, CONTROL)
    control = [_probe(baseline, CONTROL) for _ in range(max(1, args.runs - 2))]

    probes = [_probe(baseline) for _ in range(args.runs)]
    dag_probes = [_probe(dag_baseline) for _ in range(max(1, args.runs - 2))]
    rows = _importtime(baseline)
    dag_rows = _importtime(dag_baseline)

    added_modules = probes[0]["added"]
    packages = sorted({m.split(".")[0] for m in added_modules if not m.startswith("airflow")})
    airflow_added = sorted(
        m for m in added_modules if m.startswith("airflow.") and not m.startswith("airflow_provider")
    )
    out: dict[str, Any] = {
        "benchmark": "parse",
        "airflow_major": major,
        "baseline": baseline,
        "provider_ms": [p["provider_ms"] for p in probes],
        "baseline_ms": [p["baseline_ms"] for p in probes],
        "provider_ms_median": statistics.median(p["provider_ms"] for p in probes),
        "provider_ms_best": min(p["provider_ms"] for p in probes),
        "over_dag_imports_ms_median": statistics.median(p["provider_ms"] for p in dag_probes),
        "over_dag_imports_ms_best": min(p["provider_ms"] for p in dag_probes),
        "dag_baseline": dag_baseline,
        "control_ms_median": statistics.median(p["provider_ms"] for p in control),
        "control_ms_best": min(p["provider_ms"] for p in control),
        "modules_added": len(added_modules),
        "modules_added_over_dag_imports": len(dag_probes[0]["added"]),
        "other_top_level_modules_added": packages,
        "airflow_modules_added": airflow_added,
        "heavy_modules_loaded": sorted(  # the provider imports these lazily, where they are used
            m
            for m in ("aiohttp", "requests", "pypdf", "airflow.providers.http.hooks.http", "sqlalchemy", "pendulum")
            if m in added_modules
        ),
        "slowest_added": sorted(rows, key=lambda r: -r["self_ms"])[:12],
        "slowest_added_over_dag_imports": sorted(dag_rows, key=lambda r: -r["self_ms"])[:12],
        "modules_added_over_dag_imports_list": [r["module"] for r in dag_rows],
        "machine": _common.machine(),
        "elapsed_s": 0.0,
    }
    print(
        f"Airflow {major}: {baseline} {statistics.median(out['baseline_ms']):.0f} ms; then the operators module "
        f"adds {out['provider_ms_median']:.1f} ms (median of {args.runs}, best {out['provider_ms_best']:.1f} ms), "
        f"{out['over_dag_imports_ms_median']:.1f} ms over `{dag_baseline}`",
        flush=True,
    )
    print(
        f"{out['modules_added']} modules added ({out['modules_added_over_dag_imports']} over the DAG imports); "
        f"heavy ones loaded: {out['heavy_modules_loaded'] or 'none'}",
        flush=True,
    )
    print(f"other top-level modules the import adds: {packages or 'none'}", flush=True)
    print("slowest modules the provider import adds (self time, -X importtime):", flush=True)
    for r in out["slowest_added"][:8]:
        print(f"  {r['self_ms']:7.2f} ms  {r['module']}", flush=True)
    if out["slowest_added_over_dag_imports"] != out["slowest_added"]:
        print(f"... and over `{dag_baseline}`:", flush=True)
        for r in out["slowest_added_over_dag_imports"][:8]:
            print(f"  {r['self_ms']:7.2f} ms  {r['module']}", flush=True)
    print(
        f"control (an empty operator module: BaseOperator through the same compat import) adds "
        f"{out['control_ms_median']:.1f} ms over `{baseline}`: the provider's own share is "
        f"{out['provider_ms_median'] - out['control_ms_median']:.1f} ms",
        flush=True,
    )
    control_dir.cleanup()
    out["elapsed_s"] = time.monotonic() - started
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    _common.write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
