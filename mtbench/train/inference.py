"""Inference: :func:`predict` and the pass over a loader that validation shares with it.

Validation inside :func:`~mtbench.train.fit` goes through the same :func:`run_inference`, so the
numbers used for model selection are computed exactly as the final ones. The result is the
Predictions table (see :mod:`mtbench.predictions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mtbench.mtl.loss import MultiTaskLoss
from mtbench.predictions import ID_COLUMN
from mtbench.segmentation import summarise_batch
from mtbench.tasks import Task, as_task_dict
from mtbench.train import distributed as ddp
from mtbench.train.device import autocast, resolve_amp, resolve_device


def to_device(batch: Mapping[str, Any], device: torch.device, channels_last: bool):
    x = batch["image"].to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if x.ndim == 4 else torch.channels_last_3d)
    targets = {k: v.to(device, non_blocking=True) for k, v in batch["targets"].items()}
    masks = {k: v.to(device, non_blocking=True) for k, v in batch["mask"].items()}
    return x, targets, masks


def meta_lists(meta: Mapping[str, Any]) -> dict[str, list]:
    out = {}
    for k, v in meta.items():
        out[k] = v.tolist() if torch.is_tensor(v) else list(v)
    return out


@torch.no_grad()
def run_inference(
    model: nn.Module,
    loader: DataLoader,
    tasks: dict[str, Task],
    device: torch.device,
    amp_dtype,
    loss: MultiTaskLoss | None,
    channels_last: bool,
    progress: bool,
    desc: str,
    mask_dir: str | Path | None = None,
):
    was_training = model.training
    model.eval()
    cols: dict[str, list] = {}
    chunks: dict[str, list] = {}
    loss_sums = {t: 0.0 for t in tasks}
    loss_counts = {t: 0 for t in tasks}
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
            x, targets, masks = to_device(batch, device, channels_last)
            with autocast(device, amp_dtype):
                outputs = model(x)
            meta = meta_lists(batch["meta"])
            for k, v in meta.items():
                cols.setdefault(k, []).extend(v)
            for name, task in tasks.items():
                out = outputs[name].float()
                m = masks.get(name, torch.ones(out.shape[0], dtype=torch.bool, device=device))
                if task.kind == "segmentation":  # per-sample summaries, not the maps (see mtbench.segmentation)
                    for c, v in summarise_batch(task, out, targets[name], m, meta, mask_dir).items():
                        chunks.setdefault(c, []).append(v)
                    continue
                y = targets[name].float().reshape(out.shape[0], -1)
                y = torch.where(m.reshape(-1, 1), y, torch.full_like(y, float("nan")))
                chunks.setdefault(f"{name}.__target", []).append(y.cpu().numpy())
                for key, arr in task.decode(out).items():
                    chunks.setdefault(f"{name}.__{key}", []).append(np.asarray(arr).reshape(out.shape[0], -1))
            if loss is not None:
                res = loss(outputs, targets, masks) if any(bool(m.any()) for m in masks.values()) else None
                if res is not None:
                    for t, v in res.per_task.items():
                        # per_task is a masked mean; undo it to pool exactly over the whole set
                        n = res.counts[t] if loss.reduction == "masked_mean" else x.shape[0]
                        loss_sums[t] += float(v) * n
                        loss_counts[t] += n
    finally:
        model.train(was_training)
    table = pd.DataFrame(cols)
    if ID_COLUMN in table.columns:
        table[ID_COLUMN] = table[ID_COLUMN].astype(str)
    for name, task in tasks.items():
        if task.kind == "segmentation":
            for c in task.target_columns() + task.output_columns():
                table[c] = np.concatenate(chunks[c])
            continue
        y = np.concatenate(chunks[f"{name}.__target"])
        for j, c in enumerate(task.target_columns()):
            table[c] = y[:, j]
        if task.prob_columns():
            prob = np.concatenate(chunks[f"{name}.__prob"])
            for j, c in enumerate(task.prob_columns()):
                table[c] = prob[:, j]
        pred = np.concatenate(chunks[f"{name}.__pred"])
        for j, c in enumerate(task.pred_columns()):
            table[c] = pred[:, j]
    table.attrs["tasks"] = [t.to_dict() for t in tasks.values()]
    if ddp.info().enabled:
        ids = loader.dataset.sample_ids() if hasattr(loader.dataset, "sample_ids") else None
        table = ddp.gather_predictions(table, ids)
        # Loss sums include the sampler's few padding repeats; metrics (from the table) do not.
        loss_sums = ddp.all_reduce_sum(loss_sums)
        loss_counts = ddp.all_reduce_sum({k: float(v) for k, v in loss_counts.items()})
    val_losses = {t: loss_sums[t] / loss_counts[t] for t in tasks if loss_counts[t] > 0}
    return table, val_losses


def predict(
    model: nn.Module,
    loader: DataLoader,
    tasks: Sequence[Task] | Mapping[str, Task],
    device: str | torch.device = "auto",
    amp: Any = "auto",
    channels_last: bool = False,
    progress: bool = False,
    mask_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Run ``model`` over ``loader`` and return the Predictions table (one row per sample).

    Targets of samples without a label for a task are NaN; the model's training mode is
    restored afterwards. Segmentation tasks get per-sample summary columns (volumes, Dice, IoU);
    with ``mask_dir`` their predicted masks are also written there (``<task>/<sample_id>.npz``).
    """
    tasks = as_task_dict(tasks)
    dev = ddp.device_for_rank(resolve_device(device))
    model.to(dev)
    table, _ = run_inference(model, loader, tasks, dev, resolve_amp(amp, dev), None, channels_last, progress, "predict", mask_dir)
    return table


