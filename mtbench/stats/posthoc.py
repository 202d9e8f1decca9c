"""All pairwise comparisons after a Friedman test, with logically related hypotheses.

With ``k`` models there are ``m = k (k-1) / 2`` pairwise hypotheses, but they are not free: if
A = B and B = C then A = C. Holm's step-down ignores this and multiplies the ``i``-th smallest
p-value by ``m - i + 1``; García & Herrera (2008, JMLR 9:2677) recommend two procedures that use
the logic and are more powerful, and give their adjusted p-values (APVs):

* :func:`shaffer_adjust` - Shaffer's (1986, JASA 81:826) static procedure: the ``i``-th
  multiplier is the largest number of hypotheses that can still be true once ``i - 1`` are false,
  ``t_i = max{s in S(k): s <= m - i + 1}``, with ``S(k)`` from :func:`shaffer_true_counts`;
  ``APV_i = min(1, max_{j <= i} t_j p_(j))``.
* :func:`bergmann_hommel_adjust` - Bergmann & Hommel (1988): a hypothesis is rejected when it is
  outside every *exhaustive* set (hypotheses that can all be true together: the pairs within the
  blocks of a partition of the models) not rejected by Bonferroni;
  ``APV_i = min(1, max{|I| min_{j in I} p_j : I exhaustive, H_i in I})``. All set partitions
  are enumerated (the Bell number ``B_k``: 52 for k = 5, 115975 for k = 10), so ``k <= 10``.

:func:`friedman_posthoc` runs the z tests of the rank differences (Demšar 2006, sec. 3.2.2) for
every pair and applies one of these, or any correction of :func:`correct_pvalues`.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np
import pandas as pd
from scipy import stats

from mtbench.stats.ranking import _matrix, _rank_se, average_ranks, correct_pvalues

__all__ = ["shaffer_true_counts", "shaffer_adjust", "bergmann_hommel_adjust", "friedman_posthoc"]

_MAX_K_BERGMANN = 10


@lru_cache(maxsize=None)
def shaffer_true_counts(k: int) -> tuple[int, ...]:
    """``S(k)``: the possible numbers of true hypotheses among the ``k (k-1)/2`` pairwise ones.

    Shaffer's (1986) recursion ``S(k) = U_{j=1..k} {C(j, 2) + x : x in S(k - j)}``, ``S(0) = S(1) = {0}``
    (a true-hypothesis pattern is a partition of the models into groups of equal ones).
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}.")
    if k <= 1:
        return (0,)
    return tuple(sorted({comb(j, 2) + x for j in range(1, k + 1) for x in shaffer_true_counts(k - j)}))


def _pairs_and_vector(p, k: int | None):
    """Accept a ``k x k`` p-value frame/array or a vector in ``combinations(range(k), 2)`` order."""
    if isinstance(p, pd.DataFrame) or np.ndim(p) == 2:
        mat = np.asarray(p, float)
        if mat.shape[0] != mat.shape[1]:
            raise ValueError(f"A p-value matrix must be square, got shape {mat.shape}.")
        k = mat.shape[0]
        pairs = list(combinations(range(k), 2))
        return k, pairs, np.array([mat[i, j] for i, j in pairs])
    vec = np.asarray(p, float)
    if k is None:
        k = int(round((1 + np.sqrt(1 + 8 * vec.size)) / 2))
    pairs = list(combinations(range(k), 2))
    if vec.size != len(pairs):
        raise ValueError(f"Expected k (k-1)/2 = {len(pairs)} p-values for k = {k} models, got {vec.size}.")
    return k, pairs, vec


def _as_output(p, k: int, pairs, apv: np.ndarray):
    if isinstance(p, pd.DataFrame) or np.ndim(p) == 2:
        out = np.ones((k, k))
        for (i, j), v in zip(pairs, apv):
            out[i, j] = out[j, i] = v
        return pd.DataFrame(out, index=p.index, columns=p.columns) if isinstance(p, pd.DataFrame) else out
    return apv


def shaffer_adjust(p, k: int | None = None):
    """Shaffer's static adjusted p-values for all ``k (k-1)/2`` pairwise hypotheses.

    ``p``: a ``k x k`` matrix (frame or array) of unadjusted p-values, or a vector in the order of
    ``itertools.combinations(models, 2)``. Returns the same shape.
    """
    k, pairs, vec = _pairs_and_vector(p, k)
    m = len(vec)
    s = np.array(shaffer_true_counts(k))
    order = np.argsort(vec, kind="stable")
    t = np.array([s[s <= m - i].max() for i in range(m)])  # i = 0..m-1 -> m - i hypotheses left
    apv_sorted = np.minimum(1.0, np.maximum.accumulate(t * vec[order]))
    apv = np.empty(m)
    apv[order] = apv_sorted
    return _as_output(p, k, pairs, apv)


def _set_partitions(items: list[int]):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1 :]
        yield [[first]] + part


def bergmann_hommel_adjust(p, k: int | None = None):
    """Bergmann & Hommel's adjusted p-values for all pairwise hypotheses (``k <= 10`` models).

    Same input and output conventions as :func:`shaffer_adjust`. Never larger than Shaffer's.
    """
    k, pairs, vec = _pairs_and_vector(p, k)
    if k > _MAX_K_BERGMANN:
        raise ValueError(f"Bergmann-Hommel enumerates all partitions of the models; k = {k} > {_MAX_K_BERGMANN} "
                         "is too many. Use shaffer_adjust.")
    index = {pr: n for n, pr in enumerate(pairs)}
    apv = np.zeros(len(vec))
    for part in _set_partitions(list(range(k))):
        members = [index[pr] for block in part for pr in combinations(sorted(block), 2)]
        if not members:
            continue
        value = len(members) * vec[members].min()
        apv[members] = np.maximum(apv[members], value)
    return _as_output(p, k, pairs, np.minimum(apv, 1.0))


def friedman_posthoc(scores: pd.DataFrame, correction: str = "bergmann", higher_is_better: bool = True) -> pd.DataFrame:
    """Every pair of models compared by the z test of their average ranks, p-values adjusted.

    ``z = (R_a - R_b) / sqrt(k (k+1) / (6 N))`` (positive: ``a`` ranks worse, rank 1 = best),
    ``p = 2 (1 - Phi(|z|))``. ``correction``: ``"bergmann"`` (Bergmann-Hommel), ``"shaffer"``,
    or any method of :func:`correct_pvalues` (``"holm"``, ``"hommel"``, ...). Returns one row per
    pair: ``model_a, model_b, rank_a, rank_b, z, p_value, p_adjusted``.
    """
    s = _matrix(scores)
    n, k = s.shape
    r = average_ranks(s, higher_is_better)
    rows = []
    for a, b in combinations(s.columns, 2):
        z = (r[a] - r[b]) / _rank_se(k, n)
        rows.append({"model_a": a, "model_b": b, "rank_a": r[a], "rank_b": r[b], "z": z, "p_value": 2 * stats.norm.sf(abs(z))})
    out = pd.DataFrame(rows)
    key = correction.lower().replace("_", "-")
    if key in ("bergmann", "bergmann-hommel"):
        out["p_adjusted"] = bergmann_hommel_adjust(out["p_value"].to_numpy(), k)
    elif key == "shaffer":
        out["p_adjusted"] = shaffer_adjust(out["p_value"].to_numpy(), k)
    else:
        out["p_adjusted"] = correct_pvalues(out["p_value"].to_numpy(), correction)
    return out
