#!/usr/bin/env bash
# Build the documentation site into docs/_build/html, failing on any warning.
#   bash scripts/build-docs.sh        (extra arguments go to sphinx-build, e.g. -E)
source "$(dirname "$0")/_env.sh"
ensure_venv docs
cd "$ROOT"
exec sphinx-build -W --keep-going -b html "$@" docs docs/_build/html
