"""Segmentation as a task kind: decoder, Dice+BCE, volumes, Predictions columns, masks on disk, samplers."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from mtbench import Task
from mtbench.data import MultiTaskDataset
from mtbench.data.sampling import class_balanced_sampler
from mtbench.metrics import compute_metrics, sensitivity_at_specificity
from mtbench.models import create_backbone, create_model
from mtbench.models.decoder import UNetDecoder
from mtbench.mtl import MultiTaskLoss
from mtbench.mtl.losses import task_loss
from mtbench.segmentation import dice_score, iou_score, load_mask
from mtbench.stats import bland_altman, bootstrap_metrics
from mtbench.volumes import mask_volume_ml, voxel_volume_ml


# ------------------------------------------------------------------- decoder shapes
@pytest.mark.parametrize("spatial_dims,size", [(2, (40, 36)), (3, (16, 24, 20))])
def test_decoder_output_matches_input_size_2d_3d(spatial_dims, size):
    tasks = [Task("lesion", "segmentation"), Task("y", "binary")]
    model = create_model("convnet", tasks, spatial_dims=spatial_dims, backbone_kwargs={"channels": [4, 8, 16]})
    x = torch.randn(2, 1, *size)
    out = model(x)
    assert out["lesion"].shape == (2, 1, *size)
    assert out["y"].shape == (2, 1)
    # first_level skips the finest map and still returns a full-size map
    model = create_model("convnet", tasks, spatial_dims=spatial_dims, backbone_kwargs={"channels": [4, 8, 16]},
                         decoder_kwargs={"first_level": 1, "skip_levels": 0})
    assert model(x)["lesion"].shape == (2, 1, *size)


def test_decoder_on_native_densenet3d_and_bad_arguments():
    bb = create_backbone("densenet121_native", spatial_dims=3, in_chans=1, init_features=4, growth_rate=4, block_config=[1, 1])
    dec = UNetDecoder(bb.feature_channels, spatial_dims=3)
    x = torch.randn(1, 1, 16, 32, 32)
    assert dec(bb.forward_maps(x), x.shape[2:]).shape == (1, 1, 16, 32, 32)
    with pytest.raises(ValueError, match="decoder_channels"):
        UNetDecoder([4, 8], spatial_dims=2, decoder_channels=[4])
    with pytest.raises(ValueError, match="first_level"):
        UNetDecoder([4, 8], spatial_dims=2, first_level=2)
    with pytest.raises(ValueError, match="foreground_prior"):
        UNetDecoder([4, 8], spatial_dims=2, foreground_prior=1.5)
    d = UNetDecoder([4, 8], spatial_dims=2, foreground_prior=0.01)
    assert math.isclose(float(d.out.bias.detach()), math.log(0.01 / 0.99), rel_tol=1e-5)


def test_pooled_path_unchanged_and_encoder_runs_once():
    torch.manual_seed(0)
    bb = create_backbone("convnet", spatial_dims=3, in_chans=1, channels=[4, 8])
    x = torch.randn(2, 1, 16, 16, 16)
    pooled, maps = bb.forward_with_maps(x)
    torch.testing.assert_close(pooled, bb(x))
    assert [m.shape[1] for m in maps] == bb.feature_channels
    model = create_model(bb, [Task("seg", "segmentation"), Task("y", "binary")], spatial_dims=3)
    calls = []
    h = model.backbone.stages[0].register_forward_hook(lambda *a: calls.append(1))
    out, feats = model(x, return_features=True)
    h.remove()
    assert len(calls) == 1 and feats.shape == (2, 8)
    torch.testing.assert_close(out["y"], model.heads["y"](bb(x)))


# --------------------------------------------------------------------------- losses
def test_dice_bce_on_known_masks():
    task = Task("seg", "segmentation", loss_kwargs={"bce_weight": 0.0, "smooth": 1.0})
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 0, :4] = 1  # 4 voxels
    pred = torch.zeros(1, 1, 4, 4)
    pred[0, 0, 0, 2:] = 1
    pred[0, 0, 1, :2] = 1  # 4 voxels, 2 overlap
    logits = (pred * 2 - 1) * 30.0  # sigmoid ~ exactly 0/1
    loss = task_loss(task, logits, target)
    assert loss.shape == (1,)
    assert math.isclose(float(loss), 1 - (2 * 2 + 1) / (4 + 4 + 1), abs_tol=1e-6)
    perfect = task_loss(task, (target * 2 - 1) * 30.0, target)
    assert float(perfect) < 1e-6
    # the BCE part: a 0.5 prediction everywhere costs log 2 per voxel
    t2 = Task("seg", "segmentation", loss_kwargs={"bce_weight": 1.0})
    assert math.isclose(float(task_loss(t2, torch.zeros(1, 1, 4, 4), target)), math.log(2), rel_tol=1e-6)
    with pytest.raises(ValueError, match="voxels"):
        task_loss(task, torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_dice_iou_scores_and_empty_convention():
    a = np.zeros((2, 3, 3), bool)
    b = np.zeros((2, 3, 3), bool)
    a[0, 0, :] = True          # 3 voxels
    b[0, 0, :2] = True         # 2 voxels, overlap 2
    np.testing.assert_allclose(dice_score(a, b), [2 * 2 / 5, 1.0])
    np.testing.assert_allclose(iou_score(a, b), [2 / 3, 1.0])


# -------------------------------------------------------------------------- volumes
def test_volume_with_anisotropic_spacing():
    m = np.zeros((10, 20, 20), bool)
    m[2:5, 4:14, 5:10] = True  # 3 * 10 * 5 = 150 voxels
    # 5 mm slices of 0.45 x 0.45 mm pixels: 1.0125 mm^3 per voxel
    assert math.isclose(mask_volume_ml(m, (5.0, 0.45, 0.45)), 150 * 5.0 * 0.45 * 0.45 / 1000)
    # the axis order matters for anisotropic voxels only through the product: permuted spacing, same volume
    assert math.isclose(mask_volume_ml(m, (0.45, 5.0, 0.45)), mask_volume_ml(m, (5.0, 0.45, 0.45)))
    # a batch, and a probability map thresholded at 0.5
    batch = np.stack([m, np.zeros_like(m)]).astype(float) * 0.9
    np.testing.assert_allclose(mask_volume_ml(batch, (5.0, 0.45, 0.45)), [0.151875, 0.0])
    # a 10 mL cube: 10 x 10 x 10 voxels of 1 x 1 x 10 mm... = 1000 voxels * 10 mm^3
    assert math.isclose(mask_volume_ml(np.ones((10, 10, 10)), (10.0, 1.0, 1.0)), 10.0)
    assert voxel_volume_ml(None) == 1e-3
    with pytest.raises(ValueError, match="positive"):
        voxel_volume_ml((1.0, 0.0, 1.0))


def test_bland_altman_by_hand():
    a = np.array([10.0, 20.0, 30.0, 40.0, np.nan])
    b = np.array([12.0, 21.0, 33.0, 41.0, 5.0])
    r = bland_altman(a, b)
    d = np.array([2.0, 1.0, 3.0, 1.0])
    assert r.n == 4
    assert math.isclose(r.bias, d.mean()) and math.isclose(r.sd, d.std(ddof=1))
    assert math.isclose(r.loa_high, d.mean() + 1.96 * d.std(ddof=1))
    assert r.bias_ci[0] < r.bias < r.bias_ci[1]


# ------------------------------------------------------------------ rare positives
def test_balanced_sampler_draws_classes_equally():
    y = np.array([0] * 90 + [1] * 10, dtype=float)
    s = class_balanced_sampler(y, num_samples=20000, seed=3)
    drawn = y[list(iter(s))]
    assert abs(drawn.mean() - 0.5) < 0.02
    again = list(iter(class_balanced_sampler(y, num_samples=50, seed=3)))
    assert again == list(iter(class_balanced_sampler(y, num_samples=50, seed=3)))  # seeded
    y_nan = np.array([0, 0, 1, np.nan])
    w = class_balanced_sampler(y_nan).weights.numpy()
    np.testing.assert_allclose(w, [0.5, 0.5, 1.0, 2 / 3])
    with pytest.raises(ValueError, match="NaN"):
        class_balanced_sampler([np.nan, np.nan])


def test_sensitivity_at_specificity_by_hand():
    y = [0, 0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.8, 0.7, 0.9]
    # spec >= 0.8 allows no false positive of 4: threshold 0.9 catches only one positive -> 0.5
    assert sensitivity_at_specificity(y, s, 0.8) == 0.5
    assert sensitivity_at_specificity(y, s, 1.0) == 0.5
    # spec >= 0.75 allows one (the 0.8 negative): threshold 0.7 catches both positives -> 1.0
    assert sensitivity_at_specificity(y, s, 0.75) == 1.0
    assert np.isnan(sensitivity_at_specificity([0, 0], [0.1, 0.2], 0.9))


# ------------------------------------------------------------- fit / predict end to end
def _tiny_phantom():
    from mtbench.data.phantom import make_head_ct_phantom

    return make_head_ct_phantom(n_patients=10, shape=(16, 24, 24), seed=1)


def test_segmentation_through_fit_and_predict(tmp_path):
    from mtbench.train import fit, make_loader, predict

    ph = _tiny_phantom()
    tasks = [Task("hem", "segmentation", voxel_spacing=ph.spacing), Task("growth", "binary")]
    ds = MultiTaskDataset(ph.table, tasks, ph.images(), masks={"hem": ph.hematoma_masks})
    s = ds[0]
    assert s["targets"]["hem"].shape == (1, 16, 24, 24) and s["targets"]["hem"].dtype == torch.float32
    model = create_model("convnet", tasks, spatial_dims=3, backbone_kwargs={"channels": [4, 8]})
    loader = make_loader(ds, batch_size=5)
    res = fit(model, make_loader(ds, batch_size=5, shuffle=True), loader, tasks, epochs=2, progress=False,
              monitor="hem.dice")
    assert "val.hem.dice" in res.history.columns and "train_loss.hem" in res.history.columns
    p = predict(res.model, loader, tasks, mask_dir=tmp_path)
    for c in ("hem.volume_true_ml", "hem.volume_pred_ml", "hem.dice", "hem.iou", "growth.prob"):
        assert c in p.columns
    np.testing.assert_allclose(p["hem.volume_true_ml"], mask_volume_ml(ph.hematoma_masks, ph.spacing), rtol=1e-6)
    saved = load_mask(tmp_path, "hem", p["sample_id"].iloc[3])
    assert saved["mask"].shape == (16, 24, 24)
    assert math.isclose(saved["mask"].sum() * voxel_volume_ml(ph.spacing), p["hem.volume_pred_ml"].iloc[3])
    m = compute_metrics(p)
    assert set(m[m.task == "hem"].metric) == {"dice", "iou", "volume_mae_ml"}
    boot = bootstrap_metrics(p, n_boot=20)
    assert boot[(boot.task == "hem") & (boot.metric == "dice")]["ci_low"].notna().all()


def test_missing_masks_are_masked_out_of_loss_and_metrics():
    ph = _tiny_phantom()
    tasks = [Task("hem", "segmentation"), Task("growth", "binary")]
    loader_fn = lambda row: None if row.name % 2 else ph.hematoma_masks[row.name]  # noqa: E731
    ds = MultiTaskDataset(ph.table, tasks, ph.images(), masks={"hem": loader_fn})
    assert not bool(ds[1]["mask"]["hem"]) and bool(ds[0]["mask"]["hem"])
    assert ds[1]["targets"]["hem"].shape == (1, 16, 24, 24)
    with pytest.raises(ValueError, match="needs its masks"):
        MultiTaskDataset(ph.table, tasks, ph.images())
    with pytest.raises(ValueError, match="not a segmentation task"):
        MultiTaskDataset(ph.table, tasks, ph.images(), masks={"hem": ph.hematoma_masks, "growth": ph.hematoma_masks})
    bad = MultiTaskDataset(ph.table, tasks, ph.images(), masks={"hem": ph.hematoma_masks[:, :8]})
    with pytest.raises(ValueError, match="input grid"):
        bad[0]
    from mtbench.train import make_loader, predict

    model = create_model("convnet", tasks, spatial_dims=3, backbone_kwargs={"channels": [4, 8]})
    p = predict(model, make_loader(ds, batch_size=4), tasks)
    assert p["hem.dice"].isna().sum() == 5 and p["hem.volume_true_ml"].isna().sum() == 5
    loss = MultiTaskLoss(tasks)
    batch = next(iter(make_loader(ds, batch_size=4)))
    out = model(batch["image"])
    res = loss(out, batch["targets"], batch["mask"])
    assert res.counts["hem"] == 2


def test_task_roundtrip_and_columns():
    t = Task("hem", "segmentation", voxel_spacing=(5, 0.5, 0.5))
    assert Task.from_dict(t.to_dict()) == t and t.voxel_spacing == (5.0, 0.5, 0.5)
    assert t.target_columns() == ["hem.volume_true_ml"]
    assert t.output_columns() == ["hem.volume_pred_ml", "hem.dice", "hem.iou"]
    with pytest.raises(ValueError, match="only for segmentation"):
        Task("y", "binary", voxel_spacing=(1, 1, 1))
    d = t.decode(torch.zeros(2, 1, 3, 4, 4))
    assert d["prob"].shape == (2, 3, 4, 4) and d["pred"].all()


def test_decoder_on_a_timm_2d_backbone():
    model = create_model("resnet18", [Task("s", "segmentation"), Task("y", "binary")], in_chans=1)
    out = model(torch.randn(2, 1, 64, 48))
    assert out["s"].shape == (2, 1, 64, 48) and out["y"].shape == (2, 1)


def test_per_sample_voxel_size_from_meta():
    from mtbench.train import make_loader, predict

    ph = _tiny_phantom()
    table = ph.table.copy()
    table["voxel_ml"] = voxel_volume_ml(ph.spacing) * 2  # as if each voxel were twice as big
    tasks = [Task("hem", "segmentation", voxel_spacing=ph.spacing)]
    model = create_model("convnet", tasks, spatial_dims=3, backbone_kwargs={"channels": [4, 8]})

    def run(t):
        ds = MultiTaskDataset(t, tasks, ph.images(), masks={"hem": ph.hematoma_masks}, meta_columns=["patient_id", "voxel_ml"])
        return predict(model, make_loader(ds, batch_size=5), tasks)

    p = run(table)
    expected = 2 * mask_volume_ml(ph.hematoma_masks, ph.spacing)
    np.testing.assert_allclose(p["hem.volume_true_ml"], expected, rtol=1e-6)
    # unknown for one masked sample: its volume would be NaN and it would silently leave Dice/IoU (issue 14)
    table.loc[0, "voxel_ml"] = np.nan
    with pytest.raises(ValueError, match=r"have a mask but a blank or invalid voxel size"):
        run(table)


def test_masked_sample_without_a_volume_is_not_dropped_from_dice():
    """Per-sample Dice [1.0, 0.0] with the second volume unknown used to score 1.0 with n = 1."""
    from mtbench.metrics import compute_metrics

    task = Task("hem", "segmentation")
    df = pd.DataFrame({"sample_id": ["a", "b", "c"], "hem.volume_true_ml": [2.0, np.nan, np.nan],
                       "hem.volume_pred_ml": [2.0, np.nan, 1.0], "hem.dice": [1.0, 0.0, np.nan],
                       "hem.iou": [1.0, 0.0, np.nan]})
    with pytest.raises(ValueError, match=r"1 samples have a mask .* no true volume.*\['b'\]"):
        compute_metrics(df, [task])
    df.loc[1, "hem.volume_true_ml"] = df.loc[1, "hem.volume_pred_ml"] = 1.0  # c has no mask: left out, as it should
    m = compute_metrics(df, [task]).set_index("metric")
    assert m.loc["dice", "value"] == 0.5 and m.loc["dice", "n"] == 2


def test_a_mask_follows_a_flip_and_a_rotation():
    """Issue 17: transforms saw only the image, so an augmentation left the mask behind."""
    import pandas as pd
    import torch

    from mtbench.data import MultiTaskDataset
    from mtbench.data.transforms import ComposeDict, ImageOnlyd, RandFlipd, RandRot90d
    from mtbench.tasks import Task

    img = np.zeros((1, 1, 8, 8), dtype=np.float32)
    img[0, 0, 1, 2] = 1.0  # one bright pixel ...
    seg = (img[:, 0] > 0).astype(np.float32)  # ... and its mask
    table = pd.DataFrame({"sample_id": ["a"], "patient_id": ["p"]})
    tasks = [Task("lesion", "segmentation")]
    for t in (RandFlipd((0, 1), prob=1.0), RandRot90d((0, 1), prob=1.0),
              ComposeDict([RandFlipd((1,), prob=1.0), RandRot90d(prob=1.0), ImageOnlyd(lambda x: 2 * x)])):
        torch.manual_seed(0)
        s = MultiTaskDataset(table, tasks, img, masks={"lesion": seg}, transform=t)[0]
        assert not torch.equal(s["targets"]["lesion"][0], torch.as_tensor(seg[0]))  # it moved ...
        assert torch.equal(s["image"][0] > 0, s["targets"]["lesion"][0] > 0)  # ... with the image
