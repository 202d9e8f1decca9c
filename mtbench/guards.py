"""Degenerate-result guard: results that look like numbers but measure nothing.

A fold whose test labels are all one class, a model that predicts one class for everyone, a
score that never varies, a metric that came out NaN, a saliency map that is all zero: each
still yields a table cell (accuracy 1.000, AUC NaN ...) that reads like a finding. The checks
here find them and return :class:`Flag` records, one per problem, that say where (task,
model/arm, fold) and what. :func:`act_on` then warns (default), raises, or stays silent, and
:func:`mark_degenerate` marks (or drops) the affected rows of a table that is about to be put
beside published numbers.

What is flagged (``Flag.what``):

``single_class_fold``      the labelled test samples of a fold hold one class (AUC undefined,
                           accuracy/F1/G-mean meaningless);
``one_class_predictions``  every prediction is the same class;
``constant_scores``        every probability (or regression output) is the same number;
``nan_metric``             a metric value is NaN;
``zero_saliency``          a saliency map is all zero;
``constant_saliency``      a saliency map is one value everywhere (but not zero).

Example::

    from mtbench import guards
    from mtbench.predictions import load_predictions

    preds = load_predictions("runs/x/convnet/mdmt/predictions.csv")
    flags = guards.check_predictions(preds, model="convnet/mdmt", by="fold")
    flags += guards.check_metrics(metrics)            # tidy metrics: task, metric, value[, arm, fold]
    guards.act_on(flags, "warn")                      # or "raise" / "ignore"
    table = guards.mark_degenerate(comparison, flags, by="arm")   # adds a "degenerate" column

    # before training a fold: refuse a test split that cannot measure a classifier
    guards.refuse_single_class(test_table, {"prognosis": "prognosis"}, fold="3")
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from mtbench.tasks import Task, as_task_dict

__all__ = [
    "Flag", "DegenerateResultError", "DegenerateResultWarning", "KINDS",
    "check_predictions", "check_metrics", "check_saliency", "refuse_single_class",
    "act_on", "flags_frame", "mark_degenerate",
]

KINDS = ("single_class_fold", "one_class_predictions", "constant_scores", "nan_metric",
         "zero_saliency", "constant_saliency")


@dataclass(frozen=True)
class Flag:
    """One degenerate result: ``what`` (one of :data:`KINDS`) happened for ``task`` of ``model``
    (a model, arm or ``backbone/arm`` label; ``None`` if not known) in ``fold`` (``None``: all
    folds pooled or not known); ``detail`` is a sentence for a person."""

    task: str
    model: str | None
    fold: str | None
    what: str
    detail: str

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in (("model", self.model), ("fold", self.fold)) if v is not None)
        return f"[{self.what}] task {self.task!r}{' (' + where + ')' if where else ''}: {self.detail}"


class DegenerateResultError(ValueError):
    """Raised by :func:`act_on` (``"raise"``) and :func:`refuse_single_class`; ``.flags`` holds the flags."""

    def __init__(self, flags: Sequence[Flag], hint: str = ""):
        self.flags = list(flags)
        lines = "\n  ".join(str(f) for f in self.flags)
        super().__init__(f"{len(self.flags)} degenerate result(s):\n  {lines}" + (f"\n{hint}" if hint else ""))


class DegenerateResultWarning(UserWarning):
    """Issued by :func:`act_on` (``"warn"``), once per flag."""


# ------------------------------------------------------------------------------- checks
def _groups(df: pd.DataFrame, by: str | None):
    if by is None or by not in df.columns:
        yield None, df
        return
    for key, part in df.groupby(df[by].astype(str), sort=True):
        yield str(key), part


def _constant(a: np.ndarray, atol: float) -> bool:
    a = np.asarray(a, dtype=float).reshape(len(a), -1)
    return len(a) > 1 and bool(np.all(np.nanmax(a, 0) - np.nanmin(a, 0) <= atol))


def check_predictions(
    df: pd.DataFrame,
    tasks: Sequence[Task] | Mapping[str, Task] | None = None,
    *,
    model: str | None = None,
    fold: str | None = None,
    by: str | None = "fold",
    atol: float = 1e-9,
) -> list[Flag]:
    """Flags for a Predictions table (:mod:`mtbench.predictions`), per task and per ``by`` group.

    ``tasks`` defaults to those in ``df.attrs``. With ``by="fold"`` (default, if the column exists)
    each fold is checked on its own, since one fold can be degenerate while the pooled table is
    not; ``by=None`` checks the table as a whole and labels the flags with ``fold``.
    Classification: ``single_class_fold``, ``one_class_predictions``, ``constant_scores``;
    regression: ``constant_scores``. Segmentation is not checked here (see :func:`check_saliency`
    for maps).
    """
    from mtbench.predictions import task_arrays, tasks_from_attrs

    tasks = as_task_dict(tasks) if tasks is not None else tasks_from_attrs(df)
    flags = []
    for key, part in _groups(df, by):
        where = key if key is not None else fold
        for task in tasks.values():
            if task.kind == "segmentation":
                continue
            a = task_arrays(part, task)
            if len(a) == 0:
                continue
            n = len(a)
            if task.is_classification:
                classes = np.unique(a.y)
                if len(classes) < 2:
                    flags.append(Flag(task.name, model, where, "single_class_fold",
                                      f"all {n} labelled test samples are class {classes[0]:g}"))
                preds = np.unique(a.pred)
                if len(preds) < 2 and n > 1:
                    flags.append(Flag(task.name, model, where, "one_class_predictions",
                                      f"all {n} predictions are class {preds[0]:g}"))
                if a.prob is not None and _constant(a.prob, atol):
                    flags.append(Flag(task.name, model, where, "constant_scores",
                                      f"the {n} predicted probabilities are all equal"))
            elif _constant(a.pred, atol):
                flags.append(Flag(task.name, model, where, "constant_scores", f"the {n} predictions are all equal"))
    return flags


_MODEL_COLUMNS = ("model", "backbone", "arm")


def check_metrics(metrics: pd.DataFrame, *, value: str = "value", model: str | None = None) -> list[Flag]:
    """``nan_metric`` flags for a tidy metrics table (columns ``task``, ``metric``, ``value``; the
    model label is built from any of ``model``/``backbone``/``arm`` present, joined by ``/``)."""
    missing = [c for c in ("task", "metric", value) if c not in metrics.columns]
    if missing:
        raise ValueError(f"Metrics table lacks columns {missing} (has {list(metrics.columns)}).")
    mcols = [c for c in _MODEL_COLUMNS if c in metrics.columns]
    flags = []
    for row in metrics[pd.to_numeric(metrics[value], errors="coerce").isna()].to_dict("records"):
        label = "/".join(str(row[c]) for c in mcols) or model
        fold = None if "fold" not in row or pd.isna(row["fold"]) else str(row["fold"])
        n = f" (n={row['n']})" if "n" in row and not pd.isna(row["n"]) else ""
        flags.append(Flag(str(row["task"]), label, fold, "nan_metric", f"{row['metric']} is NaN{n}"))
    return flags


def check_saliency(maps, *, task: str, model: str | None = None, fold: str | None = None,
                   sample_ids: Sequence[str] | None = None, atol: float = 1e-12) -> list[Flag]:
    """``zero_saliency`` / ``constant_saliency`` flags for saliency maps ``[B, *spatial]`` (numpy
    or torch; one map may be passed without the batch axis). ``sample_ids`` name the maps."""
    if hasattr(maps, "detach"):
        maps = maps.detach().float().cpu().numpy()
    a = np.asarray(maps, dtype=float)
    if a.ndim < 2:
        raise ValueError(f"Saliency maps need at least 2 dimensions ([H, W] or [B, *spatial]); got shape {a.shape}.")
    if a.ndim == 2:
        a = a[None]
    flat = a.reshape(len(a), -1)
    flags = []
    for i, m in enumerate(flat):
        name = f"map {sample_ids[i]!s}" if sample_ids is not None else f"map {i}"
        if not np.isfinite(m).all():
            flags.append(Flag(task, model, fold, "constant_saliency", f"{name} has non-finite values"))
        elif np.all(np.abs(m) <= atol):
            flags.append(Flag(task, model, fold, "zero_saliency", f"{name} is all zero"))
        elif np.ptp(m) <= atol * max(1.0, float(np.abs(m).max())):
            flags.append(Flag(task, model, fold, "constant_saliency", f"{name} is constant ({m[0]:.3g} everywhere)"))
    return flags


def refuse_single_class(
    test_table: pd.DataFrame,
    tasks: Mapping[str, str] | Sequence[Task | str],
    allow_single_class: bool = False,
    *,
    fold: str | None = None,
    model: str | None = None,
) -> list[Flag]:
    """Raise :class:`DegenerateResultError` if a classification task's labelled rows in
    ``test_table`` hold fewer than two classes, unless ``allow_single_class`` (then warn and
    return the flags). Call it on each test fold before training it.

    ``tasks``: ``{task name: label column}``, or tasks/names (the column is the name, or
    ``<name>.target`` in a Predictions table). Regression and segmentation tasks are skipped;
    rows with a missing label (NaN) do not count; a task without labelled rows is not flagged.
    """
    if isinstance(tasks, Mapping):
        items = [(name, col) for name, col in tasks.items() if isinstance(col, str)]
    else:
        items = []
        for t in tasks:
            if isinstance(t, Task) and not t.is_classification:
                continue
            name = t.name if isinstance(t, Task) else str(t)
            items.append((name, name if name in test_table.columns else f"{name}.target"))
    flags = []
    for name, col in items:
        if col not in test_table.columns:
            raise KeyError(f"Test table has no label column {col!r} for task {name!r} (has {list(test_table.columns)}).")
        labels = test_table[col].dropna()
        classes = pd.unique(labels)
        if len(labels) and len(classes) < 2:
            flags.append(Flag(name, model, fold, "single_class_fold",
                              f"all {len(labels)} labelled test samples in column {col!r} are {classes[0]!r}"))
    if flags and not allow_single_class:
        raise DegenerateResultError(flags, "A test fold needs both classes to measure a classifier; "
                                           "fix the split (fewer folds, stratification) or pass allow_single_class=True.")
    act_on(flags, "warn")
    return flags


# ------------------------------------------------------------------------------- acting
def act_on(flags: Iterable[Flag], action: str = "warn") -> list[Flag]:
    """``"warn"``: one :class:`DegenerateResultWarning` per flag; ``"raise"``: one
    :class:`DegenerateResultError` listing all; ``"ignore"``: nothing. Returns the flags."""
    flags = list(flags)
    if action not in ("warn", "raise", "ignore"):
        raise ValueError(f"Unknown action {action!r}; expected 'warn', 'raise' or 'ignore'.")
    if action == "raise" and flags:
        raise DegenerateResultError(flags)
    if action == "warn":
        for f in flags:
            warnings.warn(str(f), DegenerateResultWarning, stacklevel=2)
    return flags


def flags_frame(flags: Iterable[Flag]) -> pd.DataFrame:
    """The flags as a table (``task, model, fold, what, detail``), e.g. to save beside the metrics."""
    return pd.DataFrame([asdict(f) for f in flags], columns=["task", "model", "fold", "what", "detail"])


def _matches(key: Any, model: str | None) -> bool:
    # a row keyed "mdmt" matches flags of model "mdmt" and of "convnet/mdmt" (arm averaged over backbones)
    return model is not None and (str(key) == model or str(model).split("/")[-1] == str(key))


def mark_degenerate(table: pd.DataFrame, flags: Iterable[Flag], *, by: str | None = None,
                    drop: bool = False, column: str = "degenerate") -> pd.DataFrame:
    """Mark (or with ``drop=True`` remove) the rows of ``table`` that a flag concerns.

    A row's key is its index value (or column ``by``); it matches a flag whose ``model`` equals it
    or ends in ``/<key>``; a flag without ``model`` concerns every row. The marked table gains
    ``column``: the flags' kinds and counts (``""`` for a clean row), so no degenerate number is
    printed beside a published one unmarked. Works with a MultiIndex on the columns too.
    """
    flags = list(flags)
    keys = table.index if by is None else table[by]
    notes = []
    for key in keys:
        hit = [f for f in flags if f.model is None or _matches(key, f.model)]
        counts = pd.Series([f.what for f in hit], dtype=object).value_counts(sort=False)
        notes.append("; ".join(f"{w} x{c}" if c > 1 else w for w, c in counts.items()))
    notes = pd.Series(notes, index=table.index, dtype=object)
    if drop:
        return table[notes == ""].copy()
    out = table.copy()
    col = (column,) + ("",) * (out.columns.nlevels - 1) if out.columns.nlevels > 1 else column
    out[col] = notes
    return out
