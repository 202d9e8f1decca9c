"""Decision thresholds chosen on the validation split, stored in the Predictions table.

A model's probabilities are often badly calibrated after a few epochs (a small training set, a
loss weighted towards another task), so the fixed 0.5 of many papers can turn a model with a
good AUC into one that calls every patient positive: balanced accuracy 0.5, "F1" set by the
prevalence. The fair baseline is to choose each binary task's threshold on the **validation**
split and apply that stored number, unchanged, to the test split:

>>> import pandas as pd
>>> from mtbench.tasks import Task
>>> t = Task("prognosis", "binary")
>>> val = pd.DataFrame({"sample_id": list("abcd"), "prognosis.target": [0, 0, 1, 1],
...                     "prognosis.prob": [0.70, 0.80, 0.85, 0.90], "prognosis.pred": [1, 1, 1, 1]})
>>> thr = choose_threshold(val["prognosis.target"], val["prognosis.prob"])
>>> thr
0.85
>>> apply_threshold(val, t, thr)["prognosis.pred"].tolist()
[0, 0, 1, 1]

The threshold lands in the column ``<task>.threshold`` (one value repeated on every row), so it
travels with saved predictions, is shown next to the metrics, and ``<task>.pred`` -- what every
thresholded metric (balanced accuracy, F1, sensitivity, specificity) reads -- agrees with it.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from mtbench.tasks import Task, as_task_dict

THRESHOLD_METHODS = ("youden", "closest_topleft", "fixed")


def choose_threshold(y_true, score, method: str = "youden", fixed: float = 0.5) -> float:
    """The decision threshold on ``score`` for binary labels ``y_true`` (NaN labels are ignored).

    ``youden``: maximises Youden's J = sensitivity + specificity - 1 (ties: the higher threshold);
    ``closest_topleft``: minimises ``(1 - sens)^2 + (1 - spec)^2`` (the ROC point closest to (0, 1));
    ``fixed``: returns ``fixed`` (the papers' 0.5). Predictions are positive when ``score >= threshold``.
    With one class present the ROC is undefined: a ``UserWarning`` and ``fixed`` are returned.
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"Unknown threshold method {method!r}; choose from {THRESHOLD_METHODS}.")
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    if y.shape != s.shape:
        raise ValueError(f"y_true {y.shape} and score {s.shape} must have the same shape.")
    keep = ~np.isnan(y) & ~np.isnan(s)
    y, s = y[keep], s[keep]
    if method == "fixed":
        return float(fixed)
    if len(np.unique(y)) < 2:
        warnings.warn(f"choose_threshold({method!r}): only one class among {len(y)} labelled cases; using {fixed}.", stacklevel=2)
        return float(fixed)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    thr, fpr, tpr = thr[1:], fpr[1:], tpr[1:]  # drop sklearn's "inf" point (nobody positive)
    if method == "youden":
        j = tpr - fpr
        i = int(np.flatnonzero(j >= j.max() - 1e-12)[0])  # decreasing thresholds: first = highest
    else:
        d = (1 - tpr) ** 2 + fpr**2
        i = int(np.flatnonzero(d <= d.min() + 1e-12)[0])
    return float(thr[i])


def threshold_column(task: Task | str) -> str:
    """The Predictions-table column holding a binary task's threshold: ``<task>.threshold``."""
    return f"{task if isinstance(task, str) else task.name}.threshold"


def apply_threshold(predictions: pd.DataFrame, task: Task, threshold: float) -> pd.DataFrame:
    """A copy of ``predictions`` with ``<task>.pred = prob >= threshold`` and ``<task>.threshold`` stored."""
    if task.kind != "binary":
        raise ValueError(f"Thresholds apply to binary tasks; {task.name!r} is {task.kind}.")
    prob = f"{task.name}.prob"
    if prob not in predictions.columns:
        raise KeyError(f"Predictions table has no column {prob!r} for task {task.name!r}.")
    out = predictions.copy()
    p = out[prob].to_numpy(dtype=float)
    pred = (p >= threshold).astype(int)
    out[f"{task.name}.pred"] = np.where(np.isnan(p), np.nan, pred) if np.isnan(p).any() else pred
    out[threshold_column(task)] = float(threshold)
    return out


def fit_thresholds(
    val: pd.DataFrame, tasks: Sequence[Task] | Mapping[str, Task], method: str = "youden", fixed: float = 0.5
) -> dict[str, float]:
    """One threshold per binary task, chosen on the validation Predictions table ``val``."""
    out = {}
    for name, task in as_task_dict(tasks).items():
        if task.kind == "binary":
            warn_small_classes(val[f"{name}.target"], name=f"validation {name}")
            out[name] = choose_threshold(val[f"{name}.target"], val[f"{name}.prob"], method=method, fixed=fixed)
    return out


def apply_thresholds(predictions: pd.DataFrame, tasks: Sequence[Task] | Mapping[str, Task], thresholds: Mapping[str, float]) -> pd.DataFrame:
    """:func:`apply_threshold` for every task in ``thresholds`` (e.g. from :func:`fit_thresholds`)."""
    tasks = as_task_dict(tasks)
    for name, thr in thresholds.items():
        predictions = apply_threshold(predictions, tasks[name], thr)
    return predictions


def warn_small_classes(labels, min_count: int = 5, name: str = "validation split") -> dict:
    """Warn (``UserWarning``) when a class of ``labels`` has fewer than ``min_count`` cases.

    Returns the class counts (NaN labels ignored). Model selection and thresholds chosen on such a
    split are unstable: one patient moves balanced accuracy by 1/(2 * count).
    """
    y = pd.Series(np.asarray(labels, dtype=float)).dropna()
    counts = {int(k) if float(k).is_integer() else k: int(v) for k, v in y.value_counts().sort_index().items()}
    small = {k: v for k, v in counts.items() if v < min_count}
    if small or len(counts) < 2:
        warnings.warn(
            f"{name}: class counts {counts}; fewer than {min_count} cases of {sorted(small) or 'a second class'} "
            "make thresholds and epoch selection unstable.",
            stacklevel=2,
        )
    return counts


def predict_thresholded(model, val_loader, test_loader, tasks: Sequence[Task] | Mapping[str, Task],
                        method: str = "youden", fixed: float = 0.5, **predict_kwargs) -> pd.DataFrame:
    """Test predictions whose binary decisions use thresholds chosen on the validation predictions.

    The one call every experiment makes after training: predict ``val_loader``, choose each binary
    task's threshold there (:func:`fit_thresholds`, ``method`` = ``"youden"`` by default, ``"fixed"``
    for a paper's 0.5), predict ``test_loader`` and apply them (stored in ``<task>.threshold``).
    ``predict_kwargs`` go to :func:`mtbench.train.predict` for both splits (except ``mask_dir``,
    test only).
    """
    from mtbench.train import predict

    tasks = as_task_dict(tasks)
    test = predict(model, test_loader, tasks, **predict_kwargs)
    if not any(t.kind == "binary" for t in tasks.values()):
        return test
    predict_kwargs.pop("mask_dir", None)
    val = None if method == "fixed" else predict(model, val_loader, tasks, **predict_kwargs)
    if val is None:
        thresholds = {n: float(fixed) for n, t in tasks.items() if t.kind == "binary"}
    else:  # one class in validation: choose_threshold warns and keeps ``fixed``
        thresholds = fit_thresholds(val, tasks, method=method, fixed=fixed)
    return apply_thresholds(test, tasks, thresholds)
