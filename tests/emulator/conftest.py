"""Fixtures of the emulator tests (the emulator fixtures themselves come from its pytest plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_mineru.emulator import MinerUEmulator
from tests.helpers.emulator_client import Api, Receiver

PLUGIN = "airflow_provider_mineru.emulator.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    # The root conftest declares ``pytest_plugins = [PLUGIN]``; register it here too so this folder
    # does not depend on that (``pytest_plugins`` may only be declared in the root conftest).
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


@pytest.fixture
def emu(mineru_emulator: MinerUEmulator) -> MinerUEmulator:
    return mineru_emulator


@pytest.fixture
def api(mineru_emulator: MinerUEmulator) -> Api:
    return Api(mineru_emulator)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()
