"""Wall time of every notebook in the smoke profile (the whole suite), one after another.

    python benchmarks/bench_notebooks.py [--save DIR] [notebooks/NN_*.ipynb ...]

Executes each notebook with nbclient in a fresh kernel (as nbval does), prints the time of each
and the total. Nothing is written back to the notebooks; ``--save DIR`` writes the executed copies
(with their outputs) there, to read the numbers a timed run printed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    args = sys.argv[1:]
    save = None
    if args[:1] == ["--save"]:
        save, args = Path(args[1]), args[2:]
        save.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in args] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    os.environ.setdefault("MTBENCH_PROFILE", "smoke")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    total = 0.0
    print(f"profile {os.environ['MTBENCH_PROFILE']}, {len(paths)} notebooks")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        status = "ok"
        try:
            NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        except Exception as err:  # report and go on: the timing of the others still matters
            status = f"FAILED: {type(err).__name__}"
        dt = time.perf_counter() - t0
        if save is not None:
            nbformat.write(nb, save / path.name)
        total += dt
        print(f"{path.name:<48} {dt:7.1f} s  {status}", flush=True)
    print(f"{'total':<48} {total:7.1f} s ({total / 60:.1f} min)")


if __name__ == "__main__":
    main()
