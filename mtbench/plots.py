"""Figures shared by notebooks and run folders. Each function returns a matplotlib Figure."""

from __future__ import annotations

from typing import Mapping, Sequence


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_learning_curves(
    histories: Mapping[str, pd.DataFrame],
    columns: Sequence[str] = ("train_loss", "val_loss"),
    titles: Mapping[str, str] | None = None,
    best_epochs: Mapping[str, int] | None = None,
):
    """One panel per history column, one line per model; the selected (best) epoch is marked."""
    titles = dict(titles or {})
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.3), squeeze=False)
    for ax, col in zip(axes[0], columns):
        for i, (name, hist) in enumerate(histories.items()):
            if col not in hist.columns:
                continue
            line, = ax.plot(hist["epoch"], hist[col], marker="o", ms=3, label=name, color=f"C{i}")
            if best_epochs and name in best_epochs:
                be = best_epochs[name]
                hit = hist[hist["epoch"] == be]
                if not hit.empty:
                    ax.plot([be], [hit[col].iloc[0]], marker="*", ms=12, color=line.get_color(), zorder=5)
        ax.set_title(titles.get(col, col))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_metric_comparison(
    results: pd.DataFrame,
    metrics: Sequence[str],
    task: str,
    model_column: str = "model",
    reference: pd.DataFrame | None = None,
):
    """Point estimates with CI error bars, one panel per metric, one point per model.

    ``results`` has columns ``[model_column, task, metric, value, ci_low, ci_high]``.
    ``reference`` (optional, same columns without CIs) is drawn as hollow markers: published numbers.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.2), squeeze=False)
    models = list(dict.fromkeys(results[model_column]))
    for ax, metric in zip(axes[0], metrics):
        sub = results[(results["task"] == task) & (results["metric"] == metric)].set_index(model_column)
        for i, m in enumerate(models):
            if m not in sub.index:
                continue
            r = sub.loc[m]
            err = np.array([[r["value"] - r["ci_low"]], [r["ci_high"] - r["value"]]])
            ax.errorbar([i], [r["value"]], yerr=np.clip(err, 0, None), fmt="o", capsize=4, color=f"C{i}")
        if reference is not None:
            ref = reference[(reference["task"] == task) & (reference["metric"] == metric)].set_index(model_column)
            for i, m in enumerate(models):
                if m in ref.index:
                    ax.plot([i + 0.15], [ref.loc[m, "value"]], marker="D", mfc="none", color="k", label="published" if i == 0 else None)
        ax.set_xticks(range(len(models)), models, rotation=20)
        ax.set_title(f"{task}: {metric}")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def show_images(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 6, cmap: str = "gray"):
    """A grid of 2D images (``[N, H, W]`` or ``[N, 1, H, W]``)."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0]
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.1 * ncols, 2.3 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig
