#!/usr/bin/env bash
# Build both distributions of this repository (airflow-provider-mineru from the root, mineru-emulator
# from emulator/), wheel and sdist each, and check them with twine; check what each wheel holds;
# install them into a clean virtualenv against the lock (the provider's wheel alone first: it must not
# bring the emulator; then with its [emulator] extra and the emulator's wheel); check Airflow lists the
# provider with its version and the emulator's console script runs.
source "$(dirname "$0")/_env.sh"
ensure_venv package
cd "$ROOT"
dist="$(mktemp -d)"
# uv as the build frontend's installer: the isolated build environments come from uv's cache.
python -m build --installer uv --outdir "$dist" . >/dev/null
python -m build --installer uv --outdir "$dist" emulator >/dev/null
twine check --strict "$dist"/*

provider_wheel="$(ls "$dist"/airflow_provider_mineru-*.whl)"
emulator_wheel="$(ls "$dist"/mineru_emulator-*.whl)"
# Each wheel holds its own package only: no emulator in the provider's, nothing of the provider in the
# emulator's; the provider's metadata asks for the emulator only through the extra.
python - "$provider_wheel" "$emulator_wheel" <<'EOF'
import sys, zipfile

def names(path):
    return zipfile.ZipFile(path).namelist()

def metadata(path):
    meta = next(n for n in names(path) if n.endswith(".dist-info/METADATA"))
    return zipfile.ZipFile(path).read(meta).decode()

provider, emulator = sys.argv[1:]
tops = {n.split("/")[0] for n in names(provider) if ".dist-info/" not in n}
assert tops == {"airflow_provider_mineru"}, tops
assert not [n for n in names(provider) if "emulator" in n.split("/")[1:2]], "the provider's wheel holds an emulator"
tops = {n.split("/")[0] for n in names(emulator) if ".dist-info/" not in n}
assert tops == {"mineru_emulator"}, tops
requires = [line for line in metadata(provider).splitlines() if line.startswith("Requires-Dist: mineru-emulator")]
assert requires and all("extra ==" in line for line in requires), requires
assert "mineru-emulator = mineru_emulator.cli:main" in zipfile.ZipFile(emulator).read(
    next(n for n in names(emulator) if n.endswith("entry_points.txt"))
).decode()
# The provider's sdist holds no part of the emulator (docs/emulator.md is the one page about it).
import glob, os, tarfile
sdist = glob.glob(os.path.join(os.path.dirname(provider), "airflow_provider_mineru-*.tar.gz"))[0]
stray = [n for n in tarfile.open(sdist).getnames() if "/emulator/" in n or "mineru_emulator" in n]
assert not stray, stray[:5]
print("wheels hold: airflow_provider_mineru (emulator only as the [emulator] extra); mineru_emulator")
EOF

clean="$(mktemp -d)/venv"
uv venv --quiet --python "$(find_python "$MINERU_PYTHON")" "$clean"
lock="$(lock_args)" || exit 2
# shellcheck disable=SC2086  # the lock of this line: the clean install gets the same releases CI tested
VIRTUAL_ENV="$clean" uv pip install --quiet $lock "$provider_wheel"
if "$clean/bin/python" -c 'import mineru_emulator' 2>/dev/null; then
  echo "the provider's wheel alone installed mineru_emulator" >&2
  exit 1
fi
version="$("$clean/bin/python" -c 'import airflow_provider_mineru as p; print(p.__version__)')"
AIRFLOW_HOME="$(mktemp -d)" "$clean/bin/airflow" providers list 2>/dev/null | grep -E "^airflow-provider-mineru +\|.*\| $version" \
  || { echo "airflow providers list does not show airflow-provider-mineru $version" >&2; exit 1; }

# shellcheck disable=SC2086
VIRTUAL_ENV="$clean" uv pip install --quiet $lock "$provider_wheel[emulator]" "$emulator_wheel"
VIRTUAL_ENV="$clean" uv pip check --quiet || { echo "the clean install has broken requirements" >&2; exit 1; }
"$clean/bin/mineru-emulator" --help | grep -q -- "--exec" || { echo "mineru-emulator --help failed" >&2; exit 1; }
emulator_version="$("$clean/bin/python" -c 'import mineru_emulator as e; print(e.__version__)')"
echo "package OK: $(cd "$dist" && ls | tr '\n' ' ')"
echo "  airflow providers list: airflow-provider-mineru $version; mineru-emulator $emulator_version installs with the [emulator] extra"
