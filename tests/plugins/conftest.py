"""
Fixtures for the callback plugin: the real Airflow 3 API server app with the plugin, served by uvicorn.

``api_server`` builds Airflow's own ``create_app()`` (the app ``airflow api-server`` runs) with the
plugin's ``fastapi_apps`` collected by Airflow's plugins manager, and serves it over loopback in a
thread, so the emulator's callbacks travel a real socket through Airflow's middlewares and mount.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

UID = "u-123"
SECRET = "cb_secret_0123456789abcdef"
TOKEN = "test-token-0123456789"


def post(url: str, data: bytes | dict[str, Any], *, method: str = "POST") -> tuple[int, dict[str, Any]]:
    """Send ``data`` (a dict is sent as JSON) and return the status and the JSON answer."""
    body = json.dumps(data).encode() if isinstance(data, dict) else data
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"{}")
        except ValueError:
            return error.code, {"raw": raw.decode(errors="replace")}


def wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def finished_attempts(emu: Any, task_id: str) -> list[dict[str, Any]]:
    """The emulator's callback attempts for ``task_id`` once it stopped trying (200, or 5 attempts)."""
    attempts = [c for c in emu.callbacks if c["task_id"] == task_id]
    if attempts and (attempts[-1]["status"] == 200 or len(attempts) >= 5):
        return attempts
    return []


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict[str, Any]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def mineru_connection(emu: Any, **extra: Any) -> dict[str, Any]:
    conn = json.loads(emu.connection_json())
    conn["extra"].update({"retry_backoff": 0.01, "max_retries": 2, "timeout": 5})
    conn["extra"].update(extra)
    return conn


def asset_events(conn_id: str = "mineru_default") -> list[dict[str, Any]]:
    """The ``extra`` of every asset event on ``callback_asset(conn_id)``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from airflow_provider_mineru.callbacks import callback_asset

    uri = callback_asset(conn_id).uri
    with create_session() as session:
        rows = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        return [dict(e.extra) for e in rows.filter(AssetModel.uri == uri).order_by(AssetEvent.id).all()]


def declare_callback_asset(conn_id: str = "mineru_default", *, paused: bool = True) -> str:
    """Write a DAG scheduled on ``callback_asset(conn_id)`` into the DB (so the asset exists); its dag_id."""
    import pendulum
    from airflow.models.dag import DagModel
    from airflow.providers.common.compat.sdk import DAG
    from airflow.utils.session import create_session

    from airflow_provider_mineru.callbacks import callback_asset
    from tests.conftest import register_dag

    dag_id = f"on_mineru_callbacks_{conn_id}"
    with DAG(dag_id=dag_id, schedule=[callback_asset(conn_id)], start_date=pendulum.datetime(2025, 1, 1)) as dag:
        from airflow.providers.standard.operators.empty import EmptyOperator

        EmptyOperator(task_id="noop")
    register_dag(dag)
    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == dag_id).update({"is_paused": paused})
    return dag_id


@pytest.fixture(autouse=True)
def _fresh_callback_settings():
    """Tests change connections between requests: drop the endpoint's cache of callback settings."""
    from airflow_provider_mineru.plugins.callbacks import plugin

    def clear() -> None:
        built = getattr(plugin.app, "_app", None)
        if built is not None and hasattr(built.state, "credentials"):
            built.state.credentials.clear()

    clear()
    yield
    clear()


@pytest.fixture(scope="session")
def api_server(airflow_db):
    """Base URL of Airflow's API server app (``create_app()``) with the MinerU plugin, served by uvicorn."""
    if not AIRFLOW_V_3_0_PLUS:
        pytest.skip("FastAPI plugins (the api-server) are Airflow 3 only")
    from unittest import mock

    import uvicorn
    from airflow import plugins_manager

    from airflow_provider_mineru.plugins.callbacks.plugin import MinerUCallbackPlugin

    # Airflow's plugins manager collects the plugin's fastapi_apps (its own code, uncached), as it
    # would after finding the plugin through the ``airflow.plugins`` entry point.
    plugin = MinerUCallbackPlugin()
    with (
        mock.patch.object(plugins_manager, "_get_plugins", return_value=([plugin], {})),
        mock.patch.object(plugins_manager, "get_fastapi_plugins", plugins_manager.get_fastapi_plugins.__wrapped__),
    ):
        from airflow.api_fastapi.app import create_app

        app = create_app()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def callback_emulator():
    """An emulator with uid ``u-123``, fast timings and quick callback retries."""
    from mineru_emulator import MinerUEmulator, Timings

    timings = Timings(pending=0.05, per_page=0.01, converting=0.02, callback_backoff=0.02)
    with MinerUEmulator(token=TOKEN, uid=UID, timings=timings, fetch_demo_urls=False) as emu:
        yield emu
