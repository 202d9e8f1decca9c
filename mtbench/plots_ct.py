"""Figures for CT volumes: three orthogonal planes and slice montages (each returns a Figure)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from mtbench.data.transforms import named_window


def _display(vol: np.ndarray, window) -> np.ndarray:
    return named_window(vol, window) if window is not None else vol


# ------------------------------------------------------------------ orientation
PLANES = ("axial", "coronal", "sagittal")
LETTERS = {"axial": ("A", "P", "R", "L"), "coronal": ("S", "I", "R", "L"), "sagittal": ("S", "I", "A", "P")}
"""(top, bottom, left, right) of each displayed plane: the radiological convention (patient's right
on the viewer's left; superior up; sagittal facing left)."""


def _finish(fig, title: str | None = None, fontsize: int = 10):
    """``fig`` with ``title`` as its suptitle (when given), laid out tightly."""
    if title:
        fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    return fig


def plane(volume: np.ndarray, name: str, index: int) -> np.ndarray:
    """The 2D ``name`` plane through ``index`` of a canonical ``[D, H, W]`` volume, ready for ``imshow``.

    Canonical volumes (every mtbench reader: ``(d, h, w)`` towards (S, P, L)) give :data:`LETTERS`:
    the axial plane is stored that way already; coronal and sagittal are flipped so superior is up.
    """
    if name == "axial":
        return volume[index]
    if name == "coronal":
        return volume[::-1, index, :]
    if name == "sagittal":
        return volume[::-1, :, index]
    raise ValueError(f"Unknown plane {name!r}; one of {PLANES}.")


def plane_aspect(name: str, spacing: Sequence[float]) -> float:
    """``imshow`` aspect (row spacing / column spacing) of a plane, from the voxel ``spacing`` ``(dz, dy, dx)``."""
    dz, dy, dx = (float(v) for v in spacing)
    return {"axial": dy / dx, "coronal": dz / dx, "sagittal": dz / dy}[name]


def orientation_letters(ax, name: str, color: str = "yellow", fontsize: int = 8) -> None:
    """Write the patient-direction letters of plane ``name`` on the four edges of ``ax``."""
    top, bottom, left, right = LETTERS[name]
    kw = dict(transform=ax.transAxes, color=color, fontsize=fontsize, fontweight="bold")
    ax.text(0.5, 0.98, top, ha="center", va="top", **kw)
    ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **kw)
    ax.text(0.02, 0.5, left, ha="left", va="center", **kw)
    ax.text(0.98, 0.5, right, ha="right", va="center", **kw)


