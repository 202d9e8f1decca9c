"""Ruffini et al. 2024: full-profile defaults and options that follow the original code (issue 15).

Each test checks one behaviour of the original (see mtbench/references/protocols/ruffini2024.yaml)
on a tiny hand-made case; the smoke profile stays as it was (notebook 05 asserts on it).
"""

import numpy as np
import pytest
import torch

from mtbench import MultiTaskLoss, Task, create_model
from mtbench.data import MultiTaskDataset, make_synthetic_cxr
from mtbench.experiments.ruffini2024 import default_config, plateau_factor
from mtbench.train import TrainConfig, fit, make_loader, seed_everything


def test_val_fraction_follows_original_3_1_1_split():
    # The original splits train/val/test 3/1/1: one of the four non-test folds validates.
    assert default_config("full")["data"]["val_fraction"] == 0.25
    assert default_config("smoke")["data"]["val_fraction"] == 0.2  # smoke profile unchanged


# --------------------------------------------------------------------------- training options
def test_plateau_factor_per_arm():
    full, smoke = default_config("full")["train"], default_config("smoke")["train"]
    assert [plateau_factor(full["plateau_factor"], a) for a in ("mdmt", "stl_severity", "stl_prognosis")] == [0.65, 0.65, 0.75]
    assert plateau_factor(smoke["plateau_factor"], "mdmt") == 0.75  # smoke: one factor, as before
    assert (full["scheduler_monitor"], full["plateau_min_lr"], full["warmup_epochs"]) == ("loss", 1e-8, 40)
    assert (smoke["scheduler_monitor"], smoke["plateau_min_lr"], smoke["warmup_epochs"]) == (None, 0.0, 0)
    with pytest.raises(ValueError, match="no factor for arm 'ft'"):
        plateau_factor({"mdmt": 0.65}, "ft")


TASKS = [Task("prognosis", "binary"), Task("severity", "regression")]


@pytest.fixture(scope="module")
def loaders():
    d = make_synthetic_cxr(n_patients=48, size=32, seed=5)
    t = d.table.copy()
    t["prognosis"] = t["prognosis"].astype(float)
    t["severity"] = (t["severity"] - t["severity"].mean()) / t["severity"].std()
    return {name: make_loader(MultiTaskDataset(t.iloc[idx], TASKS, d.images[idx]), batch_size=16, shuffle=name == "train")
            for name, idx in {"train": slice(0, 32), "val": slice(32, 48)}.items()}


def _fit(loaders, **kw):
    seed_everything(0)
    model = create_model("convnet", TASKS, in_chans=1, backbone_kwargs={"channels": (4, 8)})
    cfg = dict(epochs=4, lr=1e-2, monitor="loss.prognosis", progress=False, seed=0)
    return fit(model, loaders["train"], loaders["val"], TASKS, MultiTaskLoss(TASKS), **{**cfg, **kw})


def test_warmup_epochs_are_never_selected(loaders, monkeypatch):
    import mtbench.train.loop as loop

    scores = [0.1, 0.2, 0.9, 0.8, 0.85, 0.95, 0.97, 0.99]  # validation losses scripted per epoch

    def run(**kw):
        it = iter(scores)
        monkeypatch.setattr(loop, "monitor_value", lambda *a, **k: next(it))
        return _fit(loaders, **{"epochs": 8, **kw})

    assert run().best_epoch == 1
    assert run(warmup_epochs=2).best_epoch == 4  # epochs 1-2 never count: the best of 3..8
    stop = run(patience=1)
    assert stop.stopped_early and len(stop.history) == 2
    stop = run(warmup_epochs=2, patience=1)  # patience counts only after the warm-up
    assert stop.stopped_early and len(stop.history) == 5 and stop.best_epoch == 4
    assert run(warmup_epochs=10, epochs=2).best_epoch == 2  # a run ending inside the warm-up keeps its last epoch
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(warmup_epochs=-1)


