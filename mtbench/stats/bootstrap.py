"""Bootstrap confidence intervals: for any statistic, for every metric of a Predictions table.

* :func:`bootstrap_ci` - one statistic of one or more aligned arrays; percentile, basic or BCa
  (Efron 1987, JASA 82:171) intervals; optional stratification (class counts kept fixed);
  vectorised when the statistic accepts a batch of resamples (as :func:`auc_statistic` does).
* :func:`bootstrap_difference` - the paired bootstrap of ``metric(model A) - metric(model B)``
  on the same cases (both models see the same resampled cases), with a CI and a two-sided
  bootstrap p-value.
* :func:`bootstrap_metrics` - every task metric of a Predictions table; the common binary and
  regression metrics are computed for all resamples at once.

Resamples are drawn as one integer matrix ``(n_boot, size)`` so a metric that can work on a
batch (ranks for AUC, confusion counts for accuracy-type metrics) never loops in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from mtbench.metrics import ignore_degenerate_input_warnings, task_metrics
from mtbench.predictions import TaskArrays, task_arrays, tasks_from_attrs
from mtbench.tasks import Task, as_task_dict

__all__ = [
    "BootstrapResult",
    "bootstrap_ci",
    "bootstrap_difference",
    "bootstrap_metrics",
    "resample_indices",
    "auc_statistic",
]

METHODS = ("percentile", "basic", "bca")


@dataclass
class BootstrapResult:
    """A bootstrap estimate: point ``value``, CI, bootstrap SE and the resampled values."""

    value: float
    ci_low: float
    ci_high: float
    se: float
    method: str
    ci: float
    n_boot: int
    distribution: np.ndarray = field(repr=False)
    p_value: float | None = None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("value", "ci_low", "ci_high", "se", "method", "ci", "n_boot", "p_value")}


# ----------------------------------------------------------------------------- resampling
def resample_indices(
    rng: np.random.Generator, n: int, n_boot: int, size: int | None = None, strata: np.ndarray | None = None
) -> np.ndarray:
    """``(n_boot, size)`` row positions drawn with replacement.

    With ``strata`` each stratum (class) is resampled within itself and keeps its share of
    ``size`` (``round(size * n_k / n)``, at least 1), so every resample has every class.
    """
    size = int(size or n)
    if strata is None:
        return rng.integers(0, n, size=(n_boot, size))
    strata = np.asarray(strata)
    if len(strata) != n:
        raise ValueError(f"strata has {len(strata)} entries for {n} cases.")
    parts = []
    for k in np.unique(strata):
        idx = np.flatnonzero(strata == k)
        parts.append(idx[rng.integers(0, len(idx), size=(n_boot, max(1, round(size * len(idx) / n))))])
    return np.concatenate(parts, axis=1)


def _resample_indices(rng: np.random.Generator, y: np.ndarray | None, n: int, size: int, stratify: bool) -> np.ndarray:
    """One resample (kept for backwards compatibility)."""
    return resample_indices(rng, n, 1, size, y if (stratify and y is not None) else None)[0]


def _interval(theta: float, dist: np.ndarray, ci: float, method: str, jack: np.ndarray | None = None):
    alpha = (1 - ci) / 2
    d = dist[np.isfinite(dist)]
    if not len(d):
        return np.nan, np.nan
    if method == "percentile":
        lo, hi = np.quantile(d, [alpha, 1 - alpha])
    elif method == "basic":
        qlo, qhi = np.quantile(d, [alpha, 1 - alpha])
        lo, hi = 2 * theta - qhi, 2 * theta - qlo
    else:  # bca
        prop = (np.sum(d < theta) + 0.5 * np.sum(d == theta)) / len(d)
        if prop <= 0 or prop >= 1:
            return (np.nan, np.nan)
        z0 = stats.norm.ppf(prop)
        j = jack[np.isfinite(jack)]
        dj = j.mean() - j
        denom = 6.0 * np.sum(dj**2) ** 1.5
        a = np.sum(dj**3) / denom if denom > 0 else 0.0
        zs = stats.norm.ppf([alpha, 1 - alpha])
        adj = stats.norm.cdf(z0 + (z0 + zs) / (1 - a * (z0 + zs)))
        lo, hi = np.quantile(d, adj)
    return float(lo), float(hi)


def _evaluate(statistic, arrays, index: np.ndarray, vectorized: bool, batch: int, progress: bool, desc: str) -> np.ndarray:
    out = np.full(len(index), np.nan)
    with ignore_degenerate_input_warnings():
        if vectorized:
            for s in range(0, len(index), batch):
                idx = index[s : s + batch]
                out[s : s + batch] = np.asarray(statistic(*[a[idx] for a in arrays]), dtype=float)
        else:
            for b in tqdm(range(len(index)), desc=desc, disable=not progress, leave=False):
                idx = index[b]
                out[b] = float(statistic(*[a[idx] for a in arrays]))
    return out


def _jackknife(statistic, arrays, n: int, vectorized: bool, batch: int) -> np.ndarray:
    loo = np.arange(1, n)[None, :] - (np.arange(1, n)[None, :] <= np.arange(n)[:, None])
    # row i = all positions except i
    return _evaluate(statistic, arrays, loo, vectorized, batch, False, "jackknife")


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays,
    n_boot: int = 2000,
    ci: float = 0.95,
    method: str = "percentile",
    strata=None,
    seed: int | np.random.Generator | None = 0,
    vectorized: bool = False,
    batch_size: int = 500,
    progress: bool = False,
) -> BootstrapResult:
    """Bootstrap CI of ``statistic(*arrays)``; the arrays are resampled together (cases aligned).

    Parameters
    ----------
    statistic:
        ``statistic(*arrays) -> float``. With ``vectorized=True`` it receives arrays with a leading
        batch axis ``(B, n, ...)`` and returns ``(B,)`` (see :func:`auc_statistic`).
    method:
        ``"percentile"``, ``"basic"`` or ``"bca"`` (bias-corrected and accelerated; the
        acceleration comes from the leave-one-out jackknife).
    strata:
        Labels to stratify on (e.g. the class): each resample keeps the class counts.
    """
    method = method.lower()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one data array.")
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    bad = [len(a) for a in arrays if len(a) != n]
    if bad:
        raise ValueError(f"All arrays must have one entry per case; lengths {[len(a) for a in arrays]}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    theta = float(statistic(*[a[None] for a in arrays])[0]) if vectorized else float(statistic(*arrays))
    index = resample_indices(rng, n, n_boot, None, strata)
    dist = _evaluate(statistic, arrays, index, vectorized, batch_size, progress, "bootstrap")
    jack = _jackknife(statistic, arrays, n, vectorized, batch_size) if method == "bca" else None
    lo, hi = _interval(theta, dist, ci, method, jack)
    finite = dist[np.isfinite(dist)]
    se = float(np.std(finite, ddof=1)) if len(finite) > 1 else np.nan
    return BootstrapResult(theta, lo, hi, se, method, ci, int(len(finite)), dist)


def auc_statistic(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Vectorised AUC for :func:`bootstrap_ci`: ``y`` and ``score`` of shape ``(B, n)``."""
    y = np.asarray(y, dtype=bool)
    ranks = stats.rankdata(score, axis=-1)
    m = y.sum(axis=-1).astype(float)
    n = y.shape[-1] - m
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * y).sum(axis=-1) - m * (m + 1) / 2) / (m * n)
    return np.where((m > 0) & (n > 0), auc, np.nan)


