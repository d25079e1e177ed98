"""
pytest fixtures for the MinerU emulator.

Enable them in a ``conftest.py``::

    pytest_plugins = ["mineru_emulator.pytest_plugin"]

Fixtures (function scope, each a fresh emulator with fast timings, stopped afterwards):

* ``mineru_emulator``: prefix ``/api/v4``, token ``test-token``, uid ``emulator-uid``;
* ``mineru_emulator_v1``: the same under ``/api/v1`` (a self-hosted gateway);
* ``mineru_emulator_factory``: ``factory(**kwargs)`` starts an emulator with any constructor
  arguments (fast timings and offline demo documents unless given); all are stopped afterwards;
* ``mineru_api_emulator``: the ``mineru-api`` (V1) room, API key ``test-key``, fast timings;
* ``mineru_api_emulator_factory``: ``factory(**kwargs)`` starts a ``MinerUApiEmulator`` with any
  constructor arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from mineru_emulator.http import HTTPService
from mineru_emulator.server import DEFAULT_TOKEN, MinerUEmulator, Timings

if TYPE_CHECKING:
    from mineru_emulator.mineru_api import MinerUApiEmulator

_E = TypeVar("_E", bound=HTTPService)


def _defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("token", DEFAULT_TOKEN)
    kwargs.setdefault("timings", Timings.fast())
    kwargs.setdefault("fetch_demo_urls", False)
    return kwargs


def _factory(make: Callable[..., _E]) -> Iterator[Callable[..., _E]]:
    """A fixture's factory: ``factory(**kwargs)`` starts ``make(**kwargs)``; all are stopped afterwards."""
    started: list[_E] = []

    def factory(**kwargs: Any) -> _E:
        emulator = make(**kwargs)
        emulator.start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()


@pytest.fixture
def mineru_emulator_factory() -> Iterator[Callable[..., MinerUEmulator]]:
    """Start emulators with custom settings: ``mineru_emulator_factory(page_quota=5)``."""
    yield from _factory(lambda **kwargs: MinerUEmulator(**_defaults(kwargs)))


@pytest.fixture
def mineru_emulator() -> Iterator[MinerUEmulator]:
    """A running emulator under ``/api/v4`` with fast timings."""
    with MinerUEmulator(**_defaults({})) as emulator:
        yield emulator


@pytest.fixture
def mineru_emulator_v1() -> Iterator[MinerUEmulator]:
    """A running emulator under ``/api/v1`` (self-hosted gateway layout) with fast timings."""
    with MinerUEmulator(**_defaults({"prefix": "/api/v1"})) as emulator:
        yield emulator


@pytest.fixture
def mineru_api_emulator_factory() -> Iterator[Callable[..., MinerUApiEmulator]]:
    """Start ``mineru-api`` emulators with custom settings: ``factory(version="4.1.0")``."""
    from mineru_emulator.mineru_api import MinerUApiEmulator
    from mineru_emulator.mineru_api import Timings as ApiTimings

    def make(**kwargs: Any) -> MinerUApiEmulator:
        kwargs.setdefault("timings", ApiTimings.fast())
        return MinerUApiEmulator(**kwargs)

    yield from _factory(make)


@pytest.fixture
def mineru_api_emulator(mineru_api_emulator_factory: Callable[..., MinerUApiEmulator]) -> MinerUApiEmulator:
    """A running ``mineru-api`` (V1) emulator, API key ``test-key``, fast timings."""
    return mineru_api_emulator_factory()
