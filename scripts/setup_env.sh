#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install mtbench into it.
#   MTBENCH_VENV         where the environment lives (default: .venv in the project)
#   PYTHON               the interpreter that creates it (default: python3, must be >= 3.10)
#   MTBENCH_TORCH_SPEC   how to install PyTorch (default: "torch==2.14.1 torchvision==0.29.1")
#   MTBENCH_TORCH_INDEX  a PyTorch wheel index, e.g. https://download.pytorch.org/whl/cpu for a
#                        CPU-only build, or .../whl/cu126 for a given CUDA (see README)
# Re-running is cheap: it reinstalls only when pyproject.toml or this script changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MTBENCH_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.mtbench-installed"
HASH="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup_env.sh" | sha256sum | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c 'import sys; assert sys.version_info >= (3, 10), "mtbench needs Python >= 3.10, found " + sys.version' 
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$HASH" ]; then
  echo "[setup] installing mtbench and its dependencies into $VENV (first time: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --quiet --upgrade pip
  if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --quiet ${MTBENCH_TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1} \
      ${MTBENCH_TORCH_INDEX:+--index-url "$MTBENCH_TORCH_INDEX"}
  fi
  "$VENV/bin/python" -m pip install --quiet --quiet -e "$ROOT[test]"
  echo "$HASH" > "$STAMP"
fi
