"""Many models over many data sets (Demšar 2006, JMLR 7:1; Benavoli et al. 2016, JMLR 17:5).

Input is a score matrix: one row per *independent* block (data set; not CV folds of one data
set, which share training data), one column per model. :func:`score_matrix` builds it from a long
results table, refusing duplicated or missing cells.

* :func:`friedman_test` - Friedman chi-square and the Iman-Davenport F correction, average ranks
  (rank 1 = best).
* :func:`critical_difference` - Nemenyi (all pairs) and Bonferroni-Dunn (vs one control) CDs.
* :func:`nemenyi_test` / :func:`control_test` - post-hoc p-values from the rank differences.
* :func:`pairwise_wilcoxon` - all pairs by Wilcoxon signed-rank with a Holm (or other)
  correction, the alternative Benavoli et al. (2016) recommend because its outcome for a pair
  does not depend on which other models are in the comparison.
* :func:`correct_pvalues` - Holm, Hochberg, Hommel, Benjamini-Hochberg, Bonferroni (statsmodels).
* All pairs with Shaffer's or Bergmann-Hommel's procedure: :mod:`mtbench.stats.posthoc`.
* :func:`plot_cd_diagram` - Demšar's critical-difference diagram (matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "FriedmanResult",
    "score_matrix",
    "average_ranks",
    "friedman_test",
    "critical_difference",
    "nemenyi_test",
    "control_test",
    "pairwise_wilcoxon",
    "correct_pvalues",
    "cliques_from_cd",
    "cliques_from_pvalues",
    "plot_cd_diagram",
]

_CORRECTIONS = {
    "holm": "holm",
    "hochberg": "simes-hochberg",
    "simes-hochberg": "simes-hochberg",
    "bh": "fdr_bh",
    "fdr_bh": "fdr_bh",
    "benjamini-hochberg": "fdr_bh",
    "by": "fdr_by",
    "bonferroni": "bonferroni",
    "sidak": "sidak",
    "holm-sidak": "holm-sidak",
    "hommel": "hommel",
    "none": None,
}


# ------------------------------------------------------------------------------ inputs
def score_matrix(results: pd.DataFrame, block: str | Sequence[str] = "dataset", model: str = "model",
                 value: str = "value", where: dict | None = None) -> pd.DataFrame:
    """Pivot a long results table to ``blocks x models``, refusing duplicates and gaps.

    ``where`` filters rows first, e.g. ``{"task": "prognosis", "metric": "auc"}``.
    """
    df = results
    for col, val in dict(where or {}).items():
        df = df[df[col] == val]
    block = [block] if isinstance(block, str) else list(block)
    for c in block + [model, value]:
        if c not in df.columns:
            raise KeyError(f"results has no column {c!r} (columns: {list(df.columns)}).")
    dup = df.duplicated(block + [model], keep=False)
    if dup.any():
        raise ValueError(f"Duplicated (block, model) rows:\n{df.loc[dup, block + [model]].head(10)}")
    mat = df.pivot(index=block, columns=model, values=value)
    gaps = mat.isna()
    if gaps.any().any():
        where_ = [(i, c) for i, c in zip(*np.nonzero(gaps.to_numpy()))][:10]
        raise ValueError(f"Missing scores for (block, model): {[(mat.index[i], mat.columns[c]) for i, c in where_]}.")
    return mat.astype(float)


def _matrix(scores) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame):
        raise TypeError("scores must be a DataFrame: rows = data sets (blocks), columns = named models.")
    if scores.isna().any().any():
        raise ValueError("scores contain NaN; every model needs a score on every block.")
    if scores.shape[1] < 2 or scores.shape[0] < 2:
        raise ValueError(f"Need at least 2 blocks and 2 models, got shape {scores.shape}.")
    return scores.astype(float)


def average_ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Mean rank of each model over the blocks (1 = best; ties share the average rank)."""
    s = _matrix(scores)
    r = (-s if higher_is_better else s).rank(axis=1, method="average")
    return r.mean(axis=0).rename("average_rank")


