"""Tests of mtbench.explain: saliency per task head in 2D and 3D, sanity and measured checks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from mtbench import Task, create_model
from mtbench.explain import (
    cascading_randomization,
    explain,
    explain_heads,
    guided_backprop_maps,
    head_targets,
    hook_count,
    list_methods,
    localization_scores,
    make_lesion_volumes,
    measured_check,
    randomization_layers,
    summarize_localization,
    TaskHead,
)

TASKS = [
    Task("prognosis", "binary", class_names=("good", "poor")),
    Task("gcs", "ordinal", num_classes=3),
    Task("sev", "multiclass", num_classes=4),
    Task("volume", "regression", num_targets=2),
]


def _model(dims, channels=(8, 16), seed=0):
    torch.manual_seed(seed)
    return create_model("convnet", TASKS, spatial_dims=dims, backbone_kwargs={"channels": channels})


def _snapshot(model):
    return (
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        [(n, id(m), m.training) for n, m in model.named_modules()],
        [(p.grad is None, p.requires_grad) for p in model.parameters()],
        hook_count(model),
    )


def _assert_same(model, snap):
    state, mods, grads, hooks = snap
    now = model.state_dict()
    assert state.keys() == now.keys()
    for k in state:
        assert torch.equal(state[k], now[k]), f"{k} changed"
    assert [(n, id(m), m.training) for n, m in model.named_modules()] == mods
    assert [(p.grad is None, p.requires_grad) for p in model.parameters()] == grads
    assert hook_count(model) == hooks == 0


@pytest.mark.parametrize("dims,shape", [(2, (3, 1, 36, 44)), (3, (2, 1, 12, 16, 20))])
@pytest.mark.parametrize("method", ["gradcam", "guided_backprop", "guided_gradcam"])
def test_map_shapes_range_and_every_head(dims, shape, method):
    model = _model(dims)
    x = torch.rand(*shape)
    sal = explain_heads(model, x, TASKS, method=method)
    assert list(sal) == [t.name for t in TASKS]
    for s in sal.values():
        assert s.maps.shape == (shape[0], *shape[2:])
        assert s.maps.dtype == np.float32
        assert s.maps.min() >= 0 and s.maps.max() <= 1
        assert s.maps.reshape(shape[0], -1).max(axis=1).min() > 0.5  # normalised per image, not all zero
        assert "per image" in s.normalization
        assert len(s.targets) == shape[0] and s.scores.shape == (shape[0],)


@pytest.mark.parametrize("method", [m for m in list_methods(2) if m not in ("gradcam", "guided_backprop", "guided_gradcam")])
def test_other_library_cams_2d(method):
    model = _model(2)
    s = explain(model, torch.rand(2, 1, 32, 32), TASKS[0], method=method, target=[1, 0])
    assert s.maps.shape == (2, 32, 32) and 0 <= s.maps.min() and s.maps.max() <= 1


def test_3d_refuses_methods_that_do_not_support_volumes():
    assert "scorecam" not in list_methods(3) and "gradcam" in list_methods(3)
    with pytest.raises(ValueError, match="not 3D"):
        explain(_model(3), torch.rand(1, 1, 12, 12, 12), TASKS[0], method="scorecam")


def test_timm_backbone_default_cam_layer():
    model = create_model("resnet18", TASKS[:2], in_chans=1)
    s = explain(model, torch.rand(2, 1, 48, 48), TASKS[0])
    assert s.layer == "backbone.model.layer4"
    assert s.maps.shape == (2, 48, 48)


def test_per_sample_targets_match_single_sample_runs():
    model = _model(2)
    x = torch.rand(3, 1, 32, 32)
    for task, target in [(TASKS[0], [1, 0, 1]), (TASKS[2], [3, 0, 2]), (TASKS[1], [0, 1, 0]), (TASKS[3], [1, 0, 1])]:
        for method in ("gradcam", "guided_backprop"):
            batch = explain(model, x, task, method=method, target=target)
            for i in range(3):
                one = explain(model, x[i : i + 1], task, method=method, target=[target[i]])
                np.testing.assert_allclose(batch.maps[i], one.maps[0], atol=1e-4)
                assert batch.targets[i] == one.targets[0]
    # the two binary targets explain opposite evidence: different maps
    a = explain(model, x, TASKS[0], target=1).maps
    b = explain(model, x, TASKS[0], target=0).maps
    assert not np.allclose(a, b)


def test_head_targets_by_kind():
    out = torch.tensor([[0.3, -1.0, 2.0, 0.1], [-0.2, 0.5, 0.1, 0.0]])
    t = head_targets(TASKS[2], out)  # multiclass: predicted class, logit
    assert [x.index for x in t] == [2, 1]
    assert torch.allclose(t[0](out[0]), out[0, 2])
    b = head_targets(TASKS[0], out[:, :1])
    assert [x.score for x in b] == ["logit", "neg_logit"]  # predicted: 0.3 >= 0 -> 1, -0.2 -> 0
    assert torch.allclose(b[1](out[1, :1]), torch.tensor(0.2))
    o = head_targets(TASKS[1], out[:, :2])  # ordinal default: expected class
    assert torch.allclose(o[0](out[0, :2]), torch.sigmoid(out[0, :2]).sum())
    o = head_targets(TASKS[1], out[:, :2], target=1)
    assert torch.allclose(o[1](out[1, :2]), out[1, 1])
    r = head_targets(TASKS[3], out[:, :2], target=1, sign=-1)
    assert torch.allclose(r[0](out[0, :2]), torch.tensor(1.0))
    with pytest.raises(ValueError, match="one per sample"):
        head_targets(TASKS[0], out[:, :1], target=[1, 0, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        head_targets(TASKS[0], out[:, :1], target=2)
    with pytest.raises(KeyError, match="no head"):
        TaskHead(_model(2), "nope")


@pytest.mark.parametrize("dims", [2, 3])
def test_model_left_unchanged(dims):
    model = _model(dims)
    model.train()
    model.heads["gcs"].eval()  # mixed modes must come back exactly
    snap = _snapshot(model)
    x = torch.rand(2, 1, *([16] * dims if dims == 2 else [8] * dims))
    for method in list_methods(dims):
        explain(model, x, TASKS[0], method=method)
        _assert_same(model, snap)
    cascading_randomization(model, x, TASKS[1], layers=randomization_layers(model, "gcs")[:3])
    measured_check(model, x, np.ones((2, *x.shape[2:]), bool), TASKS[0])
    _assert_same(model, snap)
    # existing gradients survive an explanation untouched
    model(x)["prognosis"].sum().backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    explain(model, x, TASKS[0], method="guided_gradcam")
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, [p for p in model.parameters() if p.grad is not None]))


def test_failed_library_method_is_repaired():
    """pytorch-grad-cam's AblationCAM swaps the target layer and fails on volumes; the model comes back whole."""
    from mtbench.explain import saliency

    model = _model(3).eval()
    snap = _snapshot(model)
    x = torch.rand(1, 1, 12, 12, 12)
    head = TaskHead(model, TASKS[0])
    with pytest.raises(Exception), pytest.warns(RuntimeWarning, match="restored"):
        with saliency.preserved_state(model):
            saliency._library_cam("ablationcam", head, model.backbone.default_cam_layer, x, head_targets(TASKS[0], head(x)))
    _assert_same(model, snap)


