"""Tiny synthetic head volumes with a known lesion, to exercise the 3D saliency path.

Smaller and faster than the head-CT phantom (:mod:`mtbench.data.phantom`, the realistic 3D test
bed); any source of ``volumes [N, 1, D, H, W]`` plus ``lesion_mask [N, D, H, W]``, the phantom
included, plugs into :func:`~mtbench.explain.measured_check` the same way.

Generative model (per volume): an ellipsoidal "brain" (0.35) inside a bright "skull" shell (0.9),
central "ventricles" (0.12) whose size depends on an ``old`` flag, and with probability
``p_lesion`` a bright spherical "hematoma" (0.8) of radius ``r ~ U(r_min, r_max)`` voxels at a
random position inside the brain (drawn over the ventricles where they meet), plus Gaussian noise. Radii are fractions of ``size``. Labels:

* ``grade`` (ordinal, 3 classes): 0 no lesion, 1 ``r < r_split * size``, 2 otherwise;
* ``old`` (binary, the "age" head): large ventricles; independent of the lesion;
* ``prognosis`` (binary): ``Bernoulli(sigmoid(3 * [grade == 2] + 1.5 * [grade == 1] + old - 2))``;
* ``lesion_volume`` (regression): lesion voxels / 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage


@dataclass
class LesionVolumes:
    """``volumes float32 [N, 1, S, S, S]``, ``table`` (labels), ``lesion_mask``/``ventricle_mask`` ``bool [N, S, S, S]``."""

    volumes: np.ndarray
    table: pd.DataFrame
    lesion_mask: np.ndarray
    ventricle_mask: np.ndarray


def make_lesion_volumes(
    n: int = 64,
    size: int = 24,
    p_lesion: float = 0.7,
    r_min: float = 0.10,
    r_max: float = 0.20,
    r_split: float = 0.15,
    noise: float = 0.04,
    seed: int = 0,
) -> LesionVolumes:
    """Draw ``n`` synthetic head volumes of ``size``^3 voxels (see the module docstring).

    >>> d = make_lesion_volumes(n=4, size=16, seed=1)
    >>> d.volumes.shape, d.lesion_mask.shape
    ((4, 1, 16, 16, 16), (4, 16, 16, 16))
    """
    if size < 12:
        raise ValueError(f"size must be >= 12 voxels, got {size}.")
    rng = np.random.default_rng(seed)
    ax = (np.arange(size) + 0.5) / size - 0.5
    zz, yy, xx = np.meshgrid(ax, ax, ax, indexing="ij")
    rad = np.sqrt((zz / 0.42) ** 2 + (yy / 0.46) ** 2 + (xx / 0.40) ** 2)
    skull, brain = (rad <= 1.0) & (rad > 0.86), rad <= 0.86
    vols = np.empty((n, 1, size, size, size), dtype=np.float32)
    lesion = np.zeros((n, size, size, size), dtype=bool)
    vent = np.zeros((n, size, size, size), dtype=bool)
    rows = []
    brain_depth = ndimage.distance_transform_edt(brain)
    vox = np.stack([zz, yy, xx], axis=-1) * size  # voxel units, centred
    for i in range(n):
        old = int(rng.uniform() < 0.5)
        v = np.where(skull, 0.9, np.where(brain, 0.35, 0.0)).astype(np.float32)
        vs = (0.16 if old else 0.09) * rng.uniform(0.9, 1.1)
        vent[i] = ((zz / (vs * 1.3)) ** 2 + (yy / (vs * 1.8)) ** 2 + (xx / vs) ** 2 <= 1.0)
        v[vent[i]] = 0.12
        grade, r = 0, 0.0
        if rng.uniform() < p_lesion:
            r = float(rng.uniform(r_min, r_max)) * size
            # a centre whose sphere lies inside the brain (the deepest place, with the radius cut
            # to fit, if no place holds it whole); it may cover part of the ventricles
            room = brain_depth - 0.5
            if room.max() < r:
                r = float(room.max())
            cands = np.argwhere(room >= r)
            c = vox[tuple(cands[rng.integers(len(cands))])]
            lesion[i] = (((vox - c) ** 2).sum(-1) <= r**2) & brain
            vent[i] &= ~lesion[i]
            v[lesion[i]] = 0.8
            grade = 1 if r < r_split * size else 2
        v += rng.normal(0.0, noise, size=v.shape).astype(np.float32)
        vols[i, 0] = np.clip(v, 0, 1)
        logit = 3.0 * (grade == 2) + 1.5 * (grade == 1) + 1.0 * old - 2.0
        rows.append(
            {
                "sample_id": f"vol{seed}-{i:04d}",
                "patient_id": f"V{seed}-{i:04d}",
                "prognosis": int(rng.uniform() < 1 / (1 + np.exp(-logit))),
                "grade": grade,
                "old": old,
                "lesion_volume": float(lesion[i].sum()) / 100.0,
                "lesion_radius": r,
            }
        )
    return LesionVolumes(vols, pd.DataFrame(rows), lesion, vent)
