"""Paired tests, checked against published worked examples.

* Student's sleep data (Cushny & Peebles 1905, R's ``sleep``): R's ``t.test(extra ~ group, data =
  sleep, paired = TRUE)`` prints t = -4.0621, df = 9, p-value = 0.002833, 95% CI -2.4598858 to
  -0.7001142, mean difference -1.58 (R documentation example).
* Demšar (2006, JMLR 7:1), Table 2 and sec. 3.1.3: Wilcoxon signed-ranks test of C4.5 vs C4.5+m on
  14 data sets, zero differences split between the signs: R+ = 93, R- = 12, T = 12.
* Agresti (2007), An Introduction to Categorical Data Analysis, 2nd ed., Table 8.1 (presidential
  approval, 1600 people surveyed twice): McNemar z^2 = 17.35 (uncorrected), p < 0.001.
* Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91, example (Bentur et al. 2009):
  discordant pairs 1 and 7: McNemar asymptotic p = 0.034, exact conditional p = 0.070.
* Sign test on the sleep data: 9 of 9 non-zero differences favour drug 2; R's ``binom.test(9, 9)``
  gives p-value = 0.003906 (= 2 / 2^9).
* Cochran's Q: Conover (1999), Practical Nonparametric Statistics, p. 253, as in NIST Dataplot's
  COCHRAN TEST example (12 cases, 3 treatments): Q = 2.8, p = 0.246597.
"""

import numpy as np
import pandas as pd
import pytest

from mtbench.stats import paired as pt

SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
IDS = [f"p{i}" for i in range(1, 11)]

# Demšar (2006) Table 2: AUC of C4.5 and C4.5+m on 14 UCI data sets
DEMSAR_C45 = [0.763, 0.599, 0.954, 0.628, 0.882, 0.936, 0.661, 0.583, 0.775, 1.000, 0.940, 0.619, 0.972, 0.957]
DEMSAR_C45M = [0.768, 0.591, 0.971, 0.661, 0.888, 0.931, 0.668, 0.583, 0.838, 1.000, 0.962, 0.666, 0.981, 0.978]


def _sleep():
    return pd.Series(SLEEP_1, index=IDS), pd.Series(SLEEP_2, index=IDS)


def test_paired_ttest_matches_r_sleep_example():
    a, b = _sleep()
    r = pt.paired_ttest(a, b)
    assert r.statistic == pytest.approx(-4.0621, abs=5e-5)
    assert r.p_value == pytest.approx(0.002833, abs=5e-7)
    assert r.df == 9 and r.mean_difference == pytest.approx(-1.58)
    assert (r.ci_low, r.ci_high) == pytest.approx((-2.4598858, -0.7001142), abs=1e-7)


def test_pairs_are_matched_by_key_not_order():
    a, b = _sleep()
    shuffled = b.sample(frac=1.0, random_state=0)
    assert pt.paired_ttest(a, shuffled).statistic == pytest.approx(-4.0621, abs=5e-5)


def test_mismatched_duplicated_or_missing_keys_are_refused():
    a, b = _sleep()
    with pytest.raises(ValueError, match="only in a: \\['p1'\\]"):
        pt.paired_ttest(a, b.drop("p1"))
    with pytest.raises(ValueError, match="duplicated"):
        pt.paired_ttest(pd.concat([a, a.iloc[:1]]), b)
    bb = b.copy()
    bb["p3"] = np.nan
    with pytest.raises(ValueError, match="Missing values.*p3"):
        pt.paired_ttest(a, bb)
    with pytest.raises(TypeError, match="matched by name"):
        pt.paired_ttest(np.array(SLEEP_1), np.array(SLEEP_2))


def test_wilcoxon_matches_demsar_table_2():
    ids = [f"d{i}" for i in range(14)]
    a, b = pd.Series(DEMSAR_C45, index=ids), pd.Series(DEMSAR_C45M, index=ids)
    r = pt.wilcoxon_test(a, b, zero_method="zsplit")
    assert r.statistic == 12  # T = min(R+, R-) = min(93, 12)
    assert r.p_value < 0.05  # Demšar: T = 12 < 21, the critical value for N = 14 at alpha 0.05
    d = np.array(DEMSAR_C45M) - np.array(DEMSAR_C45)
    ranks = pd.Series(np.abs(d)).rank().to_numpy()
    assert ranks[d > 0].sum() + ranks[d == 0].sum() / 2 == 93
    # R+ and R- as fields (Demšar: R+ = 93 for C4.5+m, R- = 12; here a - b = C4.5 - C4.5+m)
    assert (r.r_plus, r.r_minus) == (12, 93)
    assert r.median_difference == pytest.approx(np.median(-d)) and r.mean_difference == pytest.approx(np.mean(-d))
    # one-sided: scipy's statistic is R+ (rank sum of positive a - b)
    assert pt.wilcoxon_test(b, a, zero_method="zsplit", alternative="greater").statistic == 93


