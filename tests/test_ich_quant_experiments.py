"""The gong2023 and hirano2021 experiments: configuration, units, and tiny end-to-end runs."""

import numpy as np
import pytest

from mtbench.experiments import get_experiment, list_experiments
from mtbench.experiments import gong2023, hirano2021
from mtbench.runs import run_experiment, unit_key


def _tiny(cfg, arms=None):
    cfg["data"]["phantom"].update({"n_patients": 24, "shape": [16, 32, 32]})
    cfg["data"]["preprocess"]["shape"] = [16, 24, 24]
    cfg["model"]["backbone_kwargs"] = {"channels": [4, 8, 16]}
    cfg["train"].update({"epochs": 1, "batch_size": 8})
    cfg["seeds"] = [0]
    cfg["bootstrap"]["n_boot"] = 20
    if arms is not None:
        cfg["arms"] = arms
    return cfg


def test_registered_and_labelled_reinterpretations():
    assert {"gong2023", "hirano2021"} <= set(list_experiments())
    for mod in (gong2023, hirano2021):
        assert get_experiment(mod.NAME) is mod
        assert "re-interpretation" in mod.DESCRIPTION
        for profile in ("smoke", "full"):
            cfg = mod.default_config(profile)
            assert cfg["reinterpretation"] is True and cfg["profile"] == profile
    assert gong2023.default_config("full")["data"]["source"] == "ich_ct"
    assert hirano2021.default_config("smoke")["data"]["phantom"]["growth_prevalence"] < 0.5  # growth is the rare class


def test_gong_units_put_downstream_after_joint():
    cfg = gong2023.default_config("smoke")
    cfg["seeds"] = [0, 1]
    us = gong2023.units(cfg)
    keys = [unit_key(u) for u in us]
    assert len(us) == 8 and "arm=upstream_downstream/seed=1" in keys
    down = [u for u in us if u["arm"] == "upstream_downstream" and u["seed"] == 1][0]
    assert down["after"] == ["arm=joint/seed=1"]
    assert keys.index("arm=joint/seed=1") < keys.index("arm=upstream_downstream/seed=1")


def test_hirano_units_and_imbalance_options():
    cfg = hirano2021.default_config("smoke")
    assert len(hirano2021.units(cfg)) == 2 * len(cfg["seeds"]) and len(cfg["seeds"]) >= 3
    cfg["imbalance"].update({"loss": "focal"})
    t = hirano2021.make_tasks(cfg)["growth"]
    assert t.loss == "focal" and t.loss_kwargs == {"gamma": 2.0, "alpha": 0.25}
    cfg["imbalance"].update({"loss": "bce", "pos_weight": 5.0})
    assert hirano2021.make_tasks(cfg)["growth"].loss_kwargs == {"pos_weight": 5.0}
    cfg["imbalance"].update({"loss": "focal"})
    with pytest.raises(ValueError, match="pos_weight"):
        hirano2021.make_tasks(cfg)
    assert "sens_at_spec90" in t.metrics and "auprc" in t.metrics


def test_gong_run_volumes_in_ml_and_frozen_encoder(tmp_path):
    cfg = _tiny(gong2023.default_config("smoke"))
    cfg["downstream"]["epochs"] = 1
    r = gong2023.run(cfg, progress=False)
    assert set(r.predictions) == {f"{a}/seed0" for a in cfg["arms"]}
    p = r.predictions["joint/seed0"]
    # volume targets are the mask volumes in mL, not the z-scored training scale
    ml = dict(zip(r.prepared.table["sample_id"], r.prepared.table["hematoma_ml"]))
    np.testing.assert_allclose(p["volume.target"], [ml[s] for s in p["sample_id"]])
    assert p["volume.target"].min() > 0
    tab = r.table()
    assert list(tab.index.get_level_values(0)) == list(cfg["arms"])
    assert {"volume.mae", "prognosis.auc"} <= set(tab.columns)
    assert set(r.agreement()["model"]) == {"single_volume/seed0", "joint/seed0", "upstream_downstream/seed0"}
    # the downstream model's encoder is the joint model's, unchanged by fine-tuning
    joint, down = r.models["joint/seed0"], r.models["upstream_downstream/seed0"]
    for (k, a), (_, b) in zip(joint.backbone.state_dict().items(), down.backbone.state_dict().items()):
        assert torch_equal(a, b), k
    assert not any(p.requires_grad for p in down.backbone.parameters())


