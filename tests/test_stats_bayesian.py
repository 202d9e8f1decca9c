"""Bayesian signed-rank test (Benavoli et al. 2014 ICML; 2017 JMLR 18:77) against baycomp.

Reference values: baycomp 1.0.3 (the authors' package, github.com/janezd/baycomp),
``baycomp.multiple.SignedRankTest.probs(x, y, rope, nsamples=50000, random_state=seed)`` with
``x`` = C4.5+m and ``y`` = C4.5 of Demšar (2006) Table 2 (baycomp's differences are ``y - x``,
i.e. our ``a - b`` with a = C4.5, b = C4.5+m), prior 0.5:

* rope 0.01, seed 0: (p_left, p_rope, p_right) = (0.67096, 0.32904, 0.0)
* rope 0.01, seed 1: (0.66916, 0.33084, 0.0)
* rope 0.01, seed 0, prior 1.0: (0.6356, 0.3644, 0.0)
* rope 0 (two regions), seed 0: (p_left, p_right) = (0.99894, 0.00106)
* rope 0.05, seed 0: (0.0, 1.0, 0.0)

baycomp was run once, offline, to obtain these numbers; it is not a dependency. With the same
seed our posterior draws equal baycomp's to 1e-15, so the probabilities match exactly.
"""

import numpy as np
import pandas as pd
import pytest

from mtbench.stats import bayesian_signed_rank_test

IDS = [f"d{i}" for i in range(14)]
C45 = pd.Series([0.763, 0.599, 0.954, 0.628, 0.882, 0.936, 0.661, 0.583, 0.775, 1.000, 0.940, 0.619, 0.972, 0.957], index=IDS)
C45M = pd.Series([0.768, 0.591, 0.971, 0.661, 0.888, 0.931, 0.668, 0.583, 0.838, 1.000, 0.962, 0.666, 0.981, 0.978], index=IDS)


@pytest.mark.parametrize("rope, seed, prior, expected", [
    (0.01, 0, 0.5, (0.67096, 0.32904, 0.0)),
    (0.01, 1, 0.5, (0.66916, 0.33084, 0.0)),
    (0.01, 0, 1.0, (0.6356, 0.3644, 0.0)),
    (0.05, 0, 0.5, (0.0, 1.0, 0.0)),
])
def test_matches_baycomp(rope, seed, prior, expected):
    r = bayesian_signed_rank_test(C45, C45M, rope=rope, prior=prior, seed=seed, nsamples=50000)
    assert (r.p_left, r.p_rope, r.p_right) == pytest.approx(expected, abs=1e-12)
    assert r.samples.shape == (50000, 3) and np.allclose(r.samples.sum(axis=1), 1)


def test_two_region_version_and_orientation():
    r = bayesian_signed_rank_test(C45, C45M, rope=0.0, seed=0)
    assert (r.p_left, r.p_right) == pytest.approx((0.99894, 0.00106), abs=1e-12) and r.p_rope == 0
    assert r.decision() == "b better"
    flipped = bayesian_signed_rank_test(C45M, C45, rope=0.0, seed=0)
    assert flipped.p_right == pytest.approx(r.p_left, abs=1e-12)  # same draws, mirrored differences
    assert bayesian_signed_rank_test(C45, C45M, rope=0.05).decision() == "equivalent"


def test_pairs_by_key_and_refusals():
    shuffled = C45M.sample(frac=1.0, random_state=0)
    assert bayesian_signed_rank_test(C45, shuffled, seed=0).p_left == pytest.approx(0.67096, abs=1e-12)
    with pytest.raises(ValueError, match="rope"):
        bayesian_signed_rank_test(C45, C45M, rope=-0.1)
    with pytest.raises(ValueError, match="only in"):
        bayesian_signed_rank_test(C45, C45M.drop("d0"))
