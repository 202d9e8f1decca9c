"""Metrics per task, computed from a Predictions table.

``compute_metrics(predictions, tasks)`` returns a tidy table (``task``, ``metric``, ``value``,
``n``), optionally per group (``by="fold"``). Metrics are registered by name with the task kinds
they apply to; the implementations are scikit-learn's and SciPy's. A metric that is undefined on
the given rows (AUC with one class present, Pearson r of a constant) is NaN, never an error.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from mtbench.predictions import TaskArrays, task_arrays
from mtbench.registry import Registry
from mtbench.tasks import Task, as_task_dict


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[TaskArrays, Task], float]
    kinds: tuple[str, ...]
    higher_is_better: bool = True
    description: str = ""


METRICS = Registry("metric")

# What a metric warns on degenerate input (one class present, a constant score or target, an empty
# slice), as (category, message regex) warning filters: scikit-learn's and imbalanced-learn's
# UndefinedMetricWarning, NumPy's and SciPy's RuntimeWarnings (SciPy's ConstantInputWarning is one)
# and two plain UserWarnings of scikit-learn's. The metric is then NaN or a documented fallback and
# :mod:`mtbench.guards` flags the result; every other warning (deprecations, mtbench's own
# DegenerateResultWarning) still reaches the user. Never silence all warnings around a metric.
DEGENERATE_INPUT_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (UndefinedMetricWarning, ""),
    (RuntimeWarning, ""),
    (UserWarning, "y_pred contains classes not in y_true"),
    (UserWarning, "A single label was found in 'y_true' and 'y_pred'"),
)


@contextlib.contextmanager
def ignore_degenerate_input_warnings():
    """Silence only :data:`DEGENERATE_INPUT_WARNINGS` inside the block (what they announce is
    flagged elsewhere: NaN metrics by :func:`mtbench.guards.check_metrics`, undefined resamples by
    the bootstrap's ``n_undefined`` column)."""
    with warnings.catch_warnings():
        for category, message in DEGENERATE_INPUT_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def register_metric(name: str, kinds: Sequence[str], higher_is_better: bool = True, description: str = ""):
    """Decorator registering ``fn(arrays, task) -> float`` as metric ``name``; a taken name is refused."""

    def deco(fn):
        METRICS.register(name, Metric(name, fn, tuple(kinds), higher_is_better, description), description=description)
        return fn

    return deco


def list_metrics(kind: str | None = None) -> list[str]:
    return [n for n in METRICS.names() if kind is None or kind in METRICS.get(n).kinds]


def get_metric(name: str) -> Metric:
    return METRICS.lookup(name)


def higher_is_better(name: str) -> bool:
    """Direction of a metric name (``"loss"`` and errors: lower is better)."""
    if name == "loss":
        return False
    return get_metric(name).higher_is_better


def _labels(task: Task) -> list[int]:
    return list(range(int(task.num_classes)))


def _binary_confusion(a: TaskArrays):
    tn, fp, fn, tp = skm.confusion_matrix(a.y, a.pred, labels=[0, 1]).ravel()
    return tn, fp, fn, tp


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


# -------------------------------------------------------------------- classification
@register_metric("auc", ["binary", "multiclass", "ordinal"], description="ROC AUC (one-vs-rest macro for >2 classes)")
def auc(a: TaskArrays, task: Task) -> float:
    if len(np.unique(a.y)) < 2:
        return float("nan")
    if task.kind == "binary":
        return float(skm.roc_auc_score(a.y, a.prob))
    if int(task.num_classes) == 2:  # two softmax outputs: the AUC of the second class's probability
        return float(skm.roc_auc_score(a.y, a.prob[:, 1]))
    present = np.unique(a.y)
    if len(present) < int(task.num_classes):
        # Macro OvR over the classes that occur: sklearn refuses absent classes.
        scores = [skm.roc_auc_score(a.y == k, a.prob[:, k]) for k in present]
        return float(np.mean(scores))
    return float(skm.roc_auc_score(a.y, a.prob, multi_class="ovr", average="macro", labels=_labels(task)))


@register_metric("auprc", ["binary"], description="area under the precision-recall curve (average precision)")
def auprc(a: TaskArrays, task: Task) -> float:
    if a.y.sum() == 0:
        return float("nan")
    return float(skm.average_precision_score(a.y, a.prob))


@register_metric("accuracy", ["binary", "multiclass", "ordinal"])
def accuracy(a: TaskArrays, task: Task) -> float:
    return float(np.mean(a.y == a.pred)) if len(a) else float("nan")


@register_metric("balanced_accuracy", ["binary", "multiclass", "ordinal"], description="mean recall over the classes present")
def balanced_accuracy(a: TaskArrays, task: Task) -> float:
    if not len(a):
        return float("nan")
    with ignore_degenerate_input_warnings():
        return float(skm.balanced_accuracy_score(a.y, a.pred))


@register_metric("sensitivity", ["binary", "multiclass", "ordinal"], description="recall of the positive class (macro for >2 classes)")
def sensitivity(a: TaskArrays, task: Task) -> float:
    if task.kind == "binary":
        tn, fp, fn, tp = _binary_confusion(a)
        return _ratio(tp, tp + fn)
    rec = skm.recall_score(a.y, a.pred, labels=np.unique(a.y), average=None, zero_division=0)
    return float(np.mean(rec)) if len(rec) else float("nan")


@register_metric("specificity", ["binary", "multiclass", "ordinal"], description="true-negative rate (macro one-vs-rest for >2 classes)")
def specificity(a: TaskArrays, task: Task) -> float:
    if task.kind == "binary":
        tn, fp, fn, tp = _binary_confusion(a)
        return _ratio(tn, tn + fp)
    cm = skm.confusion_matrix(a.y, a.pred, labels=_labels(task))
    specs = []
    for k in range(cm.shape[0]):
        tn = cm.sum() - cm[k, :].sum() - cm[:, k].sum() + cm[k, k]
        fp = cm[:, k].sum() - cm[k, k]
        if tn + fp > 0:
            specs.append(tn / (tn + fp))
    return float(np.mean(specs)) if specs else float("nan")


@register_metric("precision", ["binary", "multiclass", "ordinal"], description="positive predictive value (macro for >2 classes)")
def precision(a: TaskArrays, task: Task) -> float:
    if task.kind == "binary":
        tn, fp, fn, tp = _binary_confusion(a)
        return _ratio(tp, tp + fp)
    return float(skm.precision_score(a.y, a.pred, labels=np.unique(a.y), average="macro", zero_division=0))


@register_metric("npv", ["binary"], description="negative predictive value")
def npv(a: TaskArrays, task: Task) -> float:
    tn, fp, fn, tp = _binary_confusion(a)
    return _ratio(tn, tn + fn)


@register_metric("f1", ["binary", "multiclass", "ordinal"], description="F1 of the positive class (macro for >2 classes)")
def f1(a: TaskArrays, task: Task) -> float:
    if not len(a):
        return float("nan")
    if task.kind == "binary":
        return float(skm.f1_score(a.y, a.pred, labels=[0, 1], pos_label=1, zero_division=0))
    return float(skm.f1_score(a.y, a.pred, labels=np.unique(a.y), average="macro", zero_division=0))


@register_metric("f1_weighted", ["binary", "multiclass", "ordinal"], description="support-weighted F1 over classes")
def f1_weighted(a: TaskArrays, task: Task) -> float:
    if not len(a):
        return float("nan")
    return float(skm.f1_score(a.y, a.pred, average="weighted", zero_division=0))


@register_metric(
    "gmean_weighted",
    ["binary", "multiclass", "ordinal"],
    description="imbalanced-learn's weighted G-mean: sqrt(weighted recall * weighted specificity)",
)
def gmean_weighted(a: TaskArrays, task: Task) -> float:
    """imbalanced-learn's ``geometric_mean_score(average="weighted")``, the G-mean Ruffini et al.
    report: ``sqrt(R_w * S_w)`` with ``R_w``/``S_w`` the support-weighted one-vs-rest recall and
    specificity over classes. For two classes this is NOT ``sqrt(sensitivity * specificity)``
    unless the classes are balanced (``R_w`` is the accuracy); we call the library itself so the
    number is the authors' by construction."""
    from imblearn.metrics import geometric_mean_score

    if not len(a):
        return float("nan")
    with ignore_degenerate_input_warnings():  # a class absent from y: imblearn warns, its weight is 0 anyway
        return float(geometric_mean_score(a.y, a.pred, average="weighted"))


@register_metric("qwk", ["ordinal", "multiclass"], description="quadratic-weighted Cohen's kappa")
def qwk(a: TaskArrays, task: Task) -> float:
    if len(np.unique(np.concatenate([a.y, a.pred]))) < 2:
        return float("nan")
    return float(skm.cohen_kappa_score(a.y, a.pred, weights="quadratic", labels=_labels(task)))


def sensitivity_at_specificity(y, score, specificity: float = 0.9) -> float:
    """Highest sensitivity among the ROC operating points whose specificity is at least ``specificity``.

    Thresholds are the observed scores (scikit-learn's ``roc_curve``), so this is the sensitivity a
    clinician would get by choosing, on these data, the threshold that keeps false alarms at or
    below ``1 - specificity``. NaN when a class is absent.

    >>> sensitivity_at_specificity([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.7, 0.9], 0.8)
    0.5
    """
    y = np.asarray(y).astype(int)
    score = np.asarray(score, dtype=float)
    if len(np.unique(y)) < 2:
        return float("nan")
    if not 0.0 <= specificity <= 1.0:
        raise ValueError(f"specificity must be in [0, 1], got {specificity}.")
    fpr, tpr, _ = skm.roc_curve(y, score)
    ok = fpr <= 1.0 - specificity + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


for _spec in (80, 90, 95):
    register_metric(
        f"sens_at_spec{_spec}", ["binary"],
        description=f"sensitivity at the best threshold with specificity >= {_spec / 100:.2f} (rare positives)",
    )(lambda a, task, _s=_spec / 100: sensitivity_at_specificity(a.y, a.prob, _s))


# ---------------------------------------------------------------------- segmentation
def _extra(a: TaskArrays, key: str) -> np.ndarray:
    if a.extra is None or key not in a.extra:
        raise ValueError(f"Segmentation metric needs per-sample {key!r} scores (the Predictions column '<task>.{key}').")
    return np.asarray(a.extra[key], dtype=float)


@register_metric("dice", ["segmentation"], description="mean per-sample Dice of the thresholded masks")
def dice(a: TaskArrays, task: Task) -> float:
    v = _extra(a, "dice")
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


@register_metric("iou", ["segmentation"], description="mean per-sample IoU (Jaccard) of the thresholded masks")
def iou(a: TaskArrays, task: Task) -> float:
    v = _extra(a, "iou")
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


@register_metric("volume_mae_ml", ["segmentation"], higher_is_better=False,
                 description="mean absolute error of the segmented volume (mL)")
def volume_mae_ml(a: TaskArrays, task: Task) -> float:
    return float(np.mean(np.abs(np.asarray(a.y, float) - np.asarray(a.pred, float)))) if len(a) else float("nan")


@register_metric("volume_pearson_r", ["segmentation"], description="Pearson correlation of segmented and true volumes")
def volume_pearson_r(a: TaskArrays, task: Task) -> float:
    y, p = np.asarray(a.y, float), np.asarray(a.pred, float)
    if len(y) < 3 or np.std(y) == 0 or np.std(p) == 0:
        return float("nan")
    return float(stats.pearsonr(y, p).statistic)


# ------------------------------------------------------------------------ regression
def _reg_arrays(a: TaskArrays, task: Task):
    y, p = np.asarray(a.y, float), np.asarray(a.pred, float)
    return y.reshape(len(y), -1), p.reshape(len(p), -1)


@register_metric("mae", ["regression", "ordinal"], higher_is_better=False, description="mean absolute error (class index for ordinal)")
def mae(a: TaskArrays, task: Task) -> float:
    if not len(a):
        return float("nan")
    y, p = _reg_arrays(a, task)
    return float(np.mean(np.abs(y - p)))


@register_metric("rmse", ["regression"], higher_is_better=False, description="root mean squared error")
def rmse(a: TaskArrays, task: Task) -> float:
    if not len(a):
        return float("nan")
    y, p = _reg_arrays(a, task)
    return float(np.sqrt(np.mean((y - p) ** 2)))


@register_metric("pearson_r", ["regression"], description="Pearson correlation (all targets pooled)")
def pearson_r(a: TaskArrays, task: Task) -> float:
    y, p = _reg_arrays(a, task)
    y, p = y.ravel(), p.ravel()
    if len(y) < 3 or np.std(y) == 0 or np.std(p) == 0:
        return float("nan")
    return float(stats.pearsonr(y, p).statistic)


@register_metric("r2", ["regression"], description="coefficient of determination")
def r2(a: TaskArrays, task: Task) -> float:
    y, p = _reg_arrays(a, task)
    if len(y) < 2:
        return float("nan")
    return float(skm.r2_score(y, p))


# --------------------------------------------------------------------------- tables
def task_metrics(arrays: TaskArrays, task: Task, metrics: Sequence[str] | None = None) -> dict[str, float]:
    """``{metric: value}`` for one task's arrays."""
    names = list(metrics or task.metrics)
    out = {}
    for name in names:
        m = get_metric(name)
        if task.kind not in m.kinds:
            raise ValueError(f"Metric {name!r} does not apply to {task.kind} task {task.name!r} (kinds {m.kinds}).")
        out[name] = m.fn(arrays, task) if len(arrays) else float("nan")
    return out


def compute_metrics(
    predictions: pd.DataFrame,
    tasks: Sequence[Task] | Mapping[str, Task] | None = None,
    metrics: Mapping[str, Sequence[str]] | None = None,
    by: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Metrics of each task on a Predictions table, as a tidy DataFrame.

    Parameters
    ----------
    predictions:
        A Predictions table (see :mod:`mtbench.predictions`).
    tasks:
        Tasks to score; default: those stored in ``predictions.attrs``.
    metrics:
        ``{task: [metric names]}`` to override the tasks' own metric lists.
    by:
        Column(s) to group by (e.g. ``"fold"``); metrics are computed within each group.

    Returns columns ``[*by, task, metric, value, n]`` where ``n`` is the number of labelled rows.
    """
    from mtbench.predictions import tasks_from_attrs

    tasks = as_task_dict(tasks) if tasks is not None else tasks_from_attrs(predictions)
    metrics = dict(metrics or {})
    by = [by] if isinstance(by, str) else list(by or [])
    groups = predictions.groupby(by, sort=True) if by else [((), predictions)]
    rows = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for name, task in tasks.items():
            arrays = task_arrays(part, task)
            for metric, value in task_metrics(arrays, task, metrics.get(name)).items():
                rows.append({**dict(zip(by, key)), "task": name, "metric": metric, "value": value, "n": len(arrays)})
    return pd.DataFrame(rows)


def metric_value(predictions: pd.DataFrame, task: Task, metric: str) -> float:
    """A single metric of a single task."""
    return task_metrics(task_arrays(predictions, task), task, [metric])[metric]
