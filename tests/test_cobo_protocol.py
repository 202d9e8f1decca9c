"""Cobo et al. 2024: full-profile defaults that follow the original code, and the mechanisms behind them (issue 15)."""

import numpy as np
import pandas as pd
import pytest

from mtbench.experiments.cobo2024 import default_config
from mtbench.experiments.cobo2024_protocol import original_splits, splits_for


def test_optimiser_lr_and_weight_decay_follow_original():
    train = default_config("full")["train"]
    assert train["lr"] == 1e-3  # original AdamW lr
    assert train["weight_decay"] == 1e-4  # original AdamW weight decay


def _table(n=83, seed=0):
    rng = np.random.default_rng(seed)
    ids = [str(i) for i in rng.permutation(np.arange(100, 100 + n))]
    return pd.DataFrame({"sample_id": ids, "patient_id": ids, "prognosis": (rng.random(n) < 0.6).astype(int)})


def test_original_splits_are_sklearns_stratified_kfold_and_train_test_split():
    from sklearn.model_selection import StratifiedKFold, train_test_split

    table = _table()
    s = original_splits(table, n_splits=10, val_fraction=0.1, seed=1)
    ids, y = table["patient_id"].to_numpy(), table["prognosis"].to_numpy()
    for k, (tr, te) in enumerate(StratifiedKFold(10, shuffle=True, random_state=1).split(ids, y)):
        fold = s[s["fold"] == k]
        assert set(fold.loc[fold.split == "test", "patient_id"]) == set(ids[te])
        tr_ids, val_ids = train_test_split(ids[tr], test_size=0.1, random_state=1, stratify=y[tr])
        assert set(fold.loc[fold.split == "val", "patient_id"]) == set(val_ids)
        assert set(fold.loc[fold.split == "train", "patient_id"]) == set(tr_ids)
    # another seed gives other folds: the seed is used
    other = original_splits(table, 10, 0.1, seed=0)
    assert not other[other.split == "test"].sort_values("patient_id")["fold"].equals(
        s[s.split == "test"].sort_values("patient_id")["fold"])


def test_original_splits_keep_a_patients_rows_together():
    table = _table(40)
    two = pd.concat([table, table.assign(sample_id=table["sample_id"] + "_b")], ignore_index=True)
    s = original_splits(two, n_splits=4, val_fraction=0.2, seed=1)
    for _, fold in s.groupby("fold"):
        assert fold.groupby("patient_id")["split"].nunique().max() == 1
    with pytest.raises(ValueError, match="disagree"):
        original_splits(two.assign(prognosis=np.r_[table["prognosis"], 1 - table["prognosis"]]), 4, 0.2)


def test_full_profile_uses_the_original_folds_smoke_keeps_its_own():
    full, smoke = default_config("full")["cv"], default_config("smoke")["cv"]
    assert (full["splitter"], full["seed"], full["n_splits"], full["val_fraction"]) == ("original", 1, 10, 0.1)
    assert (smoke["splitter"], smoke["seed"]) == ("grouped", 0)
    table = _table()
    assert splits_for(table, full).equals(original_splits(table, 10, 0.1, 1))
    with pytest.raises(ValueError, match="splitter"):
        splits_for(table, {**full, "splitter": "random"})


