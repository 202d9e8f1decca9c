"""Several data sets, each labelled for its own task(s), served as one.

Ruffini et al. (2024) train one network on AIforCOVID (prognosis labels only) and BrixIA (severity
labels only). :class:`MultiDatasetConcat` concatenates :class:`~mtbench.data.MultiTaskDataset`
objects: every sample carries targets for the *union* of the tasks, with ``mask[task]`` false for
the tasks its data set does not label (a placeholder target then), and ``meta["dataset"]`` naming
its source. The masked :class:`~mtbench.mtl.MultiTaskLoss` then trains each head only on the
samples that carry its label (the paper's indicator function).

:func:`batch_dataset_ratio` reports how many samples of each data set every batch of a loader
holds, without reading any image (it replays the loader's batch sampler).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from mtbench.data.datasets import MultiTaskDataset
from mtbench.tasks import Task


def placeholder_target(task: Task) -> torch.Tensor:
    """The target a sample gets for a task it has no label for (never used by the masked loss)."""
    if task.kind in ("binary", "multiclass", "ordinal"):
        return torch.tensor(0, dtype=torch.long)
    if task.kind == "regression" and task.num_targets == 1:
        return torch.tensor(0.0)
    if task.kind == "regression":
        return torch.zeros(task.num_targets)
    raise NotImplementedError(f"No placeholder target for {task.kind} task {task.name!r}.")


class MultiDatasetConcat(Dataset):
    """Concatenation of named :class:`MultiTaskDataset` objects with per-sample task masks.

    Parameters
    ----------
    datasets:
        ``{name: dataset}``, in the order samples are indexed. A task served by two data sets
        must be defined identically in both.
    """

    def __init__(self, datasets: Mapping[str, MultiTaskDataset]):
        if not datasets:
            raise ValueError("MultiDatasetConcat needs at least one data set.")
        self.datasets = dict(datasets)
        self.names = list(self.datasets)
        self.tasks: dict[str, Task] = {}
        for dname, ds in self.datasets.items():
            for tname, task in ds.tasks.items():
                if tname in self.tasks and self.tasks[tname] != task:
                    raise ValueError(f"Task {tname!r} is defined differently in data set {dname!r}: {task} vs {self.tasks[tname]}.")
                self.tasks.setdefault(tname, task)
        self._placeholders = {t: placeholder_target(task) for t, task in self.tasks.items()}
        self.meta_columns = []
        for ds in self.datasets.values():
            self.meta_columns += [c for c in ds.meta_columns if c not in self.meta_columns and c != "dataset"]
        self._offsets = np.cumsum([0] + [len(d) for d in self.datasets.values()]).tolist()

    def __len__(self) -> int:
        return self._offsets[-1]

    def locate(self, i: int) -> tuple[str, int]:
        """``(data set name, index within it)`` of global index ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        k = bisect_right(self._offsets, i) - 1
        return self.names[k], i - self._offsets[k]

    @property
    def dataset_index(self) -> np.ndarray:
        """Data set name of every sample, in index order."""
        return np.concatenate([np.full(len(d), n, dtype=object) for n, d in self.datasets.items()])

    def __getitem__(self, i: int) -> dict[str, Any]:
        name, j = self.locate(int(i))
        sample = self.datasets[name][j]
        targets, mask = {}, {}
        for t in self.tasks:
            if t in sample["targets"]:
                targets[t], mask[t] = sample["targets"][t], sample["mask"][t]
            else:
                targets[t], mask[t] = self._placeholders[t].clone(), torch.tensor(False)
        meta = {"sample_id": sample["meta"]["sample_id"], "dataset": name}
        for c in self.meta_columns:
            meta[c] = sample["meta"].get(c, "")
        return {"image": sample["image"], "targets": targets, "mask": mask, "meta": meta}

    def label_counts(self) -> pd.DataFrame:
        """Labelled samples per data set and task."""
        parts = [ds.label_counts().assign(dataset=n) for n, ds in self.datasets.items()]
        return pd.concat(parts, ignore_index=True)[["dataset", "task", "kind", "labelled", "missing", *(
            ["positives"] if any("positives" in p for p in parts) else [])]]


def batch_dataset_ratio(loader: DataLoader) -> pd.DataFrame:
    """Samples of each data set in every batch of ``loader`` (one row per batch, plus ``fraction.*``).

    Replays the loader's batch sampler (so, for a shuffling loader, the order of its *next* epoch
    when its generator is re-seeded the same way); no image is read.
    """
    ds = loader.dataset
    if not isinstance(ds, MultiDatasetConcat):
        raise TypeError("batch_dataset_ratio needs a loader over a MultiDatasetConcat.")
    names = ds.dataset_index
    rows = []
    for b, idx in enumerate(loader.batch_sampler):
        counts = pd.Series(names[np.asarray(idx)]).value_counts()
        row = {"batch": b, "size": len(idx), **{n: int(counts.get(n, 0)) for n in ds.names}}
        rows.append(row)
    out = pd.DataFrame(rows)
    for n in ds.names:
        out[f"fraction.{n}"] = out[n] / out["size"]
    return out


def summarise_ratio(ratios: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max share of each data set per batch, from :func:`batch_dataset_ratio`."""
    cols = [c for c in ratios.columns if c.startswith("fraction.")]
    s = ratios[cols].agg(["mean", "min", "max"]).T
    s.index = [c.split(".", 1)[1] for c in s.index]
    return s.rename_axis("dataset")
