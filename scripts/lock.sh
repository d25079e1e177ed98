#!/usr/bin/env bash
# Regenerate the locked installs (constraints/*.txt): one lock of the whole environment per supported
# pair, the way Airflow publishes a constraints file per release and Python version.
#
#   bash scripts/lock.sh            # re-resolve every lock to the newest releases allowed by pyproject.toml
#   bash scripts/lock.sh --check    # fail if a lock no longer matches pyproject.toml (nothing written)
#   bash scripts/lock.sh --test     # re-resolve, then run the unit suites of both lines on the new locks
#
# Moving to new upstream releases is this script plus a commit of constraints/: never a side effect of
# a fresh clone. The pairs: Airflow 3 on the newest Python (3.13), Airflow 2.11 on the oldest (3.10),
# and the real mineru-api server of the live suite (its own virtualenv, Python 3.11).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/_env.sh
ensure_uv
mode="${1:-}"
out="constraints"
[ "$mode" = "--check" ] && out="$(mktemp -d)"

# Drop the `-e emulator` entry (and its "# via" lines) uv pip compile writes for the path source.
strip_own() {
  awk '/^-e /{skip=1; next} skip && /^    #/{next} {skip=0; print}' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

# line python extras (test brings the emulator: airflow-provider-mineru[emulator])
LOCKS=(
  "airflow3 3.13 test,deployment,docs,package,browser,s3"
  "airflow2 3.10 test,deployment,s3"
)
for lock in "${LOCKS[@]}"; do
  read -r line python extras <<<"$lock"
  args=()
  for extra in ${extras//,/ } "$line"; do args+=(--extra "$extra"); done
  uv pip compile pyproject.toml "${args[@]}" --python-version "$python" --quiet --no-header \
    --custom-compile-command "bash scripts/lock.sh" -o "$out/$line-python$python.txt"
  # mineru-emulator comes from emulator/ in this repository ([tool.uv.sources]), as the provider comes
  # from the root: neither is a pin (a constraints file refuses a path). Its dependencies stay pinned.
  strip_own "$out/$line-python$python.txt"
  echo "locked $line on Python $python: $(grep -c '==' "$out/$line-python$python.txt") packages"
done
echo "mineru==${MINERU_LIVE_VERSION:-4.0.12}" >"$out/mineru-api.in"
uv pip compile "$out/mineru-api.in" --python-version 3.11 --quiet --no-header -o "$out/mineru-api-python3.11.txt"
echo "locked mineru-api on Python 3.11: $(grep -c '==' "$out/mineru-api-python3.11.txt") packages"

if [ "$mode" = "--check" ]; then
  # A lock made today would pick newer releases; --check asks only that every pin in the committed
  # lock still satisfies pyproject.toml, i.e. that installing against it resolves.
  for lock in "${LOCKS[@]}"; do
    read -r line python extras <<<"$lock"
    args=()
    for extra in ${extras//,/ } "$line"; do args+=(--extra "$extra"); done
    uv pip compile pyproject.toml "${args[@]}" --python-version "$python" --quiet --no-header \
      -c "constraints/$line-python$python.txt" -o /dev/null
    echo "constraints/$line-python$python.txt satisfies pyproject.toml"
  done
fi
if [ "$mode" = "--test" ]; then
  for lock in "${LOCKS[@]}"; do
    read -r line python _ <<<"$lock"
    MINERU_AIRFLOW="$line" MINERU_PYTHON="$python" MINERU_VENV="$(mktemp -d)/venv" bash scripts/test.sh -q
  done
fi
