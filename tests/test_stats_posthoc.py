"""Shaffer's and Bergmann-Hommel's all-pairs procedures after Friedman (García & Herrera 2008).

Data: García S. & Herrera F. (2008), "An extension on 'Statistical comparisons of classifiers over
multiple data sets' for all pairwise comparisons", JMLR 9:2677-2694, the accuracies of C4.5,
1-NN, NaiveBayes, Kernel and CN2 on 30 data sets, as distributed in the R package scmamp
(Calvo & Santafé 2016, data set ``data.gh.2008``, read from github.com/b0rxa/scmamp
data/data_gh_2008.RData). Average ranks as G&H 2008 report them: C4.5 2.100, 1-NN 3.250,
NaiveBayes 2.200, Kernel 4.333, CN2 3.117 (quoted from memory of the paper, which could not be
opened in this session to re-check; they agree with the scmamp data to the printed 3 decimals).

Not matched: the adjusted p-values of G&H 2008's table of the ten hypotheses could not be
retrieved here (neither the paper's table nor R to run scmamp's adjustShaffer /
adjustBergmannHommel), so the adjusted values below are checked against their definitions
(Shaffer 1986's S(k); Bergmann & Hommel's exhaustive sets enumerated independently in the test)
and the ordering Bergmann <= Shaffer <= Holm that G&H prove, not against printed numbers.
"""

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from mtbench.stats import posthoc as ph
from mtbench.stats import ranking as rk

GH2008 = pd.DataFrame(
    [[0.219, 0.202, 0.249, 0.165, 0.261],
     [0.803, 0.75, 0.813, 0.692, 0.798],
     [0.859, 0.814, 0.845, 0.542, 0.816],
     [0.809, 0.774, 0.673, 0.275, 0.785],
     [0.768, 0.79, 0.727, 0.872, 0.706],
     [0.759, 0.654, 0.734, 0.703, 0.714],
     [0.693, 0.611, 0.572, 0.689, 0.572],
     [0.544, 0.531, 0.558, 0.439, 0.541],
     [0.945, 0.954, 0.978, 0.541, 0.858],
     [0.725, 0.705, 0.739, 0.625, 0.717],
     [0.674, 0.736, 0.721, 0.356, 0.704],
     [0.801, 0.357, 0.52, 0.309, 0.52],
     [0.785, 0.77, 0.841, 0.659, 0.759],
     [0.71, 0.402, 0.728, 0.12, 0.674],
     [0.691, 0.827, 0.667, 0.527, 0.638],
     [0.743, 0.739, 0.83, 0.549, 0.746],
     [0.99, 0.482, 0.941, 0.857, 0.99],
     [0.867, 0.098, 0.915, 0.986, 0.784],
     [0.821, 0.872, 0.815, 0.885, 0.778],
     [0.893, 0.824, 0.902, 0.739, 0.885],
     [0.799, 0.655, 0.925, 0.517, 0.755],
     [0.845, 0.731, 0.693, 0.653, 0.704],
     [0.741, 0.701, 0.591, 0.663, 0.619],
     [0.799, 0.994, 0.603, 0.269, 0.621],
     [0.949, 0.955, 0.989, 0.77, 0.954],
     [0.555, 0.505, 0.569, 0.312, 0.556],
     [0.928, 0.928, 0.945, 0.419, 0.897],
     [0.915, 0.857, 0.86, 0.7, 0.777],
     [0.855, 0.796, 0.857, 0.607, 0.809],
     [0.906, 0.359, 0.895, 0.641, 0.918]],
    columns=[np.str_('C4.5'), np.str_('k-NN(k=1)'), np.str_('NaiveBayes'), np.str_('Kernel'), np.str_('CN2')],
    index=['Abalone*', 'Adult*', 'Australian', 'Autos', 'Balance', 'Breast', 'Bupa', 'Cleveland', 'Dermatology', 'German', 'Glass', 'Hayes-Roth', 'Heart', 'Led7Digit', 'Letter*', 'Lymphography', 'Mushrooms*', 'OptDigits*', 'Satimage*', 'SpamBase*', 'Splice*', 'Tic-tac-toe', 'Vehicle', 'Vowel', 'Wine', 'Yeast', 'Zoo', 'Car', 'Crx', 'Ion'],
)


