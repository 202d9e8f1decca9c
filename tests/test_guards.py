"""mtbench.guards: degenerate results are flagged, refused or marked, never passed on silently."""

import warnings

import numpy as np
import pandas as pd
import pytest

from mtbench import guards
from mtbench.tasks import Task

BIN = Task("prognosis", "binary")
REG = Task("volume", "regression")


def _preds(y, prob, fold=None):
    prob = np.asarray(prob, float)
    df = pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(y))], "prognosis.target": y,
                       "prognosis.prob": prob, "prognosis.pred": (prob >= 0.5).astype(int)})
    if fold is not None:
        df["fold"] = fold
    return df


def test_healthy_predictions_raise_no_flag():
    df = _preds([0, 1, 0, 1], [0.2, 0.7, 0.6, 0.4], fold=["0", "0", "1", "1"])
    assert guards.check_predictions(df, [BIN]) == []


def test_single_class_fold_one_class_predictions_and_constant_scores_are_flagged_per_fold():
    # fold 1 is all "severe" and the model says 0.9 for everyone: the case that printed "100.0 vs 66.0"
    df = _preds([0, 1, 1, 1], [0.2, 0.7, 0.9, 0.9], fold=["0", "0", "1", "1"])
    flags = guards.check_predictions(df, [BIN], model="convnet/mdmt")
    assert {(f.fold, f.what) for f in flags} == {("1", "single_class_fold"), ("1", "one_class_predictions"), ("1", "constant_scores")}
    assert all(f.task == "prognosis" and f.model == "convnet/mdmt" for f in flags)
    pooled = guards.check_predictions(df, [BIN], by=None)   # pooled over folds nothing is degenerate
    assert pooled == []


def test_constant_regression_output_is_flagged():
    df = pd.DataFrame({"sample_id": ["a", "b", "c"], "volume.target": [1.0, 2.0, 3.0], "volume.pred": [5.0, 5.0, 5.0]})
    assert [f.what for f in guards.check_predictions(df, [REG], by=None)] == ["constant_scores"]


def test_nan_metric_is_flagged_with_its_place():
    m = pd.DataFrame({"backbone": ["convnet"] * 2, "arm": ["stl", "stl"], "fold": ["0", "1"], "task": ["prognosis"] * 2,
                      "metric": ["auc", "auc"], "value": [0.7, np.nan], "n": [10, 10]})
    (f,) = guards.check_metrics(m)
    assert (f.task, f.model, f.fold, f.what) == ("prognosis", "convnet/stl", "1", "nan_metric")
    assert "auc" in f.detail


def test_saliency_zero_and_constant_maps_are_flagged_healthy_not():
    maps = np.stack([np.zeros((4, 4)), np.full((4, 4), 0.3), np.arange(16.0).reshape(4, 4)])
    flags = guards.check_saliency(maps, task="prognosis", sample_ids=["a", "b", "c"])
    assert [(f.what, f.detail.split()[1]) for f in flags] == [("zero_saliency", "a"), ("constant_saliency", "b")]


def test_refuse_single_class_raises_unless_allowed():
    test = pd.DataFrame({"prognosis": ["severe"] * 5 + [np.nan], "age": [1, 2, 3, 4, 5, 6]})
    with pytest.raises(guards.DegenerateResultError, match="allow_single_class"):
        guards.refuse_single_class(test, {"prognosis": "prognosis"}, fold="3")
    with pytest.warns(guards.DegenerateResultWarning, match="single_class_fold"):
        flags = guards.refuse_single_class(test, {"prognosis": "prognosis"}, allow_single_class=True, fold="3")
    assert flags[0].fold == "3" and "5 labelled" in flags[0].detail
    ok = pd.DataFrame({"prognosis": ["severe", "mild"]})
    assert guards.refuse_single_class(ok, [BIN]) == []
    with pytest.raises(KeyError, match="no label column"):
        guards.refuse_single_class(ok, {"gcs": "gcs"})


def test_act_on_warns_raises_or_ignores():
    flags = [guards.Flag("t", "m", "0", "nan_metric", "auc is NaN")]
    with pytest.raises(guards.DegenerateResultError, match="nan_metric"):
        guards.act_on(flags, "raise")
    with pytest.warns(guards.DegenerateResultWarning):
        guards.act_on(flags, "warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert guards.act_on(flags, "ignore") == flags
    assert list(guards.flags_frame(flags).columns) == ["task", "model", "fold", "what", "detail"]


def test_mark_degenerate_marks_or_drops_rows():
    table = pd.DataFrame({"ours": [100.0, 70.0]}, index=["mdmt", "ft"])
    flags = [guards.Flag("prognosis", "convnet/mdmt", "1", "single_class_fold", "..."),
             guards.Flag("prognosis", "densenet/mdmt", "1", "single_class_fold", "...")]
    marked = guards.mark_degenerate(table, flags)
    assert marked["degenerate"].tolist() == ["single_class_fold x2", ""]
    assert guards.mark_degenerate(table, flags, drop=True).index.tolist() == ["ft"]


def test_ruffini_compare_with_paper_marks_a_single_class_run():
    """The issue's case: all prognosis labels 'severe' gave '100.0 vs paper 66.0', unmarked."""
    from mtbench.experiments import ruffini2024 as rf

    cfg = rf.default_config()
    cfg["report"] = {"aggregation": "fold_mean"}  # the hand-made table has per-fold rows only
    preds = _preds([1, 1, 1, 1], [0.9, 0.8, 0.9, 0.7], fold=["0", "0", "1", "1"])
    healthy = _preds([0, 1, 0, 1], [0.2, 0.7, 0.3, 0.6], fold=["0", "0", "1", "1"])
    rows = []
    for arm in ("stl_prognosis", "ft", "mdmt"):
        for fold in ("0", "1"):
            for metric in ("accuracy", "f1_weighted", "gmean_weighted"):
                rows.append(dict(backbone="convnet", arm=arm, fold=fold, task="prognosis", metric=metric, value=1.0, n=2))
            rows.append(dict(backbone="convnet", arm=arm, fold=fold, task="prognosis", metric="auc",
                             value=np.nan if arm == "mdmt" else 1.0, n=2))
    result = rf.RuffiniResult(metrics=pd.DataFrame(rows), histories={}, dataset_ratios={}, config=cfg,
                              predictions={("convnet", "mdmt"): preds, ("convnet", "ft"): healthy,
                                           ("convnet", "stl_prognosis"): healthy})
    cmp = result.compare_with_paper()
    note = cmp[("degenerate", "")]
    assert "single_class_fold" in note["mdmt"] and "nan_metric" in note["mdmt"] and note["ft"] == ""
    assert "mdmt" not in result.compare_with_paper(drop_degenerate=True).index