# ----------------------------------------------------------------------------- Friedman
@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test (and Iman-Davenport's F) on ``n`` blocks and ``k`` models."""

    statistic: float
    p_value: float
    iman_davenport: float
    p_value_iman_davenport: float
    df1: int
    df2: int
    n: int
    k: int
    ranks: pd.Series

    def __str__(self) -> str:
        return (f"Friedman chi2_F = {self.statistic:.3f} (p = {self.p_value:.4g}); Iman-Davenport "
                f"F_F = {self.iman_davenport:.3f} with ({self.df1}, {self.df2}) df (p = {self.p_value_iman_davenport:.4g}); "
                f"N = {self.n} blocks, k = {self.k} models")


def friedman_test(scores: pd.DataFrame, higher_is_better: bool = True, tie_correction: bool = False) -> FriedmanResult:
    """Friedman's test with Iman & Davenport's (1980) F correction.

    ``chi2_F = 12 N / (k (k+1)) [sum_j R_j^2 - k (k+1)^2 / 4]`` from the average ranks ``R_j``
    (Demšar 2006, eq. in sec. 3.2.2), and ``F_F = (N-1) chi2_F / (N (k-1) - chi2_F)`` against
    ``F(k-1, (k-1)(N-1))``. ``tie_correction=True`` divides ``chi2_F`` by the usual tie factor
    (as ``scipy.stats.friedmanchisquare`` does); Demšar's formula has none.
    """
    s = _matrix(scores)
    n, k = s.shape
    if k < 3:
        raise ValueError("The Friedman test needs at least 3 models; for two use wilcoxon_test.")
    ranks_mat = (-s if higher_is_better else s).rank(axis=1, method="average").to_numpy()
    r = ranks_mat.mean(axis=0)
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(r**2) - k * (k + 1) ** 2 / 4)
    if tie_correction:
        ties = 0.0
        for row in ranks_mat:
            _, counts = np.unique(row, return_counts=True)
            ties += np.sum(counts**3 - counts)
        c = 1 - ties / (n * k * (k**2 - 1))
        chi2 = chi2 / c if c > 0 else chi2
    p = stats.chi2.sf(chi2, k - 1)
    den = n * (k - 1) - chi2
    ff = (n - 1) * chi2 / den if den > 0 else np.inf
    df1, df2 = k - 1, (k - 1) * (n - 1)
    pf = stats.f.sf(ff, df1, df2) if np.isfinite(ff) else 0.0
    return FriedmanResult(float(chi2), float(p), float(ff), float(pf), df1, df2, n, k,
                          pd.Series(r, index=s.columns, name="average_rank"))


# ---------------------------------------------------------------------- post-hoc tests
def _q_nemenyi(k: int, alpha: float) -> float:
    # Studentized range with infinite df, divided by sqrt(2) (Demšar 2006, Table 5a).
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2))


def _q_bonferroni_dunn(k: int, alpha: float) -> float:
    # Two-tailed z with a Bonferroni correction for k-1 comparisons (Demšar 2006, Table 5b).
    return float(stats.norm.ppf(1 - alpha / (2 * (k - 1))))


def critical_difference(k: int, n: int, alpha: float = 0.05, test: str = "nemenyi") -> float:
    """Critical difference of average ranks: ``q_alpha sqrt(k (k+1) / (6 N))``.

    ``test="nemenyi"`` (all pairs) or ``"bonferroni-dunn"`` (each model vs one control).
    """
    if k < 2 or n < 1:
        raise ValueError(f"Need k >= 2 models and n >= 1 blocks, got k={k}, n={n}.")
    t = test.lower().replace("_", "-")
    if t == "nemenyi":
        q = _q_nemenyi(k, alpha)
    elif t in ("bonferroni-dunn", "bonferroni", "dunn"):
        q = _q_bonferroni_dunn(k, alpha)
    else:
        raise ValueError(f"test must be 'nemenyi' or 'bonferroni-dunn', got {test!r}.")
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n)))


def _rank_se(k: int, n: int) -> float:
    return float(np.sqrt(k * (k + 1) / (6.0 * n)))


