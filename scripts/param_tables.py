"""Write (or check) the parameter table of each operator and sensor page in ``docs/``.

The Sphinx site renders the classes with ``autoclass``; GitHub and an editor do not. Each page
therefore carries a short Markdown table between ``<!-- params:start -->`` and
``<!-- params:end -->``, made from the class's signature and ``:param:`` docstrings, so the two
never disagree::

    python scripts/param_tables.py          # rewrite the tables
    python scripts/param_tables.py --check  # exit 1 when a page is out of date (tests run this)
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- params:start -->", "<!-- params:end -->"

#: page -> the class it documents
PAGES: dict[str, str] = {
    "docs/operators/submit_task.md": "airflow_provider_mineru.operators.mineru.MinerUSubmitTaskOperator",
    "docs/operators/submit_batch.md": "airflow_provider_mineru.operators.mineru.MinerUSubmitBatchOperator",
    "docs/operators/upload_files.md": "airflow_provider_mineru.operators.mineru.MinerUUploadFilesOperator",
    "docs/operators/download_results.md": "airflow_provider_mineru.operators.mineru.MinerUDownloadResultsOperator",
    "docs/operators/documents.md": "airflow_provider_mineru.operators.mineru.MinerUDocumentsOperator",
    "docs/sensors/task_sensor.md": "airflow_provider_mineru.sensors.mineru.MinerUTaskSensor",
    "docs/sensors/batch_sensor.md": "airflow_provider_mineru.sensors.mineru.MinerUBatchSensor",
}
_PARAM = re.compile(r"^\s*:param (\w+):\s*(.*)$")


def load_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _docstring_params(cls: type) -> dict[str, str]:
    """``:param name: text`` of the class and its bases (the class's own text wins)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("airflow_provider_mineru"):
            continue
        current: str | None = None
        for line in inspect.cleandoc(klass.__doc__ or "").splitlines():
            match = _PARAM.match(line)
            if match:
                current = match.group(1)
                found[current] = match.group(2).strip()
            elif current and line.startswith("    ") and line.strip():
                found[current] += " " + line.strip()
            else:
                current = None
    return found


def signature_params(cls: type) -> list[tuple[str, object]]:
    """Keyword parameters of the class and its MinerU bases, the class's own first."""
    seen: dict[str, object] = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("airflow_provider_mineru") or "__init__" not in vars(klass):
            continue
        for name, param in inspect.signature(vars(klass)["__init__"]).parameters.items():
            if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL) or name in seen:
                continue
            seen[name] = param.default
    return list(seen.items())


def _rst_to_md(text: str) -> str:
    text = re.sub(r":(?:class|meth|func|attr|data|mod):`~?([^`]+)`", lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    return text.replace("``", "`").replace("|", "\\|")


def _default(name: str, value: object) -> str:
    if name == "deferrable":  # read from airflow.cfg when the module is imported
        return "`[operators] default_deferrable` (False unless set)"
    if isinstance(value, timedelta):
        return f"`{value}`"
    if value is inspect.Parameter.empty:
        return "required"
    return f"`{value!r}`".replace("|", "\\|")


def table(cls: type) -> str:
    docs = _docstring_params(cls)
    rows = ["| parameter | default | what it does |", "|---|---|---|"]
    for name, default in signature_params(cls):
        rows.append(f"| `{name}` | {_default(name, default)} | {_rst_to_md(docs.get(name, ''))} |")
    rows.append("")
    airflow_base = next(k for k in cls.__mro__ if k.__name__ in ("BaseSensorOperator", "BaseOperator"))
    examples = (
        "`poke_interval`, `timeout`, `mode`" if airflow_base.__name__ == "BaseSensorOperator" else "`retries`, `pool`"
    )
    rows.append(f"Any other keyword goes to Airflow's `{airflow_base.__name__}` (`task_id`, {examples}, …).")
    return "\n".join(rows)


def render(page: Path, cls: type) -> str:
    text = page.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{page}: add {START} and {END} where the table goes")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table(cls)}\n{END}{tail}"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for relative, path in PAGES.items():
        page = ROOT / relative
        new = render(page, load_class(path))
        if new != page.read_text():
            stale.append(relative)
            if not check:
                page.write_text(new)
    if check and stale:
        print("out of date (run python scripts/param_tables.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
