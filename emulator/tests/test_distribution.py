"""The ``mineru-emulator`` distribution: what it imports, what it declares, its version."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

import mineru_emulator

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
SOURCE = PROJECT / "src" / "mineru_emulator"

#: Third-party imports allowed, and the one module each may be imported from (None: anywhere).
ALLOWED = {
    "pypdf": None,  # declared: page counts and the text of parsed PDFs
    "pytest": "pytest_plugin.py",  # the fixtures; pytest is there whenever the plugin is loaded
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_imports_only_the_standard_library_pypdf_and_itself() -> None:
    """A second, independent implementation of the API: nothing from the provider, nothing from Airflow."""
    modules = sorted(SOURCE.rglob("*.py"))
    assert len(modules) > 20
    for path in modules:
        for name in _imports(path) - set(sys.stdlib_module_names) - {"__future__", "mineru_emulator"}:
            assert name in ALLOWED, f"{path.relative_to(PROJECT)} imports {name}"
            only_in = ALLOWED[name]
            assert only_in is None or path.name == only_in, f"{path.relative_to(PROJECT)} imports {name}"


def test_declares_exactly_pypdf() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0] for requirement in project["dependencies"]}
    assert declared == {"pypdf"}
    assert project["scripts"] == {"mineru-emulator": "mineru_emulator.cli:main"}


def test_version_is_set_in_one_place() -> None:
    """``[tool.hatch.version]`` reads ``mineru_emulator.__version__``; the provider's extra pins it."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", mineru_emulator.__version__)
    hatch = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]
    assert hatch["version"]["path"] == "src/mineru_emulator/__init__.py"
