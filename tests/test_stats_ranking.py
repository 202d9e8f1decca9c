"""Friedman / Iman-Davenport / Nemenyi / Bonferroni-Dunn, checked against Demšar (2006).

Demšar J., "Statistical comparisons of classifiers over multiple data sets", JMLR 7:1-30 (2006):
Table 6 (AUC of four C4.5 variants on 14 data sets), sec. 3.2.4 worked example: average ranks
3.143, 2.000, 2.893, 1.964; chi2_F = 9.28; F_F = 3.69; Nemenyi CD = 1.25 (alpha 0.05) and 1.12
(alpha 0.10); Bonferroni-Dunn CD = 1.04 (alpha 0.10); Table 5 critical values.

The table prints AUCs to three decimals; on "voting" C4.5+cf and C4.5+m+cf both read 0.975, but
the published ranks put C4.5+cf ahead, so we use 0.97501 for it (the unrounded order).
"""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from mtbench.stats import ranking as rk

matplotlib.use("Agg")

MODELS = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
TABLE6 = pd.DataFrame(
    [[0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967], [0.628, 0.661, 0.654, 0.657],
     [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931], [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625],
     [0.775, 0.838, 0.866, 0.875], [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
     [0.972, 0.981, 0.97501, 0.975], [0.957, 0.978, 0.946, 0.970]],
    columns=MODELS,
    index=["adult", "breast_cancer", "breast_cancer_wisconsin", "cmc", "ionosphere", "iris", "liver_disorders", "lung_cancer",
           "lymphography", "mushroom", "primary_tumor", "rheum", "voting", "wine"],
)


def test_friedman_and_iman_davenport_match_demsar():
    r = rk.friedman_test(TABLE6)
    np.testing.assert_allclose(r.ranks[MODELS].round(3), [3.143, 2.000, 2.893, 1.964])
    assert round(r.statistic, 2) == 9.28
    assert round(r.iman_davenport, 2) == 3.69
    assert (r.df1, r.df2) == (3, 39)
    assert r.p_value_iman_davenport < 0.05  # Demšar: F(3, 39) critical value 2.85 at alpha 0.05
    assert rk.average_ranks(TABLE6).equals(r.ranks)


@pytest.mark.parametrize(
    "k, alpha, test, q",
    [  # Demšar Table 5(a) Nemenyi and 5(b) Bonferroni-Dunn critical values
        (2, 0.05, "nemenyi", 1.960), (3, 0.05, "nemenyi", 2.343), (4, 0.05, "nemenyi", 2.569), (10, 0.05, "nemenyi", 3.164),
        (4, 0.10, "nemenyi", 2.291), (10, 0.10, "nemenyi", 2.920),
        (4, 0.05, "bonferroni-dunn", 2.394), (4, 0.10, "bonferroni-dunn", 2.128), (10, 0.05, "bonferroni-dunn", 2.773),
    ],
)
def test_critical_values_match_demsar_table_5(k, alpha, test, q):
    cd = rk.critical_difference(k, 6, alpha, test)
    assert cd / np.sqrt(k * (k + 1) / 36) == pytest.approx(q, abs=1.5e-3)


def test_critical_differences_of_the_worked_example():
    assert round(rk.critical_difference(4, 14, 0.05, "nemenyi"), 2) == 1.25
    assert round(rk.critical_difference(4, 14, 0.10, "nemenyi"), 2) == 1.12
    assert round(rk.critical_difference(4, 14, 0.10, "bonferroni-dunn"), 2) == 1.04


def test_post_hoc_conclusions_of_the_worked_example():
    ranks = rk.friedman_test(TABLE6).ranks
    # Nemenyi at 0.05: "the data is not sufficient" - no pair differs (all in one clique)
    assert rk.cliques_from_cd(ranks, rk.critical_difference(4, 14, 0.05)) == [["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]
    assert (rk.nemenyi_test(TABLE6).to_numpy() > 0.05).all()
    # Nemenyi at 0.10: C4.5 is worse than C4.5+m and C4.5+m+cf; C4.5+cf undecided
    assert rk.cliques_from_cd(ranks, rk.critical_difference(4, 14, 0.10)) == [["C4.5+m+cf", "C4.5+m", "C4.5+cf"], ["C4.5+cf", "C4.5"]]
    p = rk.nemenyi_test(TABLE6)
    assert p.loc["C4.5", "C4.5+m"] < 0.10 and p.loc["C4.5", "C4.5+m+cf"] < 0.10 and p.loc["C4.5", "C4.5+cf"] > 0.10
    # Bonferroni-Dunn at 0.10 with C4.5 as control: +m and +m+cf significantly better, +cf not
    ct = rk.control_test(TABLE6, "C4.5", correction="bonferroni").set_index("model")
    assert ct.loc["C4.5+m", "p_adjusted"] < 0.10 and ct.loc["C4.5+m+cf", "p_adjusted"] < 0.10
    assert ct.loc["C4.5+cf", "p_adjusted"] > 0.10


def test_p_value_corrections_match_statsmodels_reference():
    # Holm (1979) step-down on p = (0.01, 0.04, 0.03, 0.005): sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1
    np.testing.assert_allclose(rk.correct_pvalues([0.01, 0.04, 0.03, 0.005], "holm"), [0.03, 0.06, 0.06, 0.02])
    # Benjamini & Hochberg (1995): p_(i) * m / i, then cumulative minimum from the top
    np.testing.assert_allclose(rk.correct_pvalues([0.01, 0.04, 0.03, 0.005], "bh"), [0.02, 0.04, 0.04, 0.02])
    # Hochberg (1988) step-up: 0.04*1, min(0.03*2, .04), ...
    np.testing.assert_allclose(rk.correct_pvalues([0.01, 0.04, 0.03, 0.005], "hochberg"), [0.03, 0.04, 0.04, 0.02])
    with pytest.raises(ValueError, match="Unknown correction"):
        rk.correct_pvalues([0.1], "magic")


def test_pairwise_wilcoxon_holm_on_demsar_table():
    pw = rk.pairwise_wilcoxon(TABLE6, correction="holm")
    assert len(pw) == 6
    row = pw[(pw.model_a == "C4.5") & (pw.model_b == "C4.5+m")].iloc[0]
    assert row.p_value < 0.05  # Demšar sec. 3.1.3: C4.5+m better than C4.5 by Wilcoxon
    assert (pw.p_adjusted >= pw.p_value).all()
    cliques = rk.cliques_from_pvalues(rk.average_ranks(TABLE6), pw, alpha=0.05)
    assert all(len(c) >= 2 for c in cliques)


def test_score_matrix_refuses_duplicates_and_gaps():
    long = TABLE6.reset_index(names="dataset").melt(id_vars="dataset", var_name="model", value_name="value")
    mat = rk.score_matrix(long)
    assert mat.shape == (14, 4)
    with pytest.raises(ValueError, match="Duplicated"):
        rk.score_matrix(pd.concat([long, long.iloc[:1]]))
    with pytest.raises(ValueError, match="Missing scores"):
        rk.score_matrix(long.iloc[1:])


def test_cd_diagram_draws():
    ranks = rk.average_ranks(TABLE6)
    fig = rk.plot_cd_diagram(ranks, rk.critical_difference(4, 14, 0.10), title="Demšar Fig. 1")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("CD = 1.12" in t for t in texts) and any("C4.5+m+cf" in t for t in texts)


def test_hommel_equals_closed_simes_tests():
    # Hommel (1988, Biometrika 75:383) is the closed testing procedure with Simes' (1986) test:
    # the adjusted p of H_i is the largest Simes p-value min_j |I| p_(j) / j over the sets I
    # containing i. No printed numeric example was found, so the closure is computed here by brute force.
    from itertools import combinations as comb

    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2, 0.025])
    m = len(p)
    expected = np.zeros(m)
    for size in range(1, m + 1):
        for subset in comb(range(m), size):
            ps = np.sort(p[list(subset)])
            simes = min(1.0, np.min(size * ps / np.arange(1, size + 1)))
            for i in subset:
                expected[i] = max(expected[i], simes)
    np.testing.assert_allclose(rk.correct_pvalues(p, "hommel"), expected, rtol=1e-12)
    assert (rk.correct_pvalues(p, "hommel") <= rk.correct_pvalues(p, "hochberg") + 1e-15).all()


def test_control_test_z_sign():
    # z = (R_model - R_control) / SE: positive when the model ranks worse (rank 1 = best)
    ct = rk.control_test(TABLE6, "C4.5").set_index("model")
    se = np.sqrt(4 * 5 / (6 * 14))
    assert ct.loc["C4.5+m", "z"] == pytest.approx((2.000 - 3.143) / se, abs=2e-3)
