"""Agreement between raters: Cohen's kappa (unweighted, linear, quadratic) and Fleiss' kappa.

Thin, checked wrappers around ``statsmodels.stats.inter_rater``: they build the contingency
tables from rating vectors, match the two raters' ratings by case id (``pandas.Series``), and
return the kappa with its asymptotic standard error, confidence interval and test of
``kappa = 0``. Categories are the levels that occur (or ``labels=``), in sorted order, so
linear/quadratic weights follow that order, as in R's ``irr::kappa2``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["BlandAltmanResult", "bland_altman", "KappaResult", "cohen_kappa", "fleiss_kappa", "pairwise_kappa", "ratings_matrix"]

_WEIGHTS = {None: None, "none": None, "unweighted": None, "linear": "linear", "quadratic": "quadratic"}


@dataclass(frozen=True)
class KappaResult:
    kappa: float
    se: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    n: int
    weights: str

    def to_dict(self) -> dict:
        return asdict(self)


def _pair_ratings(r1, r2):
    if isinstance(r1, pd.Series) and isinstance(r2, pd.Series):
        for s, nm in ((r1, "rater 1"), (r2, "rater 2")):
            if s.index.duplicated().any():
                raise ValueError(f"{nm} has duplicated case ids {s.index[s.index.duplicated()].unique().tolist()[:10]}.")
        only = r1.index.symmetric_difference(r2.index).tolist()
        if only:
            raise ValueError(f"The raters rated different cases; unmatched ids: {only[:10]}.")
        r2 = r2.reindex(r1.index)
        return r1.to_numpy(), r2.to_numpy()
    a, b = np.asarray(r1), np.asarray(r2)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"Ratings must be two 1-D arrays of equal length, got {a.shape} and {b.shape}.")
    return a, b


def cohen_kappa(r1, r2, weights: str | None = None, labels: Sequence | None = None, ci: float = 0.95) -> KappaResult:
    """Cohen's kappa of two raters (``weights``: ``None``, ``"linear"`` or ``"quadratic"``).

    Uses ``statsmodels.stats.inter_rater.cohens_kappa`` on the ``labels x labels`` table.
    ``se`` is the asymptotic SE (Fleiss, Cohen & Everitt 1969), ``z``/``p_value`` test kappa = 0.
    Pass ``pandas.Series`` indexed by case id to have ratings matched by id.
    """
    from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

    if weights not in _WEIGHTS:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}.")
    a, b = _pair_ratings(r1, r2)
    keep = ~(pd.isna(a) | pd.isna(b))
    if not keep.all():
        raise ValueError(f"{int((~keep).sum())} cases lack a rating from one rater; drop them explicitly.")
    levels = list(labels) if labels is not None else sorted(set(a.tolist()) | set(b.tolist()))
    pos = {v: i for i, v in enumerate(levels)}
    unknown = sorted({v for v in np.concatenate([a, b]).tolist() if v not in pos}, key=str)
    if unknown:
        raise ValueError(f"Ratings {unknown[:10]} are not among labels {levels}.")
    table = np.zeros((len(levels), len(levels)))
    np.add.at(table, ([pos[v] for v in a], [pos[v] for v in b]), 1)
    res = sm_kappa(table, wt=_WEIGHTS[weights])
    z = stats.norm.ppf(0.5 + ci / 2)
    return KappaResult(float(res.kappa), float(res.std_kappa), float(res.kappa - z * res.std_kappa),
                       float(res.kappa + z * res.std_kappa), float(res.z_value), float(res.pvalue_two_sided),
                       int(len(a)), _WEIGHTS[weights] or "unweighted")


def ratings_matrix(readings: pd.DataFrame, case: str = "case_id", rater: str = "reader", rating: str = "call") -> pd.DataFrame:
    """Long reading table -> ``cases x raters`` matrix; refuses duplicated (case, rater) rows."""
    for c in (case, rater, rating):
        if c not in readings.columns:
            raise KeyError(f"readings has no column {c!r} (columns: {list(readings.columns)}).")
    dup = readings.duplicated([case, rater], keep=False)
    if dup.any():
        raise ValueError(f"Duplicated (case, rater) readings:\n{readings.loc[dup, [case, rater]].head(10)}")
    return readings.pivot(index=case, columns=rater, values=rating)


def fleiss_kappa(ratings: pd.DataFrame | np.ndarray, method: str = "fleiss") -> float:
    """Fleiss' kappa for ``m`` raters: ``ratings`` is ``cases x raters`` (one rating per cell).

    Cases with any missing rating are refused (Fleiss' kappa assumes every case rated by all);
    ``method="randolph"`` gives the free-marginal variant. ``statsmodels`` does the computation.
    """
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    mat = ratings.to_numpy() if isinstance(ratings, pd.DataFrame) else np.asarray(ratings)
    if mat.ndim != 2 or mat.shape[1] < 2:
        raise ValueError(f"ratings must be cases x raters with >= 2 raters, got shape {mat.shape}.")
    miss = pd.isna(mat).any(axis=1)
    if miss.any():
        raise ValueError(f"{int(miss.sum())} cases lack a rating from some rater; Fleiss' kappa needs complete rows.")
    counts, _ = aggregate_raters(mat)
    return float(sm_fleiss(counts, method=method))


def pairwise_kappa(ratings: pd.DataFrame, weights: str | None = None) -> pd.DataFrame:
    """Cohen's kappa for every pair of raters (columns of a ``cases x raters`` frame)."""
    rows = []
    for a, b in combinations(ratings.columns, 2):
        both = ratings[[a, b]].dropna()
        rows.append({"rater_a": a, "rater_b": b, **cohen_kappa(both[a], both[b], weights=weights).to_dict()})
    return pd.DataFrame(rows)


# ------------------------------------------------------------- measurement agreement
@dataclass(frozen=True)
class BlandAltmanResult:
    """Bland-Altman agreement of two measurements: ``bias`` (mean of ``b - a``), ``sd`` of the
    differences, the 95% limits of agreement ``bias -/+ 1.96 sd`` and, for the bias and each limit,
    the approximate CIs of Bland & Altman (1999) (SE of a limit ``sqrt(3 sd^2 / n)``)."""

    n: int
    bias: float
    sd: float
    loa_low: float
    loa_high: float
    bias_ci: tuple[float, float]
    loa_low_ci: tuple[float, float]
    loa_high_ci: tuple[float, float]

    def to_dict(self) -> dict:
        return asdict(self)


def bland_altman(a, b, ci: float = 0.95) -> BlandAltmanResult:
    """Bland & Altman (1986) agreement between reference ``a`` and method ``b`` (differences ``b - a``).

    Pairs with a NaN are left out (and ``n`` says how many pairs were used).

    >>> r = bland_altman([10, 20, 30, 40], [12, 21, 33, 41])
    >>> round(r.bias, 2), round(r.sd, 3)
    (1.75, 0.957)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"bland_altman needs paired measurements of the same shape, got {a.shape} and {b.shape}.")
    ok = np.isfinite(a) & np.isfinite(b)
    d = (b - a)[ok]
    n = int(d.size)
    if n < 2:
        nan = float("nan")
        return BlandAltmanResult(n, nan, nan, nan, nan, (nan, nan), (nan, nan), (nan, nan))
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    t = float(stats.t.ppf(0.5 + ci / 2, n - 1))
    se_bias, se_loa = sd / np.sqrt(n), np.sqrt(3 * sd**2 / n)
    lo, hi = bias - 1.96 * sd, bias + 1.96 * sd
    def pm(x, se):
        return (float(x - t * se), float(x + t * se))

    return BlandAltmanResult(n, bias, sd, float(lo), float(hi), pm(bias, se_bias), pm(lo, se_loa), pm(hi, se_loa))
