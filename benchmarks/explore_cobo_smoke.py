"""Print cobo2024's smoke per-arm numbers for one setting (issue 13 probes; docs/worlds.md).

Usage: ``OMP_NUM_THREADS=1 MTBENCH_PROFILE=smoke python benchmarks/explore_cobo_smoke.py
[--skull-strip 0|1] [--lr 3e-3] [--epochs 20] [--patients 300]``. Prints prognosis AUC with its
bootstrap CI, GCS ordinal QWK, age AUC, one-class flags and the CPU seconds of the run.
"""
from __future__ import annotations

import argparse
import time

from mtbench.experiments import cobo2024
from mtbench.verdict import degenerate_flags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skull-strip", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--patients", type=int, default=None)
    a = ap.parse_args()
    cfg = cobo2024.default_config("smoke")
    if a.skull_strip is not None:
        cfg["data"]["preprocess"]["skull_strip"] = bool(a.skull_strip)
    if a.lr is not None:
        cfg["train"]["lr"] = a.lr
    if a.epochs is not None:
        cfg["train"]["epochs"] = a.epochs
    if a.patients is not None:
        cfg["data"]["phantom"]["n_patients"] = a.patients
    t0, c0 = time.perf_counter(), time.process_time()
    result = cobo2024.run(cfg, progress=False)
    r = result.results.set_index(["arm", "task", "metric"])
    for arm, p in result.predictions.items():
        row = [f"{arm:22s}"]
        for task, metric in (("prognosis", "auc"), ("gcs_ord", "qwk"), ("age_80", "auc")):
            if (arm, task, metric) in r.index:
                v = r.loc[(arm, task, metric)]
                row.append(f"{task} {metric} {v.value:.3f} [{v.ci_low:.3f}, {v.ci_high:.3f}]")
        row.append(f"flags {degenerate_flags(p) or 'none'}")
        print(" | ".join(row))
    print(f"cpu {time.process_time() - c0:.0f} s, wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