def test_scheduler_watches_its_own_quantity(loaders, monkeypatch):
    import mtbench.train.loop as loop

    fed = []
    real = loop.step_scheduler
    monkeypatch.setattr(loop, "step_scheduler", lambda sch, score, best: (fed.append(score), real(sch, score, best)))
    res = _fit(loaders, scheduler="plateau", scheduler_monitor="loss", epochs=2)
    assert fed == pytest.approx(res.history["val_loss"].tolist())  # the total, while selection watches prognosis
    assert res.history["val_loss"].tolist() != pytest.approx(res.history["val_loss.prognosis"].tolist())
    fed.clear()
    res = _fit(loaders, scheduler="plateau", epochs=2)
    assert fed == pytest.approx(res.history["val_loss.prognosis"].tolist())  # default: the selection quantity
    assert TrainConfig(monitor="loss.prognosis", scheduler_monitor="prognosis.auc").scheduler_mode() == "max"
    assert TrainConfig(monitor="prognosis.auc", scheduler_monitor="loss").scheduler_mode() == "min"
    with pytest.raises(ValueError, match="no task 'nope'"):
        _fit(loaders, scheduler="plateau", scheduler_monitor="loss.nope")


def test_plateau_min_lr_is_the_floor():
    from mtbench.train.optim import make_scheduler, step_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sch = make_scheduler(opt, TrainConfig(scheduler="plateau", plateau_factor=0.1, plateau_patience=0, plateau_min_lr=1e-5))
    for _ in range(5):
        step_scheduler(sch, 1.0, 1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)


# --------------------------------------------------------------------------- aggregation
def test_summary_pools_folds_by_default():
    """A big fold (8 images, accuracy 0.5) and a small one (2 images, 1.0): pooled 6/10 = 0.6, fold mean 0.75."""
    import pandas as pd

    from mtbench.experiments.ruffini2024 import RuffiniResult

    rows = [dict(backbone=bb, arm="mdmt", fold=f, task="prognosis", metric="accuracy", value=v, n=n)
            for bb in ("a", "b") for f, v, n in (("0", 0.5, 8), ("1", 1.0, 2), ("pooled", 0.6, 10))]
    rows[-1]["value"] = 0.7  # backbone b pools differently: the summary averages the two backbones
    cfg = default_config("full")
    assert cfg["report"]["aggregation"] == default_config("smoke")["report"]["aggregation"] == "pooled"
    res = RuffiniResult(pd.DataFrame(rows), {}, {}, {}, cfg)
    assert res.averages(("accuracy",)).loc["mdmt", "accuracy"] == pytest.approx(65.0)  # (60 + 70) / 2
    assert res.averages(("accuracy",), aggregation="fold_mean").loc["mdmt", "accuracy"] == pytest.approx(75.0)
    res.config = {**cfg, "report": {"aggregation": "fold_mean"}}
    assert res.averages(("accuracy",)).loc["mdmt", "accuracy"] == pytest.approx(75.0)
    with pytest.raises(ValueError, match="view must be one of"):
        res.averages(("accuracy",), aggregation="median")


# --------------------------------------------------------------------------- heads and losses
def test_reference_heads_and_losses_per_arm():
    """loss.mode = reference (the full default) builds each arm as the original code."""
    from torch import nn

    from mtbench.experiments.ruffini2024 import _arm_tasks, build_model

    cfg = default_config("smoke")
    assert cfg["loss"]["mode"] == "masked_mean" and default_config("full")["loss"]["mode"] == "reference"
    cfg["loss"]["mode"] = "reference"
    losses = {arm: {t.name: t.loss for t in _arm_tasks(cfg, arm)} for arm in cfg["arms"]}
    assert losses == {"stl_prognosis": {"prognosis": "softmax_bce"}, "stl_severity": {"severity": "ce"},
                      "ft": {"prognosis": "softmax_bce"}, "mdmt": {"prognosis": "onehot_mse", "severity": "ce"}}

    def layers(arm, task):
        head = build_model("convnet", _arm_tasks(cfg, arm), cfg, arm).heads[task]
        leaves = [m for m in head.modules() if not list(m.children())]
        return [f"Linear({m.in_features},{m.out_features})" if isinstance(m, nn.Linear) else
                f"Dropout({m.p})" if isinstance(m, nn.Dropout) else type(m).__name__ for m in leaves]

    f = 64  # the smoke convnet's feature width
    assert layers("stl_prognosis", "prognosis") == ["Dropout(0.5)", f"Linear({f},2)"]
    assert layers("mdmt", "prognosis") == [f"Linear({f},128)", "ReLU", "Dropout(0.5)", "Linear(128,32)", "ReLU",
                                           "Dropout(0.5)", "Linear(32,2)"]
    assert layers("mdmt", "severity") == layers("stl_severity", "severity") == ["ReLU", "Dropout(0.5)", f"Linear({f},4)"]
    mdmt = build_model("convnet", _arm_tasks(cfg, "mdmt"), cfg, "mdmt")
    assert all(torch.all(m.bias == 0.01) for m in mdmt.heads["prognosis"].modules() if isinstance(m, nn.Linear))  # H1: biases 0.01


