"""
Point the repository at the ``mineru-emulator`` distribution: its import name is ``mineru_emulator``.

The emulator moved from ``airflow_provider_mineru/emulator/`` (import ``airflow_provider_mineru.emulator``)
to ``emulator/src/mineru_emulator/`` (import ``mineru_emulator``), and its tests from
``tests/emulator/`` to ``emulator/tests/``. Branches written before the move still use the old names;
after merging one, run from the repository root::

    python scripts/dev/rewrite_emulator_imports.py           # rewrite in place, list what changed
    python scripts/dev/rewrite_emulator_imports.py --check   # change nothing; exit 1 if anything would change

then ``ruff check --fix . && ruff format .`` (the rewritten imports sort differently). It is
idempotent and touches only files git tracks (plus untracked, not ignored ones). What it does:

1. moves files a branch added under the old folders (``airflow_provider_mineru/emulator/``,
   ``tests/emulator/``, ``tests/helpers/emulator_client.py``) to the new ones with ``git mv``;
2. rewrites ``airflow_provider_mineru.emulator`` → ``mineru_emulator`` (imports, ``python -m``, logger
   names, ``monkeypatch`` targets, docs), the old source paths, and in ``emulator/tests/`` the helper
   ``tests.helpers.emulator_client`` → ``emulator_client``.

``CHANGELOG.md`` keeps its history as written. Anything it cannot rewrite safely (``from
airflow_provider_mineru import emulator``, or ``tests.helpers.emulator_client`` outside
``emulator/tests/``) is printed, and ``--check`` fails on it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SELF = Path(__file__).resolve()

#: Old folder → new folder (files added under the old one by another branch are moved).
MOVES = {
    "airflow_provider_mineru/emulator": "emulator/src/mineru_emulator",
    "tests/emulator": "emulator/tests",
    "tests/helpers/emulator_client.py": "emulator/tests/emulator_client.py",
}

#: Applied to every text file, in order.
REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bairflow_provider_mineru\.emulator\b"), "mineru_emulator"),
    (re.compile(r"\bairflow_provider_mineru/emulator/"), "emulator/src/mineru_emulator/"),
    (re.compile(r"\bairflow_provider_mineru/emulator\b"), "emulator/src/mineru_emulator"),
    (
        re.compile(r"""(["'])airflow_provider_mineru\1\s*/\s*(["'])emulator\2"""),
        r'"emulator" / "src" / "mineru_emulator"',
    ),
]
#: Applied to files under emulator/tests/ only (the helper moved beside them).
TEST_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\btests\.helpers\.emulator_client\b"), "emulator_client"),
]
#: Left for a person: printed, and a failure under --check.
UNSAFE = [
    re.compile(r"\bfrom\s+airflow_provider_mineru\s+import\s+[^\n]*\bemulator\b"),
    re.compile(r"\btests\.helpers\.emulator_client\b"),
    re.compile(r"\btests/emulator\b"),
]

SUFFIXES = {".py", ".md", ".sh", ".toml", ".cfg", ".ini", ".txt", ".yml", ".yaml", ".rst", ".json"}
SKIP = {"CHANGELOG.md"}
SKIP_DIRS = ("constraints/", "docs/_build/")


def _git(*args: str) -> list[str]:
    out = subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def _files() -> list[Path]:
    names = set(_git("ls-files")) | set(_git("ls-files", "--others", "--exclude-standard"))
    files = []
    for name in sorted(names):
        path = ROOT / name
        if name in SKIP or name.startswith(SKIP_DIRS) or path.resolve() == SELF or not path.is_file():
            continue
        if path.suffix in SUFFIXES or name in (".ci/run",):
            files.append(path)
    return files


def _stragglers() -> list[tuple[str, str]]:
    """(old, new) for each tracked file still under an old folder."""
    moves = []
    for name in _git("ls-files"):
        for old, new in MOVES.items():
            if name == old or name.startswith(old + "/"):
                target = new + name[len(old) :]
                if target.endswith("/__init__.py") and target.startswith("emulator/tests/"):
                    target = ""  # emulator/tests is not a package (it would shadow the provider's tests)
                moves.append((name, target))
    return moves


def _rewrite(path: Path, text: str) -> str:
    rel = path.relative_to(ROOT).as_posix()
    rules = REWRITES + (TEST_REWRITES if rel.startswith("emulator/tests/") else [])
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything would change")
    args = parser.parse_args(argv)
    pending = 0

    for old, new in _stragglers():
        pending += 1
        if not new:
            print(f"remove {old}")
            if not args.check:
                _git("rm", "-q", "--cached", old)
                (ROOT / old).unlink(missing_ok=True)
            continue
        print(f"move   {old} -> {new}")
        if not args.check:
            if (ROOT / new).exists():
                print(f"  {new} exists already: merge {old} into it by hand", file=sys.stderr)
                continue
            (ROOT / new).parent.mkdir(parents=True, exist_ok=True)
            _git("mv", old, new)

    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        new_text = _rewrite(path, text)
        rel = path.relative_to(ROOT).as_posix()
        if new_text != text:
            pending += 1
            print(f"rewrite {rel}")
            if not args.check:
                path.write_text(new_text, encoding="utf-8")
        for pattern in UNSAFE:
            for match in pattern.finditer(new_text):
                line = new_text.count("\n", 0, match.start()) + 1
                pending += 1
                print(f"by hand {rel}:{line}: {match.group(0)!r}", file=sys.stderr)

    if args.check:
        print("nothing to rewrite" if not pending else f"{pending} change(s) pending")
        return 1 if pending else 0
    if pending:
        # mineru_emulator sorts as first-party where airflow_provider_mineru.emulator did: imports move.
        print("done; now sort the imports: ruff check --fix . && ruff format .")
    else:
        print("nothing to rewrite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
