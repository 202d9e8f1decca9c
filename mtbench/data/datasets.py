"""The Dataset contract: one row of a label table -> one training sample.

A sample is a dict::

    {
        "image":   FloatTensor [C, H, W] or [C, D, H, W],
        "targets": {task: tensor},        # placeholder 0 where the label is missing
                                          # (segmentation: a float mask [1, *spatial])
        "mask":    {task: bool tensor},   # is the label present?
        "meta":    {"sample_id": str, <meta columns>...},
    }

so PyTorch's default collate turns a list of samples into a batch of the same shape.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from mtbench.tasks import Task, as_task_dict


def _check_labels(table: pd.DataFrame, task: Task, columns: list[str]) -> None:
    """Refuse label values a task cannot take, naming the column and the first bad rows."""
    for col in columns:
        if col not in table.columns:
            raise KeyError(
                f"Task {task.name!r}: label column {col!r} is not in the table (columns: {list(table.columns)})."
            )
        values = pd.to_numeric(table[col], errors="coerce")
        non_numeric = table[col].notna() & values.isna()
        if non_numeric.any():
            rows = list(table.index[non_numeric][:5])
            raise ValueError(
                f"Task {task.name!r}: column {col!r} has non-numeric labels at rows {rows} "
                f"(e.g. {table.loc[rows[0], col]!r})."
            )
        present = values.dropna()
        if task.kind in ("binary", "multiclass", "ordinal"):
            allowed = set(range(int(task.num_classes)))
            bad = ~present.isin(allowed)
            if bad.any():
                rows = list(present.index[bad][:5])
                raise ValueError(
                    f"Task {task.name!r} ({task.kind}, classes {sorted(allowed)}): column {col!r} has "
                    f"values {sorted(set(present[bad].tolist()))[:5]} at rows {rows}."
                )
        elif not np.isfinite(present.to_numpy(dtype=float)).all():
            rows = list(present.index[~np.isfinite(present.to_numpy(dtype=float))][:5])
            raise ValueError(f"Task {task.name!r}: column {col!r} has infinite values at rows {rows}.")


def _check_masks(tasks: Mapping[str, Task], masks: dict, n: int) -> dict:
    """Every segmentation task has masks; arrays have one per row; no masks for other tasks."""
    for name in masks:
        if name not in tasks or tasks[name].kind != "segmentation":
            raise ValueError(f"masks given for {name!r}, which is not a segmentation task of this dataset "
                             f"(segmentation tasks: {[t for t, v in tasks.items() if v.kind == 'segmentation']}).")
    out = {}
    for name, task in tasks.items():
        if task.kind != "segmentation":
            continue
        if name not in masks:
            raise ValueError(f"Segmentation task {name!r} needs its masks: pass masks={{{name!r}: array or loader}}.")
        m = masks[name]
        if not callable(m):
            m = np.asarray(m)
            if m.shape[0] != n:
                raise ValueError(f"Task {name!r}: {m.shape[0]} masks for {n} table rows.")
        out[name] = m
    return out


class MultiTaskDataset(Dataset):
    """Samples from a label table and an image source.

    Parameters
    ----------
    table:
        One row per image. Must hold ``id_column`` (unique) and the label column(s) of each task;
        NaN means "no label for this task" (the sample then trains the other tasks only).
    tasks:
        The tasks to serve.
    images:
        Either an array ``[N, C, ...]`` aligned with the table's rows, or a callable
        ``loader(row) -> array [C, ...]`` (e.g. reading a DICOM file named in the row).
    label_columns:
        ``{task: column or [columns]}``; by default the column named like the task.
    meta_columns:
        Columns passed through to ``sample["meta"]`` and on to the Predictions table.
    transform:
        Optional. A :class:`~mtbench.data.transforms.DictTransform` (``RandFlipd``, ``RandRot90d``,
        ``ComposeDict``, ...) receives ``{"image", "mask": {task: mask}}`` and moves the image and
        every segmentation mask together (masks are then given on the image's grid). A plain
        callable is applied to the image tensor only, so with a segmentation task it must not move
        voxels (intensity transforms only).
    masks:
        Targets of ``segmentation`` tasks: ``{task: masks}`` where ``masks`` is an array
        ``[N, *spatial]`` or ``[N, 1, *spatial]`` aligned with the table's rows (every sample
        labelled), or a callable ``loader(row) -> array [*spatial] | None`` (``None``: no mask for
        that sample; it then trains the other tasks only). Segmentation tasks need no label column.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        tasks: Sequence[Task] | Mapping[str, Task],
        images: np.ndarray | Callable[[pd.Series], np.ndarray],
        label_columns: Mapping[str, str | Sequence[str]] | None = None,
        id_column: str = "sample_id",
        meta_columns: Sequence[str] = ("patient_id",),
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        masks: Mapping[str, np.ndarray | Callable[[pd.Series], np.ndarray | None]] | None = None,
    ):
        self.tasks = as_task_dict(tasks)
        self.table = table.reset_index(drop=True)
        if id_column not in self.table.columns:
            raise KeyError(f"The table has no id column {id_column!r} (columns: {list(self.table.columns)}).")
        dup = self.table[id_column].duplicated(keep=False)
        if dup.any():
            raise ValueError(
                f"Duplicated ids in column {id_column!r}: {sorted(set(self.table.loc[dup, id_column]))[:5]}."
            )
        self.id_column = id_column
        missing_meta = [c for c in meta_columns if c not in self.table.columns]
        if missing_meta:
            raise KeyError(f"Meta columns {missing_meta} are not in the table (columns: {list(self.table.columns)}).")
        self.meta_columns = [c for c in meta_columns if c != id_column]
        label_columns = dict(label_columns or {})
        self.label_columns: dict[str, list[str]] = {}
        self._masks = _check_masks(self.tasks, dict(masks or {}), len(self.table))
        for name, task in self.tasks.items():
            if task.kind == "segmentation":
                continue
            cols = label_columns.get(name, name)
            cols = [cols] if isinstance(cols, str) else list(cols)
            if task.kind == "regression" and len(cols) != task.num_targets:
                raise ValueError(f"Task {name!r} has {task.num_targets} targets but {len(cols)} label columns {cols}.")
            _check_labels(self.table, task, cols)
            self.label_columns[name] = cols
        # Labels as dense arrays once, so __getitem__ does no pandas work.
        self._targets = {
            n: self.table[c].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)
            for n, c in self.label_columns.items()
        }
        self._present = {n: ~np.isnan(v).any(axis=1) for n, v in self._targets.items()}
        for n in self._masks:  # a loader's missing masks (None) are only known when read
            self._present[n] = np.ones(len(self.table), bool)
        if callable(images):
            self._array, self._loader = None, images
        else:
            arr = np.asarray(images)
            if arr.shape[0] != len(self.table):
                raise ValueError(f"{arr.shape[0]} images for {len(self.table)} table rows.")
            if arr.ndim not in (4, 5):
                raise ValueError(f"images must be [N, C, H, W] or [N, C, D, H, W], got shape {arr.shape}.")
            self._array, self._loader = arr, None
        self.transform = transform

    def __len__(self) -> int:
        return len(self.table)

    def sample_ids(self) -> list[str]:
        """Sample ids in dataset order (used to restore order after gathering shards)."""
        return self.table[self.id_column].astype(str).tolist()

    def label_counts(self) -> pd.DataFrame:
        """Labelled samples per task (and, for binary tasks, positives)."""
        rows = []
        for name, task in self.tasks.items():
            present = self._present[name]
            row = {"task": name, "kind": task.kind, "labelled": int(present.sum()), "missing": int((~present).sum())}
            if task.kind == "binary":
                row["positives"] = int(np.nansum(self._targets[name][present, 0]))
            rows.append(row)
        return pd.DataFrame(rows)

    def _image(self, i: int) -> torch.Tensor:
        if self._array is not None:
            img = self._array[i]
        else:
            row = self.table.iloc[i]
            img = self._loader(row)
            if img is None:
                raise ValueError(f"The image loader returned None for {self.table.loc[i, self.id_column]!r}.")
        return torch.as_tensor(np.ascontiguousarray(img), dtype=torch.float32)

    def _mask(self, name: str, i: int, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        src = self._masks[name]
        spatial = tuple(image.shape[1:])
        m = src(self.table.iloc[i]) if callable(src) else src[i]
        if m is None:
            return torch.zeros((1, *spatial), dtype=torch.float32), torch.tensor(False)
        m = np.asarray(m)
        if m.ndim == len(spatial) + 1 and m.shape[0] == 1:
            m = m[0]
        if tuple(m.shape) != spatial:
            raise ValueError(f"Task {name!r}: the mask of {self.table.at[i, self.id_column]!r} has shape {m.shape}, "
                             f"the image {spatial} (after the transform); masks must be on the model's input grid.")
        return torch.as_tensor((m > 0.5) if m.dtype != bool else m, dtype=torch.float32).unsqueeze(0), torch.tensor(True)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from mtbench.data.transforms import DictTransform

        image = self._image(i)
        targets, mask = {}, {}
        if isinstance(self.transform, DictTransform):  # masks (on the image's grid) follow the transform
            for name in self._masks:
                targets[name], mask[name] = self._mask(name, i, image)
            moved = self.transform({"image": image, "mask": {n: targets[n] for n in self._masks}})
            image = moved["image"]
            targets.update(moved["mask"])
        elif self.transform is not None:
            image = self.transform(image)
        for name, task in self.tasks.items():
            if task.kind == "segmentation":
                if name not in targets:
                    targets[name], mask[name] = self._mask(name, i, image)
                continue
            present = bool(self._present[name][i])
            value = np.nan_to_num(self._targets[name][i], nan=0.0)
            if task.kind in ("binary", "multiclass", "ordinal"):
                targets[name] = torch.tensor(int(value[0]), dtype=torch.long)
            elif task.kind == "regression" and task.num_targets == 1:
                targets[name] = torch.tensor(float(value[0]), dtype=torch.float32)
            else:
                targets[name] = torch.as_tensor(value, dtype=torch.float32)
            mask[name] = torch.tensor(present)
        meta = {"sample_id": str(self.table.at[i, self.id_column])}
        for c in self.meta_columns:
            v = self.table.at[i, c]
            meta[c] = "" if pd.isna(v) else str(v)
        return {"image": image, "targets": targets, "mask": mask, "meta": meta}