def _auc_difference(y, a, b):
    return auc_statistic(y, a) - auc_statistic(y, b)


def bootstrap_difference(
    y,
    score_a,
    score_b,
    statistic: Callable | str = "auc",
    n_boot: int = 2000,
    ci: float = 0.95,
    method: str = "percentile",
    stratify: bool = True,
    seed: int = 0,
) -> BootstrapResult:
    """Paired bootstrap of ``statistic(y, a) - statistic(y, b)`` on the same cases.

    Both models are scored on the *same* resampled cases, so their correlation is kept.
    ``p_value`` is the two-sided bootstrap p-value ``2 min(P*(d <= 0), P*(d >= 0))`` (the
    smallest CI level that still contains 0, percentile method), floored at ``1 / n_boot``.
    ``statistic`` is ``"auc"`` (vectorised) or ``f(y, score) -> float``.
    """
    y = np.asarray(y)
    if statistic == "auc":
        fn, vec = _auc_difference, True
    elif callable(statistic):
        fn, vec = (lambda yy, a, b: statistic(yy, a) - statistic(yy, b)), False
    else:
        raise ValueError(f"statistic must be 'auc' or a callable, got {statistic!r}.")
    res = bootstrap_ci(fn, y, np.asarray(score_a), np.asarray(score_b), n_boot=n_boot, ci=ci, method=method,
                       strata=y if stratify else None, seed=seed, vectorized=vec)
    d = res.distribution[np.isfinite(res.distribution)]
    p = 2 * min(np.mean(d <= 0), np.mean(d >= 0)) if len(d) else np.nan
    res.p_value = float(min(1.0, max(p, 1.0 / max(len(d), 1))))
    return res


