"""ROC coords and the best threshold, checked against pROC on its aSAH data.

pROC (Robin et al. 2011, BMC Bioinformatics 12:77) documentation of ``coords``:
``coords(roc(aSAH$outcome, aSAH$s100b), "best")`` (Youden) gives threshold 0.205, specificity
0.8055556, sensitivity 0.6341463; pROC places thresholds at ``-Inf``, the midpoints between
consecutive distinct values, ``+Inf`` (``roc(aSAH$outcome, aSAH$s100b)$thresholds``: 51 values for
49 distinct S100B levels). Wilson interval: Newcombe (1998, Stat Med 17:857) Table I, example
81/263: 0.2553 to 0.3662.
"""

import numpy as np
import pandas as pd
import pytest

from mtbench.stats import best_threshold, roc_coords


@pytest.fixture(scope="module")
def asah(shared_data):
    d = pd.read_csv(shared_data / "asah" / "asah.csv")
    d["poor"] = (d["outcome"] == "Poor").astype(int)
    return d


def test_best_threshold_matches_proc_coords(asah):
    r = best_threshold(asah["poor"], asah["s100b"], "youden")
    assert r.threshold == pytest.approx(0.205, abs=1e-12)
    assert r.specificity == pytest.approx(0.8055556, abs=5e-8) and r.sensitivity == pytest.approx(0.6341463, abs=5e-8)
    assert r.youden == pytest.approx(0.6341463 + 0.8055556 - 1, abs=1e-7)
    lo, hi = r.sensitivity_ci
    assert lo < r.sensitivity < hi and r.n_pos == 41 and r.n_neg == 72
    top = best_threshold(asah["poor"], asah["s100b"], "closest.topleft")
    d_top = (1 - top.sensitivity) ** 2 + (1 - top.specificity) ** 2
    c = roc_coords(asah["poor"], asah["s100b"])
    assert d_top == pytest.approx(((1 - c.sensitivity) ** 2 + (1 - c.specificity) ** 2).min())


def test_thresholds_are_proc_midpoints(asah):
    c = roc_coords(asah["poor"], asah["s100b"])
    u = np.unique(asah["s100b"])
    assert len(c) == len(u) + 1 == 51
    assert np.isneginf(c.threshold.iloc[0]) and np.isposinf(c.threshold.iloc[-1])
    np.testing.assert_allclose(c.threshold.iloc[1:-1], (u[:-1] + u[1:]) / 2)
    assert (c.sensitivity.iloc[0], c.specificity.iloc[0]) == (1.0, 0.0)
    # lower-is-positive gives the mirrored curve
    rev = best_threshold(asah["poor"], -asah["s100b"], direction=">")
    assert rev.threshold == pytest.approx(-0.205) and rev.sensitivity == pytest.approx(0.6341463, abs=5e-8)


def test_wilson_ci_matches_newcombe():
    y = np.r_[np.ones(263), np.zeros(10)]
    s = np.r_[np.ones(81), np.zeros(182), np.zeros(10)]  # 81 of 263 positives called positive at 0.5
    r = best_threshold(y, s)
    assert r.sensitivity == pytest.approx(81 / 263)
    assert r.sensitivity_ci == pytest.approx((0.2553, 0.3662), abs=5e-5)


def test_refusals():
    with pytest.raises(ValueError, match="method"):
        best_threshold([0, 1], [0.1, 0.2], "f1")
    with pytest.raises(ValueError, match="both classes"):
        roc_coords([1, 1], [0.1, 0.2])
