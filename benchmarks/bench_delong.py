"""Fast (Sun & Xu 2014, O(n log n)) vs naive (O(n^2) kernel matrix) DeLong, and bootstrap AUC speed.

Run:  python benchmarks/bench_delong.py [--n-naive 5000] [--n-fast 100000]

Prints, for two correlated scores on the same cases: the time of the naive DeLong on
``--n-naive`` cases, the fast one on the same cases (with the ratio and the largest difference
of the results), the fast one on ``--n-fast`` cases, and 2,000 stratified bootstrap resamples
of an AUC on 1,000 cases.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mtbench.stats import auc_statistic, bootstrap_ci, delong_covariance, delong_naive, delong_test


def _best_of(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-naive", type=int, default=5000, help="cases for the naive vs fast comparison")
    ap.add_argument("--n-fast", type=int, default=100_000, help="cases for the fast DeLong test alone")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    n = args.n_naive
    y = rng.integers(0, 2, n)
    s = rng.normal(size=(2, n)) + np.array([[1.0], [0.8]]) * y
    t_naive = _best_of(lambda: delong_naive(y, s), 1)
    t_fast = _best_of(lambda: delong_covariance(y, s), args.repeat)
    (a1, c1), (a2, c2) = delong_naive(y, s), delong_covariance(y, s)
    diff = max(np.abs(a1 - a2).max(), np.abs(c1 - c2).max())
    print(f"DeLong, 2 models, {n:,} cases: naive O(n^2) {t_naive:.3f} s, fast O(n log n) {t_fast * 1e3:.1f} ms, "
          f"speed-up x{t_naive / t_fast:,.0f} (max |difference| {diff:.1e})")

    n = args.n_fast
    y = rng.integers(0, 2, n)
    s = rng.normal(size=(2, n)) + np.array([[1.0], [0.8]]) * y
    t_big = _best_of(lambda: delong_test(y, s[0], s[1]), args.repeat)
    print(f"DeLong paired test, 2 models, {n:,} cases (fast): {t_big * 1e3:.1f} ms")

    y = rng.integers(0, 2, 1000)
    sc = rng.normal(size=1000) + y
    t_boot = _best_of(lambda: bootstrap_ci(auc_statistic, y, sc, n_boot=2000, strata=y, vectorized=True), args.repeat)
    print(f"Bootstrap AUC, 2,000 stratified resamples of 1,000 cases (vectorised): {t_boot:.3f} s")


if __name__ == "__main__":
    main()
