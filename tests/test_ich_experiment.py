"""The cobo2024 experiment: configuration, splits, oversampling, and a tiny end-to-end run."""

import numpy as np
import pandas as pd
import pytest

from mtbench.data.phantom import make_head_ct_phantom
from mtbench.data.sampling import random_oversample
from mtbench.experiments import get_experiment, list_experiments
from mtbench.experiments import cobo2024 as exp


def test_full_config_is_the_papers_protocol():
    cfg = exp.default_config("full")
    assert list(cfg["arms"]) == ["baseline", "baseline_densenet", "mt_bin_age", "mt_bin_gcs",
                                 "mt_bin_gcs_bin_age", "mt_ord_gcs", "mt_ord_gcs_bin_age"]
    assert cfg["arms"]["mt_ord_gcs_bin_age"]["weights"] == {"prognosis": 0.4, "gcs_ord": 0.3, "age_80": 0.3}
    assert cfg["arms"]["baseline"]["backbone"] == "perez_del_barrio_cnn"
    assert all(a["backbone"] == "densenet121_native" for k, a in cfg["arms"].items() if k != "baseline")
    assert cfg["cv"]["n_splits"] == 10 and cfg["cv"]["val_fraction"] == 0.1 and cfg["oversample"]
    assert cfg["train"]["optimizer"] == "adamw" and cfg["train"]["monitor"] == "prognosis.balanced_accuracy"
    assert cfg["data"]["source"] == "ich_ct" and cfg["data"]["preprocess"]["shape"] == [40, 301, 301]
    assert cfg["data"]["preprocess"]["windows"] == ["cobo"]
    assert cfg["model"]["backbone_kwargs"] == {"densenet121_native": {"dropout_prob": 0.2}, "perez_del_barrio_cnn": {"variant": "original"}}
    assert "cobo2024" in list_experiments() and get_experiment("cobo2024") is exp


def test_tasks_and_metrics():
    t = exp.make_tasks(prognosis_pos_weight=1.6)
    assert t["prognosis"].loss_kwargs == {"pos_weight": 1.6}
    assert {"npv", "precision", "specificity", "balanced_accuracy", "auc"} <= set(t["prognosis"].metrics)
    assert t["gcs_ord"].kind == "ordinal" and t["gcs_ord"].num_outputs == 2


def test_random_oversample_balances():
    y = np.array([0] * 10 + [1] * 3 + [np.nan])
    idx = random_oversample(y, seed=1)
    assert set(range(len(y))) <= set(idx.tolist())  # every row kept
    counts = pd.Series(y[idx]).value_counts()
    assert counts[0.0] == counts[1.0] == 10 and pd.isna(y[idx]).sum() == 1


def test_splits_stratified_grouped_with_validation():
    table = make_head_ct_phantom(n_patients=60, shape=(16, 32, 32), seed=0).table
    s = exp.make_splits(table, n_splits=3, val_fraction=0.1, seed=0)
    tests = s[s["split"] == "test"]
    assert tests["sample_id"].is_unique and len(tests) == 60  # each patient tested once
    for k, part in s.groupby("fold"):
        assert len(part) == 60
        assert set(part.loc[part.split == "test", "patient_id"]).isdisjoint(part.loc[part.split != "test", "patient_id"])
        n_val, n_rest = (part.split == "val").sum(), (part.split != "test").sum()
        assert n_val == pytest.approx(0.1 * n_rest, abs=1)
        assert abs(part.loc[part.split == "test", "prognosis"].mean() - table["prognosis"].mean()) < 0.1


def test_validation_split_is_patient_grouped():
    """Issue 14 item 7: several rows of one patient never straddle train and validation."""
    table = make_head_ct_phantom(n_patients=60, shape=(16, 32, 32), seed=0).table
    table = pd.concat([table, table.assign(sample_id=table["sample_id"] + "_b")], ignore_index=True)  # 2 scans each
    s = exp.make_splits(table, n_splits=3, val_fraction=0.2, seed=0)
    for k, part in s.groupby("fold"):
        by_split = {name: set(g["patient_id"]) for name, g in part.groupby("split")}
        assert by_split["val"] and by_split["train"].isdisjoint(by_split["val"])
        assert by_split["test"].isdisjoint(by_split["train"] | by_split["val"])
        assert set(part["patient_id"]) == set(table["patient_id"])