def test_guided_backprop_matches_pytorch_grad_cam_2d():
    """Reference: the library's 2D single-sample GuidedBackpropReLUModel (which swaps ReLUs) on a copy."""
    from pytorch_grad_cam import GuidedBackpropReLUModel

    model = _model(2).eval()
    x = torch.rand(1, 1, 24, 28)
    head = TaskHead(model, TASKS[2])
    ours = guided_backprop_maps(head, x, head_targets(TASKS[2], head(x), target=3))[0]
    ref = GuidedBackpropReLUModel(TaskHead(copy.deepcopy(model), TASKS[2]), device="cpu")(x.clone(), target_category=3)
    np.testing.assert_allclose(ours, ref.transpose(2, 0, 1), rtol=1e-5, atol=1e-7)
    assert np.abs(ours).sum() > 0


def _edge_explainer(model, images, task, target):
    """Sobel gradient magnitude of the input: a 'saliency map' that ignores the model entirely."""
    from scipy import ndimage

    x = images.numpy()[:, 0]
    g = np.sqrt(sum(ndimage.sobel(x, axis=a) ** 2 for a in range(1, x.ndim)))
    return g / g.reshape(len(g), -1).max(axis=1).reshape(-1, *[1] * (g.ndim - 1))


@pytest.mark.parametrize("dims", [2, 3])
def test_randomization_check_detects_a_map_that_ignores_weights(dims):
    model = _model(dims, channels=(8, 16, 16))
    lv = make_lesion_volumes(n=4, size=16, seed=2)
    x = torch.as_tensor(lv.volumes) if dims == 3 else torch.as_tensor(lv.volumes[:, :, 8])
    edge = cascading_randomization(model, x, TASKS[0], explainer=_edge_explainer)
    assert edge.final_correlation() > 0.99 and not edge.passed()
    cam = cascading_randomization(model, x, TASKS[0], explainer="gradcam")
    assert cam.final_correlation() < 0.5 and cam.passed()
    assert list(edge.summary()["layer"])[:2] == ["trained", "heads.prognosis.net.0"]
    assert len(cam.maps) == len(cam.layers) + 1
    ind = cascading_randomization(model, x, TASKS[0], mode="independent", layers=cam.layers[:2])
    assert set(ind.table["step"]) == {0, 1, 2}


