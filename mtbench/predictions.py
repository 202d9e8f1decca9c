"""The Predictions table: the contract between training and everything after it.

One row per sample. Columns:

* ``sample_id`` and any meta columns (``patient_id``, ``dataset``, ``center``, ``fold`` ...);
* per task ``t`` (see :meth:`mtbench.tasks.Task.target_columns` / ``output_columns``):

  - ``t.target`` (NaN where the sample has no label for ``t``; ``t.target.j`` for multi-target regression),
  - binary: ``t.prob`` (positive-class probability) and ``t.pred`` (0/1 at the task's threshold),
  - multiclass / ordinal: ``t.prob.k`` for each class ``k`` and ``t.pred`` (class index),
  - regression: ``t.pred`` (``t.pred.j`` for multi-target),
  - segmentation: ``t.volume_true_ml`` (the target), ``t.volume_pred_ml``, ``t.dice``, ``t.iou``.

Metrics, statistics, plots and reports read only this table, so they can be re-run on anyone's
saved predictions. ``df.attrs["tasks"]`` carries the task definitions; :func:`save_predictions`
writes them beside the CSV so :func:`load_predictions` restores them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mtbench.tasks import Task, as_task_dict

ID_COLUMN = "sample_id"


@dataclass
class TaskArrays:
    """A task's labelled rows as arrays: ``y`` targets, ``prob`` probabilities (classification), ``pred``,
    and ``extra`` per-sample scores (segmentation: ``{"dice": ..., "iou": ...}``)."""

    y: np.ndarray
    prob: np.ndarray | None
    pred: np.ndarray
    extra: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> "TaskArrays":
        extra = None if self.extra is None else {k: v[idx] for k, v in self.extra.items()}
        return TaskArrays(self.y[idx], None if self.prob is None else self.prob[idx], self.pred[idx], extra)


def validate_predictions(df: pd.DataFrame, tasks: Sequence[Task] | Mapping[str, Task]) -> None:
    """Raise a ``ValueError`` naming every missing column; refuse duplicated sample ids."""
    tasks = as_task_dict(tasks)
    missing = [] if ID_COLUMN in df.columns else [ID_COLUMN]
    for task in tasks.values():
        missing += [c for c in task.target_columns() + task.output_columns() if c not in df.columns]
    if missing:
        raise ValueError(f"Predictions table lacks columns {missing} (has {list(df.columns)}).")
    # One row per sample (per data set: a multi-dataset table may hold an image once per set, each
    # row labelled for its own set's tasks), and no task may see a sample twice.
    key = [c for c in ("dataset", ID_COLUMN) if c in df.columns]
    _refuse_duplicates(df, df.duplicated(key, keep=False), f"duplicated {' + '.join(key)}")
    for task in tasks.values():
        _check_task_duplicates(df, task)


def _refuse_duplicates(df: pd.DataFrame, dup: pd.Series, what: str) -> None:
    if dup.any():
        ids = pd.unique(df.loc[dup, ID_COLUMN].astype(str))
        raise ValueError(f"Predictions table has {int(dup.sum())} rows with {what} ({len(ids)} ids, e.g. "
                         f"{list(ids[:5])}): each would count more than once in the metrics.")


def _check_task_duplicates(df: pd.DataFrame, task: Task, labelled: np.ndarray | None = None) -> None:
    if ID_COLUMN not in df.columns:
        return
    if labelled is None:
        labelled = df[task.target_columns()].notna().all(axis=1).to_numpy()
    sub = df.loc[np.asarray(labelled, bool)]
    _refuse_duplicates(sub, sub[ID_COLUMN].astype(str).duplicated(keep=False),
                       f"a sample id labelled twice for task {task.name!r}")


def task_arrays(df: pd.DataFrame, task: Task) -> TaskArrays:
    """The rows of ``df`` that carry a label for ``task``, as arrays."""
    tcols = task.target_columns()
    for c in tcols + task.output_columns():
        if c not in df.columns:
            raise KeyError(f"Predictions table has no column {c!r} for task {task.name!r}.")
    y = df[tcols].to_numpy(dtype=float)
    keep = ~np.isnan(y).any(axis=1)
    if task.kind == "segmentation":
        keep = _segmentation_rows(df, task, keep)
    _check_task_duplicates(df, task, keep)
    y = y[keep]
    pred = df.loc[keep, task.pred_columns()].to_numpy(dtype=float)
    if task.kind == "segmentation":
        extra = {c.rsplit(".", 1)[1]: df.loc[keep, c].to_numpy(dtype=float) for c in task.summary_columns()}
        return TaskArrays(y[:, 0], None, pred[:, 0], extra)
    if task.kind == "regression":
        if task.num_targets == 1:
            y, pred = y[:, 0], pred[:, 0]
        return TaskArrays(y, None, pred)
    y = y[:, 0].astype(int)
    pred = pred[:, 0].astype(int)
    prob = df.loc[keep, task.prob_columns()].to_numpy(dtype=float)
    if task.kind == "binary":
        prob = prob[:, 0]
    return TaskArrays(y, prob, pred)


def _segmentation_rows(df: pd.DataFrame, task: Task, volume_known: np.ndarray) -> np.ndarray:
    """A sample has a mask where its Dice is known; refuse one whose true volume is then unknown
    (a blank ``voxel_ml``): dropping it would silently leave it out of Dice and IoU too."""
    has_mask = df[f"{task.name}.dice"].notna().to_numpy()
    lost = has_mask & ~volume_known
    if lost.any():
        ids = df.loc[lost, ID_COLUMN].astype(str).tolist() if ID_COLUMN in df.columns else np.flatnonzero(lost).tolist()
        raise ValueError(f"Task {task.name!r}: {int(lost.sum())} samples have a mask (Dice known) but no true volume "
                         f"({task.name}.volume_true_ml is NaN; unknown voxel size?), e.g. {ids[:5]}. "
                         "Give every masked sample a voxel size (meta voxel_ml or task.voxel_spacing).")
    return volume_known


def tasks_from_attrs(df: pd.DataFrame) -> dict[str, Task]:
    """Tasks stored in ``df.attrs["tasks"]`` by :func:`mtbench.train.predict` or :func:`load_predictions`."""
    raw = df.attrs.get("tasks")
    if not raw:
        raise ValueError("This Predictions table carries no task definitions; pass tasks= explicitly.")
    return as_task_dict([Task.from_dict(d) for d in raw])


def save_predictions(df: pd.DataFrame, path: str | Path, tasks: Sequence[Task] | Mapping[str, Task] | None = None) -> Path:
    """Write ``df`` as CSV and its tasks as ``<name>.tasks.json`` next to it."""
    path = Path(path)
    tasks = as_task_dict(tasks) if tasks is not None else tasks_from_attrs(df)
    validate_predictions(df, tasks)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    path.with_suffix(".tasks.json").write_text(json.dumps([t.to_dict() for t in tasks.values()], indent=2))
    return path


def load_predictions(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`save_predictions` (tasks restored into ``attrs``)."""
    path = Path(path)
    df = pd.read_csv(path, dtype={ID_COLUMN: str})
    sidecar = path.with_suffix(".tasks.json")
    if sidecar.is_file():
        df.attrs["tasks"] = json.loads(sidecar.read_text())
    return df
