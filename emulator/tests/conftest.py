"""
Fixtures of the emulator's own tests (the emulator fixtures themselves come from its pytest plugin).

``emulator/tests`` is not a package: the provider's suite is the package ``tests``, and both run in
one pytest session (the root ``pyproject.toml``'s ``testpaths``). Its helper module
``emulator_client`` is imported from this folder.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulator_client import Api, Receiver

from mineru_emulator import MinerUEmulator

PLUGIN = "mineru_emulator.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    # The provider's tests/conftest.py declares ``pytest_plugins = [PLUGIN]``; register it here too so
    # this folder runs alone (``cd emulator && pytest``), where ``pytest_plugins`` would be refused
    # when the folder is not the first one collected.
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
