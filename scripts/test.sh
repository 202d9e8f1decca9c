#!/usr/bin/env bash
# Set up (or reuse) the environment, then run every test: unit tests and all notebooks (smoke profile).
# Extra arguments go to pytest, e.g. scripts/test.sh -k masked -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
VENV="${MTBENCH_VENV:-$ROOT/.venv}"
cd "$ROOT"
export MTBENCH_PROFILE=smoke
export MPLBACKEND=Agg
# Notebooks execute in their own folder; make the checkout's package win over any other install.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$VENV/bin/python" -m pytest --nbval-lax --nbval-current-env --durations=15 "$@" tests notebooks