def test_average_ranks_match_garcia_herrera():
    r = rk.average_ranks(GH2008)
    np.testing.assert_allclose(r.round(3).to_numpy(), [2.100, 3.250, 2.200, 4.333, 3.117])


def test_shaffer_true_counts():
    # Shaffer (1986): S(k) = numbers of true pairwise hypotheses over all partitions of k models;
    # k = 4: partitions 4 | 3+1 | 2+2 | 2+1+1 | 1+1+1+1 -> 6, 3, 2, 1, 0
    assert ph.shaffer_true_counts(3) == (0, 1, 3)
    assert ph.shaffer_true_counts(4) == (0, 1, 2, 3, 6)
    assert ph.shaffer_true_counts(5) == (0, 1, 2, 3, 4, 6, 10)


def _exhaustive_bruteforce(p, k):
    # Independent check of Bergmann-Hommel: a set of pairs is exhaustive iff it is closed under
    # transitivity (A=B, B=C => A=C); try every subset of the 10 pairs for k = 5.
    pairs = list(combinations(range(k), 2))
    apv = np.zeros(len(pairs))
    for mask in range(1, 2 ** len(pairs)):
        members = [i for i in range(len(pairs)) if mask >> i & 1]
        eq = {pairs[i] for i in members}
        closed = all(((min(a, c), max(a, c)) in eq) for (a, b) in eq for (b2, c) in eq if b == b2 and a != c)
        closed = closed and all(((min(a, c), max(a, c)) in eq) for (a, b) in eq for (c, b2) in eq if b == b2 and a != c)
        closed = closed and all(((min(b, c), max(b, c)) in eq) for (a, b) in eq for (a2, c) in eq if a == a2 and b != c)
        if closed:
            v = len(members) * p[members].min()
            apv[members] = np.maximum(apv[members], v)
    return np.minimum(apv, 1)


def test_bergmann_shaffer_holm_on_garcia_herrera_example():
    holm = ph.friedman_posthoc(GH2008, "holm")
    shaf = ph.friedman_posthoc(GH2008, "shaffer")
    berg = ph.friedman_posthoc(GH2008, "bergmann")
    p = holm["p_value"].to_numpy()
    # unadjusted p of the z test: C4.5 vs Kernel, z = (2.1 - 4.3333) / sqrt(5 * 6 / (6 * 30))
    assert holm.loc[(holm.model_a == "C4.5") & (holm.model_b == "Kernel"), "z"].item() == pytest.approx(-2.2333333 / np.sqrt(1 / 6), rel=1e-6)
    assert (berg.p_adjusted <= shaf.p_adjusted + 1e-15).all() and (shaf.p_adjusted <= holm.p_adjusted + 1e-15).all()
    np.testing.assert_allclose(berg.p_adjusted, _exhaustive_bruteforce(p, 5), rtol=1e-12)
    # Shaffer by hand: sorted p times t = (10, 6, 6, 6, 6, 4, 4, 3, 2, 1), running max
    t = np.array([10, 6, 6, 6, 6, 4, 4, 3, 2, 1])
    order = np.argsort(p)
    expected = np.minimum(1, np.maximum.accumulate(t * p[order]))
    np.testing.assert_allclose(shaf.p_adjusted.to_numpy()[order], expected, rtol=1e-12)
    # at alpha = 0.05 Holm rejects 5 hypotheses, Shaffer 6, Bergmann-Hommel 8 (the power ordering of G&H 2008)
    assert [(x.p_adjusted < 0.05).sum() for x in (holm, shaf, berg)] == [5, 6, 8]


def test_matrix_input_and_limits():
    p = ph.friedman_posthoc(GH2008, "holm")
    mat = pd.DataFrame(np.ones((5, 5)), index=GH2008.columns, columns=GH2008.columns)
    for _, r in p.iterrows():
        mat.loc[r.model_a, r.model_b] = mat.loc[r.model_b, r.model_a] = r.p_value
    adj = ph.bergmann_hommel_adjust(mat)
    assert adj.loc["Kernel", "CN2"] == pytest.approx(ph.friedman_posthoc(GH2008).set_index(["model_a", "model_b"]).loc[("Kernel", "CN2"), "p_adjusted"])
    with pytest.raises(ValueError, match="k = 11"):
        ph.bergmann_hommel_adjust(np.full(55, 0.5))
    with pytest.raises(ValueError, match="Expected"):
        ph.shaffer_adjust(np.full(7, 0.5), k=5)
