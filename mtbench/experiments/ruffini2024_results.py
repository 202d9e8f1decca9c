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

    def averages(self, metrics=("accuracy", "f1_weighted", "gmean_weighted")) -> pd.DataFrame:
        """Our fold-mean prognosis metrics (percent) averaged over backbones, per arm (the paper's summary)."""
        m = self.metrics[(self.metrics["task"] == "prognosis") & (self.metrics["fold"] != "pooled") & self.metrics["metric"].isin(metrics)]
        per_bb = m.groupby(["backbone", "arm", "metric"])["value"].mean().reset_index()
        avg = per_bb.groupby(["arm", "metric"])["value"].mean().mul(100).unstack("metric")
        return avg[[c for c in metrics if c in avg.columns]]

    def degenerate_flags(self) -> list:
        """:mod:`mtbench.guards` flags of the prognosis predictions (per fold) and NaN metrics."""
        from mtbench import guards
        from mtbench.experiments.ruffini2024 import make_tasks

        prognosis = make_tasks(self.config["severity"]["structure"], self.config["loss"]["mode"])["prognosis"]
        flags = []
        for (bb, arm), df in self.predictions.items():
            if "prognosis.target" in df.columns:
                flags += guards.check_predictions(df, prognosis, model=f"{bb}/{arm}")
        return flags + guards.check_metrics(self.metrics[self.metrics["task"] == "prognosis"])

    def compare_with_paper(self, drop_degenerate: bool = False) -> pd.DataFrame:
        """Our averages beside the published ones (:mod:`mtbench.references`), same protocol; arms
        with degenerate results are marked (column ``degenerate``) or, with ``drop_degenerate``, dropped."""
        return compare_with_paper(self.averages(), self.config["protocol"]["name"],
                                  flags=self.degenerate_flags(), drop_degenerate=drop_degenerate)


ARM_TO_PAPER = {"stl_prognosis": "stl", "ft": "ft", "mdmt": "mdmt"}


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
