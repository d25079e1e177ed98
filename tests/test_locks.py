"""The locked installs (``constraints/``): one lock per supported pair, used by every script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {
    "airflow3-python3.13.txt": "3.3.2",
    "airflow2-python3.10.txt": "2.11.2",
}


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints" / name).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


@pytest.mark.parametrize(("lock", "airflow"), sorted(LOCKS.items()))
def test_each_line_has_a_whole_environment_lock(lock, airflow):
    locked = pins(lock)
    assert locked["apache-airflow"] == airflow
    # the test tools and the deployment suite's drivers are locked too, not only Airflow
    for name in ("pytest", "aiohttp", "requests", "pypdf", "psycopg2-binary", "celery", "moto"):
        assert name in locked, f"{lock} does not pin {name}"


def test_airflow_2_11_lock_keeps_cryptography_below_51():
    """Airflow 2.11.2's Fernet breaks on cryptography 51 ('MultiFernet' has no 'is_encrypted')."""
    major = int(pins("airflow2-python3.10.txt")["cryptography"].split(".")[0])
    assert major < 51


def test_every_install_of_the_scripts_goes_through_the_lock():
    env = (ROOT / "scripts" / "_env.sh").read_text()
    assert 'uv pip install --quiet $lock -e "$ROOT[' in env
    assert "constraints/$MINERU_AIRFLOW-python$MINERU_PYTHON.txt" in env
    for script in ("scripts/check-package.sh", "tests/live/run_live.sh"):
        assert "constraints" in (ROOT / script).read_text() or "lock_args" in (ROOT / script).read_text(), script
    # uv is never installed into the global interpreter
    assert "python3 -m pip install" not in env
