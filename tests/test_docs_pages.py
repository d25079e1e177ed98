"""The operator and sensor pages say what the code does: parameter tables and templated fields."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import param_tables  # noqa: E402


def test_parameter_tables_are_current():
    """Each page's table is what ``scripts/param_tables.py`` makes from the class today."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "param_tables.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("page", "path"), sorted(param_tables.PAGES.items()))
def test_templated_fields_list_matches_the_class(page, path):
    cls = param_tables.load_class(path)
    text = (ROOT / page).read_text()
    section = text.split("## Templated fields", 1)[1].split("\n\n", 2)[1]
    assert set(re.findall(r"`(\w+)`", section)) == set(cls.template_fields), page


@pytest.mark.parametrize(("page", "path"), sorted(param_tables.PAGES.items()))
def test_every_parameter_is_in_the_table(page, path):
    cls = param_tables.load_class(path)
    text = (ROOT / page).read_text()
    for name, _ in param_tables.signature_params(cls):
        assert f"| `{name}` |" in text, f"{page} lacks {name}"