def test_smoke_config_selects_on_loss_and_thresholds_on_validation():
    from mtbench.data.worlds import SMOKE_PHANTOM_COBO, phantom_known_answer

    smoke, full = exp.default_config("smoke"), exp.default_config("full")
    assert smoke["train"]["monitor"] == "last" and smoke["train"]["scheduler"] == "cosine" and smoke["eval"]["threshold"] == "youden"
    assert full["train"]["monitor"] == "prognosis.balanced_accuracy" and full["train"]["scheduler"] == "plateau_step" and full["augment"]["flip_axes"] == []
    assert {k: smoke["data"]["phantom"][k] for k in SMOKE_PHANTOM_COBO} == SMOKE_PHANTOM_COBO
    # the world leaves room above notebook 02's smoke bars (prognosis AUC 0.75, GCS QWK 0.4, age AUC 0.70)
    world = {k: v for k, v in smoke["data"]["phantom"].items() if k not in ("n_patients", "shape")}
    ka = phantom_known_answer(n_mc=2000, **world)
    assert ka["bayes_auc"]["prognosis"] >= 0.9 and ka["bayes_qwk"]["gcs_ord"] >= 0.8 and ka["bayes_auc"]["age_80"] >= 0.9
    assert list(smoke["arms"]) == list(exp.SMOKE_ARMS) and set(exp.SMOKE_ARMS) < set(full["arms"])
    assert all(smoke["arms"][a]["tasks"] == full["arms"][a]["tasks"] for a in exp.SMOKE_ARMS)
    assert exp.paper_arms() == full["arms"]


def test_tiny_end_to_end_run(tmp_path):
    cfg = exp.default_config("smoke")
    cfg["data"]["phantom"].update(n_patients=24, shape=[16, 32, 32])
    cfg["cv"]["val_fraction"] = 0.25
    cfg["arms"] = {k: cfg["arms"][k] for k in ("baseline", "mt_ord_gcs_bin_age")}
    # an opt-in single-task GCS arm, weighted neg/pos and selected on its own metric (the original's)
    from mtbench.experiments.cobo2024_protocol import single_task_arms

    cfg["arms"]["st_gcs_bin"] = single_task_arms()["st_gcs_bin"]
    cfg["single_task_pos_weight"] = "neg_over_pos"
    cfg["train"]["epochs"] = 1
    cfg["bootstrap"]["n_boot"] = 20
    res = exp.run(cfg, run_dir=tmp_path, progress=False)
    tab = res.table()
    assert list(tab.index) == ["baseline", "mt_ord_gcs_bin_age"] and "npv" in tab.columns
    ft = res.fold_table()  # mean ± SD over the two folds, as the paper reports
    assert list(ft.index) == list(tab.index) and "±" in ft.loc["baseline", "auc"]
    assert set(res.results["task"]) == {"prognosis", "gcs_ord", "age_80", "gcs_bin"}
    assert set(res.results.loc[res.results["arm"] == "st_gcs_bin", "task"]) == {"gcs_bin"}
    assert len(res.predictions["baseline"]) == 24 and set(res.predictions["baseline"]["fold"]) == {0, 1}
    # decisions at the threshold chosen on each fold's validation split, stored with the predictions
    thr = res.predictions["baseline"].groupby("fold")["prognosis.threshold"].nunique()
    assert (thr == 1).all() and res.predictions["baseline"]["prognosis.threshold"].between(0, 1).all()
    splits = pd.read_csv(tmp_path / "splits.csv")
    assert set(splits.columns) >= {"fold", "sample_id", "split"} and set(splits["split"]) == {"train", "val", "test"}
    # the same run folder as `mtbench run` writes: one folder per unit
    assert (tmp_path / "units" / "arm=mt_ord_gcs_bin_age" / "fold=0" / "predictions.csv").is_file()
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "fold_metrics.csv").is_file()
    ref = res.with_reference()
    assert {"published", "value"} <= set(ref.columns)
    # the original code's fixed resample size of 100 changes the CI width, not the point estimate
    from mtbench.stats import bootstrap_metrics

    p = res.predictions["baseline"]
    a = bootstrap_metrics(p, n_boot=50, seed=0)
    b = bootstrap_metrics(p, n_boot=50, seed=0, sample_size=100)
    assert (a["value"].fillna(-1) == b["value"].fillna(-1)).all()
    wa = (a["ci_high"] - a["ci_low"]).iloc[0]
    wb = (b["ci_high"] - b["ci_low"]).iloc[0]
    assert wb < wa  # 100 > 24 test patients: narrower (over-confident) intervals
