"""Agreement between raters: Cohen's kappa (any weights) and Fleiss' kappa, with SE, z and p.

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

    def __float__(self) -> float:  # float(fleiss_kappa(...)) keeps working for code written for a bare float
        return self.kappa


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


def _weight_matrix(weights, k: int):
    """``(wt, weights, label)`` for statsmodels' ``cohens_kappa`` from our ``weights`` argument."""
    if weights is None or isinstance(weights, str):
        if weights not in _WEIGHTS:
            raise ValueError(f"weights must be None, 'linear', 'quadratic', a vector or a k x k matrix; got {weights!r}.")
        return _WEIGHTS[weights], None, _WEIGHTS[weights] or "unweighted"
    w = np.asarray(weights, dtype=float)
    label = ",".join(f"{v:g}" for v in w.ravel()) if w.ndim == 1 else "matrix"
    if w.ndim == 1 and w.size == k:  # irr's kappa2(weight = c(0, 0, 1, 1, 2)): disagreement by |i - j|
        return "toeplitz", w, label
    if w.shape == (k, k):
        if np.any(np.diag(w) != 0):
            raise ValueError("A weight matrix holds disagreement weights: its diagonal must be 0.")
        return None, w, label
    raise ValueError(f"weights must have {k} entries (one per distance |i - j|) or shape ({k}, {k}); got shape {w.shape}.")


def cohen_kappa(r1, r2=None, weights=None, labels: Sequence | None = None, ci: float = 0.95) -> KappaResult:
    """Cohen's kappa of two raters, from their ratings or from a ``k x k`` table.

    ``r1``/``r2``: the two raters' ratings (``pandas.Series`` indexed by case id are matched by
    id); or ``r1`` alone a ``k x k`` contingency table (rows rater 1, columns rater 2).
    ``weights`` are *disagreement* weights: ``None`` (unweighted), ``"linear"``, ``"quadratic"``,
    a vector of ``k`` weights by distance ``|i - j|`` between categories (irr's
    ``kappa2(weight = c(0, 0, 1, 1, 2))``), or a ``k x k`` matrix with a zero diagonal.
    Categories are the levels that occur (or ``labels=``), sorted, as in R's ``irr::kappa2``.
    ``statsmodels.stats.inter_rater.cohens_kappa`` computes kappa, its asymptotic SE (Fleiss, Cohen
    & Everitt 1969) and the test of kappa = 0 (``z``, ``p_value``).
    """
    from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

    if r2 is None:
        table = np.asarray(r1, dtype=float)
        if table.ndim != 2 or table.shape[0] != table.shape[1]:
            raise ValueError(f"With one argument, cohen_kappa needs a k x k table; got shape {table.shape}.")
        n = int(round(table.sum()))
    else:
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
        n = len(a)
    wt, w, label = _weight_matrix(weights, table.shape[0])
    res = sm_kappa(table, weights=w, wt=wt)
    z = stats.norm.ppf(0.5 + ci / 2)
    return KappaResult(float(res.kappa), float(res.std_kappa), float(res.kappa - z * res.std_kappa),
                       float(res.kappa + z * res.std_kappa), float(res.z_value), float(res.pvalue_two_sided), n, label)


def ratings_matrix(readings: pd.DataFrame, case: str = "case_id", rater: str = "reader", rating: str = "call") -> pd.DataFrame:
    """Long reading table -> ``cases x raters`` matrix; refuses duplicated (case, rater) rows."""
    for c in (case, rater, rating):
        if c not in readings.columns:
            raise KeyError(f"readings has no column {c!r} (columns: {list(readings.columns)}).")
    dup = readings.duplicated([case, rater], keep=False)
    if dup.any():
        raise ValueError(f"Duplicated (case, rater) readings:\n{readings.loc[dup, [case, rater]].head(10)}")
    return readings.pivot(index=case, columns=rater, values=rating)


def fleiss_kappa(ratings: pd.DataFrame | np.ndarray, method: str = "fleiss", counts: bool = False) -> KappaResult:
    """Fleiss' kappa for ``m`` raters, with the SE, z and p of R's ``irr::kappam.fleiss``.

    ``ratings``: ``cases x raters`` (one rating per cell), or with ``counts=True`` the usual
    ``subjects x categories`` table of how many raters chose each category (every row must sum
    to the same ``m``). Cases with a missing rating are refused (every case must be rated by
    all). ``method="randolph"`` gives the free-marginal kappa (no SE: NaN). ``statsmodels``
    computes kappa; the SE under kappa = 0 is Fleiss, Nee & Landis (1979), as in irr:
    ``var = 2 [(sum p_j q_j)^2 - sum p_j q_j (q_j - p_j)] / [(sum p_j q_j)^2 N m (m-1)]``.
    That SE holds under kappa = 0, so it serves the test (``z``, ``p_value``) but not a CI:
    ``ci_low``/``ci_high`` are NaN (bootstrap the cases for a CI). ``float(result)`` is the kappa.
    """
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    mat = ratings.to_numpy() if isinstance(ratings, pd.DataFrame) else np.asarray(ratings)
    if counts:
        table = np.asarray(mat, dtype=float)
        if table.ndim != 2 or np.isnan(table).any() or (table < 0).any():
            raise ValueError(f"counts must be a subjects x categories table of non-negative counts, got shape {table.shape}.")
        m_per_row = table.sum(axis=1)
        if not np.allclose(m_per_row, m_per_row[0]):
            bad = np.nonzero(~np.isclose(m_per_row, m_per_row[0]))[0][:10].tolist()
            raise ValueError(f"Every subject must be rated by the same number of raters; rows {bad} differ from row 0.")
    else:
        if mat.ndim != 2 or mat.shape[1] < 2:
            raise ValueError(f"ratings must be cases x raters with >= 2 raters, got shape {mat.shape}.")
        miss = pd.isna(mat).any(axis=1)
        if miss.any():
            raise ValueError(f"{int(miss.sum())} cases lack a rating from some rater; Fleiss' kappa needs complete rows.")
        table, _ = aggregate_raters(mat)
    n_sub, m = table.shape[0], float(table[0].sum())
    kappa = float(sm_fleiss(table, method=method))
    pj = table.sum(axis=0) / (n_sub * m)
    pq = pj * (1 - pj)
    if method == "fleiss" and pq.sum() > 0 and m > 1:
        var = 2 / (pq.sum() ** 2 * n_sub * m * (m - 1)) * (pq.sum() ** 2 - np.sum(pq * ((1 - pj) - pj)))
        se = float(np.sqrt(var))
    else:
        se = float("nan")
    zs = kappa / se if se > 0 else float("nan")
    p = float(2 * stats.norm.sf(abs(zs))) if np.isfinite(zs) else float("nan")
    return KappaResult(kappa, se, float("nan"), float("nan"), float(zs), p, int(n_sub), method)


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