def torch_equal(a, b):
    import torch

    return bool(torch.equal(a, b))


def test_gong_unit_protocol_resumes_from_joint(tmp_path):
    cfg = _tiny(gong2023.default_config("smoke"), arms={"joint": {"tasks": ["volume", "prognosis"]},
                                                         "upstream_downstream": {"tasks": ["volume", "prognosis"], "upstream": "joint"}})
    cfg["downstream"]["epochs"] = 1
    out = run_experiment(gong2023, cfg, tmp_path, select={"arm": "upstream_downstream"}, progress=False)
    assert out["ran"] == ["arm=joint/seed=0", "arm=upstream_downstream/seed=0"]
    assert (tmp_path / "units" / "arm=joint" / "seed=0" / "best.pt").is_file()
    text = gong2023.report(tmp_path)
    assert "upstream_downstream" in text and (tmp_path / "bland_altman.csv").is_file()


def test_hirano_unit_writes_masks_and_report(tmp_path):
    cfg = _tiny(hirano2021.default_config("smoke"))
    cfg["data"]["phantom"]["n_patients"] = 30
    out = run_experiment(hirano2021, cfg, tmp_path, progress=False)
    assert len(out["ran"]) == 2
    udir = tmp_path / "units" / "arm=joint_segmentation" / "seed=0"
    assert any((udir / "masks" / "hematoma").glob("*.npz"))
    text = hirano2021.report(tmp_path)
    assert "auprc" in text and "joint_segmentation" in text
    r = hirano2021.load_result(tmp_path)
    seg = r.segmentation()
    assert set(seg["metric"]) >= {"dice", "volume_mae_ml"} and set(seg["arm"]) == {"joint_segmentation"}
    assert (r.seed_summary()["seeds"] == 1).all()
    # test decisions use the threshold chosen on validation, stored with the predictions
    p = r.predictions["joint_segmentation/seed0"]
    thr = p["growth.threshold"].iloc[0]
    assert cfg["eval"]["threshold"] == "youden"
    np.testing.assert_array_equal(p["growth.pred"], (p["growth.prob"] >= thr).astype(int))


def test_fixed_threshold_switch_keeps_the_papers_half():
    cfg = _tiny(gong2023.default_config("smoke"), arms={"single_prognosis": {"tasks": ["prognosis"]}})
    cfg["eval"]["threshold"] = "fixed"
    p = gong2023.run(cfg, progress=False).predictions["single_prognosis/seed0"]
    assert (p["prognosis.threshold"] == 0.5).all()
    np.testing.assert_array_equal(p["prognosis.pred"], (p["prognosis.prob"] >= 0.5).astype(int))


def test_smoke_worlds_are_learnable():
    """The smoke worlds' ceilings (phantom_known_answer) leave room above the issue-13 targets."""
    from mtbench.data.worlds import phantom_known_answer

    g = gong2023.default_config("smoke")["data"]["phantom"]
    h = hirano2021.default_config("smoke")["data"]["phantom"]
    drop = ("n_patients", "shape")
    assert phantom_known_answer(n_mc=3000, **{k: v for k, v in g.items() if k not in drop})["bayes_auc"]["prognosis"] > 0.85
    ka = phantom_known_answer(n_mc=3000, **{k: v for k, v in h.items() if k not in drop})
    assert ka["bayes_auc"]["growth"] > 0.85 and abs(ka["prevalence"]["growth"] - h["growth_prevalence"]) < 0.03