def plot_three_planes(
    volume: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    window="brain",
    mask: np.ndarray | None = None,
    center: Sequence[int] | None = None,
    title: str | None = None,
    letters: bool = True,
):
    """Axial, coronal and sagittal slices through ``center`` (default: the mask's centre or the
    volume's), with the physical aspect ratio from ``spacing`` (dz, dy, dx), orientation letters
    (:data:`LETTERS`; the volume must be canonical, as every mtbench reader returns it) and an
    optional mask contour in red. ``volume`` is ``[D, H, W]`` in HU; ``window`` a preset name,
    ``"cobo"``, a ``(level, width)`` pair or ``None`` for raw values."""
    vol = np.asarray(volume, dtype=np.float32)
    if center is None:
        if mask is not None and mask.any():
            center = [int(round(c)) for c in np.argwhere(mask).mean(0)]
        else:
            center = [s // 2 for s in vol.shape]
    img = _display(vol, window)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    for ax, name, c in zip(axes, PLANES, center):
        ax.imshow(plane(img, name, c), cmap="gray", aspect=plane_aspect(name, spacing),
                  vmin=0 if window is not None else None, vmax=1 if window is not None else None)
        if mask is not None and plane(mask, name, c).any():
            ax.contour(plane(mask, name, c).astype(float), levels=[0.5], colors="r", linewidths=0.8)
        if letters:
            orientation_letters(ax, name)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    return _finish(fig, title)


def plot_montage(
    volume: np.ndarray,
    n: int = 12,
    window="brain",
    mask: np.ndarray | None = None,
    ncols: int = 6,
    title: str | None = None,
):
    """``n`` evenly spaced axial slices of a ``[D, H, W]`` volume (slice index in each title)."""
    vol = np.asarray(volume, dtype=np.float32)
    idx = np.unique(np.linspace(0, vol.shape[0] - 1, min(n, vol.shape[0])).round().astype(int))
    nrows = int(np.ceil(len(idx) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.8 * ncols, 1.9 * nrows), squeeze=False)
    img = _display(vol, window)
    for ax in axes.flat:
        ax.axis("off")
    for ax, k in zip(axes.flat, idx):
        ax.imshow(img[k], cmap="gray", vmin=0 if window is not None else None, vmax=1 if window is not None else None)
        if mask is not None and mask[k].any():
            ax.contour(mask[k].astype(float), levels=[0.5], colors="r", linewidths=0.6)
        ax.set_title(f"z={k}", fontsize=8)
    return _finish(fig, title)


def plot_windows(hu2d: np.ndarray, windows=("brain", "subdural", "bone", "cobo"), title: str | None = None):
    """One 2D HU slice under several windows, side by side."""
    fig, axes = plt.subplots(1, len(windows), figsize=(2.8 * len(windows), 3.0), squeeze=False)
    for ax, w in zip(axes[0], windows):
        ax.imshow(named_window(np.asarray(hu2d, np.float32), w), cmap="gray", vmin=0, vmax=1)
        ax.set_title(w if isinstance(w, str) else f"L{w[0]:g}/W{w[1]:g}", fontsize=9)
        ax.axis("off")
    return _finish(fig, title)


# ------------------------------------------------------------------ quantification
def plot_predicted_vs_true(
    predictions, true_col: str = "volume.target", pred_col: str = "volume.pred", unit: str = "mL", title: str | None = None
):
    """One scatter per model (``{name: Predictions table}``): predicted against true, with the
    identity line, MAE and Pearson r in each title."""
    preds = dict(predictions)
    fig, axes = plt.subplots(1, len(preds), figsize=(3.3 * len(preds), 3.3), squeeze=False)
    for ax, (name, p) in zip(axes[0], preds.items()):
        t, y = p[true_col].to_numpy(float), p[pred_col].to_numpy(float)
        ok = np.isfinite(t) & np.isfinite(y)
        t, y = t[ok], y[ok]
        hi = max(t.max(initial=1), y.max(initial=1)) * 1.05
        ax.plot([0, hi], [0, hi], color="0.6", lw=1, ls="--")
        ax.scatter(t, y, s=14, alpha=0.8)
        r = np.corrcoef(t, y)[0, 1] if len(t) > 2 and t.std() > 0 and y.std() > 0 else float("nan")
        ax.set_title(f"{name}\nMAE {np.mean(np.abs(y - t)):.1f} {unit}, r = {r:.2f}", fontsize=9)
        ax.set_xlabel(f"true ({unit})")
        ax.set_ylabel(f"predicted ({unit})")
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
    return _finish(fig, title)


def plot_bland_altman(
    predictions, true_col: str = "volume.target", pred_col: str = "volume.pred", unit: str = "mL", title: str | None = None
):
    """Bland-Altman plots (difference ``pred - true`` against the mean of the two), one per model,
    with the bias and the 95% limits of agreement (:func:`mtbench.stats.bland_altman`)."""
    from mtbench.stats import bland_altman

    preds = dict(predictions)
    fig, axes = plt.subplots(1, len(preds), figsize=(3.3 * len(preds), 3.1), squeeze=False, sharey=True)
    for ax, (name, p) in zip(axes[0], preds.items()):
        t, y = p[true_col].to_numpy(float), p[pred_col].to_numpy(float)
        ba = bland_altman(t, y)
        ax.scatter((t + y) / 2, y - t, s=14, alpha=0.8)
        for v, ls in ((ba.bias, "-"), (ba.loa_low, "--"), (ba.loa_high, "--")):
            ax.axhline(v, color="C3", ls=ls, lw=1)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_title(f"{name}\nbias {ba.bias:+.1f}, LoA [{ba.loa_low:.1f}, {ba.loa_high:.1f}] {unit}", fontsize=9)
        ax.set_xlabel(f"mean of true and predicted ({unit})")
    axes[0, 0].set_ylabel(f"predicted - true ({unit})")
    return _finish(fig, title)


def plot_segmentation_slices(
    volume: np.ndarray,
    true_mask: np.ndarray | None = None,
    pred_mask: np.ndarray | None = None,
    n: int = 8,
    window=None,
    title: str | None = None,
):
    """Axial slices through the lesion: true mask contour in green, predicted in red, with the
    patient-direction letters (:func:`orientation_letters`) on each slice.

    ``volume`` ``[D, H, W]`` (HU with a ``window`` name, or an already windowed input with
    ``window=None``); slices are chosen evenly over the extent of the union of both masks (the whole
    depth if both are empty).
    """
    vol = np.asarray(volume, dtype=np.float32)
    both = np.zeros(vol.shape, bool)
    for m in (true_mask, pred_mask):
        if m is not None:
            both |= np.asarray(m, bool)
    zs = np.flatnonzero(both.any(axis=(1, 2)))
    lo, hi = (zs.min(), zs.max()) if len(zs) else (0, vol.shape[0] - 1)
    idx = np.unique(np.linspace(lo, hi, min(n, hi - lo + 1)).round().astype(int))
    img = _display(vol, window)
    fig, axes = plt.subplots(1, len(idx), figsize=(1.8 * len(idx), 2.1), squeeze=False)
    for ax, k in zip(axes[0], idx):
        ax.imshow(img[k], cmap="gray")
        for m, colour in ((true_mask, "lime"), (pred_mask, "r")):
            if m is not None and np.asarray(m)[k].any():
                ax.contour(np.asarray(m)[k].astype(float), levels=[0.5], colors=colour, linewidths=0.8)
        orientation_letters(ax, "axial", fontsize=6)
        ax.set_title(f"z={k}", fontsize=8)
        ax.axis("off")
    return _finish(fig, title, fontsize=9)