def test_softmax_bce_by_hand():
    """logits (0, ln 3): softmax (1/4, 3/4); target class 1: BCE entries -log(3/4) twice, mean log(4/3)."""
    from mtbench.mtl.losses import get_loss

    task = Task("prognosis", "multiclass", num_classes=2, loss="softmax_bce")
    out = torch.tensor([[0.0, float(np.log(3.0))], [0.0, 0.0]])
    got = get_loss("softmax_bce")(out, torch.tensor([1, 0]), task)
    assert got.tolist() == pytest.approx([np.log(4 / 3), np.log(2.0)], rel=1e-6)


# --------------------------------------------------------------------------- MDMT initialisation
def test_mdmt_init_averages_parameters_and_keeps_fresh_batchnorm_statistics():
    """The original averages named_parameters (beta 0.5), not buffers: the full profile's MDMT keeps the
    new backbone's batch-norm statistics; the smoke profile averages them too (unchanged)."""
    from mtbench.experiments.ruffini2024 import init_arm
    from mtbench.models import MultiTaskModel, create_backbone, create_head

    def model(fill):
        bb = create_backbone("convnet", in_chans=1, channels=[4, 8])
        m = MultiTaskModel(bb, {"prognosis": create_head("linear", bb.num_features, 1)})
        with torch.no_grad():
            for t in m.state_dict().values():
                if t.is_floating_point():
                    t.fill_(fill)
        return m

    a, b = model(1.0), model(3.0)
    bn = [k for k, v in a.backbone.state_dict().items() if "running_" in k]
    assert bn  # the backbone has batch-norm statistics to tell the two ways apart
    spec = default_config("full")["arms"]["mdmt"]["init"]
    assert spec == {"beta_average": ["stl_prognosis", "stl_severity"], "beta": 0.5, "heads": "fresh", "buffers": "fresh"}
    assert default_config("smoke")["arms"]["mdmt"]["init"]["buffers"] == "average"
    out = init_arm(model(7.0), {**spec, "beta_average": ["a", "b"]}, {"a": a, "b": b})
    assert all(torch.all(p == 2.0) for p in out.backbone.parameters())  # 0.5 * 1 + 0.5 * 3
    assert all(torch.all(out.backbone.state_dict()[k] == 7.0) for k in bn)  # the new model's own
    out = init_arm(model(7.0), {**spec, "beta_average": ["a", "b"], "buffers": "average"}, {"a": a, "b": b})
    assert all(torch.all(out.backbone.state_dict()[k] == 2.0) for k in bn)
    with pytest.raises(ValueError, match="init.buffers"):
        init_arm(model(7.0), {**spec, "beta_average": ["a", "b"], "buffers": "mean"}, {"a": a, "b": b})


# --------------------------------------------------------------------------- preprocessing
def test_lung_box_border_square_and_clip_order():
    from mtbench.data.cxr import CXRPreprocess, mask_bbox, square_box

    full = default_config("full")["data"]
    assert (full["use_lung_masks"], full["bbox_margin"], full["bbox_square"], full["clip_before_crop"]) == (True, 0.025, True, True)
    assert default_config("smoke")["data"]["use_lung_masks"] is False  # smoke: no masks, the box settings are unused
    # a 60 x 20 box: 2.5% a side is round(1.5) = 2 rows and round(0.5) = 0 columns, then squared to 64 x 64
    mask = np.zeros((100, 100), bool)
    mask[20:80, 40:60] = True
    assert mask_bbox(mask, 0.025) == (18, 82, 40, 60)
    assert square_box((18, 82, 40, 60), (100, 100)) == (18, 82, 18, 82)
    assert square_box((20, 80, 5, 25), (100, 100)) == (20, 80, 0, 60)  # shifted inwards at the left edge
    assert square_box((20, 80, 5, 25), (100, 50)) == (20, 80, 0, 50)  # image too narrow: stops at its edges
    assert square_box((40, 50, 10, 40), (100, 100)) == (30, 60, 10, 40)  # wide box: rows added
    # clip order: the whole image's 2nd percentile (about 0.10 here) vs the crop's own (0)
    img = np.full((40, 50), 100.0, np.float32)
    img[10:20, 5:45] = np.linspace(0, 1, 40)[None, :]
    lung = np.zeros_like(img, bool)
    lung[10:20, 5:45] = True
    kw = dict(size=64, channels=1, normalisation="none", clip=(2.0, 98.0))  # upsampled: the min survives
    whole = CXRPreprocess(clip_before_crop=True, **kw)(img, mask=lung)
    own = CXRPreprocess(**kw)(img, mask=lung)
    assert whole.min() == pytest.approx(np.percentile(img, 2), abs=1e-5)
    assert own.min() == pytest.approx(np.percentile(img[10:20, 5:45], 2), abs=1e-5)
    assert whole.min() > own.min() + 0.1
    with pytest.raises(FileNotFoundError, match="use_lung_masks"):
        CXRPreprocess(**kw).load("nowhere.png", mask_path="/nonexistent/mask.png")


