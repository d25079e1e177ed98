#!/usr/bin/env bash
# Build the wheel and sdist, check them with twine, install the wheel into a clean virtualenv with
# only its runtime dependencies, and check Airflow lists the provider with its version.
source "$(dirname "$0")/_env.sh"
ensure_venv package
cd "$ROOT"
dist="$(mktemp -d)"
python -m build --outdir "$dist" >/dev/null
twine check --strict "$dist"/*
clean="$(mktemp -d)/venv"
uv venv --quiet --python "$(find_python "$MINERU_PYTHON")" "$clean"
lock="$(lock_args)" || exit 2
# shellcheck disable=SC2086  # the lock of this line: the clean install gets the same releases CI tested
VIRTUAL_ENV="$clean" uv pip install --quiet $lock "$dist"/*.whl
version="$("$clean/bin/python" -c 'import airflow_provider_mineru as p; print(p.__version__)')"
AIRFLOW_HOME="$(mktemp -d)" "$clean/bin/airflow" providers list 2>/dev/null | grep -E "^airflow-provider-mineru +\|.*\| $version" \
  || { echo "airflow providers list does not show airflow-provider-mineru $version" >&2; exit 1; }
echo "package OK: $(ls "$dist")"