def test_gong_encoder_switch_to_an_inflated_3d_resnet(tmp_path):
    """``model.backbone = "inflated_resnet18"``: the fidelity row then matches the paper's ResNet, the heads
    get the encoder's 512 features, a tiny volume trains, and with a 2D checkpoint (i3d inflation,
    replicated depth padding) a depth-constant volume gives the 2D network's features of one slice."""
    import timm
    import torch

    from mtbench.fidelity import protocol_rows, row_status

    torch.manual_seed(0)
    m2 = timm.create_model("resnet18", num_classes=0, in_chans=1).eval()
    for mod in m2.modules():  # non-trivial BN statistics, so the known answer sees them
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18_2d.pth"
    torch.save(m2.state_dict(), path)

    cfg = gong2023.default_config("full")
    row = next(r for r in protocol_rows("gong2023") if r["aspect"] == "encoder")
    assert row_status(row, cfg)[1] is True  # the default stays a DenseNet-121: no depth is stated
    cfg["model"].update(backbone="inflated_resnet18", pretrained=str(path),
                        backbone_kwargs={"mode": "i3d", "depth_padding": "replicate"})
    assert row_status(row, cfg)[1] is False
    model = gong2023._build(cfg, list(gong2023.make_tasks().values()))
    bb = model.backbone
    assert bb.spatial_dims == 3 and bb.num_features == 512 == bb.feature_channels[-1]
    assert all(h.net[-1].in_features == 512 for h in model.heads.values())  # linear heads on the pooled features

    model.eval()  # the known answer first: a training step changes the batch-norm statistics
    img = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        f2 = m2(img)
        f3 = bb(img[:, :, None].expand(-1, -1, 16, -1, -1).contiguous())
    assert float((f3 - f2).abs().max() / f2.abs().max()) <= 1e-4
    # a different depth profile gives different features (the comparison above can fail)
    with torch.no_grad():
        f3b = bb(img[:, :, None].expand(-1, -1, 16, -1, -1) * torch.linspace(0.5, 1.5, 16)[None, None, :, None, None])
    assert float((f3b - f2).abs().max() / f2.abs().max()) > 1e-2

    model.train()
    out = model(torch.randn(2, 1, 16, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"volume": (2, 1), "prognosis": (2, 1)}
    sum(v.sum() for v in out.values()).backward()
    g = bb.model.conv1.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_gong_run_with_the_3d_resnet_switch():
    """Every arm trains with ``model.backbone = "inflated_resnet18"`` (smoke's ``channels`` narrow its
    stages), and the downstream stage freezes the ResNet encoder like any other."""
    cfg = _tiny(gong2023.default_config("smoke"), arms={"joint": {"tasks": ["volume", "prognosis"]},
                                                         "upstream_downstream": {"tasks": ["volume", "prognosis"], "upstream": "joint"}})
    cfg["model"].update(backbone="inflated_resnet18", backbone_kwargs={"channels": [4, 8, 16, 32]})
    cfg["downstream"]["epochs"] = 1
    r = gong2023.run(cfg, progress=False)
    down = r.models["upstream_downstream/seed0"]
    assert type(down.backbone).__name__ == "InflatedBackbone" and down.backbone.num_features == 32
    assert not any(p.requires_grad for p in down.backbone.parameters())
    p = r.predictions["upstream_downstream/seed0"]
    assert np.isfinite(p["volume.pred"]).all() and p["volume.pred"].std() > 0



def test_hirano_smoke_growth_is_told_by_the_mask_volume():
    """In the drawn smoke world the measured clot volume (the mask's) alone ranks growth well, so a
    model that finds the clot can reach the balanced-accuracy target; the full profile keeps no schedule."""
    from sklearn.metrics import roc_auc_score

    from mtbench.data.phantom import make_head_ct_phantom

    cfg = hirano2021.default_config("smoke")
    t = make_head_ct_phantom(**{**cfg["data"]["phantom"], "n_patients": 150}).table
    assert roc_auc_score(t["growth"], t["hematoma_ml"]) > 0.9
    assert 0.2 < t["growth"].mean() < 0.45
    assert cfg["train"]["scheduler"] == "cosine" and hirano2021.default_config("full")["train"]["scheduler"] is None
