#!/usr/bin/env bash
# Set up (or reuse) the environment, then run the quickstart experiment on the built-in synthetic data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
VENV="${MTBENCH_VENV:-$ROOT/.venv}"
cd "$ROOT"
export MPLBACKEND=Agg
exec "$VENV/bin/mtbench" run quickstart "$@"
