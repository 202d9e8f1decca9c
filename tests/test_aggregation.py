"""Pooled-over-folds vs mean-over-folds metrics, worked by hand."""

import numpy as np
import pandas as pd
import pytest

from mtbench.aggregation import aggregate_metrics, summarise
from mtbench.tasks import Task

TASK = Task("p", "binary", metrics=("accuracy", "gmean_weighted"))


def _preds():
    """A Predictions table (mtbench.predictions): fold 0 has 10 images, 9 right; fold 1 has 2, none right."""
    y = np.r_[np.ones(5), np.zeros(5), [1, 0]]
    pred = np.r_[np.ones(5), np.zeros(4), [1], [0, 1]]
    return pd.DataFrame({"sample_id": range(12), "fold": [0] * 10 + [1] * 2, "arm": "a",
                         "p.target": y, "p.prob": pred * 0.8 + 0.1, "p.pred": pred.astype(int)})


def test_pooled_vs_fold_mean_by_hand():
    out = aggregate_metrics(_preds(), [TASK], by="arm").set_index(["view", "metric"])
    # pooled: 9 of 12 right; fold mean: (9/10 + 0/2) / 2, SD of the two
    assert out.loc[("pooled", "accuracy"), "value"] == pytest.approx(9 / 12)
    assert out.loc[("fold_mean", "accuracy"), "value"] == pytest.approx(0.45)
    assert out.loc[("fold_mean", "accuracy"), "std"] == pytest.approx(np.std([0.9, 0.0], ddof=1))
    assert out.loc[("pooled", "accuracy"), "n"] == 12 and out.loc[("fold_mean", "accuracy"), "n_folds"] == 2
    # pooled weighted G-mean by hand: recalls 5/6 (class 1) and 4/6 (class 0), 6 images each, so
    # R_w = S_w = 3/4 -> G = 3/4 (not sqrt(5/6 * 4/6))
    assert out.loc[("pooled", "gmean_weighted"), "value"] == pytest.approx(3 / 4)


def test_summarise_views():
    m = pd.DataFrame({"arm": ["a"] * 3, "fold": [0, 1, "pooled"], "metric": "accuracy",
                      "value": [0.9, 0.0, 0.75], "n": [10, 2, 12]})
    assert summarise(m)["value"].tolist() == [0.75]
    assert summarise(m, "fold_mean")["value"].tolist() == [pytest.approx(0.45)]
    with pytest.raises(ValueError, match="view"):
        summarise(m, "median")
    with pytest.raises(ValueError, match="pooled"):
        summarise(m[m["fold"] != "pooled"])


def test_missing_fold_column():
    with pytest.raises(KeyError, match="fold"):
        aggregate_metrics(_preds().drop(columns="fold"), [TASK])
