"""The ruffini2024 experiment end to end on a tiny synthetic configuration, and on the real X-rays' data path."""

import numpy as np
import pytest

from mtbench.experiments import get_experiment
from mtbench.experiments import ruffini2024 as R


def tiny_config(**changes):
    cfg = R.default_config("smoke")
    cfg["data"]["synthetic"]["n_patients"] = 48
    cfg["data"]["size"] = 32
    cfg["train"]["epochs"] = 1
    cfg["train"]["steps"] = 2
    cfg["bootstrap"]["n_boot"] = 10
    for k, v in changes.items():
        sec, key = k.split("__")
        cfg[sec][key] = v
    return cfg


@pytest.mark.parametrize("mode", ["masked_mean", "reference"])
def test_run_all_arms_tiny(mode, tmp_path):
    res = R.run(tiny_config(loss__mode=mode), run_dir=tmp_path, progress=False)
    assert (tmp_path / "compare_with_paper.csv").is_file() and (tmp_path / "significance.csv").is_file() and (tmp_path / "units" / "backbone=convnet" / "fold=0" / "arm=mdmt" / "predictions.csv").is_file()
    m = res.metrics
    assert set(m["arm"]) == {"stl_prognosis", "stl_severity", "ft", "mdmt"}
    assert set(m["fold"]) == {"0", "1", "pooled"}
    prog = m[(m["task"] == "prognosis") & (m["fold"] == "pooled")]
    assert set(prog["metric"]) >= {"accuracy", "f1_weighted", "gmean_weighted", "auc"}
    assert prog["value"].between(0, 1).all()
    # STL severity has no prognosis head; MDMT is scored on both tasks
    assert "prognosis" not in set(m.loc[m["arm"] == "stl_severity", "task"])
    assert {"prognosis", "severity"} <= set(m.loc[m["arm"] == "mdmt", "task"])
    # both data sets appear in the MDMT batches, and the ratio is reported
    ratio = res.dataset_ratios[("convnet", "mdmt", "0")]
    assert ratio["prognosis"].sum() > 0 and ratio["severity"].sum() > 0
    # every prognosis test image is predicted once per arm (no sample lost or duplicated)
    preds = res.predictions[("convnet", "mdmt")]
    assert preds.loc[preds["dataset"] == "prognosis", "sample_id"].is_unique
    cmp = res.compare_with_paper()
    assert cmp.loc["mdmt", ("accuracy", "paper")] == 68.6
    assert np.isfinite(cmp.loc["mdmt", ("accuracy", "ours")])
    assert len(res.table()) == 3
    # binary decisions use one threshold per fold, chosen on validation and stored with the predictions
    prog_rows = preds[preds["dataset"] == "prognosis"]
    if mode == "masked_mean":
        assert prog_rows.groupby("fold")["prognosis.threshold"].nunique().eq(1).all()
        assert (prog_rows["prognosis.pred"] == (prog_rows["prognosis.prob"] >= prog_rows["prognosis.threshold"])).all()
        d = res.paired_auc("mdmt", "stl_prognosis")
        assert d.ci_low <= d.difference <= d.ci_high
    # every arm gets the same optimiser-step budget: 2 steps, whatever its number of training images
    for (bb, arm, fold), h in res.histories.items():
        steps = h["step"].to_numpy()  # steps done after each epoch
        assert steps[-1] >= 2 and steps[-1] - steps[0] < 2, (arm, steps)


def test_degenerate_arms_are_flagged_on_every_task(tmp_path):
    res = R.run(tiny_config(), run_dir=tmp_path, progress=False)
    key = ("convnet", "mdmt")
    df = res.predictions[key].copy()
    sev = df["severity.target"].notna()
    df.loc[sev, "severity.pred"] = 0  # one class predicted for every severity image
    res.predictions[key] = df
    flags = res.degenerate_flags()
    assert any(f.task == "severity" and f.model == "convnet/mdmt" and f.what == "one_class_predictions" for f in flags)


def test_backbone_sweep_config():
    full = get_experiment("ruffini2024_backbones").default_config("full")
    assert full["model"]["backbones"] == list(R.PAPER_BACKBONES) and full["protocol"]["n_folds"] == 5
    t = full["train"]
    assert (t["lr"], t["weight_decay"], t["batch_size"], t["patience"], t["warmup_epochs"]) == (1e-3, 1e-5, 128, 65, 40)
    assert t["monitor_prognosis"] == "loss.prognosis" and t["optimizer"] == "adam" and t["scheduler"] == "plateau"
    smoke = get_experiment("ruffini2024_backbones").default_config("smoke")
    assert smoke["model"]["backbones"] == list(R.SMALL_BACKBONES) and smoke["data"]["source"] == "cohen"


def test_cohen_source_keeps_shared_images_on_one_side(shared_data):
    cfg = tiny_config(data__source="cohen")
    cfg["data"]["cohen_root"] = str(shared_data / "cohen-covid-mini")
    data = R.prepare_data(cfg, progress=False)
    assert len(data.prognosis) == 78 and len(data.severity) == 88
    assert data.images["prognosis"].shape == (78, 1, 32, 32)
    both = data.prognosis.merge(data.severity, on="sample_id")
    assert len(both) == data.report["in_both_sets"] > 0
    assert (both["fold_x"] == both["fold_y"]).all()
    folds = data.prognosis.groupby("patient_id")["fold"].nunique()
    assert (folds == 1).all()
