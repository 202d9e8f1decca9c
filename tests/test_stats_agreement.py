"""Cohen's and Fleiss' kappa against R's irr package on its own example data.

R irr 0.84 (Gamer et al.), data sets ``anxiety`` (20 subjects, 3 raters) and ``diagnoses``
(Fleiss 1971: 30 patients, 6 raters): ``kappa2(anxiety[, 2:3])`` = -0.006289308 (z = -0.0604,
p = 0.9518), ``kappa2(anxiety[, 2:3], "equal")`` = 0.1459075, ``kappa2(anxiety[, 2:3],
"squared")`` = 0.2520325, ``kappam.fleiss(diagnoses)`` = 0.4302445 (values as recorded in
statsmodels' test_inter_rater.py); ``kappa2(anxiety[, 2:3], c(0, 0, 1, 1, 2))`` = 0.2391304
(z = 1.223734, p = 0.2210526); ``kappam.fleiss(diagnoses)`` z = 17.65183. Wikipedia's Cohen's kappa example (50 proposals, 20/5/10/15):
kappa = 0.4; Fleiss (1971)/Wikipedia's 10 x 14-rater example: kappa = 0.210.
"""

import numpy as np
import pandas as pd
import pytest

from mtbench.stats import agreement as ag

ANXIETY = np.array(
    [3, 3, 3, 4, 5, 5, 2, 3, 5, 2, 2, 6, 1, 5, 2, 2, 1, 2, 4, 3, 3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4,
     2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2]
).reshape(20, 3, order="F")
DIAGNOSES = np.array(
    [[4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3],
     [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
     [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2],
     [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5], [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
     [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5]]
)


@pytest.mark.parametrize("weights, kappa", [(None, -0.006289308), ("linear", 0.1459075), ("quadratic", 0.2520325)])
def test_cohen_kappa_matches_irr(weights, kappa):
    r = ag.cohen_kappa(ANXIETY[:, 1], ANXIETY[:, 2], weights=weights)
    assert r.kappa == pytest.approx(kappa, abs=5e-8)
    if weights is None:
        assert r.z == pytest.approx(-0.0604067, abs=5e-6) and r.p_value == pytest.approx(0.9518317, abs=5e-7)


def test_cohen_kappa_wikipedia_example_and_id_matching():
    a = np.r_[np.ones(25), np.zeros(25)]
    b = np.r_[np.ones(20), np.zeros(5), np.ones(10), np.zeros(15)]
    assert ag.cohen_kappa(a, b).kappa == pytest.approx(0.4)
    ids = [f"c{i}" for i in range(50)]
    sa, sb = pd.Series(a, index=ids), pd.Series(b, index=ids)
    assert ag.cohen_kappa(sa, sb.iloc[::-1]).kappa == pytest.approx(0.4)  # matched by id
    with pytest.raises(ValueError, match="different cases"):
        ag.cohen_kappa(sa, sb.iloc[1:])


def test_cohen_kappa_any_weight_vector_matches_irr():
    # irr: kappa2(anxiety[, 2:3], c(0, 0, 1, 1, 2)): disagreement weights by |i - j| over the 5 levels
    r = ag.cohen_kappa(ANXIETY[:, 1], ANXIETY[:, 2], weights=[0, 0, 1, 1, 2])
    assert (r.kappa, r.z, r.p_value) == pytest.approx((0.2391304, 1.223734, 0.2210526), abs=5e-7)
    assert r.weights == "0,0,1,1,2"
    # the same as a full disagreement matrix, and from the 5 x 5 table
    from scipy.linalg import toeplitz

    w = toeplitz([0, 0, 1, 1, 2])
    levels = sorted(set(ANXIETY[:, 1]) | set(ANXIETY[:, 2]))
    table = np.array([[np.sum((ANXIETY[:, 1] == i) & (ANXIETY[:, 2] == j)) for j in levels] for i in levels])
    assert ag.cohen_kappa(ANXIETY[:, 1], ANXIETY[:, 2], weights=w).kappa == pytest.approx(0.2391304, abs=5e-8)
    assert ag.cohen_kappa(table, weights=[0, 0, 1, 1, 2]).kappa == pytest.approx(0.2391304, abs=5e-8)
    assert ag.cohen_kappa(table, weights="quadratic").kappa == pytest.approx(0.2520325, abs=5e-8)
    assert ag.cohen_kappa(table).n == 20
    with pytest.raises(ValueError, match="diagonal"):
        ag.cohen_kappa(table, weights=np.ones((5, 5)))
    with pytest.raises(ValueError, match="5 entries"):
        ag.cohen_kappa(table, weights=[0, 1, 2])


def test_fleiss_kappa_matches_irr_and_wikipedia():
    r = ag.fleiss_kappa(DIAGNOSES)
    assert r.kappa == pytest.approx(0.4302445, abs=5e-8) and float(r) == r.kappa
    assert r.z == pytest.approx(17.65183, abs=5e-6) and r.p_value < 1e-60  # irr prints p-value = 0
    from statsmodels.stats.inter_rater import aggregate_raters

    counts_table, _ = aggregate_raters(DIAGNOSES)
    rc = ag.fleiss_kappa(counts_table, counts=True)
    assert (rc.kappa, rc.z) == pytest.approx((r.kappa, r.z), abs=1e-12)
    with pytest.raises(ValueError, match="same number of raters"):
        ag.fleiss_kappa([[1, 2], [2, 2]], counts=True)
    # Wikipedia: counts of 14 raters per category for 10 subjects -> expand to ratings
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0],
              [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    ratings = np.array([np.repeat(np.arange(5), row) for row in counts])
    assert round(ag.fleiss_kappa(ratings).kappa, 3) == 0.210
    assert round(ag.fleiss_kappa(counts, counts=True).kappa, 3) == 0.210
    with pytest.raises(ValueError, match="lack a rating"):
        ag.fleiss_kappa(pd.DataFrame([[1, np.nan], [1, 1]]))


def test_pairwise_kappa_and_ratings_matrix():
    long = pd.DataFrame([(i, f"r{j}", DIAGNOSES[i, j]) for i in range(30) for j in range(6)], columns=["case_id", "reader", "call"])
    wide = ag.ratings_matrix(long)
    assert wide.shape == (30, 6)
    pk = ag.pairwise_kappa(wide)
    assert len(pk) == 15 and pk.kappa.between(-1, 1).all()
    with pytest.raises(ValueError, match="Duplicated"):
        ag.ratings_matrix(pd.concat([long, long.iloc[:1]]))