def nemenyi_test(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.DataFrame:
    """Nemenyi p-values for every pair of models (a ``k x k`` symmetric DataFrame).

    ``z = |R_i - R_j| / sqrt(k (k+1) / (6 N))``; ``p = P(Q_k > z sqrt 2)`` with ``Q_k`` the
    studentized range of ``k`` means and infinite degrees of freedom.
    """
    s = _matrix(scores)
    n, k = s.shape
    r = average_ranks(s, higher_is_better)
    z = np.abs(r.to_numpy()[:, None] - r.to_numpy()[None, :]) / _rank_se(k, n)
    p = stats.studentized_range.sf(z * np.sqrt(2), k, np.inf)
    np.fill_diagonal(p, 1.0)
    return pd.DataFrame(np.clip(p, 0, 1), index=s.columns, columns=s.columns)


def control_test(scores: pd.DataFrame, control: str, higher_is_better: bool = True, correction: str = "holm") -> pd.DataFrame:
    """Each model vs a ``control`` from the rank differences (z test), p-values corrected.

    ``correction="bonferroni"`` is the Bonferroni-Dunn test; ``"holm"`` (default) is uniformly
    more powerful (Demšar 2006, sec. 3.2.2). Columns ``model, rank, rank_difference, z, p_value,
    p_adjusted``. Sign: ``z = (R_model - R_control) / sqrt(k (k+1) / (6 N))`` with rank 1 = best,
    so a *positive* z means the model ranks *worse* than the control (Demšar writes
    ``(R_i - R_j)`` without fixing the order; the two-sided p-values do not depend on it).
    """
    s = _matrix(scores)
    if control not in s.columns:
        raise KeyError(f"control {control!r} is not a model; models: {list(s.columns)}.")
    n, k = s.shape
    r = average_ranks(s, higher_is_better)
    others = [m for m in s.columns if m != control]
    z = (r[others] - r[control]) / _rank_se(k, n)
    p = 2 * stats.norm.sf(np.abs(z.to_numpy()))
    return pd.DataFrame({"model": others, "rank": r[others].to_numpy(), "rank_difference": (r[others] - r[control]).to_numpy(),
                         "z": z.to_numpy(), "p_value": p, "p_adjusted": correct_pvalues(p, correction)})


def correct_pvalues(p_values, method: str = "holm", alpha: float = 0.05) -> np.ndarray:
    """Multiple-comparison adjusted p-values (``statsmodels.stats.multitest.multipletests``).

    ``method``: ``holm``, ``hochberg``, ``bh`` (Benjamini-Hochberg FDR), ``by``, ``bonferroni``,
    ``sidak``, ``holm-sidak``, ``hommel`` (Hommel 1988, closed Simes tests) or ``none``.
    """
    from statsmodels.stats.multitest import multipletests

    key = method.lower()
    if key not in _CORRECTIONS:
        raise ValueError(f"Unknown correction {method!r}; use one of {sorted(_CORRECTIONS)}.")
    p = np.asarray(p_values, dtype=float)
    if _CORRECTIONS[key] is None or p.size == 0:
        return p.copy()
    return multipletests(p, alpha=alpha, method=_CORRECTIONS[key])[1]


def pairwise_wilcoxon(scores: pd.DataFrame, correction: str = "holm", zero_method: str = "wilcox",
                      higher_is_better: bool = True) -> pd.DataFrame:
    """Wilcoxon signed-rank test for every pair of models over the blocks, p-values corrected.

    Returns columns ``model_a, model_b, median_difference, statistic, p_value, p_adjusted``,
    where the difference is ``a - b`` on the raw scores.
    """
    s = _matrix(scores)
    rows = []
    for a, b in combinations(s.columns, 2):
        d = s[a] - s[b]
        if np.all(d == 0):
            stat, p = np.nan, 1.0
        else:
            res = stats.wilcoxon(s[a], s[b], zero_method=zero_method)
            stat, p = float(res.statistic), float(res.pvalue)
        rows.append({"model_a": a, "model_b": b, "median_difference": float(np.median(d)), "statistic": stat, "p_value": p})
    out = pd.DataFrame(rows)
    out["p_adjusted"] = correct_pvalues(out["p_value"].to_numpy(), correction)
    return out


# ----------------------------------------------------------------------------- cliques
def cliques_from_cd(ranks: pd.Series, cd: float) -> list[list[str]]:
    """Maximal groups of models (consecutive in rank) whose rank range is below ``cd``."""
    r = ranks.sort_values()
    names, vals = list(r.index), r.to_numpy()
    groups = []
    for i in range(len(vals)):
        j = i
        while j + 1 < len(vals) and vals[j + 1] - vals[i] < cd:
            j += 1
        if j > i:
            groups.append((i, j))
    maximal = [g for g in groups if not any(o != g and o[0] <= g[0] and g[1] <= o[1] for o in groups)]
    return [names[i : j + 1] for i, j in maximal]


def cliques_from_pvalues(ranks: pd.Series, p_matrix: pd.DataFrame | pd.DataFrame, alpha: float = 0.05) -> list[list[str]]:
    """Maximal rank-consecutive groups in which no pair differs significantly.

    ``p_matrix`` is a ``k x k`` frame of (adjusted) p-values or the long output of
    :func:`pairwise_wilcoxon` (its ``p_adjusted`` column is used).
    """
    if {"model_a", "model_b", "p_adjusted"} <= set(p_matrix.columns):
        lut = {}
        for _, row in p_matrix.iterrows():
            lut[(row.model_a, row.model_b)] = lut[(row.model_b, row.model_a)] = row.p_adjusted
        pval = lambda a, b: lut[(a, b)]  # noqa: E731
    else:
        pval = lambda a, b: p_matrix.loc[a, b]  # noqa: E731
    r = ranks.sort_values()
    names = list(r.index)
    groups = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and all(pval(names[u], names[j + 1]) >= alpha for u in range(i, j + 1)):
            j += 1
        if j > i:
            groups.append((i, j))
    maximal = [g for g in groups if not any(o != g and o[0] <= g[0] and g[1] <= o[1] for o in groups)]
    return [names[i : j + 1] for i, j in maximal]


# ------------------------------------------------------------------------------- plot
def plot_cd_diagram(ranks: pd.Series, cd: float | None = None, cliques: list[list[str]] | None = None,
                    ax=None, title: str | None = None, width: float = 7.0):
    """Demšar's critical-difference diagram.

    Models sit on a rank axis (1 = best, on the left); a thick bar joins models that are not
    significantly different (``cliques``, by default :func:`cliques_from_cd` of ``cd``); the
    ``cd`` length is drawn above the axis. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    r = ranks.sort_values()
    k = len(r)
    if cliques is None:
        cliques = cliques_from_cd(r, cd) if cd is not None else []
    n_left = (k + 1) // 2
    height = 1.4 + 0.32 * max(n_left, k - n_left) + 0.18 * len(cliques)
    if ax is None:
        fig, ax = plt.subplots(figsize=(width, height))
    else:
        fig = ax.figure
    lo, hi = 1, max(k, int(np.ceil(r.max())))
    ax.set_xlim(lo - 0.6, hi + 0.6)
    ax.set_ylim(-(0.5 + 0.32 * max(n_left, k - n_left) + 0.18 * len(cliques)), 1.0)
    ax.axis("off")
    # rank axis
    ax.plot([lo, hi], [0, 0], color="k", lw=1)
    for t in range(lo, hi + 1):
        ax.plot([t, t], [0, 0.07], color="k", lw=1)
        ax.text(t, 0.12, str(t), ha="center", va="bottom", fontsize=9)
    for t in np.arange(lo + 0.5, hi, 1.0):
        ax.plot([t, t], [0, 0.035], color="k", lw=0.6)
    if cd is not None:
        ax.plot([lo, lo + cd], [0.6, 0.6], color="k", lw=1.5)
        for x in (lo, lo + cd):
            ax.plot([x, x], [0.55, 0.65], color="k", lw=1.5)
        ax.text(lo + cd / 2, 0.68, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
    # clique bars just below the axis
    for i, group in enumerate(cliques):
        y = -0.12 - 0.14 * i
        ax.plot([r[group[0]] - 0.03, r[group[-1]] + 0.03], [y, y], color="k", lw=3.5, solid_capstyle="round")
    base = -0.2 - 0.14 * len(cliques)
    for i, (name, v) in enumerate(r.items()):
        if i < n_left:
            y = base - 0.32 * i
            ax.plot([v, v, lo - 0.1], [0, y, y], color="0.3", lw=0.9)
            ax.text(lo - 0.15, y, f"{name} ({v:.2f})", ha="right", va="center", fontsize=9)
        else:
            y = base - 0.32 * (k - 1 - i)
            ax.plot([v, v, hi + 0.1], [0, y, y], color="0.3", lw=0.9)
            ax.text(hi + 0.15, y, f"({v:.2f}) {name}", ha="left", va="center", fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
