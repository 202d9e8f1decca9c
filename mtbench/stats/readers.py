"""A model against human readers on the same cases.

:func:`reader_study` takes the model's scores (a Predictions table or any frame with a case id,
the truth and a score) and a *reading table* - one row per (case, reader) with the reader's
binary call - joins them by case id, and reports:

* sensitivity, specificity and accuracy of the model (at a threshold) and of each reader, with
  Wilson confidence intervals (``statsmodels.stats.proportion.proportion_confint``);
* McNemar's test of the model vs each reader on the cases that reader read (Holm-corrected);
* agreement: Fleiss' kappa among the readers, Cohen's kappa for each pair and of each reader
  with the model's calls;
* the model's AUC with its DeLong CI and a figure: the model's ROC curve with each reader as a
  point (:meth:`ReaderStudyResult.plot`).

A real reading table is a CSV like::

    case_id,reader,call
    img-0001,R1,1
    img-0001,R2,0
    ...

with ``case_id`` matching the Predictions table's ``sample_id``. :func:`simulate_readers` makes
such a table for teaching, from a latent severity the readers perceive with noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mtbench.stats.agreement import fleiss_kappa, pairwise_kappa, ratings_matrix
from mtbench.stats.paired import mcnemar_test
from mtbench.stats.ranking import correct_pvalues
from mtbench.stats.roc import AUCResult, delong_auc, roc_points

__all__ = ["ReaderStudyResult", "reader_study", "simulate_readers", "operating_point"]


def _wilson(k: int, n: int, ci: float):
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return np.nan, np.nan, np.nan
    lo, hi = proportion_confint(k, n, alpha=1 - ci, method="wilson")
    return k / n, float(lo), float(hi)


def operating_point(truth, call, ci: float = 0.95) -> dict:
    """Sensitivity, specificity and accuracy of binary ``call`` against ``truth``, Wilson CIs."""
    t = np.asarray(truth).astype(bool)
    c = np.asarray(call).astype(bool)
    tp, tn = int(np.sum(t & c)), int(np.sum(~t & ~c))
    out = {"n": int(len(t)), "n_pos": int(t.sum()), "n_neg": int((~t).sum())}
    for name, k, n in (("sensitivity", tp, int(t.sum())), ("specificity", tn, int((~t).sum())), ("accuracy", tp + tn, len(t))):
        v, lo, hi = _wilson(k, n, ci)
        out.update({name: v, f"{name}_low": lo, f"{name}_high": hi})
    return out


@dataclass
class ReaderStudyResult:
    """Everything :func:`reader_study` computed; see the module docstring."""

    operating_points: pd.DataFrame
    mcnemar: pd.DataFrame
    fleiss_kappa: float
    pairwise_kappa: pd.DataFrame
    model_auc: AUCResult
    threshold: float
    data: pd.DataFrame = field(repr=False)
    readers: list[str] = field(default_factory=list)

    def table(self, digits: int = 3) -> pd.DataFrame:
        """Operating points as ``value [low, high]`` strings plus the McNemar p-values."""
        op = self.operating_points.set_index("reader")
        out = pd.DataFrame(index=op.index)
        for m in ("sensitivity", "specificity", "accuracy"):
            out[m] = [f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
                      for v, lo, hi in zip(op[m], op[f"{m}_low"], op[f"{m}_high"])]
        mc = self.mcnemar.set_index("reader")
        out["McNemar p (vs model)"] = [f"{mc.loc[r, 'p_value']:.3g}" if r in mc.index else "" for r in out.index]
        out["Holm-adjusted p"] = [f"{mc.loc[r, 'p_adjusted']:.3g}" if r in mc.index else "" for r in out.index]
        return out

    def plot(self, ax=None, title: str | None = None):
        """The model's ROC curve (AUC with DeLong CI), its operating point, and each reader as a point."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 5))
        else:
            fig = ax.figure
        fpr, tpr, _ = roc_points(self.data["truth"].to_numpy(), self.data["score"].to_numpy())
        a = self.model_auc
        ax.plot(fpr, tpr, color="C0", lw=1.8, label=f"model, AUC {a.auc:.3f} [{a.ci_low:.3f}, {a.ci_high:.3f}]")
        op = self.operating_points.set_index("reader")
        m = op.loc["model"]
        ax.plot(1 - m.specificity, m.sensitivity, marker="*", ms=14, color="C0", ls="none",
                label=f"model at threshold {self.threshold:.2f}")
        for i, r in enumerate(self.readers):
            p = op.loc[r]
            ax.errorbar(1 - p.specificity, p.sensitivity,
                        xerr=[[p.specificity_high - p.specificity], [p.specificity - p.specificity_low]],
                        yerr=[[p.sensitivity - p.sensitivity_low], [p.sensitivity_high - p.sensitivity]],
                        marker="o", ms=6, color=f"C{(i % 8) + 1}", capsize=2, lw=0.8, ls="none", label=str(r))
        ax.plot([0, 1], [0, 1], color="0.7", ls="--", lw=0.8)
        ax.set_xlabel("1 - specificity (false-positive rate)")
        ax.set_ylabel("sensitivity (true-positive rate)")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title(title or "Model ROC curve and readers' operating points (95% CIs)", fontsize=9)
        fig.tight_layout()
        return fig


