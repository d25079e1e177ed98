"""The plugin entry point declared in pyproject.toml loads the plugin class."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_declared_plugin_entry_point_loads():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["airflow.plugins"]["mineru_callbacks"]
    module, _, name = target.partition(":")
    plugin = getattr(importlib.import_module(module), name)
    assert plugin.name == "mineru_callbacks"