def test_localization_scores_known_values():
    maps = np.zeros((3, 4, 4))
    masks = np.zeros((3, 4, 4), bool)
    masks[0, :2, :2] = True  # a quarter of the image
    maps[0, 0, 0], maps[0, 3, 3] = 3.0, 1.0  # 3/4 of the mass inside, peak inside
    masks[1, 0, 0] = True
    maps[1, 1, 1] = 1.0  # peak sqrt(2) pixels off: miss, miss with tolerance 1, hit with 2
    df = localization_scores(maps, masks)
    assert df.loc[0, "mass_inside"] == pytest.approx(0.75) and df.loc[0, "hit"] == 1
    assert df.loc[0, "mask_fraction"] == pytest.approx(0.25)
    assert df.loc[1, "hit"] == 0 and localization_scores(maps, masks, tolerance=1).loc[1, "hit"] == 0
    assert localization_scores(maps, masks, tolerance=2).loc[1, "hit"] == 1
    assert not df.loc[2, "has_lesion"] and np.isnan(df.loc[2, "mass_inside"])
    summ = summarize_localization(df)
    assert summ.loc[0, "n"] == 2 and summ.loc[0, "no_lesion"] == 1 and summ.loc[0, "hit_rate"] == 0.5


def test_measured_check_on_synthetic_volumes():
    lv = make_lesion_volumes(n=6, size=16, seed=3)
    model = _model(3)
    scores, sal = measured_check(model, lv.volumes, lv.lesion_mask, TASKS[0])
    assert set(scores["model"]) == {"trained", "randomized"}
    assert len(scores) == 12 and sal["trained"].maps.shape == (6, 16, 16, 16)
    summ = summarize_localization(scores, "model")
    assert (summ["n"] + summ["no_lesion"] == 6).all()


def test_lesion_volumes_labels_follow_the_lesion():
    lv = make_lesion_volumes(n=40, size=16, seed=0)
    t = lv.table
    has = lv.lesion_mask.reshape(40, -1).any(axis=1)
    assert ((t["grade"] > 0).to_numpy() == has).all()
    assert np.allclose(t["lesion_volume"], lv.lesion_mask.reshape(40, -1).sum(1) / 100)
    assert (lv.volumes[lv.lesion_mask[:, None]] > 0.6).mean() > 0.95
    assert not (lv.lesion_mask & lv.ventricle_mask).any()


def test_plots_run():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mtbench.explain import plots

    m2, m3 = _model(2), _model(3)
    x2 = torch.rand(2, 1, 32, 32)
    lv = make_lesion_volumes(n=2, size=16, seed=1)
    s2 = explain_heads(m2, x2, TASKS[:2])
    s3 = explain_heads(m3, lv.volumes, TASKS[:2])
    figs = [
        plots.plot_saliency_2d(x2.numpy(), s2, masks=np.ones((2, 32, 32), bool)),
        plots.plot_volume_planes(lv.volumes, s3, sample=0, mask=lv.lesion_mask[0]),
        plots.plot_slice_montage(lv.volumes, s3, sample=1, n_slices=5),
        plots.plot_randomization(cascading_randomization(m2, x2, TASKS[0]), image=x2[0, 0].numpy()),
        plots.plot_localization(measured_check(m3, lv.volumes, lv.lesion_mask, TASKS[0])[0]),
    ]
    assert len(figs[0].axes) >= 6
    for f in figs:
        plt.close(f)


# --------------------------------------------------------- zero maps and the randomised control
def _negative_evidence_model(dims):
    """A model whose prognosis logit falls with every activation of the CAM layer: Grad-CAM's
    ReLU then zeroes the whole map (what a randomised head often does, issue 13 item 08)."""
    model = _model(dims)
    head = model.heads["prognosis"]
    with torch.no_grad():
        for p in head.parameters():
            if p.ndim == 2:
                p.copy_(-p.abs())  # negative weights on non-negative (post-ReLU) features
    return model