def reader_study(
    model: pd.DataFrame,
    readings: pd.DataFrame,
    truth: str,
    score: str,
    case_id: str = "sample_id",
    reader_case_id: str = "case_id",
    reader: str = "reader",
    call: str = "call",
    threshold: float = 0.5,
    ci: float = 0.95,
    correction: str = "holm",
) -> ReaderStudyResult:
    """Compare a model's scores with readers' binary calls on the same cases.

    Parameters
    ----------
    model:
        One row per case: ``case_id``, the ``truth`` (0/1) and the model's ``score`` column (for
        a Predictions table: ``truth="prognosis.target"``, ``score="prognosis.prob"``).
    readings:
        Long reading table: ``reader_case_id``, ``reader``, ``call`` (0/1). Every case read must
        exist in ``model``; cases a reader did not read are left out of *that* reader's numbers
        only (the counts are in ``operating_points.n``).
    threshold:
        Model calls positive when ``score >= threshold``.
    """
    for c in (case_id, truth, score):
        if c not in model.columns:
            raise KeyError(f"model table has no column {c!r} (columns: {list(model.columns)}).")
    if model[case_id].duplicated().any():
        raise ValueError(f"model table has duplicated {case_id}: {model.loc[model[case_id].duplicated(), case_id].tolist()[:10]}.")
    base = model[[case_id, truth, score]].rename(columns={case_id: "case", truth: "truth", score: "score"})
    if base["truth"].isna().any():
        raise ValueError(f"{int(base['truth'].isna().sum())} cases have no {truth!r}; drop unlabelled cases first.")
    base = base.set_index("case")
    base["model_call"] = (base["score"] >= threshold).astype(int)
    wide = ratings_matrix(readings, reader_case_id, reader, call)
    unknown = wide.index.difference(base.index).tolist()
    if unknown:
        raise ValueError(f"{len(unknown)} read cases are not in the model table (e.g. {unknown[:5]}).")
    readers_ = [str(r) for r in wide.columns]
    wide.columns = readers_
    data = base.join(wide, how="left")
    data.index.name = "case"

    rows = [{"reader": "model", **operating_point(data["truth"], data["model_call"], ci)}]
    mc_rows = []
    for r in readers_:
        part = data[data[r].notna()]
        rows.append({"reader": r, **operating_point(part["truth"], part[r].astype(int), ci)})
        t = part["truth"].astype(bool).to_numpy()
        res = mcnemar_test(part["model_call"].astype(bool).to_numpy() == t, part[r].astype(bool).to_numpy() == t)
        mc_rows.append({"reader": r, "n": res.n, "model_accuracy": res.mean_a, "reader_accuracy": res.mean_b,
                        "statistic": res.statistic, "p_value": res.p_value, "test": res.note})
    mc = pd.DataFrame(mc_rows)
    if len(mc):
        mc["p_adjusted"] = correct_pvalues(mc["p_value"].to_numpy(), correction)
    complete = data[readers_].dropna()
    fk = float(fleiss_kappa(complete.astype(int))) if len(readers_) >= 2 and len(complete) else float("nan")
    pk = pairwise_kappa(data[readers_ + ["model_call"]].rename(columns={"model_call": "model"})) if readers_ else pd.DataFrame()
    auc = delong_auc(data["truth"].astype(int).to_numpy(), data["score"].to_numpy(), ci)
    return ReaderStudyResult(pd.DataFrame(rows), mc, fk, pk, auc, threshold, data, readers_)


def simulate_readers(
    cases: pd.DataFrame,
    latent: str,
    n_readers: int = 4,
    noise: float | list[float] = 1.0,
    threshold: float | list[float] = 0.0,
    case_id: str = "sample_id",
    seed: int = 0,
    reader_prefix: str = "R",
) -> pd.DataFrame:
    """A simulated reading table: reader ``r`` calls a case positive when
    ``latent + noise_r * e > threshold_r`` (``e ~ N(0, 1)``, independent per reader and case).

    ``latent`` is a column of ``cases`` the readers perceive (e.g. the standardised severity of
    the synthetic X-rays); ``noise`` (skill) and ``threshold`` (how readily a reader calls
    positive) may differ per reader. Returns ``case_id, reader, call``.
    """
    rng = np.random.default_rng(seed)
    noise_ = np.broadcast_to(np.asarray(noise, float), (n_readers,))
    thr_ = np.broadcast_to(np.asarray(threshold, float), (n_readers,))
    x = cases[latent].to_numpy(float)
    rows = []
    for i in range(n_readers):
        calls = (x + noise_[i] * rng.normal(size=len(x)) > thr_[i]).astype(int)
        rows.append(pd.DataFrame({"case_id": cases[case_id].to_numpy(), "reader": f"{reader_prefix}{i + 1}", "call": calls}))
    return pd.concat(rows, ignore_index=True)