# ------------------------------------------------------------- Predictions-table metrics
def _confusion(y, pred):
    y, pred = y.astype(bool), pred.astype(bool)
    tp = (y & pred).sum(axis=1).astype(float)
    tn = (~y & ~pred).sum(axis=1).astype(float)
    fp = (~y & pred).sum(axis=1).astype(float)
    fn = (y & ~pred).sum(axis=1).astype(float)
    return tp, tn, fp, fn


def _ratio(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _v_balanced(y, p, pred):
    tp, tn, fp, fn = _confusion(y, pred)
    with ignore_degenerate_input_warnings():
        return np.nanmean(np.vstack([_ratio(tp, tp + fn), _ratio(tn, tn + fp)]), axis=0)


def _v_f1(y, p, pred):
    tp, tn, fp, fn = _confusion(y, pred)
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)


def _v_pearson(y, p, pred):
    yc = y - y.mean(axis=1, keepdims=True)
    pc = pred - pred.mean(axis=1, keepdims=True)
    den = np.sqrt((yc**2).sum(axis=1) * (pc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (yc * pc).sum(axis=1) / den
    return np.where((den > 0) & (y.shape[1] >= 3), r, np.nan)


def _v_r2(y, p, pred):
    ss_res = ((y - pred) ** 2).sum(axis=1)
    ss_tot = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - ss_res / ss_tot
    # scikit-learn: constant y gives 1.0 for a perfect fit, else 0.0
    return np.where(ss_tot > 0, r2, np.where(ss_res == 0, 1.0, 0.0))


# Batch versions of mtbench.metrics for binary and single-target regression tasks; each takes
# (y, prob, pred) with a leading resample axis and must agree with the scalar metric exactly
# (tests/test_stats_bootstrap.py checks this).
_VECTORISED_BINARY = {
    "auc": lambda y, p, pred: auc_statistic(y, p),
    "accuracy": lambda y, p, pred: (y == pred).mean(axis=1),
    "balanced_accuracy": _v_balanced,
    "sensitivity": lambda y, p, pred: (lambda c: _ratio(c[0], c[0] + c[3]))(_confusion(y, pred)),
    "specificity": lambda y, p, pred: (lambda c: _ratio(c[1], c[1] + c[2]))(_confusion(y, pred)),
    "precision": lambda y, p, pred: (lambda c: _ratio(c[0], c[0] + c[2]))(_confusion(y, pred)),
    "npv": lambda y, p, pred: (lambda c: _ratio(c[1], c[1] + c[3]))(_confusion(y, pred)),
    "f1": _v_f1,
}
_VECTORISED_REGRESSION = {
    "mae": lambda y, p, pred: np.abs(y - pred).mean(axis=1),
    "rmse": lambda y, p, pred: np.sqrt(((y - pred) ** 2).mean(axis=1)),
    "pearson_r": _v_pearson,
    "r2": _v_r2,
}


def _vectorised_metric(task: Task, name: str):
    if task.kind == "binary":
        return _VECTORISED_BINARY.get(name)
    if task.kind == "regression" and task.num_targets == 1:
        return _VECTORISED_REGRESSION.get(name)
    return None


def _metric_distribution(arrays: TaskArrays, task: Task, name: str, index: np.ndarray, progress: bool) -> np.ndarray:
    vec = _vectorised_metric(task, name)
    out = np.full(len(index), np.nan)
    if vec is not None:
        prob = arrays.prob if arrays.prob is not None else arrays.pred
        for s in range(0, len(index), 500):
            idx = index[s : s + 500]
            out[s : s + 500] = vec(arrays.y[idx], prob[idx], arrays.pred[idx])
        return out
    with ignore_degenerate_input_warnings():
        for b in tqdm(range(len(index)), desc=f"bootstrap {task.name}.{name}", disable=not progress, leave=False):
            out[b] = task_metrics(arrays.take(index[b]), task, [name])[name]
    return out


def bootstrap_metrics(
    predictions: pd.DataFrame,
    tasks: Sequence[Task] | Mapping[str, Task] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    stratify: bool = True,
    sample_size: int | None = None,
    metrics: Mapping[str, Sequence[str]] | None = None,
    progress: bool = False,
    method: str = "percentile",
) -> pd.DataFrame:
    """Point estimates and bootstrap CIs for every task metric.

    Parameters
    ----------
    n_boot:
        Number of resamples.
    ci:
        Confidence level (0.95 gives the 2.5th and 97.5th percentiles).
    stratify:
        For classification tasks, resample within each class (class counts fixed).
    sample_size:
        Size of each resample; default the number of labelled rows (the usual bootstrap). The
        original code of Cobo et al. used a fixed 100: pass ``sample_size=100`` to reproduce it.
    method:
        ``"percentile"`` (default), ``"basic"`` or ``"bca"`` (see :func:`bootstrap_ci`; BCa needs
        ``sample_size`` unset).

    Returns columns ``task, metric, value, ci_low, ci_high, n, n_boot, n_undefined``: ``n_boot``
    counts the resamples whose metric was defined, ``n_undefined`` those where it was not (NaN: e.g.
    one class drawn, no positive prediction); the CI comes from the defined ones only, so a large
    ``n_undefined`` is a warning about the interval.
    """
    method = method.lower()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if method == "bca" and sample_size is not None:
        raise ValueError("BCa intervals assume resamples of the full sample size; leave sample_size=None.")
    tasks = as_task_dict(tasks) if tasks is not None else tasks_from_attrs(predictions)
    metrics = dict(metrics or {})
    rng = np.random.default_rng(seed)
    rows = []
    for name, task in tasks.items():
        arrays = task_arrays(predictions, task)
        n = len(arrays)
        names = list(metrics.get(name) or task.metrics)
        point = task_metrics(arrays, task, names)
        samples = {m: np.full(n_boot, np.nan) for m in names}
        jack = {m: None for m in names}
        if n > 1:
            strata = arrays.y if (stratify and task.is_classification) else None
            index = resample_indices(rng, n, n_boot, sample_size or n, strata)
            for m in names:
                samples[m] = _metric_distribution(arrays, task, m, index, progress)
            if method == "bca":
                loo = np.arange(1, n)[None, :] - (np.arange(1, n)[None, :] <= np.arange(n)[:, None])
                for m in names:
                    jack[m] = _metric_distribution(arrays, task, m, loo, False)
        for m in names:
            s = samples[m]
            lo, hi = _interval(point[m], s, ci, method, jack[m]) if np.isfinite(point[m]) or method != "bca" else (np.nan, np.nan)
            rows.append(
                {"task": name, "metric": m, "value": point[m], "ci_low": lo, "ci_high": hi, "n": n,
                 "n_boot": int(np.isfinite(s).sum()), "n_undefined": int((~np.isfinite(s)).sum())}
            )
    return pd.DataFrame(rows)
