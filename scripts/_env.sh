# Shared by scripts/test.sh and scripts/run-example.sh (sourced, not run).
# Creates (or reuses) a virtualenv for one Airflow line and installs the project into it.
#
#   MINERU_AIRFLOW  airflow3 (default: latest Airflow 3) or airflow2 (Airflow 2.11)
#   MINERU_PYTHON   Python version for the virtualenv (default: 3.11 for airflow3, 3.10 for airflow2)
#   MINERU_VENV     where the virtualenv lives (default: .venv-<airflow line>-py<python>)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINERU_AIRFLOW="${MINERU_AIRFLOW:-airflow3}"
case "$MINERU_AIRFLOW" in
  airflow3) MINERU_PYTHON="${MINERU_PYTHON:-3.11}" ;;
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

ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check uv >&2
  fi
}

# ensure_venv EXTRAS  e.g. ensure_venv "test"  -> installs .[test,<airflow line>]
ensure_venv() {
  local extras="$1" python
  ensure_uv
  python="$(find_python "$MINERU_PYTHON")"
  if [ ! -x "$MINERU_VENV/bin/python" ]; then
    uv venv --quiet --python "$python" "$MINERU_VENV" >&2
  fi
  VIRTUAL_ENV="$MINERU_VENV" uv pip install --quiet -e "$ROOT[${extras:+$extras,}$MINERU_AIRFLOW]" >&2
  export PATH="$MINERU_VENV/bin:$PATH"
}