def test_amsgrad_option_reaches_the_optimiser():
    import torch

    from mtbench.train import TrainConfig
    from mtbench.train.optim import make_optimizer

    for name, cls in (("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)):
        for flag in (False, True):
            w = torch.nn.Parameter(torch.ones(3))
            opt = make_optimizer([w], TrainConfig(optimizer=name, amsgrad=flag, lr=1e-3, weight_decay=1e-4))
            assert isinstance(opt, cls) and opt.param_groups[0]["amsgrad"] is flag
            w.sum().backward()
            opt.step()
            assert ("max_exp_avg_sq" in opt.state[w]) is flag  # AMSGrad keeps the running maximum
    train = default_config("full")["train"]
    assert train["optimizer"] == "adamw" and train["amsgrad"] is True
    assert default_config("smoke")["train"]["amsgrad"] is False


def test_full_profile_batch_8_accumulated_3_times():
    full, smoke = default_config("full")["train"], default_config("smoke")["train"]
    assert (full["batch_size"], full["grad_accum_steps"]) == (8, 3)
    assert (smoke["batch_size"], smoke["grad_accum_steps"]) == (16, 1)
    from mtbench.train import TrainConfig

    assert TrainConfig(**{k: v for k, v in full.items() if k != "batch_size"}).grad_accum_steps == 3


def test_full_profile_steps_a_plateau_scheduler_per_optimiser_step():
    from mtbench.train import TrainConfig
    from mtbench.train.optim import steps_per_optimizer_step

    full = default_config("full")["train"]
    cfg = TrainConfig(**{k: v for k, v in full.items() if k != "batch_size"})
    assert (cfg.scheduler, cfg.plateau_patience, cfg.plateau_factor) == ("plateau_step", 5, 0.98)
    assert steps_per_optimizer_step(cfg) and not steps_per_optimizer_step(TrainConfig(scheduler="plateau"))
    assert default_config("smoke")["train"]["scheduler"] == "cosine"


def test_full_densenet_has_the_originals_dropout():
    """dropout_prob=0.2 puts Dropout3d(0.2) after every dense layer, as MONAI's DenseNet121 does."""
    import torch
    from monai.networks.nets import DenseNet121

    from mtbench.models import create_model
    from mtbench.experiments.cobo2024 import make_tasks

    cfg = default_config("full")
    kwargs = cfg["model"]["backbone_kwargs"]["densenet121_native"]
    assert kwargs == {"dropout_prob": 0.2}
    ours = create_model("densenet121_native", [make_tasks()["prognosis"]], spatial_dims=3, in_chans=1, backbone_kwargs=kwargs)
    ref = DenseNet121(spatial_dims=3, in_channels=1, out_channels=1, dropout_prob=0.2)
    drops = [m for m in ours.modules() if isinstance(m, torch.nn.Dropout3d)]
    assert len(drops) == 6 + 12 + 24 + 16 and {m.p for m in drops} == {0.2}
    assert [type(m) for m in ref.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)] == [type(m) for m in drops]
    assert default_config("smoke")["model"]["backbone_kwargs"]["densenet121_native"].get("dropout_prob", 0.0) == 0.0


def test_loss_weights_per_arm_are_the_originals_unnormalised():
    import torch

    from mtbench.experiments.cobo2024 import make_tasks, paper_arms
    from mtbench.mtl import MultiTaskLoss

    arms = default_config("full")["arms"]
    assert arms["mt_bin_age"]["weights"] == {"prognosis": 0.5, "age_80": 0.3}
    assert arms["mt_bin_gcs"]["weights"] == {"prognosis": 0.4, "gcs_bin": 0.3}
    assert arms["mt_ord_gcs_bin_age"]["weights"] == {"prognosis": 0.4, "gcs_ord": 0.3, "age_80": 0.3}
    assert arms == paper_arms()
    tasks = [make_tasks()[n] for n in ("prognosis", "age_80")]
    loss = MultiTaskLoss(tasks, weighting="fixed", weights=arms["mt_bin_age"]["weights"])
    torch.manual_seed(0)
    out = {t.name: torch.randn(6, 1) for t in tasks}
    y = {t.name: torch.tensor([0, 1, 1, 0, 1, 0.0]) for t in tasks}
    m = {t.name: torch.ones(6, dtype=torch.bool) for t in tasks}
    res = loss(out, y, m)
    bce = {n: torch.nn.functional.binary_cross_entropy_with_logits(out[n][:, 0], y[n]) for n in out}
    assert torch.allclose(res.total, 0.5 * bce["prognosis"] + 0.3 * bce["age_80"])  # as the original's sum


def test_single_task_pos_weight_is_negatives_over_positives():
    import torch

    from mtbench.experiments.cobo2024 import make_tasks
    from mtbench.experiments.cobo2024_protocol import neg_over_pos, single_task_arms, single_task_setup
    from mtbench.mtl.losses import task_loss

    t = make_tasks()
    assert neg_over_pos([0, 0, 0, 1, np.nan], t["age_80"]) == 3.0
    # ordinal GCS, cumulative bits: y>0 (neg: class 0) and y>1 (neg: class 1 only), as the original
    assert neg_over_pos([0, 0, 0, 0, 1, 1, 2, 2, 2, 2], t["gcs_ord"]) == [4 / 6, 2 / 4]
    train = pd.DataFrame({"gcs_bin": [0.0] * 6 + [1.0] * 2, "prognosis": [0, 1] * 4})
    (task,), monitor = single_task_setup([t["gcs_bin"]], train, "neg_over_pos", "prognosis.balanced_accuracy")
    assert task.loss_kwargs == {"pos_weight": 3.0} and monitor == "gcs_bin.balanced_accuracy"
    logit, y = torch.tensor([[0.3], [-1.0]]), torch.tensor([1.0, 0.0])
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logit[:, 0], y, pos_weight=torch.tensor(3.0), reduction="none")
    assert torch.allclose(task_loss(task, logit, y), ref)
    # ordinal: per-bit pos_weight reaches the loss
    (ot,), _ = single_task_setup([t["gcs_ord"]], pd.DataFrame({"gcs_ord": [0, 0, 0, 1, 2.0]}), "neg_over_pos", "last")
    out, yo = torch.zeros(1, 2), torch.tensor([2.0])
    assert ot.loss_kwargs["pos_weight"] == [1.5, 1.0]
    assert torch.allclose(task_loss(ot, out, yo), torch.tensor([float(np.log(2)) * 1.25]), atol=1e-6)
    # prognosis arms and multi-task arms are untouched; no rule leaves the task unweighted
    assert single_task_setup([t["prognosis"]], train, "neg_over_pos", "prognosis.auc") == ([t["prognosis"]], "prognosis.auc")
    assert single_task_setup([t["gcs_bin"]], train, None, "last")[0][0].loss_kwargs == {}
    assert set(single_task_arms()) == {"st_gcs_bin", "st_gcs_ord", "st_age_80"}
    assert default_config("full")["single_task_pos_weight"] == "neg_over_pos"


