"""
Test set-up shared by the whole suite.

Airflow is pointed at a throw-away home and SQLite database before it is imported, so the suite
never touches a user's ``~/airflow``; the MinerU emulator's fixtures come from its pytest plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

_HOME = tempfile.mkdtemp(prefix="mineru-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# Triggers fire as soon as the wait is over (the 10 s default guards real deployments, not dag.test()).
os.environ.setdefault("AIRFLOW__MINERU__MIN_DEFER_SECONDS", "0")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(os.path.dirname(__file__)), "dags")
os.environ.pop("AIRFLOW_CONN_MINERU_DEFAULT", None)

import pytest  # noqa: E402

from tests.helpers import TEST_TOKEN  # noqa: E402

pytest_plugins = ["mineru_emulator.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_account():
    """
    Each test starts with an empty account (the default ``account_store`` under the suite's
    ``AIRFLOW_HOME``): no rate tokens or pages spent by the tests before it.
    """
    import shutil

    from airflow_provider_mineru.account.limits import default_store
    from airflow_provider_mineru.account.shared import forget_accounts

    shutil.rmtree(default_store(), ignore_errors=True)
    forget_accounts()


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated Airflow metadata database (SQLite), created once per test session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ.copy()
    )
    return _HOME


@pytest.fixture
def emulator():
    """A started emulator with fast timings and a known token."""
    from mineru_emulator import MinerUEmulator, Timings

    with MinerUEmulator(token=TEST_TOKEN, timings=Timings(pending=0.05, per_page=0.02, converting=0.05)) as emu:
        yield emu


@pytest.fixture
def mineru_conn(emulator, monkeypatch):
    """``mineru_default`` pointed at the emulator (JSON form), with fast retries."""
    import json

    conn = json.loads(emulator.connection_json())
    conn.setdefault("extra", {}).update({"retry_backoff": 0.01, "max_retries": 3, "timeout": 5})
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
    return emulator


def register_dag(dag) -> None:
    """
    Make a DAG built inside a test runnable with ``dag.test()``.

    Airflow 3.3's ``dag.test()`` looks the DAG up among the serialized DAGs of its bundle, so a DAG
    that lives only in a test function is written there first. Airflow 2.11 runs it as it is, but
    records dataset events only for datasets a synced DAG declares.
    """
    from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

    if not AIRFLOW_V_3_0_PLUS:
        dag.sync_to_db()
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


# -- the token never shows -------------------------------------------------------------------------
# Every test's captured output (stdout, stderr, logs) is searched for the token the suite's
# connections carry; the run fails if any test printed or logged it, whatever that test asserted.

_TOKEN_SEEN_IN: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, content in report.sections:
        if TEST_TOKEN in content:
            _TOKEN_SEEN_IN.append(f"{report.nodeid} ({name})")
    if TEST_TOKEN in str(report.longrepr or ""):
        _TOKEN_SEEN_IN.append(f"{report.nodeid} (failure report)")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _TOKEN_SEEN_IN:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            "The API token appeared in the captured output of: " + "; ".join(sorted(set(_TOKEN_SEEN_IN))),
            red=True,
        )
        session.exitstatus = 1
