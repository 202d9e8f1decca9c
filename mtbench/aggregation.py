"""Two views of cross-validated metrics: pooled over folds (default) and the mean over folds.

*Pooled* (the authors' way in Ruffini et al. 2024, ``compute_statistical_scores.py``): concatenate
the per-image test predictions of all folds, then compute each metric once. *Fold mean*: compute
each metric per fold, then average (with the SD over folds; Cobo et al. 2024 report this). They
differ when folds differ in size: in leave-one-centre-out one AIforCOVID centre holds 970 of 1,585
images, so pooling weighs it by its images while the fold mean weighs it as one of six.

``aggregate_metrics(predictions, by=["backbone", "arm"])`` gives both from a Predictions table;
``summarise(metrics, view=...)`` picks one view from an experiment's tidy metrics table whose
pooled rows carry ``fold == "pooled"``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from mtbench.metrics import compute_metrics
from mtbench.tasks import Task

VIEWS = ("pooled", "fold_mean")


def aggregate_metrics(
    predictions: pd.DataFrame,
    tasks: Sequence[Task] | Mapping[str, Task] | None = None,
    by: str | Sequence[str] | None = None,
    fold: str = "fold",
    metrics: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Metrics of each task both pooled over folds and averaged over folds.

    Returns the tidy columns ``[*by, task, metric, view, value, std, n_folds, n]``: ``view`` is
    ``"pooled"`` (one metric on all folds' predictions; ``std`` NaN) or ``"fold_mean"`` (the mean of
    the per-fold values, ``std`` their sample SD, NaN folds skipped). ``n`` is the number of labelled
    rows (pooled) or their mean per fold.
    """
    by = [by] if isinstance(by, str) else list(by or [])
    if fold not in predictions.columns:
        raise KeyError(f"Predictions table has no fold column {fold!r}; columns: {list(predictions.columns)}")
    pooled = compute_metrics(predictions, tasks, metrics, by=by or None)
    pooled = pooled.assign(view="pooled", std=float("nan"), n_folds=predictions[fold].nunique())
    per_fold = compute_metrics(predictions, tasks, metrics, by=[*by, fold])
    keys = [*by, "task", "metric"]
    mean = (per_fold.groupby(keys, sort=False)
            .agg(value=("value", "mean"), std=("value", "std"), n_folds=(fold, "nunique"), n=("n", "mean"))
            .reset_index().assign(view="fold_mean"))
    cols = [*keys, "view", "value", "std", "n_folds", "n"]
    return pd.concat([pooled[cols], mean[cols]], ignore_index=True)


def summarise(metrics: pd.DataFrame, view: str = "pooled", fold: str = "fold", pooled_label: str = "pooled") -> pd.DataFrame:
    """One view of an experiment's tidy metrics table (rows per fold plus rows with ``fold == "pooled"``).

    ``view="pooled"`` keeps the pooled rows; ``"fold_mean"`` averages the per-fold rows over folds
    within every other column's group. Returns the table without the ``fold`` column.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    is_pooled = metrics[fold].astype(str) == pooled_label
    if view == "pooled":
        if not is_pooled.any():
            raise ValueError(f"The metrics table has no rows with {fold} == {pooled_label!r} (pooled predictions).")
        return metrics[is_pooled].drop(columns=fold).reset_index(drop=True)
    part = metrics[~is_pooled]
    keys = [c for c in part.columns if c not in (fold, "value", "n", "ci_low", "ci_high")]
    return part.groupby(keys, sort=False, dropna=False)["value"].mean().reset_index()
