"""Paired comparisons: two models scored on the same folds, seeds, backbones or cases.

Which test answers which question
---------------------------------
* Same test cases, two classifiers' *decisions*: :func:`mcnemar_test` (statsmodels); ``k``
  classifiers: :func:`cochrans_q_test`.
* Same test cases, two *scores*' AUCs: :func:`mtbench.stats.roc.delong_test`.
* Scores per fold / seed / backbone, a handful of pairs: :func:`paired_ttest` (assumes roughly
  normal differences) or :func:`wilcoxon_test` (signed ranks; Demšar 2006 recommends it),
  :func:`sign_test`, or :func:`mtbench.stats.bayesian.bayesian_signed_rank_test` (with a ROPE).
  Both assume the pairs are *independent*; cross-validation folds are not (their training sets
  overlap), so on CV folds use :func:`corrected_resampled_ttest` (Nadeau & Bengio 2003) or
  :func:`bayesian_correlated_ttest` (Benavoli et al. 2017), which inflate the variance by the
  train/test overlap.

Pairs are matched by *name*, never by position: every function takes two ``pandas.Series``
indexed by the pairing key (fold, seed, backbone, ...) or a long table through
:func:`paired_values`. Keys present on one side only, duplicated keys, and missing values are
refused with an error that lists them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "PairedTestResult",
    "BayesianResult",
    "align_pairs",
    "paired_values",
    "paired_ttest",
    "wilcoxon_test",
    "corrected_resampled_ttest",
    "bayesian_correlated_ttest",
    "mcnemar_test",
    "sign_test",
    "cochrans_q_test",
    "compare_paired",
]


@dataclass(frozen=True)
class PairedTestResult:
    """A paired test of ``a - b``: mean difference, statistic, p-value, CI of the mean difference.

    Rank and sign tests also fill ``median_difference``; Wilcoxon fills ``r_plus``/``r_minus``,
    the sums of the ranks of the positive and negative differences (Demšar's R+ and R-;
    ``T = min(R+, R-)``).
    """

    test: str
    n: int
    mean_a: float
    mean_b: float
    mean_difference: float
    statistic: float
    p_value: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    df: float | None = None
    alternative: str = "two-sided"
    note: str = ""
    median_difference: float = float("nan")
    r_plus: float = float("nan")
    r_minus: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BayesianResult:
    """Posterior probabilities that ``a - b`` is below, inside or above the ROPE."""

    test: str
    n: int
    mean_difference: float
    scale: float
    df: int
    rope: tuple[float, float]
    p_left: float
    p_rope: float
    p_right: float

    def to_dict(self) -> dict:
        return asdict(self)

    def decision(self, threshold: float = 0.95) -> str:
        """``"a better"``, ``"b better"``, ``"equivalent"`` or ``"undecided"`` at ``threshold``."""
        if self.p_right >= threshold:
            return "a better"
        if self.p_left >= threshold:
            return "b better"
        if self.p_rope >= threshold:
            return "equivalent"
        return "undecided"


# ------------------------------------------------------------------------------ pairing
def _as_series(x, name: str) -> pd.Series:
    if isinstance(x, pd.Series):
        return x
    if isinstance(x, Mapping):
        return pd.Series(dict(x), name=name)
    if isinstance(x, pd.DataFrame) and x.shape[1] == 1:
        return x.iloc[:, 0]
    raise TypeError(
        f"{name} must be a pandas Series (or dict) indexed by the pairing key (fold, seed, backbone...); "
        f"got {type(x).__name__}. Pairs are matched by name, never by position."
    )


def align_pairs(a, b, names: tuple[str, str] = ("a", "b")) -> pd.DataFrame:
    """Join two keyed series into a two-column frame, refusing any mismatch.

    Raises ``ValueError`` naming duplicated keys, keys found on one side only, and keys whose
    value is missing.
    """
    a, b = _as_series(a, names[0]), _as_series(b, names[1])
    for s, nm in ((a, names[0]), (b, names[1])):
        dup = s.index[s.index.duplicated()].unique().tolist()
        if dup:
            raise ValueError(f"{nm} has duplicated keys {dup[:10]}; each key must occur once.")
    only_a = a.index.difference(b.index).tolist()
    only_b = b.index.difference(a.index).tolist()
    if only_a or only_b:
        raise ValueError(
            f"Keys do not match: only in {names[0]}: {only_a[:10]}, only in {names[1]}: {only_b[:10]}. "
            "Pair results by the same folds/seeds/backbones."
        )
    df = pd.DataFrame({names[0]: a, names[1]: b.reindex(a.index)})
    missing = df.index[df.isna().any(axis=1)].tolist()
    if missing:
        raise ValueError(f"Missing values for keys {missing[:10]}; drop or impute them explicitly.")
    return df.astype(float)


def paired_values(
    results: pd.DataFrame,
    a: str,
    b: str,
    key: str | Sequence[str],
    by: str = "model",
    value: str = "value",
    where: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """From a long results table, the values of models ``a`` and ``b`` joined on ``key``.

    ``where`` filters rows first (e.g. ``{"task": "prognosis", "metric": "auc"}``).
    Returns a frame indexed by ``key`` with columns ``a`` and ``b``.
    """
    key = [key] if isinstance(key, str) else list(key)
    df = results
    for col, val in dict(where or {}).items():
        if col not in df.columns:
            raise KeyError(f"results has no column {col!r} (columns: {list(df.columns)}).")
        df = df[df[col] == val]
    for col in key + [by, value]:
        if col not in df.columns:
            raise KeyError(f"results has no column {col!r} (columns: {list(df.columns)}).")
    sides = []
    for m in (a, b):
        part = df[df[by] == m]
        if part.empty:
            raise ValueError(f"No rows with {by} == {m!r}; available: {sorted(df[by].unique().tolist())}.")
        sides.append(part.set_index(key)[value])
    return align_pairs(sides[0], sides[1], (a, b))


def _pair(a, b) -> tuple[np.ndarray, np.ndarray, int]:
    df = a if (isinstance(a, pd.DataFrame) and b is None and a.shape[1] == 2) else align_pairs(a, b)
    x, y = df.iloc[:, 0].to_numpy(float), df.iloc[:, 1].to_numpy(float)
    return x, y, len(x)


# ------------------------------------------------------------------------------- tests
def paired_ttest(a, b=None, alternative: str = "two-sided", ci: float = 0.95) -> PairedTestResult:
    """Paired Student t-test of ``a - b`` (``scipy.stats.ttest_rel``), pairs matched by key."""
    x, y, n = _pair(a, b)
    res = stats.ttest_rel(x, y, alternative=alternative)
    lo, hi = res.confidence_interval(ci) if alternative == "two-sided" else (np.nan, np.nan)
    return PairedTestResult("paired t", n, x.mean(), y.mean(), float(np.mean(x - y)), float(res.statistic),
                            float(res.pvalue), float(lo), float(hi), float(n - 1), alternative)


def _signed_rank_sums(d: np.ndarray, zero_method: str) -> tuple[float, float]:
    """R+ and R- of the differences ``d`` as ``zero_method`` treats zeros (Demšar 2006, sec. 3.1.3)."""
    if zero_method == "wilcox":
        d = d[d != 0]
    r = stats.rankdata(np.abs(d))
    r_plus, r_minus = r[d > 0].sum(), r[d < 0].sum()
    if zero_method == "zsplit":
        r_plus, r_minus = r_plus + r[d == 0].sum() / 2, r_minus + r[d == 0].sum() / 2
    return float(r_plus), float(r_minus)


def wilcoxon_test(a, b=None, zero_method: str = "wilcox", alternative: str = "two-sided", method: str = "auto",
                  correction: bool = False) -> PairedTestResult:
    """Wilcoxon signed-rank test of ``a - b`` (``scipy.stats.wilcoxon``), pairs matched by key.

    ``zero_method``: ``"wilcox"`` drops zero differences (the classic test), ``"pratt"`` ranks them
    and then drops them, ``"zsplit"`` splits their ranks between the signs (Demšar 2006).
    ``statistic`` is scipy's: ``T = min(R+, R-)`` for ``alternative="two-sided"``, and ``R+`` (the
    rank sum of the positive differences ``a - b > 0``) for ``"greater"`` and ``"less"`` (R's ``V``).
    ``r_plus``/``r_minus`` hold both sums, ``median_difference`` the median of ``a - b``,
    ``mean_difference`` its mean. ``method``: ``"exact"``, ``"approx"`` (normal, with a
    continuity ``correction`` if asked, as R's ``wilcox.test`` does) or ``"auto"``.
    """
    x, y, n = _pair(a, b)
    d = x - y
    if np.all(d == 0):
        return PairedTestResult("wilcoxon", n, x.mean(), y.mean(), 0.0, float("nan"), 1.0, alternative=alternative,
                                note="all differences are zero", median_difference=0.0, r_plus=0.0, r_minus=0.0)
    res = stats.wilcoxon(x, y, zero_method=zero_method, alternative=alternative, method=method, correction=correction)
    r_plus, r_minus = _signed_rank_sums(d, zero_method)
    return PairedTestResult("wilcoxon", n, float(x.mean()), float(y.mean()), float(np.mean(d)), float(res.statistic),
                            float(res.pvalue), alternative=alternative, note=f"zero_method={zero_method}",
                            median_difference=float(np.median(d)), r_plus=r_plus, r_minus=r_minus)


def sign_test(a, b=None, alternative: str = "two-sided") -> PairedTestResult:
    """Sign test of ``a - b``: the number of wins of ``a`` among the non-tied pairs against
    Binomial(n, 1/2) (``scipy.stats.binomtest``; ties are dropped, as in ``statsmodels``'
    ``sign_test``). ``statistic`` is the number of wins of ``a``; the note gives wins/losses/ties.
    """
    x, y, n = _pair(a, b)
    d = x - y
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    ties = n - wins - losses
    p = stats.binomtest(wins, wins + losses, 0.5, alternative=alternative).pvalue if wins + losses else 1.0
    return PairedTestResult("sign", n, float(x.mean()), float(y.mean()), float(np.mean(d)), float(wins), float(p),
                            alternative=alternative, note=f"wins={wins}, losses={losses}, ties={ties}",
                            median_difference=float(np.median(d)))


def corrected_resampled_ttest(
    a, b=None, test_train_ratio: float | None = None, n_train: int | None = None, n_test: int | None = None,
    alternative: str = "two-sided", ci: float = 0.95,
) -> PairedTestResult:
    """Nadeau & Bengio (2003, Machine Learning 52:239) corrected resampled t-test.

    The variance of the mean difference over ``J`` resamples (CV folds, repeated splits) is
    inflated from ``s^2 / J`` to ``(1/J + n_test/n_train) s^2`` to account for the overlap of
    the training sets. With ``k``-fold CV, ``n_test/n_train = 1/(k-1)``. Give either
    ``test_train_ratio`` or ``n_train`` and ``n_test``.
    """
    if test_train_ratio is None:
        if not (n_train and n_test):
            raise ValueError("Give test_train_ratio, or both n_train and n_test (sizes of one resample's sets).")
        test_train_ratio = n_test / n_train
    x, y, n = _pair(a, b)
    d = x - y
    if n < 2:
        raise ValueError("The corrected resampled t-test needs at least two resamples.")
    mean, var = d.mean(), d.var(ddof=1)
    se = np.sqrt((1.0 / n + test_train_ratio) * var)
    t = mean / se if se > 0 else (0.0 if mean == 0 else np.sign(mean) * np.inf)
    dist = stats.t(n - 1)
    if alternative == "two-sided":
        p = 2 * dist.sf(abs(t))
    elif alternative == "greater":
        p = dist.sf(t)
    elif alternative == "less":
        p = dist.cdf(t)
    else:
        raise ValueError(f"alternative must be two-sided, greater or less; got {alternative!r}.")
    q = dist.ppf(0.5 + ci / 2)
    return PairedTestResult("Nadeau-Bengio corrected t", n, x.mean(), y.mean(), float(mean), float(t), float(p),
                            float(mean - q * se), float(mean + q * se), float(n - 1), alternative,
                            note=f"n_test/n_train={test_train_ratio:.4g}")


def bayesian_correlated_ttest(a, b=None, rope: float | tuple[float, float] = 0.01, rho: float | None = None,
                              n_folds: int | None = None) -> BayesianResult:
    """Bayesian correlated t-test (Corani & Benavoli 2015; Benavoli et al. 2017, JMLR 18:77).

    The posterior of the mean difference ``a - b`` over ``n`` correlated resamples is a Student t
    with ``n - 1`` degrees of freedom, location the mean difference and scale
    ``sqrt((1/n + rho/(1 - rho)) s^2)``; ``rho`` is the correlation induced by overlapping
    training sets, ``1/k`` for ``k``-fold CV (give ``rho`` or ``n_folds``). Returns the posterior
    probability of ``a - b`` left of, inside and right of the region of practical equivalence
    ``rope`` (a half-width, or ``(low, high)``).
    """
    if rho is None:
        if not n_folds:
            raise ValueError("Give rho (correlation between resamples) or n_folds (rho = 1/n_folds).")
        rho = 1.0 / n_folds
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be in [0, 1), got {rho}.")
    lo, hi = (-abs(rope), abs(rope)) if np.isscalar(rope) else (float(rope[0]), float(rope[1]))
    if lo > hi:
        raise ValueError(f"rope must be (low, high) with low <= high, got {rope}.")
    x, y, n = _pair(a, b)
    d = x - y
    if n < 2:
        raise ValueError("The Bayesian correlated t-test needs at least two resamples.")
    mean, var = d.mean(), d.var(ddof=1)
    scale = np.sqrt((1.0 / n + rho / (1 - rho)) * var)
    if scale == 0:
        left, inside = float(mean < lo), float(lo <= mean <= hi)
    else:
        post = stats.t(n - 1, loc=mean, scale=scale)
        left, inside = float(post.cdf(lo)), float(post.cdf(hi) - post.cdf(lo))
    return BayesianResult("Bayesian correlated t", n, float(mean), float(scale), n - 1, (lo, hi), left, inside,
                          float(max(0.0, 1.0 - left - inside)))


def mcnemar_test(correct_a, correct_b=None, exact: bool | None = None, correction: bool = True) -> PairedTestResult:
    """McNemar's test for two classifiers' decisions on the same cases (statsmodels).

    ``correct_a``/``correct_b`` are per-case booleans (prediction == truth); pass ``pandas``
    Series indexed by case id to have them matched by id. Or pass ``correct_a`` alone as the
    ``2 x 2`` table ``[[both right, only a right], [only b right, both wrong]]`` (any paired
    2 x 2 table: the off-diagonal cells are the discordant pairs). ``exact=None`` uses the exact binomial
    test when fewer than 25 discordant pairs, else the chi-square with continuity
    ``correction``. ``mean_a``/``mean_b`` are the two accuracies; ``statistic`` is the
    chi-square (or, exact, the smaller discordant count).
    """
    from statsmodels.stats.contingency_tables import mcnemar

    if correct_b is None:
        table = np.asarray(correct_a)
        if table.shape != (2, 2) or (table < 0).any():
            raise ValueError(f"With one argument, mcnemar_test needs a 2 x 2 table of counts; got shape {table.shape}.")
        n = int(table.sum())
        x = np.r_[np.ones(int(table[0].sum())), np.zeros(int(table[1].sum()))]
        y = np.r_[np.ones(int(table[0, 0])), np.zeros(int(table[0, 1])), np.ones(int(table[1, 0])), np.zeros(int(table[1, 1]))]
        return mcnemar_test(x.astype(bool), y.astype(bool), exact=exact, correction=correction)
    if isinstance(correct_a, (pd.Series, Mapping)) or isinstance(correct_b, (pd.Series, Mapping)):
        x, y, n = _pair(correct_a, correct_b)
    else:
        x, y = np.asarray(correct_a, float), np.asarray(correct_b, float)
        if x.shape != y.shape:
            raise ValueError(f"correct_a and correct_b differ in length ({len(x)} vs {len(y)}).")
        n = len(x)
    x, y = x.astype(bool), y.astype(bool)
    table = np.array([[np.sum(x & y), np.sum(x & ~y)], [np.sum(~x & y), np.sum(~x & ~y)]])
    b_, c_ = table[0, 1], table[1, 0]
    if exact is None:
        exact = (b_ + c_) < 25
    if b_ + c_ == 0:
        return PairedTestResult("McNemar", n, x.mean(), y.mean(), 0.0, 0.0, 1.0, note="no discordant pairs")
    res = mcnemar(table, exact=exact, correction=correction)
    kind = "exact" if exact else ("chi2, continuity corrected" if correction else "chi2")
    return PairedTestResult("McNemar", n, float(x.mean()), float(y.mean()), float(x.mean() - y.mean()),
                            float(res.statistic), float(res.pvalue), note=f"{kind}; discordant a-only={b_}, b-only={c_}")


def cochrans_q_test(correct) -> PairedTestResult:
    """Cochran's Q: do ``k >= 2`` classifiers have the same accuracy on the same cases?

    ``correct``: a ``cases x classifiers`` frame (or array) of 0/1 (prediction == truth); the
    k-classifier McNemar test (``statsmodels.stats.contingency_tables.cochrans_q``), chi-square
    with ``k - 1`` df. ``mean_a`` is the best and ``mean_b`` the worst accuracy.
    """
    from statsmodels.stats.contingency_tables import cochrans_q

    mat = correct.to_numpy() if isinstance(correct, pd.DataFrame) else np.asarray(correct)
    if mat.ndim != 2 or mat.shape[1] < 2:
        raise ValueError(f"correct must be cases x classifiers with >= 2 classifiers, got shape {mat.shape}.")
    if pd.isna(mat).any() or not np.isin(mat, (0, 1)).all():
        raise ValueError("correct must hold only 0/1 (or booleans) and no missing values.")
    res = cochrans_q(mat.astype(float))
    acc = mat.astype(float).mean(axis=0)
    return PairedTestResult("Cochran's Q", mat.shape[0], float(acc.max()), float(acc.min()), float(acc.max() - acc.min()),
                            float(res.statistic), float(res.pvalue), df=float(res.df), note=f"k={mat.shape[1]} classifiers")


_TESTS = {
    "ttest": paired_ttest,
    "wilcoxon": wilcoxon_test,
    "sign": sign_test,
    "nadeau_bengio": corrected_resampled_ttest,
    "bayesian": bayesian_correlated_ttest,
}


def compare_paired(
    results: pd.DataFrame, a: str, b: str, key: str | Sequence[str], test: str = "wilcoxon", by: str = "model",
    value: str = "value", where: Mapping[str, object] | None = None, **kwargs,
):
    """Join models ``a`` and ``b`` of a long results table on ``key`` and run ``test`` on ``a - b``.

    ``test``: ``"ttest"``, ``"wilcoxon"``, ``"sign"``, ``"nadeau_bengio"`` or ``"bayesian"``; extra keyword
    arguments go to the test (``test_train_ratio=``, ``rope=``, ``rho=`` ...).
    """
    if test not in _TESTS:
        raise ValueError(f"test must be one of {list(_TESTS)}, got {test!r}.")
    pairs = paired_values(results, a, b, key, by=by, value=value, where=where)
    return _TESTS[test](pairs, **kwargs)
