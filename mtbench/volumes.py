"""Volumes from masks: voxel counts times the voxel size, in millilitres (1 mL = 1000 mm^3)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def voxel_volume_ml(spacing: Sequence[float] | None) -> float:
    """Volume of one voxel in mL from its size in mm (``None``: 1 mm isotropic, 0.001 mL).

    >>> voxel_volume_ml((5.0, 0.5, 0.5))  # a 5 mm slice of 0.5 mm pixels
    0.00125
    """
    if spacing is None:
        return 1e-3
    sp = np.asarray(spacing, dtype=float)
    if sp.ndim != 1 or sp.size == 0 or (sp <= 0).any() or not np.isfinite(sp).all():
        raise ValueError(f"spacing must be positive voxel sizes in mm, e.g. (dz, dy, dx); got {spacing!r}.")
    return float(np.prod(sp) / 1000.0)


def mask_volume_ml(mask, spacing: Sequence[float] | None = None, threshold: float = 0.5) -> float | np.ndarray:
    """Volume of a binary mask in mL.

    ``mask`` is ``[D, H, W]`` (or ``[H, W]`` with a 2-entry spacing) or a batch ``[B, ...]`` whose
    trailing dimensions match ``spacing`` (then an array of ``B`` volumes is returned). Values
    above ``threshold`` count as foreground (so a probability map can be passed). ``spacing`` is the
    voxel size in mm along the mask's axes, e.g. ``(dz, dy, dx)`` from
    :attr:`mtbench.data.io.Volume.spacing`; anisotropic voxels are the rule in CT.

    >>> m = np.zeros((10, 10, 10), bool); m[:2, :5, :5] = True  # 50 voxels
    >>> mask_volume_ml(m, spacing=(5.0, 0.5, 0.5))  # 50 * 1.25 mm^3
    0.0625
    """
    arr = np.asarray(mask)
    fg = arr > threshold if arr.dtype != bool else arr
    vox = voxel_volume_ml(spacing)
    nd = len(spacing) if spacing is not None else fg.ndim
    if fg.ndim < nd:
        raise ValueError(f"A mask of shape {fg.shape} has fewer axes than spacing {tuple(spacing)}.")
    counts = fg.reshape(fg.shape[: fg.ndim - nd] + (-1,)).sum(axis=-1)
    out = counts * vox
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=float)