def test_fold_mean_and_sd_beside_the_pooled_table(tmp_path):
    from mtbench.experiments.cobo2024 import Cobo2024Result, aggregate
    from mtbench.experiments.cobo2024_protocol import fold_mean, fold_mean_table

    fm = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 3, "fold": [0, 1, 2] * 2, "task": "prognosis", "metric": "auc",
                       "value": [0.6, 0.7, 0.8, 0.5, np.nan, 0.7]})
    s = fold_mean(fm).set_index("arm")
    assert s.loc["a", "mean"] == pytest.approx(0.7) and s.loc["a", "std"] == pytest.approx(np.std([0.6, 0.7, 0.8], ddof=1))
    assert s.loc["b", "n_folds"] == 2  # a NaN fold is skipped, not counted
    tab = fold_mean_table(fm, "prognosis", ["auc"], arms=["b", "a"])
    assert list(tab.index) == ["b", "a"] and tab.loc["a", "auc"] == "0.700 ± 0.100"
    pooled = pd.DataFrame({"arm": ["a", "b"], "task": "prognosis", "metric": "auc", "value": [0.71, 0.6],
                           "ci_low": [0.6, 0.5], "ci_high": [0.8, 0.7]})
    for aggregation, has_sd in (("fold_mean", True), ("pooled", False)):
        cfg = {"arms": {"a": {}, "b": {}}, "report": {"aggregation": aggregation}}
        text = aggregate(Cobo2024Result(pooled, fm, {}, {}, pd.DataFrame(), cfg), tmp_path)
        assert ("0.700 ± 0.100" in text) is has_sd and "0.710 [0.600, 0.800]" in text.replace("–", ", ")
    assert default_config("full")["report"]["aggregation"] == "fold_mean"
    assert default_config("smoke")["report"]["aggregation"] == "pooled"


def test_window_pad_resize_keeps_the_slices_and_zeroes_outside_the_window():
    """The original order: window (out-of-window -> 0), zero-pad the depth to 40, then resize in-plane."""
    from mtbench.data.transforms import CTPreprocess, window_zero_outside

    rng = np.random.default_rng(0)
    hu = rng.uniform(-100, 200, size=(30, 64, 64)).astype(np.float32)
    hu[:, :8, :8] = 1000.0  # bone: 0 after the window, whatever the resize does
    pre = CTPreprocess(windows=("cobo",), shape=(40, 32, 32), order="window_pad_resize")
    out = pre(hu)
    assert out.shape == (1, 40, 32, 32)
    # depth: 5 zero slices each side, the 30 slices unchanged in depth (not stretched to 40)
    assert not out[0, :5].any() and not out[0, 35:].any()
    w = window_zero_outside(hu)
    pooled = w.reshape(30, 32, 2, 32, 2).mean(axis=(2, 4))  # in-plane area resize = 2x2 mean
    assert np.allclose(out[0, 5:35], pooled, atol=1e-5)
    assert not out[0, :, :4, :4].any()
    # the old order stretches the 30 slices over all 40 (no empty end slices)
    old = CTPreprocess(windows=("cobo",), shape=(40, 32, 32))(hu)
    assert old[0, 0].any() and old[0, -1].any()
    # more slices than 40: resized in depth, never cropped (MONAI's SpatialPad pads only)
    assert pre(np.repeat(hu, 2, axis=0)[:48]).shape == (1, 40, 32, 32)
    with pytest.raises(ValueError, match="window_pad_resize"):
        CTPreprocess(shape=(40, 32, 32), depth=40, order="window_pad_resize")
    assert "order" not in CTPreprocess().to_dict() and pre.to_dict()["order"] == "window_pad_resize"


def test_full_profile_preprocesses_in_the_original_order():
    full, smoke = default_config("full")["data"]["preprocess"], default_config("smoke")["data"]["preprocess"]
    assert full["order"] == "window_pad_resize" and full["shape"] == [40, 301, 301] and full["windows"] == ["cobo"]
    assert smoke.get("order", "resize_window") == "resize_window"


