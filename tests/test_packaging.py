"""
Honest packaging: the provider declares exactly what it imports at run time.

An AST walk over ``airflow_provider_mineru`` finds every import a running provider can execute
(imports under ``if TYPE_CHECKING:`` never run and are left out), maps each to the distribution that
ships it, and checks it against ``pyproject.toml``: every import is declared, comes with Airflow
(listed below with the reason the provider may lean on it), or is optional (listed, with when it
runs); every declared dependency is imported. The emulator is its own distribution
(``mineru-emulator``, ``emulator/``): the provider never imports it and brings it only through its
``[emulator]`` extra.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "airflow_provider_mineru"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EMULATOR = ROOT / "emulator"

#: Imported, not declared: Airflow itself requires them (checked below against the installed Airflow).
COMES_WITH_AIRFLOW = {
    "sqlalchemy": "the callback plugin's replay table, in Airflow's own metadata database",
    "attrs": "the custom OpenLineage facets are attrs classes, as the OpenLineage client's are",
    "fastapi": "the callback endpoint, an Airflow 3 api-server plugin (FastAPI app)",
    "starlette": "the callback endpoint (FastAPI's threadpool helper), Airflow 3 only",
    "flask-appbuilder": "the connection form's widgets, Airflow 2's webserver only",
    "flask-babel": "the connection form's labels, Airflow 2's webserver only",
    "wtforms": "the connection form's fields, Airflow 2's webserver only",
    "apache-airflow-providers-standard": "account/run.py: the DateTimeTrigger a task waits on for the daily "
    "budget's reset, Airflow 3 (2.11 has it in airflow.triggers.temporal)",
}
#: Imported, not declared: the module runs only when that distribution is installed.
OPTIONAL = {
    "apache-airflow-providers-amazon": "account/store.py reaches an s3:// account store through S3Hook, imported only "
    "when the connection's account_store is an s3:// URL (the [s3] extra)",
    "apache-airflow-providers-openlineage": "lineage.py builds OperatorLineage only when the OpenLineage "
    "listener, i.e. that provider, calls the operators' get_openlineage_facets_* methods",
}
#: Pinned by an Airflow-line extra without being imported: the reason.
LINE_PINS = {"cryptography": "Airflow 2.11.2's Fernet code breaks on cryptography 51"}
#: Modules that are not installed on one of the two Airflow lines: their distribution, by name.
NOT_ON_EVERY_LINE = {
    "flask_appbuilder": "flask-appbuilder",
    "flask_babel": "flask-babel",
    "wtforms": "wtforms",
    "fastapi": "fastapi",
    "starlette": "starlette",
}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normalize(Requirement(requirement).name) for requirement in requirements}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[str]:
    """The absolute module names a module imports at run time (not under ``if TYPE_CHECKING:``)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _distribution(module: str) -> str | None:
    """The distribution shipping ``module`` (None: the standard library or the provider itself)."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in ("__future__", "airflow_provider_mineru"):
        return None
    if top == "airflow":
        parts = module.split(".")
        if len(parts) > 2 and parts[1] == "providers":
            name = parts[2:4] if parts[2] == "common" else parts[2:3]
            return "apache-airflow-providers-" + "-".join(name)
        return "apache-airflow"
    if top in NOT_ON_EVERY_LINE:
        return NOT_ON_EVERY_LINE[top]
    distributions = _top_level_names().get(top)
    assert distributions, f"no installed distribution ships {top!r}: declare it, or list it here"
    return distributions[0]


@cache
def _top_level_names() -> dict[str, list[str]]:
    """Importable top-level name → distributions, from each one's files (Python 3.10's
    ``packages_distributions`` reads only ``top_level.txt``, which attrs, for one, does not write)."""
    names: dict[str, list[str]] = {}
    for distribution in importlib.metadata.distributions():
        tops = set((distribution.read_text("top_level.txt") or "").split())
        for file in distribution.files or []:
            first = file.parts[0]
            if len(file.parts) > 1 and first.isidentifier():  # not *.dist-info, not ../bin
                tops.add(first)
            elif len(file.parts) == 1 and file.suffix == ".py":
                tops.add(file.stem)
        for top in tops:
            names.setdefault(top, []).append(_normalize(distribution.metadata["Name"]))
    return names


@cache
def imported_distributions() -> dict[str, list[str]]:
    """Distribution → the provider's modules importing it at run time."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            distribution = _distribution(module)
            if distribution:
                found.setdefault(distribution, []).append(path.relative_to(ROOT).as_posix())
    return found


DECLARED = _requirement_names(PYPROJECT["project"]["dependencies"])


def test_every_runtime_import_is_declared_comes_with_airflow_or_is_optional() -> None:
    allowed = DECLARED | set(COMES_WITH_AIRFLOW) | set(OPTIONAL)
    undeclared = {name: paths for name, paths in imported_distributions().items() if name not in allowed}
    assert not undeclared, f"imported at run time but not declared in pyproject.toml: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    unused = DECLARED - set(imported_distributions())
    assert not unused, f"declared in pyproject.toml but imported by no module of the provider: {sorted(unused)}"


def test_the_lists_above_hold_no_stale_or_declared_entries() -> None:
    listed = set(COMES_WITH_AIRFLOW) | set(OPTIONAL)
    assert listed <= set(imported_distributions()), sorted(listed - set(imported_distributions()))
    assert not listed & DECLARED


def _closure(root: str) -> set[str]:
    """The distributions ``root`` requires, transitively, as installed (extras left out)."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_normalize(requirement.name))
    return seen


def test_what_comes_with_airflow_does() -> None:
    """Each installed one is required by the installed Airflow (the others belong to the other line)."""
    closure = _closure("apache-airflow")
    for name in COMES_WITH_AIRFLOW:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        assert name in closure, f"{name} is not a requirement of the installed apache-airflow"


def test_the_airflow_line_extras_pin_declared_dependencies_only() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    for line in ("airflow2", "airflow3"):
        extra = _requirement_names(extras[line]) - set(LINE_PINS)
        assert extra <= DECLARED, (line, sorted(extra - DECLARED))


def test_the_http_provider_is_not_a_dependency() -> None:
    """The hook is a BaseHook (docs/house.md): nothing of apache-airflow-providers-http is imported."""
    assert "apache-airflow-providers-http" not in imported_distributions()
    assert "apache-airflow-providers-http" not in DECLARED


# -- the emulator, a distribution of its own --------------------------------------------------------


def test_the_provider_never_imports_the_emulator() -> None:
    # (An old clone may keep an ignored __pycache__ folder where the emulator was: no source, no package.)
    assert not list((PACKAGE / "emulator").rglob("*.py")), "the emulator lives in emulator/src/mineru_emulator"
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            assert not [n for n in names if n.split(".")[0] == "mineru_emulator"], path


def test_the_emulator_extra_pins_the_emulator_of_this_repository() -> None:
    source = (EMULATOR / "src" / "mineru_emulator" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', source, re.MULTILINE)
    assert match
    assert PYPROJECT["project"]["optional-dependencies"]["emulator"] == [f"mineru-emulator=={match.group(1)}"]
    assert tomllib.loads((EMULATOR / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"] == (
        "mineru-emulator"
    )
    assert PYPROJECT["tool"]["uv"]["sources"]["mineru-emulator"] == {"path": "emulator", "editable": True}
    assert "scripts" not in PYPROJECT["project"], "the mineru-emulator script belongs to mineru-emulator"
    assert "airflow-provider-mineru[emulator]" in PYPROJECT["project"]["optional-dependencies"]["test"]
