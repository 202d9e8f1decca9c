#!/usr/bin/env bash
# CI: does mtbench work as a user gets it from `pip install .`? Build the wheel, install it into a
# fresh virtual environment and, from outside the source tree, run
#     mtbench data check cohen_covid          (needs the data cards shipped inside the wheel)
#     mtbench run quickstart --set train.epochs=1
# To stay fast the fresh environment reuses the project venv's dependencies (torch ...): a .pth
# line puts that venv's site-packages on its path, after its own, so mtbench itself can only come
# from the wheel (checked). Its .pth files, the editable install of the checkout among them, are
# not processed. Prints the seconds each step took.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MTBENCH_VENV:-$ROOT/.venv}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
t0=$(date +%s)
step() { echo "[wheel] $1 ($(( $(date +%s) - t0 )) s)"; }

# the data root as the checkout sees it (a wheel install has no checkout to look beside)
DATA_ROOT="${MTBENCH_DATA_ROOT:-$(cd "$ROOT" && PYTHONPATH="$ROOT" "$VENV/bin/python" -c 'from mtbench.profiles import data_root; print(data_root())')}"

"$VENV/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$ROOT"
WHEEL="$(ls "$WORK"/dist/mtbench-*.whl)"
step "built $(basename "$WHEEL")"
# asked of zipfile directly: `zipfile -l | grep -q` fails under pipefail once grep stops reading early
"$VENV/bin/python" -c 'import sys, zipfile; sys.exit("mtbench/data_cards/cohen_covid.md" not in zipfile.ZipFile(sys.argv[1]).namelist())' "$WHEEL" \
  || { echo "[wheel] the wheel lacks mtbench/data_cards/*.md" >&2; exit 1; }

"$VENV/bin/python" -m venv --without-pip "$WORK/venv"
PY="$WORK/venv/bin/python"
# install before the dependencies are on the path, so pip sees no other mtbench
"$VENV/bin/python" -m pip --python "$PY" install --quiet --no-deps --no-index "$WHEEL"
"$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
  > "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_project_deps.pth"
step "installed into a fresh venv"

cd "$WORK"  # no checkout on the path
unset PYTHONPATH MTBENCH_CARDS_DIR
export MTBENCH_PROFILE=smoke MPLBACKEND=Agg MTBENCH_RUNS_DIR="$WORK/runs"
"$PY" - "$WORK/venv" <<'PY'
import sys
import mtbench
from mtbench.data.cards import cards_dir, list_cards
assert mtbench.__file__.startswith(sys.argv[1]), f"mtbench imported from {mtbench.__file__}, not the wheel"
assert "cohen_covid" in list_cards(), f"no cards at {cards_dir()}"
print(f"[wheel] mtbench {mtbench.__version__} from {mtbench.__file__}; {len(list_cards())} data cards")
PY

if [ -d "$DATA_ROOT/cohen-covid-mini" ]; then
  out="$("$WORK/venv/bin/mtbench" data check cohen_covid --data-root "$DATA_ROOT" --quiet --max-per-code 1)" \
    || { echo "$out"; echo "[wheel] mtbench data check cohen_covid failed" >&2; exit 1; }
  if grep -q "no-card" <<<"$out"; then echo "$out"; echo "[wheel] the data card was not found" >&2; exit 1; fi
  step "mtbench data check cohen_covid: ok"
elif [ -n "${CI:-}" ]; then
  echo "[wheel] CI must have the real data at $DATA_ROOT (MTBENCH_DATA_ROOT)" >&2; exit 1
else
  echo "[wheel] SKIPPED mtbench data check cohen_covid: no data at $DATA_ROOT (set MTBENCH_DATA_ROOT)" >&2
fi
"$WORK/venv/bin/mtbench" run quickstart --set train.epochs=1 --quiet > "$WORK/run.log" 2>&1 \
  || { tail -20 "$WORK/run.log"; echo "[wheel] mtbench run quickstart failed" >&2; exit 1; }
step "mtbench run quickstart --set train.epochs=1: ok"
echo "[wheel] all checks passed in $(( $(date +%s) - t0 )) s"
