#!/usr/bin/env bash
# A real local Airflow deployment with the MinerU emulator as MinerU, for people and for CI:
# PostgreSQL, api-server (webserver on 2.11), scheduler, dag-processor, triggerer, LocalExecutor
# (or CeleryExecutor with Redis), all on 127.0.0.1. One implementation: tests/deployment/harness.py.
#
#   bash scripts/run-deployment.sh                 # UI on http://127.0.0.1:8080, Ctrl-C stops everything
#   bash scripts/run-deployment.sh --port 8081 --executor CeleryExecutor --workers 2
#   bash scripts/run-deployment.sh --pytest -x     # the deployment suite (tests/deployment), pytest args after
#   bash scripts/run-deployment.sh --pytest tests/deployment/test_examples.py
#   MINERU_AIRFLOW=airflow2 bash scripts/run-deployment.sh   # the same on Airflow 2.11
#
# Needs Debian's postgresql (and redis-server for Celery): apt-get install -y postgresql redis-server
source "$(dirname "$0")/_env.sh"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  echo "PostgreSQL is missing: apt-get install -y postgresql" >&2
  exit 2
fi
ensure_venv "test,deployment"
cd "$ROOT"
if [ "${1:-}" = "--pytest" ]; then
  shift
  echo "Deployment suite on $(python -c 'import airflow, sys; print(f"Airflow {airflow.__version__}, Python {sys.version.split()[0]}")')"
  target=tests/deployment  # unless a test path is given: --pytest tests/deployment/test_examples.py
  for arg in "$@"; do case "$arg" in tests/*) target="" ;; esac; done
  MINERU_DEPLOYMENT=1 exec python -m pytest -p no:cacheprovider $target "$@"
fi
exec python -m tests.deployment.harness "$@"
