"""
Fixtures of the deployment suite: a real local deployment (see ``harness.py``), started once.

The suite runs only with ``MINERU_DEPLOYMENT=1`` (``.ci/run`` sets it in its own step); without it
every test here is skipped, so ``scripts/test.sh`` stays fast. A failing test's report says where
the deployment's logs are, and they are kept; after a green session they are removed unless
``MINERU_DEPLOYMENT_KEEP=1``. Figures measured by the tests are printed at the end and written to
``$MINERU_DEPLOYMENT_FIGURES`` (JSON) when set.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ENABLED = os.environ.get("MINERU_DEPLOYMENT") == "1"
#: Figures the tests measured: name -> value (seconds, counts), printed at the end of the session.
FIGURES: dict[str, object] = {}
_DEPLOYMENTS: list = []


def deployment_root(name: str) -> Path:
    """A fresh directory for one deployment, under ``$MINERU_DEPLOYMENT_ROOT`` if set."""
    base = os.environ.get("MINERU_DEPLOYMENT_ROOT")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"mineru-{name}-", dir=base or None))


def start_deployment(name: str, **kwargs) -> object:
    """Start a :class:`~tests.deployment.harness.Deployment` and register it for log reporting."""
    from tests.deployment.harness import Deployment

    deployment = Deployment(root=deployment_root(name), **kwargs)
    _DEPLOYMENTS.append(deployment)
    try:
        deployment.start()
    except Exception as exc:
        raise RuntimeError(f"{exc}\n{deployment.where_logs()}") from exc
    FIGURES[f"{name}.startup_s"] = deployment.timings.get("start_s")
    return deployment


def finish_deployment(deployment, session: pytest.Session) -> None:
    """Stop it; remove its directory only after a green session (unless asked to keep it)."""
    deployment.stop()
    if session.testsfailed or os.environ.get("MINERU_DEPLOYMENT_KEEP") == "1":
        print(f"\n{deployment.where_logs()}")
    else:
        shutil.rmtree(deployment.root, ignore_errors=True)


@pytest.fixture(scope="session")
def local(request: pytest.FixtureRequest) -> Iterator[object]:
    """The LocalExecutor deployment, every example DAG parsed."""
    from tests.deployment.checks import example_dag_ids
    from tests.deployment.harness import AIRFLOW_3

    deployment = start_deployment("local")
    try:
        dag_ids = example_dag_ids()
        if AIRFLOW_3:
            dag_ids += [
                "mineru_deploy_upload_deferrable",
                "mineru_deploy_upload_blocking",
                "mineru_deploy_url",
                "mineru_deploy_fast",
                "mineru_deploy_fast_unguarded",
                "mineru_deploy_self_hosted",
            ]
        deployment.wait_dags(dag_ids, timeout=240)
        FIGURES["local.dags_parsed_after_start_s"] = deployment.timings.get("dags_parsed_s")
        yield deployment
    finally:
        finish_deployment(deployment, request.session)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and _DEPLOYMENTS:
        report.sections.append(("deployment logs", "\n".join(d.where_logs() for d in _DEPLOYMENTS)))
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not FIGURES:
        return
    from tests.deployment.harness import AIRFLOW_VERSION

    terminalreporter.section(f"deployment figures (Airflow {AIRFLOW_VERSION})")
    for name, value in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name}: {value}")
    target = os.environ.get("MINERU_DEPLOYMENT_FIGURES")
    if target:
        Path(target).write_text(json.dumps(FIGURES, indent=2, sort_keys=True))
