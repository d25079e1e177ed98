#!/usr/bin/env bash
# Run the main example DAG (mineru_parse_files) end to end on the bundled MinerU emulator:
# no token, no network. Prints where the Markdown landed.
#   bash scripts/run-example.sh [dag_id]
source "$(dirname "$0")/_env.sh"
ensure_venv emulator  # the provider and mineru-emulator (the MinerU it runs against)
cd "$ROOT"
DAG_ID="${1:-mineru_parse_files}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow-home-$MINERU_AIRFLOW}"  # one per Airflow line: their airflow.cfg differ
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export MINERU_EXAMPLE_OUTPUT="${MINERU_EXAMPLE_OUTPUT:-$ROOT/output}"
export MINERU_EXAMPLE_POLL_INTERVAL="${MINERU_EXAMPLE_POLL_INTERVAL:-1}"
mkdir -p "$AIRFLOW_HOME"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
log="$AIRFLOW_HOME/$DAG_ID.log"
if ! mineru-emulator --exec airflow dags test "$DAG_ID" >"$log" 2>&1; then
  tail -n 60 "$log"
  echo "FAILED: $DAG_ID (full log: $log)" >&2
  exit 1
fi
echo "$DAG_ID succeeded on the MinerU emulator (log: $log)."
echo "Markdown landed in $MINERU_EXAMPLE_OUTPUT:"
find "$MINERU_EXAMPLE_OUTPUT" -name full.md | sort | sed 's/^/  /'
