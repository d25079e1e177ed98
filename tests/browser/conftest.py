"""
A real ``airflow api-server`` (Airflow 3, SQLite) and Debian's chromium driven by Playwright.

Skipped unless ``MINERU_BROWSER=1``: the server takes a minute or more to start on a small machine.
Playwright comes from pip (the ``browser`` extra) and drives ``/usr/bin/chromium``; ``playwright
install`` is never run. ``MINERU_SCREENSHOTS=<folder>`` saves the screenshots there (the docs'
``docs/_static``), otherwise into the test's temporary folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Seconds the api-server may take to answer its first request (migrations done before).
SERVER_START_TIMEOUT = 300


def pytest_collection_modifyitems(config, items):
    reason = None
    if os.environ.get("MINERU_BROWSER") != "1":
        reason = "browser tests run with MINERU_BROWSER=1"
    elif not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} missing (apt-get install -y chromium)"
    else:
        try:
            import playwright  # noqa: F401

            from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

            if not AIRFLOW_V_3_0_PLUS:
                reason = "the browser tests drive the Airflow 3 UI"
        except ImportError:
            reason = "playwright not installed (pip install '.[browser]')"
    if reason:
        for item in items:
            if "tests/browser" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("MINERU_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def api_server():
    """``airflow api-server`` on a free loopback port, its own AIRFLOW_HOME and SQLite database."""
    home = Path(tempfile.mkdtemp(prefix="mineru-browser-airflow-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parents[2] / "dags"),
    }
    env.pop("AIRFLOW_CONN_MINERU_DEFAULT", None)
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    port = _free_port()
    log = open(home / "api-server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"api-server exited: {(home / 'api-server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/v2/version", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"api-server did not answer in {SERVER_START_TIMEOUT} s")
            time.sleep(1)
        yield {"url": base, "env": env, "home": home}
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the group this fixture started, by its id
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1500})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()
