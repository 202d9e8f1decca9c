"""The when-does-MTL-help benchmark: grid construction, paired statistics, a tiny end-to-end run,
and the synthetic generator's new options (defaults unchanged)."""

from __future__ import annotations

import numpy as np
import pytest

from mtbench.data import flip_labels, make_synthetic_cxr
from mtbench.experiments import get_experiment, list_experiments
from mtbench.experiments import when_mtl_helps as E


def test_registered():
    assert "when_mtl_helps" in list_experiments()
    assert get_experiment("when_mtl_helps") is E
    assert "synthetic_cxr" in E.list_generators()


def test_grid_varies_one_factor_at_a_time_and_crosses_the_curves():
    cfg = E.default_config("full")
    grid = E.settings(cfg, n_train=1000)
    base = cfg["baseline"]
    assert grid["is_baseline"].sum() == 1
    cross = grid[(grid["n_aux_labels"] == 1000) & (grid["label_noise"] == base["label_noise"])]
    assert len(cross) == len(set(cfg["grid"]["n_main_labels"]) | {base["n_main_labels"]}) * 2
    for f in ("n_aux_labels", "label_noise"):
        varied = grid[grid[f] != (1000 if f == "n_aux_labels" else base[f])]
        others = [g for g in E.FACTORS if g != f]
        assert len(varied) == len(cfg["grid"][f])
        assert (varied["relatedness"] == base["relatedness"]).all()
        assert (varied["n_main_labels"] == base["n_main_labels"]).all(), others
    assert not grid.drop(columns="setting").duplicated().any()


def test_paired_summary_against_scipy():
    from scipy import stats

    a, b = np.array([0.80, 0.75, 0.90, 0.85]), np.array([0.70, 0.74, 0.80, 0.86])
    s = E.paired_summary(a, b)
    d = a - b
    assert s["mean_diff"] == pytest.approx(d.mean())
    assert s["p_ttest"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert s["wins"] == 3


def test_generator_defaults_unchanged_and_options_independent():
    base = make_synthetic_cxr(n_patients=12, size=32, seed=5)
    assert (base.table["heart_size"] == 1.0).all()
    assert (base.table["prognosis"] == base.table["prognosis_clean"]).all()
    opt = make_synthetic_cxr(n_patients=12, size=32, seed=5, heart_size_sd=0.3, label_noise=0.3)
    for col in ("severity", "burden", "prognosis_clean", "zone_A"):
        assert (opt.table[col] == base.table[col]).all(), col
    assert opt.table["heart_size"].std() > 0.05
    assert not np.allclose(opt.images, base.images)  # the heart shadow changed size
    big = make_synthetic_cxr(n_patients=400, size=32, seed=1, heart_size_sd=0.3)
    r = np.corrcoef(np.log(big.table["heart_size"]), big.table["severity"])[0, 1]
    assert abs(r) < 0.15  # independent generative factor
    with pytest.raises(ValueError, match="label_noise"):
        make_synthetic_cxr(n_patients=4, label_noise=0.7)


def test_flip_labels_rate():
    y = np.r_[np.zeros(5000), np.ones(5000), np.nan]
    out = flip_labels(y, 0.2, np.random.default_rng(0))
    assert np.isnan(out[-1])
    assert np.mean(out[:-1] != y[:-1]) == pytest.approx(0.2, abs=0.02)
    with pytest.raises(ValueError, match="binary"):
        flip_labels(np.array([0, 2]), 0.1, np.random.default_rng(0))


def test_tiny_run_end_to_end(tmp_path):
    cfg = E.default_config("smoke")
    cfg["data"].update(n_patients=80, size=32)
    cfg["baseline"].update(n_main_labels=10)
    cfg["grid"] = {"relatedness": ["related", "unrelated"], "n_main_labels": [], "n_aux_labels": [8], "label_noise": []}
    cfg["weightings"] = ["equal"]
    cfg["baseline_weightings"] = ["gradnorm"]
    cfg["seeds"] = [0, 1]
    cfg["model"]["backbone_kwargs"] = {"channels": [4, 8]}
    cfg["train"].update(epochs=1)
    res = E.run(cfg, run_dir=tmp_path, progress=False)
    # settings: baseline, unrelated, n_aux=8 -> MT runs: (2 + 1 + 1) per seed; ST trained once per seed
    mt = res.runs[res.runs["arm"] == "multi_task"]
    st = res.runs[(res.runs["arm"] == "single_task") & ~res.runs["reused"]]
    assert len(mt) == 4 * 2 and len(st) == 2
    assert set(res.comparisons["weighting"]) == {"equal", "gradnorm"}
    assert (res.comparisons["n"] == 2).all()
    assert res.runs["auc"].between(0, 1).all()
    assert len(res.weight_logs) == len(mt)
    assert (tmp_path / "comparisons.csv").is_file() and (tmp_path / "gain_vs_main_labels.png").is_file()
    assert len(res.curve("relatedness")) == 2
    assert not res.table().empty
    from mtbench.plots import plot_task_weights

    fig = plot_task_weights(res.weight_logs, smooth=2)
    assert len(fig.axes) >= len(res.weight_logs)


def test_exposure_option_is_off_by_default_and_changes_only_intensities():
    base = make_synthetic_cxr(n_patients=12, size=32, seed=5, heart_size_sd=0.2)
    on = make_synthetic_cxr(n_patients=12, size=32, seed=5, heart_size_sd=0.2, exposure_sd=0.3)
    assert base.table.equals(on.table) and (base.lung_mask == on.lung_mask).all()
    ratio = on.images.mean(axis=(1, 2, 3)) / base.images.mean(axis=(1, 2, 3))
    assert ratio.std() > 0.05  # each image got its own exposure
    with pytest.raises(ValueError, match="exposure_sd"):
        make_synthetic_cxr(n_patients=4, exposure_sd=-1)


def test_labelled_share_sampler_draws_the_share():
    from mtbench.data.sampling import labelled_share_sampler

    y = np.r_[np.ones(5), np.zeros(5), np.full(190, np.nan)]
    idx = np.fromiter(iter(labelled_share_sampler(y, 0.5, num_samples=20_000, seed=0)), int)
    assert np.mean(idx < 10) == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="unlabelled"):
        labelled_share_sampler(np.ones(4), 0.5)
    with pytest.raises(ValueError, match="share"):
        labelled_share_sampler(y, 1.0)
