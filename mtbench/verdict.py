"""Sentences from numbers: what a notebook may say about a result, generated from the result.

A notebook's prose is written before its numbers exist, so it drifts ("multi-task helps" above
an interval that includes 0). These helpers turn the computed values into the sentence, so the
text can only say what the numbers support:

>>> difference_verdict(0.043, 0.012, 0.071, "multi-task minus single-task AUC")
'multi-task minus single-task AUC: +0.043 [0.012, 0.071]: the interval excludes 0, so the difference is positive.'
>>> difference_verdict(0.01, -0.03, 0.05, "multi-task minus single-task AUC")
'multi-task minus single-task AUC: +0.010 [-0.030, 0.050]: the interval includes 0: no evidence of a difference.'

:func:`degenerate_flags` names the ways a model's predictions can be empty (one class predicted
for everybody, constant scores, an all-zero saliency map), so a comparison against a collapsed
model is flagged rather than reported as a win.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mtbench.tasks import Task, as_task_dict


def _fmt(x: float, digits: int, signed: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return "nan"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def difference_verdict(estimate: float, low: float, high: float, what: str = "difference", digits: int = 3, level: float = 0.95) -> str:
    """``"<what>: +0.043 [0.012, 0.071]: the interval excludes 0, so ..."`` for a paired difference.

    ``low``/``high`` are the ends of a ``level`` interval (bootstrap, over seeds, DeLong...). A NaN
    interval says so instead of guessing.
    """
    head = f"{what}: {_fmt(estimate, digits, signed=True)} [{_fmt(low, digits)}, {_fmt(high, digits)}]"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{head}: no interval could be computed, so no conclusion."
    if low > 0:
        return f"{head}: the interval excludes 0, so the difference is positive."
    if high < 0:
        return f"{head}: the interval excludes 0, so the difference is negative."
    return f"{head}: the interval includes 0: no evidence of a difference."


def threshold_verdict(value: float, threshold: float, what: str, higher_is_better: bool = True, digits: int = 3) -> str:
    """``"prognosis AUC 0.812 >= 0.80: met."`` or ``"... < 0.80: NOT met."``."""
    if not np.isfinite(value):
        return f"{what} is undefined (nan): target {_fmt(threshold, digits)} NOT met."
    ok = value >= threshold if higher_is_better else value <= threshold
    op = (">=" if ok else "<") if higher_is_better else ("<=" if ok else ">")
    return f"{what} {_fmt(value, digits)} {op} {_fmt(threshold, digits)}: {'met' if ok else 'NOT met'}."


def ceiling_verdict(value: float, ceiling: float, what: str = "AUC", chance: float = 0.5, digits: int = 3) -> str:
    """Place a score between chance and the world's Bayes-optimal ceiling (share of the gap closed)."""
    gap = ceiling - chance
    share = (value - chance) / gap if gap > 0 and np.isfinite(value) else np.nan
    return (f"{what} {_fmt(value, digits)} against chance {_fmt(chance, digits)} and the best achievable "
            f"{_fmt(ceiling, digits)}: {_fmt(100 * share, 0)}% of the possible gain.")


def degenerate_flags(predictions: pd.DataFrame, tasks: Sequence[Task] | Mapping[str, Task] | None = None, tol: float = 1e-6) -> list[str]:
    """Sentences naming every degenerate head in a Predictions table (empty list: none).

    Flags, per task over its labelled rows: one predicted class for every sample (classification),
    scores that do not vary (binary probabilities or a regression output with spread <= ``tol``).
    """
    from mtbench.predictions import task_arrays, tasks_from_attrs

    tasks = as_task_dict(tasks) if tasks is not None else tasks_from_attrs(predictions)
    flags = []
    for name, task in tasks.items():
        if task.kind == "segmentation":
            continue
        a = task_arrays(predictions, task)
        if len(a) == 0:
            flags.append(f"{name}: no labelled rows.")
            continue
        if task.kind in ("binary", "multiclass", "ordinal"):
            classes = np.unique(a.pred)
            if len(classes) == 1:
                flags.append(f"{name}: one-class predictions (every one of {len(a)} samples predicted {int(classes[0])}).")
            if a.prob is not None and np.ptp(a.prob, axis=0).max() <= tol:
                flags.append(f"{name}: constant scores (probabilities do not vary across {len(a)} samples).")
        elif np.ptp(np.asarray(a.pred, dtype=float), axis=0).max() <= tol:
            flags.append(f"{name}: constant regression output across {len(a)} samples.")
    return flags


def zero_map_flags(maps: np.ndarray, label: str = "saliency") -> list[str]:
    """A sentence when any map in ``maps [B, *spatial]`` is all zero (such maps must not be averaged)."""
    m = np.asarray(maps)
    zero = ~(m.reshape(len(m), -1) > 0).any(axis=1)
    if zero.any():
        return [f"{label}: {int(zero.sum())} of {len(m)} maps are all zero (samples {np.flatnonzero(zero)[:10].tolist()})."]
    return []


def flags_sentence(flags: Sequence[str]) -> str:
    """One paragraph: ``"No degenerate model."`` or ``"Warning: ..."`` listing every flag."""
    return "No degenerate model." if not flags else "Warning: " + " ".join(flags)
