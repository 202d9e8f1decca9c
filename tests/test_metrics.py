import numpy as np
import pandas as pd
import pytest

from mtbench import Task
from mtbench.metrics import compute_metrics, list_metrics, metric_value
from mtbench.predictions import load_predictions, save_predictions, validate_predictions
from mtbench.stats import bootstrap_metrics

BIN = Task("p", "binary")


def _binary_preds():
    # scikit-learn's roc_auc_score docstring example: AUC = 0.75.
    return pd.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d"],
            "fold": [0, 0, 1, 1],
            "p.target": [0, 0, 1, 1],
            "p.prob": [0.1, 0.4, 0.35, 0.8],
            "p.pred": [0, 0, 0, 1],
        }
    )


def test_binary_metrics_by_hand():
    m = compute_metrics(_binary_preds(), [BIN]).set_index("metric")["value"]
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["sensitivity"] == pytest.approx(0.5)
    assert m["specificity"] == pytest.approx(1.0)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(2 / 3)  # precision 1, recall 0.5
    df = _binary_preds()
    assert metric_value(df, BIN.with_options(metrics=("npv",)), "npv") == pytest.approx(2 / 3)


def test_undefined_metrics_are_nan_not_errors():
    df = _binary_preds()
    by_fold = compute_metrics(df, [BIN], by="fold")
    auc = by_fold[by_fold.metric == "auc"]["value"]
    assert auc.isna().all()  # each fold has one class only
    assert set(by_fold["fold"]) == {0, 1}


def test_missing_targets_are_excluded():
    df = _binary_preds()
    df.loc[0, "p.target"] = np.nan
    m = compute_metrics(df, [BIN])
    assert (m["n"] == 3).all()


def test_multiclass_ordinal_regression_metrics():
    mc = Task("s", "ordinal", num_classes=3)
    df = pd.DataFrame(
        {
            "sample_id": list("abcdef"),
            "s.target": [0, 1, 2, 0, 1, 2],
            "s.prob.0": [0.8, 0.1, 0.1, 0.6, 0.2, 0.1],
            "s.prob.1": [0.1, 0.8, 0.2, 0.3, 0.3, 0.2],
            "s.prob.2": [0.1, 0.1, 0.7, 0.1, 0.5, 0.7],
            "s.pred": [0, 1, 2, 0, 2, 2],
            "r.target": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "r.pred": [1.5, 2.0, 2.0, 4.0, 5.0, 7.0],
        }
    )
    reg = Task("r", "regression")
    m = compute_metrics(df, [mc, reg]).set_index(["task", "metric"])["value"]
    assert m[("s", "accuracy")] == pytest.approx(5 / 6)
    assert m[("s", "mae")] == pytest.approx(1 / 6)
    # QWK by hand: observed disagreement weights (1/4 for one 1->2 error) vs expected from marginals.
    assert 0.8 < m[("s", "qwk")] < 1.0
    assert m[("r", "mae")] == pytest.approx((0.5 + 0 + 1 + 0 + 0 + 1) / 6)
    assert m[("r", "rmse")] == pytest.approx(np.sqrt((0.25 + 1 + 1) / 6))
    assert m[("r", "pearson_r")] == pytest.approx(np.corrcoef(df["r.target"], df["r.pred"])[0, 1])


def test_predictions_roundtrip_and_validation(tmp_path):
    df = _binary_preds()
    path = save_predictions(df, tmp_path / "preds.csv", [BIN])
    back = load_predictions(path)
    assert back.attrs["tasks"][0]["name"] == "p"
    pd.testing.assert_frame_equal(compute_metrics(back), compute_metrics(df, [BIN]))
    with pytest.raises(ValueError, match=r"lacks columns \['p.prob'\]"):
        validate_predictions(df.drop(columns="p.prob"), [BIN])


def test_bootstrap_ci_brackets_point_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    prob = np.clip(y * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    df = pd.DataFrame({"sample_id": map(str, range(200)), "p.target": y, "p.prob": prob, "p.pred": (prob > 0.5).astype(int)})
    a = bootstrap_metrics(df, [BIN], n_boot=200, seed=1).set_index("metric")
    b = bootstrap_metrics(df, [BIN], n_boot=200, seed=1).set_index("metric")
    pd.testing.assert_frame_equal(a, b)
    assert a.loc["auc", "ci_low"] < a.loc["auc", "value"] < a.loc["auc", "ci_high"]
    small = bootstrap_metrics(df, [BIN], n_boot=200, seed=1, sample_size=50).set_index("metric")
    # Smaller resamples (the fixed-100 style of some papers) give wider intervals.
    assert (small.loc["auc", "ci_high"] - small.loc["auc", "ci_low"]) > (a.loc["auc", "ci_high"] - a.loc["auc", "ci_low"])


def test_metric_registry_lists_kinds():
    assert {"auc", "qwk", "mae", "pearson_r", "npv"} <= set(list_metrics())
    with pytest.raises(ValueError, match="does not apply"):
        compute_metrics(_binary_preds(), [BIN], metrics={"p": ["mae"]})


def test_a_metric_name_cannot_be_registered_twice():
    """Issue 14 item 12: register_metric silently replaced an existing metric (here: AUC)."""
    from mtbench.metrics import get_metric, register_metric

    original = get_metric("auc")
    with pytest.raises(KeyError, match="already registered"):
        register_metric("auc", ["binary"])(lambda a, task: 0.5)
    assert get_metric("auc") is original


def test_bootstrap_counts_undefined_resamples():
    """Unstratified resamples of 4 cases often draw one class: their AUC is undefined, and the
    table says how many (issue 14 item 10: no silent NaNs)."""
    boot = bootstrap_metrics(_binary_preds(), [BIN], n_boot=300, seed=0, stratify=False).set_index("metric")
    assert 0 < boot.loc["auc", "n_undefined"] < 300
    assert (boot["n_boot"] + boot["n_undefined"] == 300).all()
    assert boot.loc["accuracy", "n_undefined"] == 0


def test_only_degenerate_input_warnings_are_silenced(monkeypatch):
    """Around metrics, scikit-learn's undefined-metric warnings are expected and silenced; any other
    warning (here a FutureWarning from inside a bootstrap resample) still reaches the user."""
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning

    from mtbench.metrics import ignore_degenerate_input_warnings
    from mtbench.stats import bootstrap as bs

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ignore_degenerate_input_warnings():
            warnings.warn("ill-defined", UndefinedMetricWarning)
            np.nanmean(np.array([np.nan]))  # RuntimeWarning: mean of empty slice
    real = bs.task_metrics

    def noisy(*args, **kwargs):
        warnings.warn("a deprecation the user must see", FutureWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(bs, "task_metrics", noisy)
    multi = Task("m", "multiclass", num_classes=3)
    df = pd.DataFrame({"sample_id": list("abcdef"), "m.target": [0, 1, 2, 0, 1, 2], "m.pred": [0, 1, 1, 0, 2, 2],
                       **{f"m.prob.{k}": np.full(6, 1 / 3) for k in range(3)}})
    with pytest.warns(FutureWarning, match="must see"):
        bootstrap_metrics(df, [multi], n_boot=5, seed=0, metrics={"m": ["accuracy"]})
