"""Print cobo2024's smoke per-arm numbers for one setting (issue 13 probes; docs/worlds.md).

Usage: ``OMP_NUM_THREADS=1 MTBENCH_PROFILE=smoke python benchmarks/explore_cobo_smoke.py
[--skull-strip 0|1] [--lr 3e-3] [--epochs 20] [--patients 300] [--seed 0]
[--set train.scheduler=cosine --set data.phantom.gcs_noise=0.5 ...]``. ``--seed`` changes both the
phantom's draw and the CV/training seed; ``--set dotted.key=value`` (value parsed as YAML) edits any
other config entry. Prints prognosis AUC with its bootstrap CI, GCS ordinal QWK, age AUC, one-class
flags, the wall seconds of each unit and the CPU seconds of the run.
"""
from __future__ import annotations

import argparse
import time

import yaml

from mtbench.experiments import cobo2024
from mtbench.verdict import degenerate_flags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skull-strip", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--patients", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="phantom seed and cv.seed")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted config key, YAML value")
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
    if a.seed is not None:
        cfg["data"]["phantom"]["seed"] = cfg["cv"]["seed"] = a.seed
    for item in a.set:
        key, _, value = item.partition("=")
        *path, last = key.split(".")
        node = cfg
        for k in path:
            node = node.setdefault(k, {})
        node[last] = yaml.safe_load(value)
    t0, c0 = time.perf_counter(), time.process_time()
    result = cobo2024.run(cfg, progress=False)
    r = result.results.set_index(["arm", "task", "metric"])
    for arm, p in result.predictions.items():
        row = [f"{arm:22s}"]
        for task, metric in (("prognosis", "auc"), ("gcs_bin", "auc"), ("gcs_ord", "qwk"), ("age_80", "auc")):
            if (arm, task, metric) in r.index:
                v = r.loc[(arm, task, metric)]
                row.append(f"{task} {metric} {v.value:.3f} [{v.ci_low:.3f}, {v.ci_high:.3f}]")
        row.append(f"flags {degenerate_flags(p) or 'none'}")
        print(" | ".join(row))
    print("unit wall s:", {k: round(v) for k, v in result.timings.items()})
    print(f"cpu {time.process_time() - c0:.0f} s, wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
