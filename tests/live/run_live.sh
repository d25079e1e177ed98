#!/usr/bin/env bash
# The live suite against the real open-source server: install mineru==4.0.12 into its own
# virtualenv ($MINERU_VENV_ROOT/mineru), start `mineru-api --tier flash --api-key KEY` on a free
# loopback port, run tests/live with the given test virtualenv, stop the server by its PID.
#   bash tests/live/run_live.sh /path/to/airflow-test-venv
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TEST_VENV="${1:?usage: run_live.sh TEST_VENV}"
MINERU_VERSION="${MINERU_LIVE_VERSION:-4.0.12}"
SERVER_VENV="${MINERU_VENV_ROOT:?set MINERU_VENV_ROOT}/mineru"
source "$ROOT/scripts/_env.sh"
ensure_uv
if [ ! -x "$SERVER_VENV/bin/mineru-api" ]; then
  uv venv --quiet --python "$(find_python 3.11)" "$SERVER_VENV"
  lock=(); [ "$MINERU_VERSION" = 4.0.12 ] && lock=(-c "$ROOT/constraints/mineru-api-python3.11.txt")  # the locked server
  VIRTUAL_ENV="$SERVER_VENV" uv pip install --quiet "${lock[@]}" "mineru==$MINERU_VERSION"
fi
PY="$TEST_VENV/bin/python"
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
KEY="live-$("$PY" -c 'import secrets; print(secrets.token_hex(12))')"
WORK="$(mktemp -d)"
(cd "$WORK" && exec "$SERVER_VENV/bin/mineru-api" --host 127.0.0.1 --port "$PORT" --tier flash --api-key "$KEY" \
  --allow-http-source --upload-dir "$WORK/uploads" >"$WORK/server.log" 2>&1) &
PID=$!
stop_server() {
  kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$PID" 2>/dev/null || return 0; sleep 0.5; done
  echo "mineru-api (PID $PID) did not stop in 20 s; SIGKILL" >&2
  kill -KILL "$PID" 2>/dev/null || true
}
trap stop_server EXIT
echo "mineru-api $MINERU_VERSION starting on 127.0.0.1:$PORT (PID $PID)"
cd "$ROOT"
MINERU_LIVE_SERVER=1 MINERU_LIVE_URL="http://127.0.0.1:$PORT" MINERU_LIVE_KEY="$KEY" \
  timeout 900 "$PY" -m pytest -p no:cacheprovider tests/live -q -rs || { tail -40 "$WORK/server.log" >&2; exit 1; }
