"""Fixtures of the hardening suite: hostile loopback servers and a ``mineru`` connection to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.helpers.hostile_server import HostileServer


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A hostile server (scripted per test through ``routes``)."""
    with HostileServer() as server:
        yield server


@pytest.fixture
def other_host() -> Iterator[HostileServer]:
    """A second server: another origin that redirects point to; it must see nothing."""
    with HostileServer() as server:
        yield server


@pytest.fixture
def hostile_conn(hostile: HostileServer, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Point the connection ``hostile`` at the hostile server (extras as keywords); returns its id."""

    def make(**extra: Any) -> str:
        monkeypatch.setenv("AIRFLOW_CONN_HOSTILE", hostile.connection(**extra))
        return "hostile"

    return make