def test_wilcoxon_matches_r_sleep_example():
    # R: wilcox.test(SLEEP_1, SLEEP_2, paired = TRUE) -> V = 0, p-value = 0.009091 (one zero
    # difference dropped, ties: normal approximation with continuity correction)
    a, b = _sleep()
    r = pt.wilcoxon_test(a, b, zero_method="wilcox", method="approx", correction=True)
    assert r.statistic == 0 and r.p_value == pytest.approx(0.009091, abs=5e-7)


def test_corrected_resampled_ttest_reduces_to_paired_t_and_inflates_variance():
    a, b = _sleep()
    plain = pt.corrected_resampled_ttest(a, b, test_train_ratio=0.0)
    assert plain.statistic == pytest.approx(-4.0621, abs=5e-5) and plain.p_value == pytest.approx(0.002833, abs=5e-7)
    # Nadeau & Bengio (2003): variance (1/J + n_test/n_train) s^2; 10-fold CV: n_test/n_train = 1/9
    nb = pt.corrected_resampled_ttest(a, b, n_train=90, n_test=10)
    assert nb.statistic == pytest.approx(-4.0621 * np.sqrt((1 / 10) / (1 / 10 + 1 / 9)), abs=5e-5)
    assert nb.p_value > plain.p_value


def test_bayesian_correlated_ttest_matches_t_test_posterior():
    # With rho = 0 and a zero-width ROPE the posterior P(a < b) is 1 - (one-sided t-test p),
    # the Student posterior of Benavoli et al. (2017), sec. 4: 1 - 0.002833/2.
    a, b = _sleep()
    r = pt.bayesian_correlated_ttest(a, b, rope=0.0, rho=0.0)
    assert r.p_left == pytest.approx(1 - 0.002833 / 2, abs=5e-7)
    assert r.decision() == "b better"
    wide = pt.bayesian_correlated_ttest(a, b, rope=10.0, n_folds=10)
    assert wide.p_rope > 0.95 and wide.decision() == "equivalent"
    with pytest.raises(ValueError, match="rho"):
        pt.bayesian_correlated_ttest(a, b)


def test_mcnemar_matches_agresti_and_fagerland():
    # Agresti Table 8.1: (approve, approve) 794, (approve, disapprove) 150, (disapprove, approve) 86, 570
    ca = np.r_[np.ones(794 + 150), np.zeros(86 + 570)].astype(bool)
    cb = np.r_[np.ones(794), np.zeros(150), np.ones(86), np.zeros(570)].astype(bool)
    r = pt.mcnemar_test(ca, cb, exact=False, correction=False)
    assert r.statistic == pytest.approx(17.35, abs=0.01) and r.p_value < 0.001
    # Fagerland et al. 2013: 1 and 7 discordant pairs (plus 1 and 12 concordant)
    ca = np.r_[np.ones(1 + 1), np.zeros(7 + 12)].astype(bool)
    cb = np.r_[np.ones(1), np.zeros(1), np.ones(7), np.zeros(12)].astype(bool)
    assert pt.mcnemar_test(ca, cb, exact=True).p_value == pytest.approx(0.070, abs=5e-4)
    assert pt.mcnemar_test(ca, cb, exact=False, correction=False).p_value == pytest.approx(0.034, abs=5e-4)
    # the same from 2 x 2 tables
    assert pt.mcnemar_test([[1, 1], [7, 12]], exact=True).p_value == pytest.approx(0.070, abs=5e-4)
    assert pt.mcnemar_test([[794, 150], [86, 570]], exact=False, correction=False).statistic == pytest.approx(17.35, abs=0.01)
    with pytest.raises(ValueError, match="2 x 2"):
        pt.mcnemar_test([[1, 2, 3]])


def test_sign_test_matches_binom_test():
    a, b = _sleep()
    r = pt.sign_test(a, b)
    assert r.statistic == 0 and r.p_value == pytest.approx(0.00390625, abs=1e-12)
    assert r.note == "wins=0, losses=9, ties=1"
    assert pt.sign_test(b, a, alternative="greater").p_value == pytest.approx(2.0**-9)


def test_cochrans_q_matches_conover():
    x = np.array([[1, 1, 1], [1, 1, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 1, 1], [1, 1, 1], [1, 1, 0], [0, 0, 1],
                  [0, 1, 0], [1, 1, 1], [1, 1, 1]])
    r = pt.cochrans_q_test(pd.DataFrame(x, columns=["a", "b", "c"]))
    assert (r.statistic, r.p_value) == pytest.approx((2.8, 0.246597), abs=5e-7) and r.df == 2
    with pytest.raises(ValueError, match="0/1"):
        pt.cochrans_q_test(x + 1)


def test_compare_paired_joins_long_results_by_key():
    rows = [{"model": m, "fold": f, "metric": "auc", "value": v}
            for m, vals in (("mtl", SLEEP_1), ("stl", SLEEP_2)) for f, v in zip(IDS, vals)]
    res = pd.DataFrame(rows).sample(frac=1.0, random_state=1)
    r = pt.compare_paired(res, "mtl", "stl", key="fold", test="ttest")
    assert r.statistic == pytest.approx(-4.0621, abs=5e-5)
    with pytest.raises(ValueError, match="No rows with model == 'xx'"):
        pt.compare_paired(res, "mtl", "xx", key="fold")
