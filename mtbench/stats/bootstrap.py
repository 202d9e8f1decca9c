"""Bootstrap confidence intervals for any metric of a Predictions table."""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mtbench.metrics import task_metrics
from mtbench.predictions import task_arrays, tasks_from_attrs
from mtbench.tasks import Task, as_task_dict


def _resample_indices(rng: np.random.Generator, y: np.ndarray | None, n: int, size: int, stratify: bool) -> np.ndarray:
    if not stratify or y is None:
        return rng.integers(0, n, size=size)
    # Keep each class's count fixed (scaled to `size`), so every resample has both classes.
    parts = []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        parts.append(rng.choice(idx, size=max(1, round(size * len(idx) / n)), replace=True))
    return np.concatenate(parts)


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
) -> pd.DataFrame:
    """Point estimates and percentile bootstrap CIs for every task metric.

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

    Returns columns ``task, metric, value, ci_low, ci_high, n, n_boot``.
    """
    tasks = as_task_dict(tasks) if tasks is not None else tasks_from_attrs(predictions)
    metrics = dict(metrics or {})
    rng = np.random.default_rng(seed)
    alpha = (1 - ci) / 2
    rows = []
    for name, task in tasks.items():
        arrays = task_arrays(predictions, task)
        n = len(arrays)
        names = list(metrics.get(name) or task.metrics)
        point = task_metrics(arrays, task, names)
        samples = {m: np.full(n_boot, np.nan) for m in names}
        if n > 1:
            strat_y = arrays.y if (stratify and task.is_classification) else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for b in tqdm(range(n_boot), desc=f"bootstrap {name}", disable=not progress, leave=False):
                    idx = _resample_indices(rng, strat_y, n, sample_size or n, stratify)
                    for m, v in task_metrics(arrays.take(idx), task, names).items():
                        samples[m][b] = v
        for m in names:
            s = samples[m][np.isfinite(samples[m])]
            lo, hi = (np.quantile(s, [alpha, 1 - alpha]) if len(s) else (np.nan, np.nan))
            rows.append(
                {"task": name, "metric": m, "value": point[m], "ci_low": float(lo), "ci_high": float(hi), "n": n, "n_boot": len(s)}
            )
    return pd.DataFrame(rows)
