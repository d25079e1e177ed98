# Shared by scripts/test.sh and scripts/run-example.sh (sourced, not run).
# Creates (or reuses) a virtualenv for one Airflow line and installs the project into it.
#
#   MINERU_AIRFLOW  airflow3 (default: latest Airflow 3) or airflow2 (Airflow 2.11)
#   MINERU_PYTHON   Python version for the virtualenv (default: 3.13 for airflow3, 3.10 for airflow2)
#   MINERU_VENV     where the virtualenv lives (default: .venv-<airflow line>-py<python>)
#   MINERU_UNLOCKED 1: resolve afresh instead of installing against constraints/<line>-python<version>.txt
#
# Every install is locked: constraints/<line>-python<version>.txt pins the whole environment, so an
# upstream release never changes what a fresh clone gets. `bash scripts/lock.sh` moves the locks.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINERU_AIRFLOW="${MINERU_AIRFLOW:-airflow3}"
case "$MINERU_AIRFLOW" in
  airflow3) MINERU_PYTHON="${MINERU_PYTHON:-3.13}" ;;
  airflow2) MINERU_PYTHON="${MINERU_PYTHON:-3.10}" ;;
  *) echo "MINERU_AIRFLOW must be airflow3 or airflow2, not '$MINERU_AIRFLOW'" >&2; exit 2 ;;
esac
MINERU_VENV="${MINERU_VENV:-$ROOT/.venv-$MINERU_AIRFLOW-py$MINERU_PYTHON}"

find_python() {
  local version="$1" candidate
  for candidate in "$HOME"/.pyenv/versions/"$version"*/bin/python "$(command -v "python$version" || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  echo "Python $version not found (looked in ~/.pyenv/versions and PATH)" >&2
  return 1
}

MINERU_LOCK="$ROOT/constraints/$MINERU_AIRFLOW-python$MINERU_PYTHON.txt"

# uv from PATH; if there is none, uv in the project's own tool virtualenv (.venv-tools), never in the
# global interpreter.
ensure_uv() {
  if command -v uv >/dev/null 2>&1; then return 0; fi
  local tools="$ROOT/.venv-tools"
  if [ ! -x "$tools/bin/uv" ]; then
    echo "uv not found on PATH: installing it into $tools (the project's tool virtualenv)" >&2
    "$(find_python 3)" -m venv "$tools" >&2
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check uv >&2
  fi
  export PATH="$tools/bin:$PATH"
}

# The -c argument of every install: the lock of this line and Python, or nothing with MINERU_UNLOCKED=1.
lock_args() {
  if [ "${MINERU_UNLOCKED:-}" = "1" ]; then return 0; fi
  if [ ! -f "$MINERU_LOCK" ]; then
    echo "No lock for $MINERU_AIRFLOW on Python $MINERU_PYTHON ($MINERU_LOCK)." >&2
    echo "Locked pairs: $(cd "$ROOT/constraints" && ls -- *airflow*.txt | sed 's/\.txt$//' | tr '\n' ' ')" >&2
    echo "Use one of them, add the pair to scripts/lock.sh, or set MINERU_UNLOCKED=1 to resolve afresh." >&2
    return 2
  fi
  echo "-c" "$MINERU_LOCK"
}

# ensure_venv EXTRAS  e.g. ensure_venv "test"  -> installs .[test,<airflow line>]
# The extras `emulator` and `test` bring mineru-emulator, which uv installs editable from emulator/
# (pyproject.toml's [tool.uv.sources]: it is not on PyPI).
ensure_venv() {
  local extras="$1" python
  ensure_uv
  python="$(find_python "$MINERU_PYTHON")"
  if [ ! -x "$MINERU_VENV/bin/python" ]; then
    uv venv --quiet --python "$python" "$MINERU_VENV" >&2
  fi
  local lock
  lock="$(lock_args)" || exit 2
  # shellcheck disable=SC2086  # $lock is "-c <file>" or empty
  VIRTUAL_ENV="$MINERU_VENV" uv pip install --quiet $lock -e "$ROOT[${extras:+$extras,}$MINERU_AIRFLOW]" >&2
  export PATH="$MINERU_VENV/bin:$PATH"
}
