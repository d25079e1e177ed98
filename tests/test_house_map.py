"""``docs/house.md`` is true: every module has its line, and every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "airflow_provider_mineru"
EMULATOR = ROOT / "emulator" / "src" / "mineru_emulator"
HOUSE = (ROOT / "docs" / "house.md").read_text()
#: Not rooms of their own: the package marker and what Airflow's provider discovery reads.
NOT_ROOMS = {"__init__.py", "get_provider_info.py"}


def provider_part() -> str:
    """The map without its emulator section (whose module names are the emulator's)."""
    head, _, rest = HOUSE.partition("## The emulator")
    return head + "## " + rest.partition("\n## ")[2]


def test_every_module_has_its_line():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name in NOT_ROOMS and relative != "transport/__init__.py":
            continue
        if f"`{relative}`" not in HOUSE:
            missing.append(relative)
    assert not missing, f"docs/house.md has no line for: {missing}"


def test_every_module_named_exists():
    named = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)*\.py)`", provider_part()))
    absent = [
        name
        for name in sorted(named)
        if not (PACKAGE / name).exists() and not (ROOT / name).exists() and not (EMULATOR / name).exists()
    ]
    assert not absent, f"docs/house.md names modules that do not exist: {absent}"


def test_the_packages_are_named_by_the_headings():
    for package in ("waiting", "results", "inputs", "submission", "connection"):
        assert (PACKAGE / package / "__init__.py").exists()
        assert f"(`{package}/`)" in HOUSE or f"`{package}/`" in HOUSE
