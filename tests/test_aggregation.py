"""Pooled-over-folds vs mean-over-folds metrics, worked by hand."""

import numpy as np
import pandas as pd
import pytest

from mtbench.aggregation import aggregate_metrics, summarise
from mtbench.tasks import Task

TASK = Task("p", "binary", metrics=("accuracy",))


def _preds():
    # fold 0: 10 images, 9 right; fold 1: 2 images, 0 right -> pooled 9/12, fold mean (0.9 + 0) / 2
    y = np.r_[np.ones(5), np.zeros(5), [1, 0]].astype(int)
    pred = np.r_[np.ones(5), np.zeros(4), [1], [0, 1]].astype(int)
    return pd.DataFrame({"fold": [0] * 10 + [1] * 2, "arm": "a", "p": y, "p_pred": pred, "p_prob": pred.astype(float)})


def test_pooled_vs_fold_mean_by_hand(monkeypatch):
    import mtbench.aggregation as agg

    def fake(predictions, tasks, metrics, by=None):  # accuracy only, on a plain table
        groups = predictions.groupby(by) if by else [((), predictions)]
        rows = []
        for key, part in groups:
            key = key if isinstance(key, tuple) else (key,)
            rows.append({**dict(zip(by or [], key)), "task": "p", "metric": "accuracy",
                         "value": float((part["p"] == part["p_pred"]).mean()), "n": len(part)})
        return pd.DataFrame(rows)

    monkeypatch.setattr(agg, "compute_metrics", fake)
    out = aggregate_metrics(_preds(), [TASK], by="arm").set_index("view")
    assert out.loc["pooled", "value"] == pytest.approx(9 / 12)
    assert out.loc["fold_mean", "value"] == pytest.approx(0.45)
    assert out.loc["fold_mean", "std"] == pytest.approx(np.std([0.9, 0.0], ddof=1))
    assert out.loc["pooled", "n"] == 12 and out.loc["fold_mean", "n_folds"] == 2


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