def test_normalisation_as_original_per_arm(monkeypatch):
    """The original's configs spell the normaliser 'Imagenet' only for STL tau1: that arm gets the ImageNet
    mean / std on the clipped intensities, the other arms none."""
    from mtbench.experiments import ruffini2024 as R

    cfg = default_config("full")
    assert cfg["data"]["normalisation"] == "as_original" and default_config("smoke")["data"]["normalisation"] == "minmax"
    x = torch.full((3, 4, 4), 1000.0)  # a clipped intensity, not scaled
    stl = R.arm_transform(cfg, "stl_prognosis", "test")(x)
    assert stl[0, 0, 0].item() == pytest.approx((1000 - 0.485) / 0.229) and stl[2, 0, 0].item() == pytest.approx((1000 - 0.406) / 0.225)
    assert R.arm_transform(cfg, "mdmt", "test") is None and R.arm_transform(cfg, "stl_severity", "val") is None
    imagenet = {**cfg, "data": {**cfg["data"], "normalisation": "imagenet"}}
    assert R.arm_transform(imagenet, "stl_prognosis", "val") is None  # imagenet: once at preprocessing, nothing per arm
    seen = {}
    monkeypatch.setattr(R, "load_two_datasets", lambda d, *a, **k: seen.update(d))
    R.prepare_data(cfg)
    assert seen["normalisation"] == "none"  # preprocessing keeps the clipped intensities


def test_augmentation_is_the_original_five_steps_and_masks_follow():
    from torchvision import tv_tensors

    from mtbench.data.cxr import augmentation
    from mtbench.experiments import ruffini2024 as R

    cfg = default_config("full")
    assert cfg["data"]["augment"] == {"p": 0.5, "shift": 0.1, "zoom": [0.9, 1.1], "hflip": True, "rotate_deg": 10,
                                      "elastic": {"alpha": [20, 40], "sigma": 7}}
    assert default_config("smoke")["data"]["augment"] is None and augmentation(None) is None
    train = R.arm_transform(cfg, "mdmt", "train")
    assert [type(t).__name__ for t in train.transforms] == ["RandomApply", "RandomApply", "RandomHorizontalFlip", "RandomApply", "RandomApply"]
    assert R.arm_transform(cfg, "mdmt", "val") is None  # validation and test images are not augmented
    x = torch.zeros(1, 32, 32)
    x[:, 8:24, 4:12] = 1.0  # a bright block left of centre
    flip = augmentation({"p": 1.0, "hflip": True})
    assert torch.equal(flip(x), x.flip(-1))
    assert torch.equal(augmentation({"p": 0.0, "shift": 0.1, "rotate_deg": 10, "hflip": True})(x), x)
    # every step at once, p = 1: a lung mask given as a tv_tensors.Mask moves with the image
    torch.manual_seed(0)
    every = augmentation({**cfg["data"]["augment"], "p": 1.0})
    for _ in range(5):
        img, mask = every(tv_tensors.Image(x), tv_tensors.Mask(x[0] > 0.5))
        assert ((img[0] > 0.5) == mask).float().mean() > 0.97
        assert not torch.equal(img, x)
    with pytest.raises(ValueError, match="Unknown augmentation keys"):
        augmentation({"flip": True})


