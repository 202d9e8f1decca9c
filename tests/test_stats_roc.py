"""DeLong AUC, CIs and tests, checked against pROC on its own aSAH data.

Reference values: pROC (Robin et al. 2011, BMC Bioinformatics 12:77), github.com/xrobin/pROC,
tests/testthat/test-auc.R, test-ci.auc.R and test-roc.test.R (roc(aSAH$outcome, aSAH$<marker>)
with the default direction "<", i.e. higher marker = Poor outcome), and the ?ci.auc example
("95% CI: 0.6301-0.8326 (DeLong)" for s100b).
"""

import time

import numpy as np
import pandas as pd
import pytest

from mtbench.stats import roc


@pytest.fixture(scope="module")
def asah(shared_data):
    d = pd.read_csv(shared_data / "asah" / "asah.csv")
    d["poor"] = (d["outcome"] == "Poor").astype(int)
    return d


def test_auc_and_delong_ci_match_proc(asah):
    y = asah["poor"]
    # pROC test-auc.R / test-ci.auc.R
    r = roc.delong_auc(y, asah["wfns"])
    assert r.auc == pytest.approx(0.823678861788618, abs=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((0.748534887819453, 0.898822835757783), abs=1e-10)
    r = roc.delong_auc(y, asah["ndka"])
    assert (r.ci_low, r.auc, r.ci_high) == pytest.approx((0.501244999271703, 0.611957994579946, 0.722670989888189), abs=1e-10)
    # pROC ?ci.auc example: AUC 0.7314, 95% CI 0.6301-0.8326 (DeLong)
    r = roc.delong_auc(y, asah["s100b"])
    assert round(r.auc, 4) == 0.7314 and round(r.ci_low, 4) == 0.6301 and round(r.ci_high, 4) == 0.8326


def test_delong_ci_on_subset_matches_proc(asah):
    # pROC test-ci.auc.R: ci.auc(outcome ~ ndka, data = aSAH, subset = (gender == "Female"))
    f = asah[asah["gender"] == "Female"]
    r = roc.delong_auc(f["poor"], f["ndka"])
    assert (r.ci_low, r.auc, r.ci_high) == pytest.approx((0.5261398281, 0.6671428571, 0.8081458862), abs=1e-9)


def test_direction_reverses_scores(asah):
    # pROC test-ci.auc.R: ci.auc(aSAH$outcome, -aSAH$ndka) gives the same CI (direction ">")
    r = roc.delong_auc(asah["poor"], -asah["ndka"], direction=">")
    assert r.auc == pytest.approx(0.611957994579946, abs=1e-12)


@pytest.mark.parametrize(
    "a, b, z, p",
    [  # pROC test-roc.test.R, "roc.test statistic and p are as expected with defaults"
        ("wfns", "s100b", 2.20898359144091, 0.0271757822291882),
        ("wfns", "ndka", 2.79777591868904, 0.00514557970691098),
        ("ndka", "s100b", -1.39077002573558, 0.164295175223054),
    ],
)
def test_paired_delong_matches_proc(asah, a, b, z, p):
    r = roc.delong_test(asah["poor"], asah[a], asah[b])
    assert r.statistic == pytest.approx(z, rel=1e-9)
    assert r.p_value == pytest.approx(p, rel=1e-9)
    rev = roc.delong_test(asah["poor"], asah[b], asah[a])
    assert rev.statistic == pytest.approx(-z, rel=1e-9) and rev.p_value == pytest.approx(p, rel=1e-9)


def test_one_sided_paired_delong_matches_proc(asah):
    # pROC: roc.test(r.wfns, r.s100b, alternative = "greater" / "less")
    y = asah["poor"]
    assert roc.delong_test(y, asah["wfns"], asah["s100b"], alternative="greater").p_value == pytest.approx(0.0135878911145941, rel=1e-9)
    assert roc.delong_test(y, asah["wfns"], asah["s100b"], alternative="less").p_value == pytest.approx(0.986412108885406, rel=1e-9)


@pytest.mark.parametrize(
    "a, b, d, p",
    [  # pROC test-roc.test.R, "unpaired roc.test statistic and p are as expected"
        ("wfns", "s100b", 1.43490640926908, 0.152825378808796),
        ("wfns", "ndka", 3.10125096778969, 0.00220950791756457),
        ("ndka", "s100b", -1.55995743389685, 0.120192832430845),
    ],
)
def test_unpaired_delong_matches_proc(asah, a, b, d, p):
    y = asah["poor"]
    r = roc.delong_test_unpaired(y, asah[a], y, asah[b])
    assert r.statistic == pytest.approx(d, rel=1e-9)
    assert r.p_value == pytest.approx(p, rel=1e-9)
    # pROC: alternative = "greater" gives p 0.076412689404398 for wfns vs s100b
    if a == "wfns" and b == "s100b":
        assert roc.delong_test_unpaired(y, asah[a], y, asah[b], alternative="greater").p_value == pytest.approx(0.076412689404398, rel=1e-9)


def test_identical_curves_give_z_zero(asah):
    # pROC test-roc.test.R: roc.test(r.wfns, r.wfns) has Z = 0 and p = 1
    r = roc.delong_test(asah["poor"], asah["wfns"], asah["wfns"])
    assert r.statistic == 0 and r.p_value == 1


def test_fast_equals_naive_with_ties():
    # Sun & Xu (2014) is algebraically identical to DeLong et al. (1988): same AUCs and covariance.
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.normal(size=(3, 400)) + y, 1)  # rounding creates many ties
    auc_f, cov_f = roc.delong_covariance(y, s)
    auc_n, cov_n = roc.delong_naive(y, s)
    np.testing.assert_allclose(auc_f, auc_n, rtol=1e-12)
    np.testing.assert_allclose(cov_f, cov_n, rtol=1e-10, atol=1e-15)


def test_auc_batch_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)
    idx = rng.integers(0, 200, size=(5, 200))
    got = roc.auc_batch(y, s, idx)
    want = [roc_auc_score(y[i], s[i]) for i in idx]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_delong_is_fast_on_100k_cases():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100_000)
    s = rng.normal(size=(2, 100_000)) + y
    t = time.perf_counter()
    roc.delong_test(y, s[0], s[1])
    assert time.perf_counter() - t < 1.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="both classes"):
        roc.delong_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="binary"):
        roc.delong_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        roc.delong_auc([0, 1, 1], [0.1, np.nan, 0.3])
