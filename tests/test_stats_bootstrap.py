"""Bootstrap CIs: BCa against Efron & Tibshirani's worked example, vectorised metrics against
the scalar metrics, paired differences, speed, and the bootstrap_metrics API."""

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mtbench.stats import bootstrap as bs
from mtbench.tasks import Task

# Efron & Tibshirani (1993), An Introduction to the Bootstrap, Table 14.1: the spatial test
# data, "A" scores of 26 children; statistic: the plug-in variance (theta_hat = 171.5).
SPATIAL_A = np.array([48, 36, 20, 29, 42, 42, 20, 42, 22, 41, 45, 14, 6, 0, 33, 28, 34, 4, 32, 24, 47, 41, 24, 26, 30, 41], float)


def _var(x):
    return np.var(x, axis=-1)


def test_bca_matches_efron_tibshirani_table_14_2():
    # Table 14.2, 90% intervals: percentile (100.8, 233.9), BCa (115.8, 259.6). Monte Carlo
    # error of the endpoints at B = 20000 is a few units, hence the tolerances.
    assert np.var(SPATIAL_A) == pytest.approx(171.5, abs=0.05)
    pct = bs.bootstrap_ci(_var, SPATIAL_A, n_boot=20000, ci=0.90, method="percentile", vectorized=True, seed=1)
    bca = bs.bootstrap_ci(_var, SPATIAL_A, n_boot=20000, ci=0.90, method="bca", vectorized=True, seed=1)
    assert pct.ci_low == pytest.approx(100.8, abs=5) and pct.ci_high == pytest.approx(233.9, abs=6)
    assert bca.ci_low == pytest.approx(115.8, abs=5) and bca.ci_high == pytest.approx(259.6, abs=8)
    # and scipy's independent BCa implementation agrees
    ref = stats.bootstrap((SPATIAL_A,), lambda x, axis: np.var(x, axis=axis), confidence_level=0.9, method="BCa",
                          n_resamples=20000, random_state=2).confidence_interval
    assert bca.ci_low == pytest.approx(ref.low, abs=4) and bca.ci_high == pytest.approx(ref.high, abs=6)


def test_vectorised_and_loop_agree():
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    a = bs.bootstrap_ci(lambda v: np.mean(v, axis=-1), x, n_boot=300, vectorized=True, seed=4)
    b = bs.bootstrap_ci(np.mean, x, n_boot=300, vectorized=False, seed=4)
    np.testing.assert_allclose(a.distribution, b.distribution)


def test_auc_bootstrap_speed_and_stratification():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    s = rng.normal(size=1000) + y
    t = time.perf_counter()
    r = bs.bootstrap_ci(bs.auc_statistic, y, s, n_boot=2000, strata=y, vectorized=True)
    assert time.perf_counter() - t < 2.5  # ~0.3 s on the 2-core dev machine; generous for CI
    assert r.ci_low < r.value < r.ci_high and r.n_boot == 2000
    idx = bs.resample_indices(np.random.default_rng(0), 1000, 10, strata=y)
    assert (y[idx].sum(axis=1) == y.sum()).all()  # class counts fixed


def test_paired_difference_detects_a_better_score():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good, bad = rng.normal(size=400) + 1.5 * y, rng.normal(size=400) + 0.3 * y
    r = bs.bootstrap_difference(y, good, bad, n_boot=1000)
    assert r.ci_low > 0 and r.p_value < 0.01
    same = bs.bootstrap_difference(y, good, good, n_boot=200)
    assert same.value == 0 and same.p_value == 1


def _preds(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
    reg_y = rng.normal(size=n)
    df = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "b.target": y.astype(float), "b.prob": p,
                       "b.pred": (p >= 0.5).astype(int), "r.target": reg_y, "r.pred": reg_y + rng.normal(0, 0.5, n)})
    df.loc[:9, "b.target"] = np.nan  # unlabelled rows are skipped
    tasks = [Task("b", "binary", metrics=("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "npv", "f1")),
             Task("r", "regression", metrics=("mae", "rmse", "pearson_r", "r2"))]
    return df, tasks


def test_vectorised_metrics_equal_scalar_metrics():
    from mtbench.metrics import task_metrics
    from mtbench.predictions import task_arrays

    df, tasks = _preds()
    idx = np.random.default_rng(5).integers(0, 290, size=(20, 290))
    for task in tasks:
        arr = task_arrays(df, task)
        for m in task.metrics:
            vec = bs._metric_distribution(arr, task, m, idx, False)
            loop = [task_metrics(arr.take(i), task, [m])[m] for i in idx]
            np.testing.assert_allclose(vec, loop, rtol=1e-10, err_msg=m)


def test_bootstrap_metrics_api_is_backwards_compatible():
    df, tasks = _preds()
    out = bs.bootstrap_metrics(df, tasks, n_boot=200, seed=0)
    assert list(out.columns) == ["task", "metric", "value", "ci_low", "ci_high", "n", "n_boot", "n_undefined"]
    assert set(out.task) == {"b", "r"} and (out.n[out.task == "b"] == 290).all()
    assert ((out.ci_low <= out.value) & (out.value <= out.ci_high)).all()
    bca = bs.bootstrap_metrics(df, tasks, n_boot=200, seed=0, method="bca", metrics={"b": ["auc"], "r": ["mae"]})
    assert len(bca) == 2 and bca.ci_low.notna().all()
    with pytest.raises(ValueError, match="sample_size"):
        bs.bootstrap_metrics(df, tasks, method="bca", sample_size=100)