# --------------------------------------------------------------------------- protocol
def test_loco_pairs_every_centre_with_brixia_fold_0():
    import pandas as pd

    from mtbench.data.multidataset import TwoDatasets
    from mtbench.experiments.ruffini2024 import severity_fold

    prog = pd.DataFrame({"patient_id": ["a1", "a2", "d1"], "fold": ["A", "A", "D"]})
    sev = pd.DataFrame({"patient_id": ["b1", "b2", "b3"], "fold": ["D", "A", "D"]})
    data = TwoDatasets(prog, sev, {}, {})
    full = default_config("full")
    assert full["protocol"]["loco_brixia_fold"] == 0 and default_config("smoke")["protocol"]["loco_brixia_fold"] is None
    loco = {**full, "protocol": {**full["protocol"], "name": "loco"}}
    assert [severity_fold(loco, f, data) for f in ("A", "D")] == ["A", "A"]  # sorted severity folds: A is fold 0
    assert [severity_fold(full, f, data) for f in ("A", "D")] == ["A", "D"]  # cv: the folds rotate together
    rotate = {**loco, "protocol": {**loco["protocol"], "loco_brixia_fold": None}}
    assert severity_fold(rotate, "D", data) == "D"
    with pytest.raises(ValueError, match="folds"):
        severity_fold({**loco, "protocol": {**loco["protocol"], "loco_brixia_fold": 5}}, "A", data)
    shared = TwoDatasets(prog, sev.assign(patient_id=["a1", "x", "y"]), {}, {})
    with pytest.raises(ValueError, match="in both data sets"):
        severity_fold(loco, "A", shared)


def test_lung_bins_are_the_original_codes():
    from mtbench.data.sources.brixia import LUNG_EDGES, bin_scores

    assert bin_scores([0, 1, 2, 4, 5, 7, 8, 9], LUNG_EDGES).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # <=1, 2-4, 5-7, >=8


# --------------------------------------------------------------------------- statistics
def test_significance_across_backbones_by_hand():
    """Four backbones, MDMT 1-4 points above STL tau1: t = 2.5 / (sd(1,2,3,4) / 2) = 3.873, df 3, one-tailed
    p = 0.0152 (*); the README's stars for CV accuracy (***) beside it. Pairs are joined by backbone name."""
    import pandas as pd
    from scipy import stats as st

    from mtbench.experiments.ruffini2024 import RuffiniResult

    rows = []
    for i, bb in enumerate(["d", "c", "b", "a"]):  # listed out of order: the join is by name
        for arm, shift in (("stl_prognosis", 0.0), ("ft", 0.02), ("mdmt", 0.01 * (4 - i))):
            base = 0.60 + 0.01 * i
            for fold, v in (("0", base + shift - 0.02 * (arm != "mdmt")), ("1", base + shift + 0.02 * (arm != "mdmt")),
                            ("pooled", base + shift)):
                rows.append(dict(backbone=bb, arm=arm, fold=fold, task="prognosis", metric="accuracy", value=v))
    res = RuffiniResult(pd.DataFrame(rows), {}, {}, {}, default_config("full"))
    sig = res.significance(("accuracy",)).set_index(["comparison", "statistic"])
    mean = sig.loc[("mdmt_vs_stl", "mean")]
    t = 2.5 / (np.std([1, 2, 3, 4], ddof=1) / 2)
    assert t == pytest.approx(3.873, abs=1e-3) and mean["n"] == 4
    assert mean["p_value"] == pytest.approx(st.t.sf(t, 3)) and mean["p_value"] == pytest.approx(0.0152, abs=1e-4)
    assert (mean["ours"], mean["paper"]) == ("*", "***")
    # SD over folds: MDMT's folds are equal (SD 0), STL's differ by 0.04 (SD 0.028) for every backbone: no spread
    # in the differences, so no t statistic: reported n/a rather than a p of 0
    assert sig.loc[("mdmt_vs_stl", "std"), "ours"] == "n/a"
    w = sig.loc[("mdmt_vs_stl", "wilcoxon")]
    assert w["p_value"] == pytest.approx(1 / 16) and w["ours"] == "n.s." and w["paper"] == ""  # exact: 1 of 2^4 sign patterns
    assert sig.loc[("mdmt_vs_ft", "mean"), "paper"] == "**"
    # a flagged arm is named beside its tests
    from mtbench.guards import Flag

    res.degenerate_flags = lambda: [Flag("prognosis", "a/ft", "0", "one_class_predictions", "all 2 predictions are class 1")]
    sig = res.significance(("accuracy",))
    assert set(sig.loc[sig["comparison"] == "mdmt_vs_ft", "degenerate"]) == {"ft: one_class_predictions"}
    assert set(sig.loc[sig["comparison"] == "mdmt_vs_stl", "degenerate"]) == {""}
