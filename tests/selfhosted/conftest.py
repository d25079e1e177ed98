"""Fixtures of the self-hosted (``api_flavor="mineru-api"``) suite: the V1 emulator room and its connection."""

from __future__ import annotations

import json

import pytest

from tests.helpers import TEST_TOKEN


def v1_connection(server, **extra) -> str:
    """``AIRFLOW_CONN_MINERU_DEFAULT`` JSON for a mineru-api server, with fast retries."""
    conn = json.loads(server.connection_json())
    conn["extra"].update({"retry_backoff": 0.01, "max_retries": 2, "timeout": 10, **extra})
    return json.dumps(conn)


@pytest.fixture
def v1_server(mineru_api_emulator_factory):
    """The mineru-api emulator with the suite's token as its API key."""
    return mineru_api_emulator_factory(api_key=TEST_TOKEN)


@pytest.fixture
def v1_conn(v1_server, monkeypatch):
    """``mineru_default`` pointed at the mineru-api emulator."""
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", v1_connection(v1_server))
    return v1_server


@pytest.fixture
def samples(tmp_path):
    """A folder of DOCX, HTML, CSV, text-PDF and scanned-PNG samples; returns (folder, texts)."""
    from tests.helpers.selfhosted_samples import write_samples

    folder = tmp_path / "inputs"
    return folder, write_samples(folder)
