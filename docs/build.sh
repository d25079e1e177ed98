#!/usr/bin/env bash
# Build the HTML documentation into docs/_build/html, failing on any warning.
#
# Installs nothing: run it with a virtualenv that has the project with its docs extra, e.g.
#   uv venv /tmp/docs-venv
#   VIRTUAL_ENV=/tmp/docs-venv uv pip install -e '.[docs,airflow3]'
#   VIRTUAL_ENV=/tmp/docs-venv bash docs/build.sh
# Extra arguments go to sphinx-build (e.g. -E to rebuild everything).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ -n "${VIRTUAL_ENV:-}" ]; then
  SPHINX_BUILD="$VIRTUAL_ENV/bin/sphinx-build"
else
  SPHINX_BUILD="$(command -v sphinx-build || true)"
fi
if [ -z "$SPHINX_BUILD" ] || [ ! -x "$SPHINX_BUILD" ]; then
  echo "sphinx-build not found: activate (or set VIRTUAL_ENV to) a virtualenv with '.[docs,airflow3]' installed" >&2
  exit 1
fi

exec "$SPHINX_BUILD" -W --keep-going -b html "$@" docs docs/_build/html
