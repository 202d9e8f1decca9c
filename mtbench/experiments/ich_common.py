"""Shared plumbing of the ICH quantification and segmentation experiments (Gong 2023, Hirano 2021).

Not an experiment itself: :func:`load_ich_data` gives images, hematoma masks on the model's input
grid, per-patient hematoma volumes (mL, from the masks) and the input voxel spacing, from the
head-CT phantom (smoke) or from the user's CT volumes and masks (full); :func:`split_rows` makes a
patient-grouped train/val/test split; :func:`make_datasets` gives the datasets of one split;
:func:`freeze_encoder` a model whose encoder stays fixed (downstream arms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from mtbench.data.report import Manifest, Report
from mtbench.models.multitask import MultiTaskModel
from mtbench.tasks import Task


@dataclass
class ICHData:
    """``table`` (one row per patient, ``hematoma_ml`` from the masks, NaN where none); ``images``
    ``[N, C, D, H, W]`` or a loader; ``masks`` ``[N, D, H, W]`` bool on the input grid or a loader
    (``None`` where a patient has none); ``spacing`` (mm) of the input grid, ``None`` if it varies;
    ``report``: what the data-source adapter found (empty for the phantom)."""

    table: pd.DataFrame
    images: Any
    masks: Any
    spacing: tuple[float, float, float] | None
    source: str
    report: Report = field(default_factory=Report)


def _preprocess(cfg: Mapping[str, Any]):
    from mtbench.data.transforms import CTPreprocess

    d = cfg["data"]["preprocess"]
    return CTPreprocess(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


def load_ich_data(cfg: Mapping[str, Any]) -> ICHData:
    """Images, masks and volumes for ``cfg["data"]`` (``source``: ``"phantom"`` or ``"ich_ct"``).

    Phantom: ground-truth volumes are :func:`mtbench.volumes.mask_volume_ml` of the phantom's masks
    at their native spacing; masks are resized (nearest neighbour) to the model's input grid.
    ``ich_ct``: masks are NIfTI/DICOM files found with ``data.masks.pattern`` (e.g.
    ``"{patient_id}_mask.nii.gz"``) under ``data.masks.dir``; volumes use each mask file's own
    spacing. Patients without a mask keep their other labels (their volume/segmentation label is
    missing and masked out of the loss); their count is printed, never silently dropped.
    """
    from mtbench.data.transforms import resize_to_shape
    from mtbench.volumes import mask_volume_ml

    d = cfg["data"]
    pre = _preprocess(cfg)
    if d["source"] == "phantom":
        from mtbench.data.phantom import make_head_ct_phantom

        ph = make_head_ct_phantom(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d["phantom"].items()})
        table = ph.table.copy()
        table["hematoma_ml"] = mask_volume_ml(ph.hematoma_masks, ph.spacing)
        images = ph.images(pre)
        shape = tuple(images.shape[2:])
        if shape == tuple(ph.hematoma_masks.shape[1:]):
            masks, spacing = ph.hematoma_masks, tuple(ph.spacing)
        else:
            masks = np.stack([resize_to_shape(m.astype(np.float32), shape, order=0) > 0.5 for m in ph.hematoma_masks])
            spacing = tuple(float(s0 * n0 / n1) for s0, n0, n1 in zip(ph.spacing, ph.hematoma_masks.shape[1:], shape))
        return ICHData(table, images, masks, spacing, "phantom")
    if d["source"] == "ich_ct":
        from mtbench.data.cache import VolumeLoader
        from mtbench.data.io import read_volume
        from mtbench.data.sources.ich_ct import load_manifest, report_text

        if pre.skull_strip or pre.spacing is not None or pre.depth is not None or pre.shape is None:
            raise ValueError("With masks, data.preprocess must only resize to a fixed shape (skull_strip False, "
                             "spacing and depth None, shape set), so masks can be put on the same grid.")
        table, report = load_manifest(d.get("root"), clinical=d.get("clinical"))
        print(report_text(report))
        mcfg = d.get("masks") or {}
        if not mcfg.get("dir"):
            raise ValueError("The full profile needs your hematoma masks: set data.masks.dir (and data.masks.pattern).")
        mdir, pattern = Path(mcfg["dir"]), mcfg.get("pattern", "{patient_id}_mask.nii.gz")
        paths = [mdir / pattern.format(**row) for row in table.to_dict("records")]
        exists = np.array([p.is_file() for p in paths])
        print(f"hematoma masks: {exists.sum()} of {len(paths)} patients have one under {mdir} "
              f"({(~exists).sum()} without: their volume/segmentation label is missing).")
        shape = tuple(pre.shape)
        vols, voxel_ml = [], []
        for p, ok in zip(paths, exists):
            if ok:
                v = read_volume(p)
                vols.append(mask_volume_ml(v.array > 0.5, v.spacing))
                # voxel size on the model's input grid after resizing this patient's volume to `shape`
                grid = [s0 * n0 / n1 for s0, n0, n1 in zip(v.spacing, v.array.shape, shape)]
                voxel_ml.append(float(np.prod(grid)) / 1000.0)
            else:
                vols.append(np.nan)
                voxel_ml.append(np.nan)
        table = table.copy()
        table["hematoma_ml"] = vols
        table["voxel_ml"] = voxel_ml  # per-sample, read by the segmentation summaries (volumes in mL)
        table["mask_path"] = [str(p) if ok else "" for p, ok in zip(paths, exists)]

        def mask_loader(row):
            if not row["mask_path"]:
                return None
            return resize_to_shape((read_volume(row["mask_path"]).array > 0.5).astype(np.float32), shape, order=0) > 0.5

        return ICHData(table, VolumeLoader(pre, d.get("cache_dir")), mask_loader, None, "ich_ct", report)
    raise ValueError(f"Unknown data source {d['source']!r}; use 'phantom' or 'ich_ct'.")


def ich_manifest(prepared) -> Manifest:
    """What a run of an ICH experiment fingerprints: its prepared table with the adapter's report."""
    return Manifest(prepared.table, prepared.data.report)


