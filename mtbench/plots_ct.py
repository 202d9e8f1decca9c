"""Figures for CT volumes: three orthogonal planes and slice montages (each returns a Figure)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from mtbench.data.transforms import named_window


def _display(vol: np.ndarray, window) -> np.ndarray:
    return named_window(vol, window) if window is not None else vol


def plot_three_planes(
    volume: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    window="brain",
    mask: np.ndarray | None = None,
    center: Sequence[int] | None = None,
    title: str | None = None,
):
    """Axial, coronal and sagittal slices through ``center`` (default: the mask's centre or the
    volume's), with the physical aspect ratio from ``spacing`` (dz, dy, dx) and an optional mask
    contour in red. ``volume`` is ``[D, H, W]`` in HU; ``window`` a preset name, ``"cobo"``,
    a ``(level, width)`` pair or ``None`` for raw values."""
    vol = np.asarray(volume, dtype=np.float32)
    if center is None:
        if mask is not None and mask.any():
            center = [int(round(c)) for c in np.argwhere(mask).mean(0)]
        else:
            center = [s // 2 for s in vol.shape]
    d, h, w = center
    dz, dy, dx = spacing
    img = _display(vol, window)
    views = [
        ("axial", img[d], None if mask is None else mask[d], dy / dx),
        ("coronal", img[::-1, h, :], None if mask is None else mask[::-1, h, :], dz / dx),
        ("sagittal", img[::-1, :, w], None if mask is None else mask[::-1, :, w], dz / dy),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    for ax, (name, sl, m, aspect) in zip(axes, views):
        ax.imshow(sl, cmap="gray", aspect=aspect, vmin=0 if window is not None else None, vmax=1 if window is not None else None)
        if m is not None and m.any():
            ax.contour(m.astype(float), levels=[0.5], colors="r", linewidths=0.8)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_windows(hu2d: np.ndarray, windows=("brain", "subdural", "bone", "cobo"), title: str | None = None):
    """One 2D HU slice under several windows, side by side."""
    fig, axes = plt.subplots(1, len(windows), figsize=(2.8 * len(windows), 3.0), squeeze=False)
    for ax, w in zip(axes[0], windows):
        ax.imshow(named_window(np.asarray(hu2d, np.float32), w), cmap="gray", vmin=0, vmax=1)
        ax.set_title(w if isinstance(w, str) else f"L{w[0]:g}/W{w[1]:g}", fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