def test_monai_zoomd_ignores_prob():
    """Why the full profile zooms every training volume: the original's Zoomd(zoom=1.1, prob=0.5) is
    not random (MONAI passes ``prob`` on as a padding keyword). Fails if MONAI starts honouring it."""
    import torch
    from monai.transforms import Zoomd

    x = torch.arange(1000, dtype=torch.float32).reshape(1, 10, 10, 10)
    t = Zoomd(keys="image", zoom=1.1, prob=0.5)
    assert all(not torch.equal(torch.as_tensor(t({"image": x})["image"]), x) for _ in range(20))


def test_augmentation_follows_the_config_and_moves_masks_with_the_image():
    import torch

    from mtbench.data.transforms import RandFlipd
    from mtbench.experiments.cobo2024_protocol import MonaiAugment, augmentation

    assert augmentation({}) is None and augmentation({"flip_axes": []}) is None
    assert isinstance(augmentation(default_config("smoke")["augment"]), RandFlipd)  # smoke: its flips only
    aug = augmentation(default_config("full")["augment"])
    assert isinstance(aug, MonaiAugment)
    assert aug.settings == dict(rotate_deg=5.0, rotate_prob=0.5, zoom=1.1, zoom_prob=1.0, noise_std=0.01, noise_prob=0.5)
    names = [type(t).__name__ for t in aug._compose(()).transforms]
    assert names == ["RandRotated", "Zoomd", "RandGaussianNoised"]
    # a blob image and its mask: rotated/zoomed together, so the mask still covers the bright voxels
    img = torch.zeros(1, 16, 32, 32)
    img[:, 5:11, 10:20, 12:22] = 1.0
    sample = {"image": img, "mask": {"seg": (img > 0).float()}, "patient_id": "p"}
    torch.manual_seed(0)
    outs = [aug(dict(sample)) for _ in range(12)]
    for o in outs:
        assert o["image"].shape == img.shape and o["mask"]["seg"].shape == img.shape and o["patient_id"] == "p"
        assert set(torch.unique(o["mask"]["seg"]).tolist()) <= {0.0, 1.0}
        # the mask still outlines the blob: same geometry, up to the noise (std 0.01) on the image
        m = o["mask"]["seg"] > 0
        assert not ((o["image"] > 0.55) & ~m).any() and not (m & (o["image"] < 0.45)).any()
    # always zoomed (10 -> 11 voxels wide); noise and rotation only sometimes
    # (the blob's mass, 600 voxels of 1, grows by about 1.1^3; a rotation keeps it, the noise averages out)
    assert all(float(o["image"].sum()) > 700 for o in outs)
    noisy = [bool(((o["image"] != 0) & (o["image"] != 1)).float().mean() > 0.5) for o in outs]
    assert 0 < sum(noisy) < len(outs)
    # torch's seed fixes the draws
    torch.manual_seed(0)
    again = [aug(dict(sample)) for _ in range(12)]
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(outs, again))


def test_baseline_17_original_variant_equals_the_original_layers():
    """variant="original" is, layer by layer, AmaiaModel.feature_extractor of the authors' code
    (TrainImageModels/BaselineAmaiaPytorch.py @ 9f1ee396ad18), transcribed here as the reference."""
    import torch
    from torch import nn

    from mtbench.models.video import PerezDelBarrioCNN

    ref = nn.Sequential(
        nn.Conv3d(1, 16, 3, padding=0, bias=False), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(16, 32, 3, padding=0, bias=True), nn.ReLU(), nn.MaxPool3d(2), nn.Dropout3d(0.5),
        nn.Conv3d(32, 64, 3, padding=0, bias=True), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(64, 128, 3, padding=0, bias=False), nn.ReLU(), nn.BatchNorm3d(128), nn.AdaptiveMaxPool3d(1))
    ours = PerezDelBarrioCNN(variant="original")
    flat = [m for b in ours.blocks for m in b.children()]
    assert [type(m) for m in flat] == [type(m) for m in ref][:-1] and isinstance(ours.dropout, nn.Identity)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in ref.parameters()]
    with torch.no_grad():
        for a, b in zip(ours.parameters(), ref.parameters()):
            a.copy_(b)
        ref[12].running_mean.uniform_(-0.1, 0.1)
        ours.blocks[3].norm.running_mean.copy_(ref[12].running_mean)
    ours.eval(), ref.eval()
    x = torch.randn(2, 1, 40, 45, 45)
    assert torch.allclose(ours(x), ref(x).flatten(1), atol=1e-5)
    # Kaiming-uniform convolutions with zero biases, as the original initialises them
    conv = PerezDelBarrioCNN(variant="original").blocks[1].conv
    bound = float(np.sqrt(6.0 / (16 * 27)))
    assert conv.bias.abs().max() == 0 and conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert default_config("full")["model"]["backbone_kwargs"]["perez_del_barrio_cnn"] == {"variant": "original"}