def split_rows(table: pd.DataFrame, split_cfg: Mapping[str, Any], stratify_column: str) -> pd.Series:
    """``train``/``val``/``test`` per row: patient-grouped, stratified by ``stratify_column``."""
    from mtbench.data import train_val_test_split

    return train_val_test_split(table, val_fraction=split_cfg["val_fraction"], test_fraction=split_cfg["test_fraction"],
                                stratify_column=stratify_column, seed=split_cfg.get("seed", 0))


def subset(data: ICHData, rows: np.ndarray):
    """``(table, images, masks)`` restricted to ``rows`` (loaders pass through)."""
    table = data.table.iloc[rows].reset_index(drop=True)
    images = data.images[rows] if isinstance(data.images, np.ndarray) else data.images
    masks = data.masks[rows] if isinstance(data.masks, np.ndarray) else data.masks
    return table, images, masks


def make_datasets(data: ICHData, split: pd.Series, tasks: Sequence[Task], label_columns: Mapping[str, str] | None = None,
                  train_filter: Callable[[pd.DataFrame], np.ndarray] | None = None, train_transform=None):
    """``{split: MultiTaskDataset}`` for train/val/test; segmentation tasks get the masks;
    ``train_transform`` (e.g. :func:`train_augmentation`) augments the training split only."""
    from mtbench.data import MultiTaskDataset

    out = {}
    for s in ("train", "val", "test"):
        rows = np.flatnonzero((split == s).to_numpy())
        table, images, masks = subset(data, rows)
        seg = {t.name: masks for t in tasks if t.kind == "segmentation"}
        meta = ["patient_id"] + (["voxel_ml"] if seg and "voxel_ml" in table.columns else [])
        out[s] = MultiTaskDataset(table, tasks, images, label_columns=label_columns, meta_columns=meta, masks=seg or None,
                                  transform=train_transform if s == "train" else None)
    return out


def train_augmentation(flip_axes=None):
    """Random flips of image and masks along ``flip_axes`` (spatial axes, 0 = depth), or ``None``
    when no axes are given (the ``augment.flip_axes`` config key)."""
    from mtbench.data.transforms import RandFlipd

    return RandFlipd(spatial_axes=tuple(flip_axes), prob=0.5) if flip_axes else None




class FrozenEncoderModel(MultiTaskModel):
    """A :class:`MultiTaskModel` whose backbone stays in eval mode (fixed batch-norm statistics)
    whatever ``train()`` is called with; build it with :func:`freeze_encoder`."""

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()
        return self


def freeze_encoder(model: MultiTaskModel, new_heads: Mapping[str, Any] | None = None) -> FrozenEncoderModel:
    """A copy of ``model`` whose backbone is frozen (no gradients, batch-norm statistics fixed:
    it stays in eval mode while the heads train), with ``new_heads`` replacing some heads."""
    import copy

    backbone = copy.deepcopy(model.backbone)
    for p in backbone.parameters():
        p.requires_grad_(False)
    heads = {n: copy.deepcopy(h) for n, h in model.heads.items()}
    heads.update(dict(new_heads or {}))
    return FrozenEncoderModel(backbone, heads)
