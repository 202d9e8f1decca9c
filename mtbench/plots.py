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


def plot_task_weights(
    logs: Mapping[str, pd.DataFrame],
    smooth: int = 1,
    columns: Sequence[str] | None = None,
    ncols: int = 3,
    sharey: bool = False,
):
    """Task weights over training steps, one panel per run, one line per task.

    ``logs`` maps a run name to a weight log (:meth:`mtbench.mtl.Weighting.weight_log`: columns
    ``step``, ``epoch``, ``weight.<task>``; NaN where the task was absent from the batch). Steps
    where a task was absent are skipped, not drawn as zero. ``smooth > 1`` draws a rolling mean over
    that many of the task's steps (RLW's weights change every step). ``columns`` picks other
    columns of the logs instead, e.g. ``["grad_norm.prognosis", "grad_norm.severity"]``. Epoch
    boundaries are marked by faint vertical lines.
    """
    n = len(logs)
    if n == 0:
        raise ValueError("No weight logs to plot.")
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False, sharey=sharey)
    for ax, (name, log) in zip(axes.flat, logs.items()):
        cols = list(columns) if columns is not None else [c for c in log.columns if c.startswith("weight.")]
        for i, col in enumerate(cols):
            if col not in log.columns:
                continue
            s = log[["step", col]].dropna()
            y = s[col].rolling(smooth, min_periods=1).mean() if smooth > 1 else s[col]
            ax.plot(s["step"], y, lw=1.2, color=f"C{i}", label=col.split(".", 1)[-1])
        if "epoch" in log.columns and len(log):
            for b in log["step"][log["epoch"].diff().fillna(0) > 0]:
                ax.axvline(b, color="0.85", lw=0.6, zorder=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes[0][0].set_ylabel("task weight" if columns is None else "value")
    fig.tight_layout()
    return fig


def plot_gain_curves(
    comparisons: pd.DataFrame,
    x: str,
    hue: str | None = None,
    value: str = "mean_diff",
    ci: tuple[str, str] = ("ci_low", "ci_high"),
    ax=None,
    xlog: bool | None = None,
    ylabel: str = "gain of multi-task (AUC difference)",
    title: str | None = None,
):
    """Paired gain of multi- over single-task against a factor, one line per ``hue`` value.

    ``comparisons`` has one row per point with columns ``x``, ``hue`` (optional), ``value`` and the
    CI columns (as :func:`mtbench.experiments.when_mtl_helps.compare` writes). The dashed line at 0
    is "no difference": points above it mean multi-task helped, below it that it hurt.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.6))
    else:
        fig = ax.figure
    groups = [(None, comparisons)] if hue is None else list(comparisons.groupby(hue, sort=False))
    xs_all = []
    for i, (name, grp) in enumerate(groups):
        grp = grp.sort_values(x)
        xs = grp[x].astype(float).to_numpy()
        xs_all += list(xs)
        y = grp[value].to_numpy(dtype=float)
        lo, hi = grp[ci[0]].to_numpy(dtype=float), grp[ci[1]].to_numpy(dtype=float)
        err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
        err = np.nan_to_num(err)
        ax.errorbar(xs, y, yerr=err, marker="o", capsize=3, color=f"C{i}", label=None if name is None else f"{hue}={name}")
    ax.axhline(0, color="k", ls="--", lw=0.8)
    if xlog is None:
        pos = [v for v in xs_all if v > 0]
        xlog = len(pos) == len(xs_all) and len(pos) > 1 and max(pos) / min(pos) >= 8
    if xlog:
        ax.set_xscale("log")
        ticks = sorted(set(xs_all))
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if hue is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pr_curves(predictions, task: str, ax=None, title: str | None = None):
    """Precision-recall curves of a binary task for several models (``{name: Predictions table}``),
    each labelled with its average precision (AUPRC), and the chance level (the prevalence)."""
    import numpy as np
    from sklearn.metrics import average_precision_score, precision_recall_curve

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 3.8))
    else:
        fig = ax.figure
    prevalence = None
    for name, p in dict(predictions).items():
        ok = p[f"{task}.target"].notna()
        y, s = p.loc[ok, f"{task}.target"].astype(int).to_numpy(), p.loc[ok, f"{task}.prob"].to_numpy(float)
        if y.sum() == 0:
            continue
        prec, rec, _ = precision_recall_curve(y, s)
        ax.step(rec, prec, where="post", label=f"{name} (AP {average_precision_score(y, s):.2f})")
        prevalence = float(np.mean(y))
    if prevalence is not None:
        ax.axhline(prevalence, color="0.5", ls="--", lw=1, label=f"chance ({prevalence:.2f})")
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision (PPV)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title or f"{task}: precision-recall", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ every run folder
_NOT_LABELS = {"task", "metric", "value", "ci_low", "ci_high", "n", "n_boot", "n_undefined", "seconds"}
_PREFERRED = ("auc", "balanced_accuracy", "qwk", "mae", "r", "pearson_r", "dice", "accuracy", "f1")


def _arm_of(label: str) -> str:
    """The arm of a unit label (``"mt/seed0"`` -> ``"mt"``, ``"convnet/fold0/armmdmt"`` -> ``"mdmt"``)."""
    parts = str(label).split("/")
    return next((p[3:] for p in parts if p.startswith("arm") and len(p) > 3), parts[0])


def _short(labels) -> dict[str, str]:
    """Unit labels without the parts every label shares (``convnet/fold0/armmt`` -> ``fold0/armmt``)."""
    split = [str(x).split("/") for x in labels]
    n = min((len(p) for p in split), default=0)
    same = {i for i in range(n) if len({p[i] for p in split}) == 1} if len(split) > 1 else set()
    return {x: "/".join(q for i, q in enumerate(p) if i not in same) or str(x) for x, p in zip(labels, split)}


def plot_unit_metrics(results: pd.DataFrame, max_panels: int = 8):
    """Point estimates with CIs of every unit (arm x seed ...), one panel per task and metric
    (the most used metrics first), coloured by arm (the first label column)."""
    df = results.dropna(subset=["value"]).copy()
    labels = [c for c in df.columns if c not in _NOT_LABELS]
    if "unit" in df.columns:  # the unit's label, plus what varies within a unit (e.g. a backbone per row)
        labels = ["unit"] + [c for c in labels if c != "unit" and df.groupby("unit")[c].nunique(dropna=False).max() > 1]
    df["__label"] = df[labels].astype(str).agg("/".join, axis=1) if labels else "run"
    pairs = list(dict.fromkeys(zip(df["task"], df["metric"])))
    pairs.sort(key=lambda p: _PREFERRED.index(p[1]) if p[1] in _PREFERRED else len(_PREFERRED))
    pairs = pairs[:max_panels]
    if not pairs:
        return None
    ncol = min(4, len(pairs))
    nrow = -(-len(pairs) // ncol)
    units = list(dict.fromkeys(df["__label"]))
    arms = list(dict.fromkeys(_arm_of(u) for u in units))
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(3.4, 0.35 * len(units) + 1.5) * ncol, 3.6 * nrow), squeeze=False)
    for ax, (task, metric) in zip(axes.flat, pairs):
        sub = df[(df["task"] == task) & (df["metric"] == metric)].set_index("__label")
        for x, u in enumerate(units):
            if u not in sub.index:
                continue
            r = sub.loc[[u]].iloc[0]
            lo, hi = r.get("ci_low", np.nan), r.get("ci_high", np.nan)
            err = np.nan_to_num(np.array([[max(r["value"] - lo, 0)], [max(hi - r["value"], 0)]]))
            ax.errorbar([x], [r["value"]], yerr=err, fmt="o", capsize=3, color=f"C{arms.index(_arm_of(u)) % 10}")
        short = _short(units)
        ax.set_xticks(range(len(units)), [short[u] if len(short[u]) <= 30 else short[u][:29] + "…" for u in units],
                      rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{task}: {metric}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    has_ci = {"ci_low", "ci_high"} <= set(df.columns) and df["ci_low"].notna().any()
    fig.suptitle("test metrics per unit, colour = arm" + (" (bars: 95% bootstrap CI)" if has_ci else " (no CI reported)"),
                 fontsize=10)
    fig.tight_layout()
    return fig


def history_columns(histories: Mapping[str, pd.DataFrame], max_tasks: int = 4) -> list[str]:
    """The loss columns learning curves compare: per task (``train_loss.<task>``, ``val_loss.<task>``)
    for the tasks every unit learns, so that arms with other task sets are compared on the same loss,
    each task once; the total ``train_loss`` / ``val_loss`` when the units share no task (or more
    than ``max_tasks``)."""
    hs = list(histories.values())
    cols = []
    for kind in ("train_loss", "val_loss"):
        shared = [c for c in (hs[0].columns if hs else []) if c.startswith(kind + ".") and all(c in h.columns for h in hs)]
        if shared and len(shared) <= max_tasks:
            cols += shared
        elif any(kind in h.columns for h in hs):
            cols.append(kind)
    return cols


def plot_unit_histories(histories: Mapping[str, pd.DataFrame]):
    """Training and validation loss of every unit (:func:`history_columns`: per shared task, else the
    total), one colour per arm (the label before ``/``); a star marks each unit's selected epoch."""
    cols = history_columns(histories)
    if not cols:
        return None
    arms = list(dict.fromkeys(_arm_of(k) for k in histories))
    first = {a: next(k for k in histories if _arm_of(k) == a) for a in arms}  # one legend entry per arm
    fig, axes = plt.subplots(1, len(cols), figsize=(4.6 * len(cols), 3.5), squeeze=False)
    for ax, col in zip(axes[0], cols):
        for name, h in histories.items():
            if col in h.columns and "epoch" in h.columns:
                i = arms.index(_arm_of(name))
                ax.plot(h["epoch"], h[col], lw=1, marker="o", ms=2, color=f"C{i % 10}", alpha=0.8,
                        label=_arm_of(name) if first[_arm_of(name)] == name else None)
                if "best_epoch" in h.columns and len(h):
                    hit = h[h["epoch"] == h["best_epoch"].iloc[0]]
                    if not hit.empty:
                        ax.plot(hit["epoch"], hit[col], marker="*", ms=9, color=f"C{i % 10}")
        kind, _, task = col.partition(".")
        ax.set_title(f"{kind.replace('_', ' ')}{': ' + task if task else ''} (star: selected epoch)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_unit_rocs(predictions: Mapping[str, pd.DataFrame | None]):
    """ROC curves of every binary task (one panel each), one curve per unit with its AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from mtbench.predictions import task_arrays, tasks_from_attrs

    curves: dict[str, list] = {}
    for name, p in predictions.items():
        if p is None or not len(p):
            continue
        for task in tasks_from_attrs(p).values():
            if task.kind != "binary":
                continue
            a = task_arrays(p, task)
            if len(np.unique(a.y)) == 2 and a.prob is not None:
                fpr, tpr, _ = roc_curve(a.y, a.prob)
                curves.setdefault(task.name, []).append((name, fpr, tpr, roc_auc_score(a.y, a.prob)))
    if not curves:
        return None
    fig, axes = plt.subplots(1, len(curves), figsize=(4.4 * len(curves), 4.0), squeeze=False)
    for ax, (task, items) in zip(axes[0], curves.items()):
        arms = list(dict.fromkeys(_arm_of(n) for n, *_ in items))
        short = _short([n for n, *_ in items])
        for name, fpr, tpr, auc in items:
            ax.plot(fpr, tpr, lw=1, color=f"C{arms.index(_arm_of(name)) % 10}", label=f"{short[name]} ({auc:.2f})")
        ax.plot([0, 1], [0, 1], "k--", lw=0.7)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title(f"{task}: ROC (AUC)", fontsize=9)
        ax.legend(fontsize=6 if len(items) > 6 else 7, loc="lower right")
    fig.tight_layout()
    return fig


def run_figures(metrics: pd.DataFrame, histories: Mapping[str, pd.DataFrame],
                predictions: Mapping[str, pd.DataFrame | None], run_dir) -> list:
    """The figures every run folder holds (``fig_metrics.png``, ``fig_learning_curves.png``,
    ``fig_roc.png``) from its units' metrics (with a ``unit`` column), histories and predictions
    (by unit label); returns their paths.
    A figure that cannot be drawn is reported with a warning, not silently skipped."""
    import warnings
    from pathlib import Path

    makers = {"fig_metrics.png": lambda: plot_unit_metrics(metrics),
              "fig_learning_curves.png": lambda: plot_unit_histories(histories),
              "fig_roc.png": lambda: plot_unit_rocs(predictions)}
    out = []
    for name, make in makers.items():
        try:
            fig = make()
        except Exception as err:  # a figure must not fail a finished run; say why it is absent
            warnings.warn(f"{name} not drawn: {type(err).__name__}: {err}", stacklevel=2)
            continue
        if fig is not None:
            fig.savefig(Path(run_dir) / name, dpi=110, bbox_inches="tight")
            plt.close(fig)
            out.append(Path(run_dir) / name)
    return out
