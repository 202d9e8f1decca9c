"""Segmentation outputs: per-sample Dice, IoU and volumes for the Predictions table, masks on disk.

:func:`summarise_batch` is what :func:`mtbench.train.predict` calls for a segmentation task: it
turns a batch of logit maps and target masks into one row of summaries per sample (the table stays
one row per sample; the masks themselves go to ``mask_dir`` as ``<sample_id>.npz`` when asked).

Conventions: a voxel is foreground when ``sigmoid(logit) >= task.threshold``; Dice and IoU of a
sample whose predicted and true masks are both empty are 1 (perfect agreement on "no lesion"),
and NaN where the sample has no mask (label missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from mtbench.tasks import Task
from mtbench.volumes import voxel_volume_ml


def dice_score(pred, true) -> np.ndarray:
    """Per-sample Dice ``2|P∩T| / (|P| + |T|)`` of binary masks ``[B, ...]`` (1 where both are empty)."""
    p = np.asarray(pred).astype(bool).reshape(len(pred), -1)
    t = np.asarray(true).astype(bool).reshape(len(true), -1)
    inter = (p & t).sum(1)
    den = p.sum(1) + t.sum(1)
    return np.where(den > 0, 2 * inter / np.maximum(den, 1), 1.0).astype(float)


def iou_score(pred, true) -> np.ndarray:
    """Per-sample IoU (Jaccard) ``|P∩T| / |P∪T|`` of binary masks ``[B, ...]`` (1 where both are empty)."""
    p = np.asarray(pred).astype(bool).reshape(len(pred), -1)
    t = np.asarray(true).astype(bool).reshape(len(true), -1)
    inter = (p & t).sum(1)
    union = (p | t).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0).astype(float)


def _voxel_ml(task: Task, meta: Mapping[str, Sequence] | None, n: int) -> np.ndarray:
    if meta is not None and "voxel_ml" in meta:  # per sample (meta values arrive as strings; "" = unknown)
        return np.asarray([float(v) if str(v).strip() not in ("", "nan") else np.nan for v in meta["voxel_ml"]], dtype=float)
    return np.full(n, voxel_volume_ml(task.voxel_spacing))


def summarise_batch(
    task: Task,
    logits: torch.Tensor,
    target: torch.Tensor,
    present: torch.Tensor | None = None,
    meta: Mapping[str, Sequence] | None = None,
    mask_dir: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """Columns for one batch: ``{<task>.volume_true_ml, <task>.volume_pred_ml, <task>.dice, <task>.iou}``.

    ``logits`` ``[B, 1, *spatial]``; ``target`` the true masks (same shape, or without the channel);
    ``present`` ``[B]`` bool: samples without a mask get NaN in the target-dependent columns.
    With ``mask_dir`` each predicted mask (and probability map, float16) is saved as
    ``mask_dir/<sample_id>.npz`` (keys ``mask``, ``prob``); ``meta["sample_id"]`` names the files.
    """
    b = logits.shape[0]
    prob = torch.sigmoid(logits.detach().float()[:, 0]).cpu().numpy()
    pred = prob >= task.threshold
    true = target.detach().float().reshape(prob.shape).cpu().numpy() >= 0.5
    ok = np.ones(b, bool) if present is None else present.detach().reshape(-1).cpu().numpy().astype(bool)
    vox = _voxel_ml(task, meta, b)
    unknown = ok & ~(np.isfinite(vox) & (vox > 0))
    if unknown.any():  # a NaN volume would drop the sample from Dice/IoU later, without a word
        ids = [list(meta["sample_id"])[i] for i in np.flatnonzero(unknown)] if meta and "sample_id" in meta else np.flatnonzero(unknown).tolist()
        raise ValueError(f"Task {task.name!r}: samples {ids} have a mask but a blank or invalid voxel size "
                         "(meta voxel_ml); volumes in mL need it.")
    v_pred = pred.reshape(b, -1).sum(1) * vox
    v_true = np.where(ok, true.reshape(b, -1).sum(1) * vox, np.nan)
    dice = np.where(ok, dice_score(pred, true), np.nan)
    iou = np.where(ok, iou_score(pred, true), np.nan)
    if mask_dir is not None:
        ids = list(meta["sample_id"]) if meta is not None and "sample_id" in meta else None
        if ids is None:
            raise ValueError("Saving masks needs sample ids in the batch meta (meta['sample_id']).")
        save_masks(mask_dir, task, ids, pred, prob)
    n = task.name
    return {f"{n}.volume_true_ml": v_true, f"{n}.volume_pred_ml": v_pred, f"{n}.dice": dice, f"{n}.iou": iou}


def save_masks(mask_dir: str | Path, task: Task, sample_ids: Sequence[str], masks: np.ndarray, probs: np.ndarray | None = None) -> list[Path]:
    """Write ``mask_dir/<task>/<sample_id>.npz`` (``mask`` bool, ``prob`` float16, ``voxel_spacing``)."""
    folder = Path(mask_dir) / task.name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, sid in enumerate(sample_ids):
        path = folder / f"{sid}.npz"
        arrays = {"mask": np.asarray(masks[i], bool)}
        if probs is not None:
            arrays["prob"] = np.asarray(probs[i], np.float16)
        if task.voxel_spacing is not None:
            arrays["voxel_spacing"] = np.asarray(task.voxel_spacing, float)
        np.savez_compressed(path, **arrays)
        paths.append(path)
    return paths


def load_mask(mask_dir: str | Path, task: str | Task, sample_id: str) -> dict[str, np.ndarray]:
    """Read a mask written by :func:`save_masks` (``{"mask": ..., "prob": ...}``)."""
    name = task.name if isinstance(task, Task) else str(task)
    path = Path(mask_dir) / name / f"{sample_id}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"No saved mask for sample {sample_id!r} of task {name!r} at {path}.")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
