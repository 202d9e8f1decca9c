"""ROC analysis: AUC with DeLong variance and CI, DeLong's tests for two AUCs.

The variance of the empirical AUC (the Mann-Whitney statistic) is DeLong, DeLong & Clarke-Pearson
(1988, Biometrics 44:837) computed with the fast algorithm of Sun & Xu (2014, IEEE Signal
Processing Letters 21:1389): the "placement values" of every case and control come from three
mid-rankings, so the whole computation is ``O(n log n)`` instead of the ``O(n^2)`` pairwise
comparison matrix, and ``k`` models on the same cases are handled at once (their ``k x k``
covariance drives the paired test).

Conventions follow pROC (Robin et al. 2011, BMC Bioinformatics 12:77) so results can be checked
against it: a *higher* score means *more likely positive* (pROC's ``direction = "<"``; pass
``direction=">"`` when low scores mean positive), ties count one half, the CI is
``auc +/- z * se`` clipped to ``[0, 1]``. The unpaired test uses pROC's Welch-type degrees of
freedom and a Student t reference distribution.

Functions
---------
:func:`delong_auc`          AUC, variance, standard error and CI of one score
:func:`delong_covariance`   AUCs and their covariance for several scores on the same cases
:func:`delong_test`         paired test: two scores on the same cases (correlated AUCs)
:func:`delong_test_unpaired` two scores on different cases (independent AUCs)
:func:`delong_naive`        the O(n^2) reference implementation (tests, benchmark)
:func:`auc_batch`           AUCs of many resamples at once (used by the vectorised bootstrap)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = [
    "AUCResult",
    "DeLongTestResult",
    "delong_auc",
    "delong_covariance",
    "delong_test",
    "delong_test_unpaired",
    "delong_naive",
    "auc_batch",
    "roc_points",
]

_ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class AUCResult:
    """AUC of one score with its DeLong standard error and confidence interval."""

    auc: float
    se: float
    ci_low: float
    ci_high: float
    ci: float
    n_pos: int
    n_neg: int

    @property
    def var(self) -> float:
        return self.se**2

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"AUC {self.auc:.4f} ({100 * self.ci:.0f}% CI {self.ci_low:.4f}-{self.ci_high:.4f}, DeLong)"


@dataclass(frozen=True)
class DeLongTestResult:
    """Result of a DeLong test of ``auc1 == auc2``.

    ``statistic`` is Z (paired, normal reference) or D (unpaired, Student t with ``df``).
    ``ci_low``/``ci_high`` bound ``auc1 - auc2``.
    """

    auc1: float
    auc2: float
    difference: float
    se: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    paired: bool
    alternative: str
    df: float | None = None
    correlation: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        kind = "correlated" if self.paired else "independent"
        name = "Z" if self.paired else "D"
        return (
            f"DeLong test, two {kind} ROC curves: AUC {self.auc1:.4f} vs {self.auc2:.4f}, "
            f"{name} = {self.statistic:.4f}, p = {self.p_value:.4g}"
        )


# ----------------------------------------------------------------------------- inputs
def _binary_labels(y, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}.")
    if y.dtype == bool:
        return y
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"{name} contains NaN; drop unlabelled cases first.")
    values = np.unique(y)
    if y.dtype.kind not in "biuf" or not set(values.tolist()) <= {0, 1}:
        raise ValueError(f"{name} must be binary 0/1 (or bool); found values {values[:10].tolist()}.")
    return y.astype(bool)


def _scores_2d(scores, n: int, direction: str) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2 or s.shape[1] != n:
        raise ValueError(f"scores must have shape (n,) or (k, n) with n = {n} cases; got {np.shape(scores)}.")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; DeLong needs a score for every case.")
    if direction not in ("<", ">"):
        raise ValueError(f"direction must be '<' (higher score = positive) or '>' (lower = positive), got {direction!r}.")
    return s if direction == "<" else -s


def _check_alternative(alternative: str) -> str:
    alt = alternative.replace(".", "-").replace("_", "-")
    if alt not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}.")
    return alt


# ----------------------------------------------------------------------------- core
def _placements(y: np.ndarray, s: np.ndarray):
    """Sun & Xu (2014): AUCs and placement values of ``k`` scores ``s`` (k, n) from mid-ranks.

    For case ``i`` (positive) the placement ``V10_i`` is the fraction of controls it beats
    (ties 1/2); for control ``j`` ``V01_j`` is the fraction of cases that beat it. With
    ``T`` the mid-ranks in the pooled sample and ``T_X``/``T_Y`` those within cases/controls:
    ``V10_i = (T_i - T_X,i) / n``, ``V01_j = 1 - (T_j - T_Y,j) / m``.
    """
    pos, neg = s[:, y], s[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError(f"AUC needs both classes; got {m} positive and {n} negative cases.")
    t_all = stats.rankdata(s, axis=1)
    t_pos = stats.rankdata(pos, axis=1)
    t_neg = stats.rankdata(neg, axis=1)
    v10 = (t_all[:, y] - t_pos) / n
    v01 = 1.0 - (t_all[:, ~y] - t_neg) / m
    auc = v10.mean(axis=1)
    return auc, v10, v01


def delong_covariance(y, scores, direction: str = "<"):
    """AUCs of ``k`` scores on the same cases and their DeLong covariance matrix.

    Parameters
    ----------
    y:
        Binary labels (n,), 1/True = positive.
    scores:
        Array (n,) or (k, n): one row per model.
    direction:
        ``"<"`` when higher scores mean positive (default), ``">"`` otherwise.

    Returns ``(auc (k,), cov (k, k))``.
    """
    y = _binary_labels(y)
    s = _scores_2d(scores, len(y), direction)
    auc, v10, v01 = _placements(y, s)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.full((len(auc), len(auc)), np.nan)
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.full((len(auc), len(auc)), np.nan)
    return auc, s10 / m + s01 / n


def delong_auc(y, score, ci: float = 0.95, direction: str = "<") -> AUCResult:
    """AUC with DeLong standard error and a Wald confidence interval (as pROC's ``ci.auc``).

    >>> r = delong_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(r.auc, 3)
    0.75
    """
    y = _binary_labels(y)
    auc, cov = delong_covariance(y, score, direction)
    se = float(np.sqrt(max(cov[0, 0], 0.0)))
    z = stats.norm.ppf(0.5 + ci / 2)
    lo, hi = max(0.0, auc[0] - z * se), min(1.0, auc[0] + z * se)
    return AUCResult(float(auc[0]), se, float(lo), float(hi), ci, int(y.sum()), int((~y).sum()))


def _p_value(stat: float, alternative: str, dist) -> float:
    if alternative == "two-sided":
        return float(2 * dist.sf(abs(stat)))
    if alternative == "greater":
        return float(dist.sf(stat))
    return float(dist.cdf(stat))


def delong_test(y, score1, score2, alternative: str = "two-sided", ci: float = 0.95, direction: str = "<") -> DeLongTestResult:
    """DeLong's test for two correlated AUCs: two scores on the *same* cases.

    ``alternative="greater"`` tests ``auc1 > auc2``. The scores must be aligned case by case
    (two columns of one table, or two Predictions tables joined on ``sample_id``, see
    :func:`mtbench.stats.report.compare`).
    """
    alternative = _check_alternative(alternative)
    y = _binary_labels(y)
    auc, cov = delong_covariance(y, np.vstack([np.asarray(score1, float), np.asarray(score2, float)]), direction)
    diff = float(auc[0] - auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = float(np.sqrt(max(var, 0.0)))
    if se == 0:
        stat = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    else:
        stat = diff / se
    z = stats.norm.ppf(0.5 + ci / 2)
    denom = np.sqrt(cov[0, 0] * cov[1, 1])
    corr = float(cov[0, 1] / denom) if denom > 0 else float("nan")
    return DeLongTestResult(
        float(auc[0]), float(auc[1]), diff, se, float(stat), _p_value(stat, alternative, stats.norm),
        diff - z * se, diff + z * se, True, alternative, None, corr,
    )


def delong_test_unpaired(
    y1, score1, y2, score2, alternative: str = "two-sided", ci: float = 0.95, direction: str = "<"
) -> DeLongTestResult:
    """DeLong-based test for two AUCs on *different* cases (independent ROC curves).

    ``D = (auc1 - auc2) / sqrt(V1 + V2)`` against a Student t with the Welch-Satterthwaite
    degrees of freedom ``(V1 + V2)^2 / (V1^2 / (N1 - 1) + V2^2 / (N2 - 1))`` (``N`` = cases +
    controls), as in pROC's ``roc.test(..., paired = FALSE)``.
    """
    alternative = _check_alternative(alternative)
    r1, r2 = delong_auc(y1, score1, ci, direction), delong_auc(y2, score2, ci, direction)
    v1, v2 = r1.var, r2.var
    n1, n2 = r1.n_pos + r1.n_neg, r2.n_pos + r2.n_neg
    diff = r1.auc - r2.auc
    se = float(np.sqrt(v1 + v2))
    stat = diff / se if se > 0 else (0.0 if diff == 0 else float(np.sign(diff) * np.inf))
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1)) if se > 0 else float("inf")
    dist = stats.t(df)
    tq = dist.ppf(0.5 + ci / 2)
    return DeLongTestResult(
        r1.auc, r2.auc, diff, se, float(stat), _p_value(stat, alternative, dist), diff - tq * se, diff + tq * se,
        False, alternative, float(df), None,
    )


def delong_naive(y, scores, direction: str = "<"):
    """The textbook ``O(m n)`` DeLong: pairwise kernel matrix per model. Returns ``(auc, cov)``.

    Kept as the reference the fast algorithm is tested against, and for the benchmark.
    """
    y = _binary_labels(y)
    s = _scores_2d(scores, len(y), direction)
    m, n = int(y.sum()), int((~y).sum())
    v10 = np.empty((len(s), m))
    v01 = np.empty((len(s), n))
    for r, row in enumerate(s):
        x, z = row[y], row[~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        v10[r] = psi.mean(axis=1)
        v01[r] = psi.mean(axis=0)
    auc = v10.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return auc, cov


def auc_batch(y: np.ndarray, scores: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """AUC of each row of ``index`` (resamples of case positions), vectorised via ranks.

    ``AUC = (sum of positives' ranks - m (m + 1) / 2) / (m n)`` per row (ties mid-ranked).
    ``index`` has shape ``(B, size)``; ``None`` means one row with every case. Rows where one
    class is absent give NaN.
    """
    y = _binary_labels(y)
    s = np.asarray(scores, dtype=float)
    if index is None:
        index = np.arange(len(y))[None, :]
    yy = y[index]
    ranks = stats.rankdata(s[index], axis=1)
    m = yy.sum(axis=1).astype(float)
    n = yy.shape[1] - m
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * yy).sum(axis=1) - m * (m + 1) / 2) / (m * n)
    auc[(m == 0) | (n == 0)] = np.nan
    return auc


def roc_points(y, score, direction: str = "<"):
    """``(fpr, tpr, thresholds)`` of the empirical ROC curve (scikit-learn's ``roc_curve``)."""
    from sklearn.metrics import roc_curve

    y = _binary_labels(y)
    s = np.asarray(score, float) if direction == "<" else -np.asarray(score, float)
    return roc_curve(y, s, drop_intermediate=False)


def auc_table(y, scores: dict[str, Sequence[float]] | "object", ci: float = 0.95, direction: str = "<"):
    """One row per named score: ``name, auc, se, ci_low, ci_high, n_pos, n_neg`` (a DataFrame)."""
    import pandas as pd

    rows = [{"name": k, **delong_auc(y, v, ci, direction).to_dict()} for k, v in dict(scores).items()]
    return pd.DataFrame(rows)
