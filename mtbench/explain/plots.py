"""Saliency figures: one row per task head; overlays for images, planes and montages for volumes.

Every function returns a matplotlib Figure. Maps normalised per image are shown on a fixed
``[0, 1]`` colour scale; the figure's caption says that they are not comparable across heads.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mtbench.explain.saliency import Saliency

PER_IMAGE_NOTE = "maps normalised per image and head: compare where, not how much, across heads"


def _gray(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 3 and img.shape[0] in (1, 3):  # [C, H, W]
        img = img.mean(axis=0)
    lo, hi = np.percentile(img, [1, 99])
    return np.clip((img - lo) / (hi - lo + 1e-8), 0, 1)


def _overlay(ax, img, sal, alpha, cmap, mask=None):
    ax.imshow(img, cmap="gray", vmin=0, vmax=1)
    ax.imshow(sal, cmap=cmap, vmin=0, vmax=1, alpha=alpha)
    if mask is not None and mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors="w", linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_saliency_2d(
    images: np.ndarray,
    saliency: Mapping[str, Saliency] | Saliency,
    samples: Sequence[int] | None = None,
    masks: np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    alpha: float = 0.45,
    cmap: str = "jet",
):
    """Input row, then one row per head: saliency overlaid on each sample (lesion mask contoured).

    ``images`` ``[B, C, H, W]``; ``saliency`` ``{head: Saliency}`` (from
    :func:`~mtbench.explain.explain_heads`) or a single :class:`Saliency`.
    """
    sal = {saliency.task: saliency} if isinstance(saliency, Saliency) else dict(saliency)
    images = np.asarray(images)
    idx = list(range(min(len(images), 6))) if samples is None else list(samples)
    nrows, ncols = 1 + len(sal), len(idx)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols + 0.6, 2.25 * nrows), squeeze=False)
    for j, i in enumerate(idx):
        img = _gray(images[i])
        ax = axes[0, j]
        ax.imshow(img, cmap="gray")
        if masks is not None and np.asarray(masks[i]).any():
            ax.contour(np.asarray(masks[i]).astype(float), levels=[0.5], colors="w", linewidths=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(titles[j] if titles is not None else f"sample {i}", fontsize=8)
        for r, (head, s) in enumerate(sal.items(), start=1):
            _overlay(axes[r, j], img, s.maps[i], alpha, cmap, None if masks is None else np.asarray(masks[i]))
            axes[r, j].set_title(s.targets[i], fontsize=7)
            if j == 0:
                axes[r, j].set_ylabel(f"{head}\n({s.method})", fontsize=8)
    axes[0, 0].set_ylabel("input", fontsize=8)
    fig.suptitle(PER_IMAGE_NOTE, fontsize=8)
    fig.tight_layout()
    return fig


def _center(sal: np.ndarray, mask: np.ndarray | None, index) -> tuple[int, int, int]:
    if index is not None:
        return tuple(int(v) for v in index)
    if mask is not None and mask.any():
        return tuple(int(round(v)) for v in np.argwhere(mask).mean(axis=0))
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(sal)), sal.shape))


def _planes(vol: np.ndarray, c) -> list[np.ndarray]:
    from mtbench.plots_ct import PLANES, plane  # one display orientation for every CT figure

    return [plane(vol, name, i) for name, i in zip(PLANES, c)]


PLANE_NAMES = ("axial (z)", "coronal (y)", "sagittal (x)")


def plot_volume_planes(
    volume: np.ndarray,
    saliency: Mapping[str, Saliency] | Saliency,
    sample: int = 0,
    mask: np.ndarray | None = None,
    index: Sequence[int] | None = None,
    alpha: float = 0.45,
    cmap: str = "jet",
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
):
    """Three orthogonal planes of one volume, one row per head, through ``index`` (``(z, y, x)``).

    ``volume`` ``[B, C, D, H, W]`` (or ``[D, H, W]`` for one sample); the planes pass through the
    lesion's centre when ``mask`` (``[D, H, W]`` of that sample) is given, else through each head's
    saliency maximum (then the planes differ between rows; the voxel is in the row title).
    Planes are displayed like :func:`mtbench.plots_ct.plot_three_planes` (canonical orientation,
    superior up, orientation letters) with the aspect from the voxel ``spacing`` ``(dz, dy, dx)``
    of the model input.
    """
    from mtbench.plots_ct import PLANES, orientation_letters, plane_aspect

    sal = {saliency.task: saliency} if isinstance(saliency, Saliency) else dict(saliency)
    vol = np.asarray(volume)
    vol = vol[sample, 0] if vol.ndim == 5 else vol
    vol = _gray(vol)
    mask = None if mask is None else np.asarray(mask).astype(bool)
    fig, axes = plt.subplots(1 + len(sal), 3, figsize=(7.4, 2.4 * (1 + len(sal))), squeeze=False)
    c0 = _center(vol, mask, index) if (index is not None or mask is not None) else tuple(s // 2 for s in vol.shape)
    for k, pl in enumerate(_planes(vol, c0)):
        axes[0, k].imshow(pl, cmap="gray", vmin=0, vmax=1)
        orientation_letters(axes[0, k], PLANES[k])
        if mask is not None:
            mk = _planes(mask, c0)[k]
            if mk.any():
                axes[0, k].contour(mk.astype(float), levels=[0.5], colors="w", linewidths=0.8)
        axes[0, k].set_title(f"{PLANE_NAMES[k]} {c0[k]}", fontsize=8)
        axes[0, k].set_xticks([])
        axes[0, k].set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=8)
    for r, (head, s) in enumerate(sal.items(), start=1):
        m = s.maps[sample]
        c = _center(m, mask, index)
        for k in range(3):
            _overlay(axes[r, k], _planes(vol, c)[k], _planes(m, c)[k], alpha, cmap, None if mask is None else _planes(mask, c)[k])
            orientation_letters(axes[r, k], PLANES[k])
        axes[r, 0].set_ylabel(f"{head}\n({s.method})", fontsize=8)
        axes[r, 1].set_title(f"{s.targets[sample]} at (z, y, x) = {c}", fontsize=7)
    for k, name in enumerate(PLANES):  # imshow's aspect: row spacing / column spacing, in mm
        for ax in axes[:, k]:
            ax.set_aspect(plane_aspect(name, spacing))
    fig.suptitle(PER_IMAGE_NOTE, fontsize=8)
    fig.tight_layout()
    return fig


def plot_slice_montage(
    volume: np.ndarray,
    saliency: Mapping[str, Saliency] | Saliency,
    sample: int = 0,
    n_slices: int = 8,
    axis: int = 0,
    mask: np.ndarray | None = None,
    alpha: float = 0.45,
    cmap: str = "jet",
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
):
    """Evenly spaced slices along ``axis`` (0 = axial, 1 = coronal, 2 = sagittal) of one volume, one row per head.

    Slices are displayed like :func:`plot_volume_planes` (canonical orientation, orientation letters,
    aspect from the voxel ``spacing`` ``(dz, dy, dx)``).
    """
    from mtbench.plots_ct import PLANES, orientation_letters, plane, plane_aspect

    sal = {saliency.task: saliency} if isinstance(saliency, Saliency) else dict(saliency)
    vol = np.asarray(volume)
    vol = _gray(vol[sample, 0] if vol.ndim == 5 else vol)
    depth = vol.shape[axis]
    sl = np.unique(np.linspace(0, depth - 1, n_slices + 2).round().astype(int)[1:-1])
    take = lambda a, i: plane(a, PLANES[axis], i)  # noqa: E731
    fig, axes = plt.subplots(1 + len(sal), len(sl), figsize=(1.6 * len(sl) + 0.6, 1.75 * (1 + len(sal))), squeeze=False)
    for j, i in enumerate(sl):
        axes[0, j].imshow(take(vol, i), cmap="gray", vmin=0, vmax=1)
        if mask is not None and take(mask, i).any():
            axes[0, j].contour(take(mask, i).astype(float), levels=[0.5], colors="w", linewidths=0.8)
        axes[0, j].set_title(f"slice {i}", fontsize=7)
        axes[0, j].set_xticks([])
        axes[0, j].set_yticks([])
        for r, (head, s) in enumerate(sal.items(), start=1):
            _overlay(axes[r, j], take(vol, i), take(s.maps[sample], i), alpha, cmap, None if mask is None else take(mask, i))
            if j == 0:
                axes[r, j].set_ylabel(head, fontsize=8)
        for ax in axes[:, j]:
            orientation_letters(ax, PLANES[axis], fontsize=6)
            ax.set_aspect(plane_aspect(PLANES[axis], spacing))
    axes[0, 0].set_ylabel("input", fontsize=8)
    fig.suptitle(PER_IMAGE_NOTE, fontsize=8)
    fig.tight_layout()
    return fig


def plot_randomization(results, sample: int = 0, image: np.ndarray | None = None, max_steps: int = 8):
    """Left: mean rank correlation vs randomised layer (one line per result). Right: the maps of one sample.

    ``results`` one :class:`~mtbench.explain.checks.RandomizationResult` or ``{label: result}``.
    For volumes the map strip shows the middle axial slice.
    """
    res = {results.method: results} if hasattr(results, "table") else dict(results)
    first = next(iter(res.values()))
    steps = sorted(first.maps)
    show = steps if len(steps) <= max_steps else [steps[k] for k in np.linspace(0, len(steps) - 1, max_steps).round().astype(int)]
    fig = plt.figure(figsize=(4.2 + 1.5 * len(show), 3.4 * 1 + 1.6 * (len(res) - 1)))
    gs = fig.add_gridspec(len(res), 1 + len(show), width_ratios=[2.6] + [1] * len(show))
    ax = fig.add_subplot(gs[:, 0])
    for k, (label, r) in enumerate(res.items()):
        summ = r.summary()
        ax.errorbar(summ["step"], summ["mean"], yerr=summ["std"].fillna(0), marker="o", ms=3, capsize=2, label=label, color=f"C{k}")
    ax.set_xticks(first.summary()["step"], first.summary()["layer"], rotation=90, fontsize=6)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylim(-0.5, 1.05)
    ax.set_ylabel("Spearman rank correlation\nwith the trained model's map")
    ax.set_title(f"{first.mode} randomisation, head {first.task!r}", fontsize=9)
    ax.legend(fontsize=7)
    for row, (label, r) in enumerate(res.items()):
        for j, st in enumerate(show):
            a = fig.add_subplot(gs[row, 1 + j])
            m = r.maps[st][sample]
            if m.ndim == 3:
                m = m[m.shape[0] // 2]
            if image is not None:
                img = np.asarray(image)
                img = img[img.shape[0] // 2] if img.ndim == 3 else img
                a.imshow(_gray(img), cmap="gray")
                a.imshow(m, cmap="jet", vmin=0, vmax=1, alpha=0.5)
            else:
                a.imshow(m, cmap="jet", vmin=0, vmax=1)
            a.set_xticks([])
            a.set_yticks([])
            layer = "trained" if st == 0 else r.layers[st - 1]
            a.set_title(layer if len(layer) < 18 else "…" + layer[-16:], fontsize=6)
            if j == 0:
                a.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig


def plot_localization(scores: pd.DataFrame, by: str = "model", hue: str | None = "method"):
    """Fraction of saliency inside the lesion (box plots) and pointing-game hit rate (bars), chance dashed."""
    from mtbench.explain.checks import summarize_localization

    keys = [by] + ([hue] if hue and hue in scores.columns else [])
    les = scores[scores["has_lesion"]]
    groups = list(les.groupby(keys, sort=False))
    summ = summarize_localization(scores, keys)
    labels = [" / ".join(map(str, k if isinstance(k, tuple) else (k,))) for k, _ in groups]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(4.0 + 1.2 * len(groups), 3.6))
    a1.boxplot([g["mass_inside"].dropna() for _, g in groups], showmeans=True)
    a1.set_xticks(range(1, len(groups) + 1), labels, rotation=30, fontsize=7)
    a1.axhline(les["mask_fraction"].mean(), ls="--", color="gray", label="chance (mask share)")
    a1.set_ylabel("fraction of saliency inside the lesion", fontsize=8)
    a1.legend(fontsize=7)
    err = np.vstack([summ["hit_rate"] - summ["hit_ci_low"], summ["hit_ci_high"] - summ["hit_rate"]])
    a2.bar(range(len(summ)), summ["hit_rate"], yerr=np.clip(err, 0, None), capsize=3, color=[f"C{k}" for k in range(len(summ))])
    a2.axhline(les["mask_fraction"].mean(), ls="--", color="gray")
    a2.set_xticks(range(len(summ)), labels, rotation=30, fontsize=7)
    a2.set_ylim(0, 1)
    a2.set_ylabel("pointing-game hit rate\n(95% Wilson CI)", fontsize=8)
    fig.tight_layout()
    return fig