@pytest.mark.parametrize("dims,shape", [(2, (3, 1, 32, 32)), (3, (2, 1, 16, 16, 16))])
def test_relu_gradcam_zero_map_is_flagged_and_abs_map_is_not_zero(dims, shape):
    from mtbench.explain.cam import grad_cam

    model = _negative_evidence_model(dims)
    x = torch.rand(shape)
    with pytest.warns(UserWarning, match="all zero"):
        relu = explain(model, x, TASKS[0], method="gradcam", target=1)
    assert relu.zero_maps.all()
    ab = explain(model, x, TASKS[0], method="gradcam", target=1, rectify="abs")
    assert not ab.zero_maps.any() and ab.maps.max() == pytest.approx(1.0, abs=1e-5)
    # rectify="relu" of the native implementation agrees with pytorch-grad-cam on a positive map
    pos = _model(dims)
    lib = explain(pos, x, TASKS[0], method="gradcam", target=1).maps
    nat = grad_cam(TaskHead(pos.eval(), TASKS[0]), pos.backbone.default_cam_layer, x, head_targets(TASKS[0], pos(x)["prognosis"], 1))
    if dims == 2:  # the library resizes 2D maps with OpenCV: compare ranks loosely
        assert np.corrcoef(lib.ravel(), nat.ravel())[0, 1] > 0.9
    with pytest.raises(ValueError, match="rectify"):
        grad_cam(TaskHead(pos, TASKS[0]), pos.backbone.default_cam_layer, x, [], rectify="square")


def test_zero_map_counted_not_averaged():
    maps = np.zeros((2, 4, 4))
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2, :2] = True
    maps[1, 0, 0] = 1.0
    df = localization_scores(maps, masks)
    assert df["zero_map"].tolist() == [True, False] and df.loc[0, "hit"] == 0 and np.isnan(df.loc[0, "mass_inside"])
    summ = summarize_localization(df)
    assert summ.loc[0, "zero_maps"] == 1 and summ.loc[0, "mass_inside"] == 1.0 and summ.loc[0, "hit_rate"] == 0.5


def test_randomised_control_is_a_real_map_and_can_win():
    """The control map must be non-zero, and the comparison must be able to go either way."""
    lv = make_lesion_volumes(n=4, size=16, seed=3)
    scores, sal = measured_check(_negative_evidence_model(3), lv.volumes, lv.lesion_mask, TASKS[0], target=1)
    assert not sal["randomized"].zero_maps.any() and not sal["trained"].zero_maps.any()
    les = scores[scores["has_lesion"]]
    assert len(les) and scores["zero_map"].sum() == 0 and les["mass_inside"].notna().all()


def _scores(trained, randomized, share=0.1):
    """measured_check-shaped scores from per-image fractions inside (NaN = an all-zero map)."""
    import pandas as pd

    rows = [{"model": m, "method": "gradcam", "sample": i, "mass_inside": v, "hit": 0.0, "mask_fraction": share,
             "has_lesion": True, "zero_map": bool(np.isnan(v))}
            for m, vals in (("trained", trained), ("randomized", randomized)) for i, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_localization_verdict_can_pass_and_fail():
    from mtbench.explain import localization_verdict

    ok = localization_verdict(_scores([0.5, 0.4, 0.45, 0.35], [0.1, 0.12, 0.08, 0.11]))
    assert ok["beats_randomized"] and ok["localises"] and ok["ratio_trained"] == pytest.approx(4.25)
    assert ok["low"] > 0 and "beats the randomised" in ok["text"] and "NOT" not in ok["text"]
    # the randomised control wins: the comparison fails, and says so
    lose = localization_verdict(_scores([0.1, 0.12, 0.08, 0.11], [0.5, 0.4, 0.45, 0.35]))
    assert not lose["beats_randomized"] and not lose["localises"] and "does NOT beat" in lose["text"]
    # an all-zero control is an empty comparison, never a win
    empty = localization_verdict(_scores([0.5, 0.4, 0.45, 0.35], [np.nan, 0.1, 0.1, 0.1]))
    assert empty["zero_randomized"] == 1 and not empty["beats_randomized"] and "all-zero" in empty["text"]
    # below the ratio target: localises is False even when the comparison is won
    weak = localization_verdict(_scores([0.2, 0.25, 0.22, 0.21], [0.1, 0.12, 0.08, 0.11]), min_ratio=3.0)
    assert weak["beats_randomized"] and not weak["localises"] and "NOT met" in weak["text"]
