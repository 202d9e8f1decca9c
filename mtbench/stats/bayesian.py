"""Bayesian signed-rank test (Benavoli et al. 2014, ICML; 2017, JMLR 18:77) for two models over data sets.

The frequentist Wilcoxon test answers "can I reject that the two models are equal?"; this test
answers the question a reader usually has: "how probable is it that model ``a`` is practically
better than ``b``, practically equivalent to it, or practically worse?", with *practically*
defined by a region of practical equivalence (ROPE), e.g. +/-0.01 AUC.

Model: the distribution of the per-data-set differences ``z = a - b`` gets a Dirichlet-process
posterior with a prior pseudo-observation at ``z0 = 0`` of strength ``prior`` (0.5 in baycomp,
1 in the 2014 paper). Each posterior draw is a set of Dirichlet weights ``w`` on ``(z0, z1..zn)``;
``theta_right = sum_ij w_i w_j [z_i + z_j > 2 r]`` (Walsh averages beyond the ROPE, ties 1/2),
``theta_left`` likewise below ``-2 r`` and ``theta_rope = 1 - theta_left - theta_right``. The
reported probabilities are, as in the authors' package baycomp, the fractions of draws in which
each of ``left``, ``rope``, ``right`` is the largest. The draws come from
``numpy.random.RandomState(seed).dirichlet`` in baycomp's order, so with the same seed the
samples are identical to ``baycomp.SignedRankTest`` (whose ``x, y`` are our ``b, a``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtbench.stats.paired import _pair

__all__ = ["SignedRankPosterior", "bayesian_signed_rank_test"]


@dataclass(frozen=True)
class SignedRankPosterior:
    """Posterior of the Bayesian signed-rank test of ``a - b``.

    ``p_left``/``p_rope``/``p_right``: probability that ``b`` is practically better, that the two
    are practically equivalent, that ``a`` is practically better. ``samples`` (``nsamples x 3``)
    are the posterior draws of ``(theta_left, theta_rope, theta_right)`` for a simplex plot.
    """

    n: int
    rope: float
    prior: float
    p_left: float
    p_rope: float
    p_right: float
    samples: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("n", "rope", "prior", "p_left", "p_rope", "p_right")}

    def decision(self, threshold: float = 0.95) -> str:
        """``"a better"``, ``"b better"``, ``"equivalent"`` or ``"undecided"`` at ``threshold``."""
        for p, word in ((self.p_right, "a better"), (self.p_left, "b better"), (self.p_rope, "equivalent")):
            if p >= threshold:
                return word
        return "undecided"


def _heaviside(x: np.ndarray, thresh: float) -> np.ndarray:
    return (x > thresh) + 0.5 * (x == thresh)


def bayesian_signed_rank_test(a, b=None, rope: float = 0.01, prior: float = 0.5, nsamples: int = 50000,
                              seed: int | None = 0, chunk: int = 2000) -> SignedRankPosterior:
    """Bayesian signed-rank test of ``a - b`` over *independent* data sets, with a ROPE.

    ``a``/``b``: per-data-set scores as ``pandas.Series`` keyed by data set (matched by name), or
    a two-column frame. ``rope``: half-width of the region of practical equivalence in the
    scores' units (``0`` gives the two-region test: ``p_rope`` is 0). ``prior``: strength of
    the pseudo-observation at 0. Monte Carlo error of each probability is about
    ``sqrt(p (1 - p) / nsamples)``.
    """
    if rope < 0:
        raise ValueError(f"rope is a half-width and must be >= 0, got {rope}.")
    if prior <= 0:
        raise ValueError(f"prior must be > 0, got {prior}.")
    x, y, n = _pair(a, b)
    z = np.r_[0.0, x - y]
    sums = z[:, None] + z[None, :]
    right = _heaviside(sums, 2 * rope)
    left = _heaviside(-sums, 2 * rope) if rope > 0 else 1.0 - right
    weights = np.ones(n + 1)
    weights[0] = prior
    w = np.random.RandomState(seed).dirichlet(weights, nsamples)
    samples = np.empty((nsamples, 3))
    for s in range(0, nsamples, chunk):  # w_i w_j summed over the region = w^T M w, chunked for memory
        ws = w[s : s + chunk]
        samples[s : s + chunk, 0] = np.einsum("si,ij,sj->s", ws, left, ws)
        samples[s : s + chunk, 2] = np.einsum("si,ij,sj->s", ws, right, ws)
    samples[:, 1] = 1.0 - samples[:, 0] - samples[:, 2]
    if rope == 0:  # two regions: the ROPE has no mass and never wins
        samples[:, 1] = 0.0
        samples[:, 0] = 1.0 - samples[:, 2]
    pl, pe, pr = np.bincount(np.argmax(samples, axis=1), minlength=3) / nsamples
    return SignedRankPosterior(n, float(rope), float(prior), float(pl), float(pe), float(pr), samples)
