"""What the Ruffini et al. (2024) experiment (:mod:`mtbench.experiments.ruffini2024`) reports: per-fold
and pooled metrics per backbone and arm, the paper's table, and our averages beside the paper's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from mtbench.experiments.base import cell_text
from mtbench.models import MultiTaskModel

PROGNOSIS_METRICS = ("accuracy", "f1_weighted", "gmean_weighted", "auc")


# ------------------------------------------------------------------------------ arm dependencies
def arm_dependencies(spec: Mapping[str, Any]) -> list[str]:
    """The arms an arm's weights start from (``init.backbone_from``, ``init.beta_average``)."""
    init = spec.get("init") or {}
    return ([init["backbone_from"]] if "backbone_from" in init else []) + list(init.get("beta_average", []))


def arm_order(arms: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Arms in an order where each comes after the arms it is initialised from."""
    deps = {}
    for name, spec in arms.items():
        d = arm_dependencies(spec)
        missing = [x for x in d if x not in arms]
        if missing:
            raise ValueError(f"Arm {name!r} is initialised from {missing}, which are not arms of this experiment ({list(arms)}).")
        deps[name] = d
    order, done = [], set()
    while len(order) < len(deps):
        ready = [a for a in deps if a not in done and all(x in done for x in deps[a])]
        if not ready:
            raise ValueError(f"Circular arm dependencies: { {a: deps[a] for a in deps if a not in done} }")
        for a in ready:
            order.append(a)
            done.add(a)
    return order


@dataclass
class ArmResult:
    model: MultiTaskModel
    history: pd.DataFrame
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    best_epoch: int
    dataset_ratio: pd.DataFrame | None


@dataclass
class RuffiniResult:
    """What :func:`run` produced.

    ``metrics``: tidy ``backbone, arm, fold, task, metric, value, n`` (``fold == "pooled"`` for the
    folds' test predictions pooled, with ``ci_low``/``ci_high``); ``predictions``: per
    ``(backbone, arm)`` the test predictions of every fold; ``histories``; ``dataset_ratios``: the
    per-batch share of each data set in the MDMT training loaders.
    """

    metrics: pd.DataFrame
    predictions: dict[tuple[str, str], pd.DataFrame]
    histories: dict[tuple[str, str, str], pd.DataFrame]
    dataset_ratios: dict[tuple[str, str], pd.DataFrame]
    config: dict[str, Any]
    data_report: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    run_dir: Path | None = None

    @classmethod
    def from_units(cls, cfg, run_dir: Path, finished) -> "RuffiniResult":
        """Per-fold and pooled metrics of the finished units of a run folder."""
        found = {}
        for u, r in finished:
            ratio = r.tables.get("dataset_ratio")
            found[(u["backbone"], u["arm"], str(u["fold"]))] = ArmResult(
                r.model, r.history, r.predictions.astype({"fold": str}), r.metrics.astype({"fold": str}),
                int(r.history["best_epoch"].iloc[0]), ratio)
        result = pooled_result(cfg, found)
        result.run_dir = run_dir
        return result

    def table(self, metrics=PROGNOSIS_METRICS, task: str = "prognosis") -> pd.DataFrame:
        """Prognosis metrics per backbone and arm: pooled value [95% CI] and mean ± SD over folds."""
        m = self.metrics[(self.metrics["task"] == task) & self.metrics["metric"].isin(metrics)]
        pooled = m[m["fold"] == "pooled"].copy()
        pooled["cell"] = [cell_text(v, lo, hi) for v, lo, hi in zip(pooled["value"], pooled["ci_low"], pooled["ci_high"])]
        folds = m[m["fold"] != "pooled"].groupby(["backbone", "arm", "metric"])["value"].agg(["mean", "std"]).reset_index()
        folds["cell"] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(folds["mean"], folds["std"].fillna(0))]
        out = pooled.pivot_table(index=["backbone", "arm"], columns="metric", values="cell", aggfunc="first")
        fm = folds.pivot_table(index=["backbone", "arm"], columns="metric", values="cell", aggfunc="first")
        fm.columns = [f"{c} (folds)" for c in fm.columns]
        cols = [c for c in metrics if c in out.columns]
        return out[cols].join(fm[[f"{c} (folds)" for c in cols if f"{c} (folds)" in fm.columns]])

    @property
    def aggregation(self) -> str:
        """``report.aggregation`` of the run's configuration: ``pooled`` (default) or ``fold_mean``."""
        return (self.config.get("report") or {}).get("aggregation", "pooled")

    def averages(self, metrics=("accuracy", "f1_weighted", "gmean_weighted"), aggregation: str | None = None) -> pd.DataFrame:
        """Our prognosis metrics (percent) averaged over backbones, per arm (the paper's summary).

        ``aggregation`` (default ``report.aggregation``): ``pooled``, each backbone's metric on its
        test predictions pooled over folds (the authors' way), or ``fold_mean``, the mean of its
        per-fold values (:func:`mtbench.aggregation.summarise`).
        """
        from mtbench.aggregation import summarise

        m = self.metrics[(self.metrics["task"] == "prognosis") & self.metrics["metric"].isin(metrics)]
        m = m[["backbone", "arm", "fold", "task", "metric", "value"]]
        per_bb = summarise(m, aggregation or self.aggregation)
        avg = per_bb.groupby(["arm", "metric"])["value"].mean().mul(100).unstack("metric")
        return avg[[c for c in metrics if c in avg.columns]]

    def significance(self, metrics=("accuracy", "f1_weighted", "gmean_weighted"), aggregation: str | None = None) -> pd.DataFrame:
        """:func:`significance_table` of this run: each backbone's prognosis metric (``aggregation`` as
        in :meth:`averages`) and its SD over folds, beside the published stars for this protocol; the
        column ``degenerate`` names the flags (:meth:`degenerate_flags`) of the arms compared."""
        from mtbench.aggregation import summarise

        m = self.metrics[(self.metrics["task"] == "prognosis") & self.metrics["metric"].isin(metrics)]
        m = m[["backbone", "arm", "fold", "task", "metric", "value"]]
        per_bb = summarise(m, aggregation or self.aggregation).pivot_table(index="backbone", columns=["arm", "metric"], values="value")
        sd = m[m["fold"] != "pooled"].groupby(["backbone", "arm", "metric"])["value"].std().unstack(["arm", "metric"])
        sig = significance_table(per_bb, sd, self.config["protocol"]["name"])
        # an arm with degenerate results is marked, so no test of it stands beside the paper's unmarked
        from mtbench.guards import mark_degenerate

        flags, notes = self.degenerate_flags(), []
        for side in (0, 1):
            arms = sig["comparison"].map(lambda c: COMPARISONS[c][side])
            marked = mark_degenerate(sig.assign(_arm=arms), flags, by="_arm", column="_note")
            notes.append([f"{a}: {n}" if n else "" for a, n in zip(arms, marked["_note"])])
        sig["degenerate"] = ["; ".join(x for x in pair if x) for pair in zip(*notes)]
        return sig

    def degenerate_flags(self) -> list:
        """:mod:`mtbench.guards` flags of every arm's test predictions (per fold, every task it has
        a head for: one class predicted, constant scores) and of NaN metrics."""
        from mtbench import guards
        from mtbench.experiments.ruffini2024 import _arm_tasks

        flags = []
        for (bb, arm), df in self.predictions.items():
            for task in _arm_tasks(self.config, arm):
                if f"{task.name}.target" in df.columns:
                    rows = df[df[f"{task.name}.target"].notna()]
                    flags += guards.check_predictions(rows, [task], model=f"{bb}/{arm}")
        # the pooled row is the reported one; a table without it (e.g. built by hand) is checked per fold
        pooled = self.metrics["fold"] == "pooled"
        return flags + guards.check_metrics(self.metrics[pooled] if pooled.any() else self.metrics)

    def paired_auc(self, arm: str, reference: str, backbone: str | None = None, task: str = "prognosis"):
        """DeLong paired test of ``arm`` vs ``reference`` on the same pooled test images
        (:func:`mtbench.stats.delong_test`; ``ci_low``/``ci_high`` bound the AUC difference)."""
        from mtbench.stats import delong_test

        backbone = backbone or self.config["model"]["backbones"][0]
        a, b = (self.predictions[(backbone, x)] for x in (arm, reference))
        a, b = (d[d[f"{task}.target"].notna()].set_index(["fold", "sample_id"]) for d in (a, b))
        b = b.loc[a.index]
        return delong_test(a[f"{task}.target"].astype(int), a[f"{task}.prob"], b[f"{task}.prob"])

    def compare_with_paper(self, drop_degenerate: bool = False, aggregation: str | None = None) -> pd.DataFrame:
        """Our averages (:meth:`averages`, ``aggregation`` as there) beside the published ones
        (:mod:`mtbench.references`), same protocol; arms with degenerate results are marked (column
        ``degenerate``) or, with ``drop_degenerate``, dropped."""
        return compare_with_paper(self.averages(aggregation=aggregation), self.config["protocol"]["name"],
                                  flags=self.degenerate_flags(), drop_degenerate=drop_degenerate)


ARM_TO_PAPER = {"stl_prognosis": "stl", "ft": "ft", "mdmt": "mdmt"}
#: The README's comparisons: MDMT against STL tau1 and against FT.
COMPARISONS = {"mdmt_vs_stl": ("mdmt", "stl_prognosis"), "mdmt_vs_ft": ("mdmt", "ft")}


def significance_table(per_backbone: pd.DataFrame, fold_sd: pd.DataFrame, protocol: str = "cv") -> pd.DataFrame:
    """The authors' tests across backbones, pairs joined by backbone name, beside the published stars.

    ``per_backbone`` and ``fold_sd``: ``backbone x (arm, metric)`` tables of each backbone's value
    and of its SD over folds. For each comparison of :data:`COMPARISONS` and metric: a one-tailed
    paired t-test that MDMT's mean is higher (``mean``, scipy ``ttest_rel``; the authors' code runs it
    with ``alternative='less'`` on baseline vs MDMT, the same test), a one-tailed paired t-test that
    its SD over folds is lower (``std``; the README reports one, the public code has none), and a
    one-tailed Wilcoxon signed-rank test on the means (``wilcoxon``, in the code, not in the README).
    Backbones missing a value on either side are left out (``n`` counts the pairs used).
    """
    from mtbench.references import published_numbers
    from mtbench.stats import paired_ttest, wilcoxon_test
    from mtbench.stats.report import significance_mark

    pub = published_numbers("ruffini2024", table="significance")
    pub = pub[pub["protocol"] == protocol].set_index(["model", "metric"])["value"].astype(str)
    rows = []
    for comp, (arm, ref) in COMPARISONS.items():
        for metric in sorted({m for _, m in per_backbone.columns}):
            for stat, table, test, alt in (("mean", per_backbone, paired_ttest, "greater"), ("std", fold_sd, paired_ttest, "less"),
                                           ("wilcoxon", per_backbone, wilcoxon_test, "greater")):
                pair = table.reindex(columns=[(arm, metric), (ref, metric)]).dropna()
                p = float("nan")
                if len(pair) >= 2 and np.ptp(pair.iloc[:, 0] - pair.iloc[:, 1]) > 0:
                    p = test(pair.iloc[:, 0], pair.iloc[:, 1], alternative=alt).p_value
                paper = pub.get((f"{comp}_{stat}", metric), "") if stat != "wilcoxon" else ""
                rows.append({"comparison": comp, "statistic": stat, "metric": metric, "n": len(pair), "p_value": p,
                             "ours": (significance_mark(p) or "n.s.") if np.isfinite(p) else "n/a", "paper": paper})
    return pd.DataFrame(rows)


def compare_with_paper(ours: pd.DataFrame, protocol: str = "cv", flags=None, drop_degenerate: bool = False) -> pd.DataFrame:
    """``ours`` (arm x metric, percent) beside the published 18-backbone averages for ``protocol``.

    ``flags``: :class:`mtbench.guards.Flag` records; an arm they concern is marked in the column
    ``degenerate`` (or dropped with ``drop_degenerate``), never printed beside the paper unmarked.
    """
    from mtbench.guards import mark_degenerate
    from mtbench.references import load_reference

    ref = load_reference("ruffini2024")
    ref = ref[ref["protocol"] == protocol].pivot_table(index="arm", columns="metric", values="value")
    rows = []
    for arm, paper_arm in ARM_TO_PAPER.items():
        for metric in ref.columns:
            ours_v = ours.loc[arm, metric] if arm in ours.index and metric in ours.columns else np.nan
            rows.append({"arm": arm, "metric": metric, "ours": ours_v, "paper": ref.loc[paper_arm, metric]})
    out = pd.DataFrame(rows).pivot_table(index="arm", columns="metric", values=["ours", "paper"], dropna=False)
    out = out.swaplevel(0, 1, axis=1).sort_index(axis=1).reindex(list(ARM_TO_PAPER))
    return mark_degenerate(out, flags or [], drop=drop_degenerate)


def pooled_result(cfg, arm_results: Mapping[tuple[str, str, str], ArmResult], data_report=None, timings=None) -> RuffiniResult:
    """Per-fold metrics plus pooled-over-folds metrics with bootstrap CIs."""
    from mtbench.experiments.ruffini2024 import _arm_tasks as arm_tasks
    from mtbench.stats import bootstrap_metrics

    rows = [r.metrics for r in arm_results.values()]
    predictions: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for (bb, arm, fold), r in arm_results.items():
        predictions.setdefault((bb, arm), []).append(r.predictions)
    pooled_preds = {}
    for (bb, arm), parts in predictions.items():
        tasks = arm_tasks(cfg, arm)
        df = pd.concat(parts, ignore_index=True)
        df.attrs["tasks"] = [t.to_dict() for t in tasks]
        pooled_preds[(bb, arm)] = df
        boot = bootstrap_metrics(df, tasks, n_boot=int(cfg["bootstrap"]["n_boot"]), ci=float(cfg["bootstrap"]["ci"]),
                                 seed=int(cfg["seed"]))
        rows.append(boot.assign(backbone=bb, arm=arm, fold="pooled"))
    metrics = pd.concat(rows, ignore_index=True)
    lead = ["backbone", "arm", "fold", "task", "metric", "value", "ci_low", "ci_high", "n"]
    metrics = metrics[[c for c in lead if c in metrics.columns] + [c for c in metrics.columns if c not in lead]]
    histories = {k: r.history for k, r in arm_results.items()}
    ratios = {k: r.dataset_ratio for k, r in arm_results.items() if r.dataset_ratio is not None}
    return RuffiniResult(metrics, pooled_preds, histories, ratios, dict(cfg), data_report or {}, timings or {})


# ------------------------------------------------------------------------------------ figures
ARM_LABELS = {"stl_prognosis": "STL-prog", "stl_severity": "STL-sev", "ft": "FT", "mdmt": "MDMT"}


def plot_arms(result: RuffiniResult, metrics=("auc", "gmean_weighted"), task: str = "prognosis", flags=None, ax=None,
              chance: float | None = 0.5):
    """Pooled test metric of every backbone x arm with its bootstrap CI; arms with a degenerate
    flag (:meth:`RuffiniResult.degenerate_flags`) are drawn hollow and marked "!"; ``chance``: a
    dashed line (None: none, e.g. for QWK, whose chance level is 0)."""
    import matplotlib.pyplot as plt

    m = result.metrics
    m = m[(m["fold"] == "pooled") & (m["task"] == task) & m["metric"].isin(metrics)]
    flagged = {f.model for f in (result.degenerate_flags() if flags is None else flags) if f.task == task}
    keys = sorted(m.groupby(["backbone", "arm"]).groups, key=lambda k: (k[0], list(ARM_LABELS).index(k[1]) if k[1] in ARM_LABELS else 9))
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(keys) * len(metrics) / 1.5), 3.2))
    width = 0.8 / len(metrics)
    for j, metric in enumerate(metrics):
        for i, (bb, arm) in enumerate(keys):
            r = m[(m["backbone"] == bb) & (m["arm"] == arm) & (m["metric"] == metric)]
            if r.empty:
                continue
            v, lo, hi = (float(r[c].iloc[0]) for c in ("value", "ci_low", "ci_high"))
            bad = f"{bb}/{arm}" in flagged
            x = i + (j - (len(metrics) - 1) / 2) * width
            ax.errorbar(x, v, yerr=[[v - lo], [hi - v]], fmt="o", mfc="white" if bad else f"C{j}", color=f"C{j}",
                        capsize=3, label=metric if i == 0 else None)
            if bad:
                ax.annotate("!", (x, hi), ha="center", va="bottom", color="red", fontweight="bold")
    several = len({k[0] for k in keys}) > 1
    ax.set_xticks(range(len(keys)), [f"{bb}\n{ARM_LABELS.get(a, a)}" if several else ARM_LABELS.get(a, a) for bb, a in keys],
                  rotation=90 if several else 0, fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{task} (pooled test, 95% CI)")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_loss_curves(result: RuffiniResult, backbone: str | None = None, fold: str = "0", axes=None):
    """Validation loss of each data set's task against optimiser steps, one panel per data set,
    one line per arm (the step axis makes the arms' budgets comparable)."""
    import matplotlib.pyplot as plt

    backbone = backbone or result.config["model"]["backbones"][0]
    tasks = {"prognosis": "val_loss.prognosis", "severity": "val_loss.severity"}
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(8, 3), sharex=True)
    for ax, (name, col) in zip(axes, tasks.items()):
        for i, arm in enumerate(ARM_LABELS):
            h = result.histories.get((backbone, arm, str(fold)))
            if h is None or col not in h.columns:
                continue
            x = h["step"] if "step" in h.columns else h["epoch"]
            ax.plot(x, h[col], color=f"C{i}", label=ARM_LABELS[arm])
            best = h[h["epoch"] == h["best_epoch"].iloc[0]] if "best_epoch" in h.columns else h.iloc[:0]
            ax.plot(best["step"] if "step" in best.columns else best["epoch"], best[col], "*", color=f"C{i}", ms=10)
        ax.set_title(f"{name} data set (fold {fold})", fontsize=9)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("validation loss")
        ax.legend(fontsize=8)
    return axes
