#!/usr/bin/env bash
# Run the test suite against the MinerU emulator (real sockets, real Airflow).
#   bash scripts/test.sh                      # latest Airflow 3
#   MINERU_AIRFLOW=airflow2 bash scripts/test.sh   # Airflow 2.11 on Python 3.10
# Extra arguments go to pytest (e.g. -k upload, -x).
source "$(dirname "$0")/_env.sh"
ensure_venv test
cd "$ROOT"
echo "Testing on $(python -c 'import airflow, sys; print(f"Airflow {airflow.__version__}, Python {sys.version.split()[0]}")' 2>/dev/null)"
# -rs: every skipped test says why (a missing service, another Airflow line, an opt-in suite).
exec python -m pytest -p no:cacheprovider -rs "$@"
