"""Weighting strategies: each one's defining behaviour, missing-task tolerance, and fit() integration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mtbench.mtl import MultiTaskLoss, create_weighting, list_weightings

ALL = ["equal", "fixed", "uncertainty", "dwa", "random", "gradnorm", "pcgrad"]


def make(name, tasks, **kw):
    if name == "fixed":
        kw.setdefault("weights", {t: 0.5 + i for i, t in enumerate(tasks)})
    return create_weighting(name, tasks, **kw)


def test_registry_lists_every_strategy():
    assert set(ALL) <= set(list_weightings())
    with pytest.raises(ValueError, match="Unknown weighting"):
        create_weighting("nope", ["a"])


# ----------------------------------------------------------------------------- uncertainty


def test_uncertainty_log_variances_follow_task_noise():
    """Kendall et al.: the learned log-variance of the noisier task ends larger (smaller weight),
    and each approaches log(irreducible loss) = log(noise variance) for an MSE task."""
    g = torch.Generator().manual_seed(0)
    n, d = 256, 8
    x = torch.randn(n, d, generator=g)
    beta = torch.randn(d, 2, generator=g)
    noise_sd = torch.tensor([0.1, 1.0])  # task a: clean, task b: noisy
    y = x @ beta + noise_sd * torch.randn(n, 2, generator=g)
    torch.manual_seed(0)
    trunk, heads = nn.Linear(d, 16), nn.ModuleDict({"a": nn.Linear(16, 1), "b": nn.Linear(16, 1)})
    uw = create_weighting("uncertainty", ["a", "b"])
    opt = torch.optim.Adam([*trunk.parameters(), *heads.parameters(), *uw.parameters()], lr=0.02)
    for _ in range(400):
        f = trunk(x)
        losses = {t: ((heads[t](f)[:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate("ab")}
        opt.zero_grad()
        uw(losses).backward()
        opt.step()
    s = {t: float(uw.log_vars[t].detach()) for t in "ab"}
    assert s["b"] - s["a"] > 2.5  # log(1.0) - log(0.01) = 4.6 at the optimum
    assert abs(s["b"] - math.log(1.0)) < 0.5
    assert uw.weights()["a"] > 5 * uw.weights()["b"]
    log = uw.weight_log()
    assert len(log) == 400 and log["weight.a"].iloc[-1] > log["weight.a"].iloc[0]


def test_uncertainty_total_matches_formula():
    uw = create_weighting("uncertainty", ["a", "b"], init_log_var={"a": 0.5, "b": -1.0})
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(3.0)}
    expected = math.exp(-0.5) * 2 + 0.5 + math.exp(1.0) * 3 - 1.0
    assert float(uw(losses).detach()) == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------- DWA


def test_dwa_weights_from_loss_ratios():
    """Liu et al.: w = K softmax(r / T), r = L(e-1) / L(e-2); weights 1 until two epochs exist."""
    dwa = create_weighting("dwa", ["a", "b"], temperature=2.0)
    assert dwa.weights() == pytest.approx({"a": 1.0, "b": 1.0})
    dwa.end_epoch({"a": 1.0, "b": 1.0})
    assert dwa.weights() == pytest.approx({"a": 1.0, "b": 1.0})
    dwa.end_epoch({"a": 0.5, "b": 1.0})  # a falls fast (r=0.5), b stalls (r=1)
    ea, eb = math.exp(0.5 / 2), math.exp(1.0 / 2)
    w = dwa.weights()
    assert w["a"] == pytest.approx(2 * ea / (ea + eb))
    assert w["b"] == pytest.approx(2 * eb / (ea + eb))
    assert w["b"] > w["a"] and sum(w.values()) == pytest.approx(2.0)
    total = dwa({"a": torch.tensor(3.0), "b": torch.tensor(5.0)})
    assert float(total.detach()) == pytest.approx(w["a"] * 3 + w["b"] * 5)


def test_dwa_task_absent_from_an_epoch_keeps_its_ratio():
    dwa = create_weighting("dwa", ["a", "b"])
    dwa.end_epoch({"a": 1.0, "b": 2.0})
    dwa.end_epoch({"a": 0.8, "b": 1.0})
    before = dwa.ratios()
    dwa.end_epoch({"a": 0.4})  # b had no labelled sample this epoch
    after = dwa.ratios()
    assert after["b"] == pytest.approx(before["b"]) == pytest.approx(0.5)
    assert after["a"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- random (RLW)


def test_random_weights_are_softmax_of_normal_draws():
    rlw = create_weighting("random", ["a", "b", "c"], seed=3)
    g = torch.Generator().manual_seed(3)
    expected = torch.softmax(torch.randn(3, generator=g, dtype=torch.float64), 0)
    rlw({t: torch.tensor(1.0, requires_grad=True) for t in "abc"})
    assert [rlw.last_weights[t] for t in "abc"] == pytest.approx(expected.tolist())
    draws = np.array([list(rlw.draw().values()) for _ in range(4000)])
    assert np.allclose(draws.sum(1), 1.0)
    assert np.allclose(draws.mean(0), 1 / 3, atol=0.02)  # E[softmax] = 1/K by symmetry
    assert draws.std(0).min() > 0.1  # genuinely random


# ----------------------------------------------------------------------------- PCGrad


def _linear_losses(f, vecs):
    return {t: (f * v).sum() for t, v in vecs.items()}


def test_pcgrad_removes_the_conflicting_component():
    """Yu et al.: g1 = (1, 0), g2 = (-1, 1) conflict (g1.g2 = -1); the projected gradients are
    g1' = g1 - (g1.g2/|g2|^2) g2 = (0.5, 0.5) and g2' = (0, 1); the update is their sum."""
    f = torch.zeros(1, 2, requires_grad=True)
    vecs = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[-1.0, 1.0]])}
    pc = create_weighting("pcgrad", ["a", "b"])
    losses = _linear_losses(f, vecs)
    total = pc(losses, f)
    assert float(total.detach()) == pytest.approx(float(sum(losses.values()).detach()))
    total.backward()
    assert f.grad[0].tolist() == pytest.approx([0.5, 1.5])
    proj = pc.project(torch.cat([vecs["a"], vecs["b"]]))
    assert float(proj[0] @ vecs["b"][0]) == pytest.approx(0.0, abs=1e-7)  # no conflict left
    assert float(proj[1] @ vecs["a"][0]) == pytest.approx(0.0, abs=1e-7)
    assert pc.last_stats["conflict_fraction"] == 1.0
    assert pc.last_stats["cosine"] == pytest.approx(-1 / math.sqrt(2))


def test_pcgrad_leaves_agreeing_gradients_alone():
    f = torch.zeros(1, 2, requires_grad=True)
    vecs = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[1.0, 1.0]])}
    create_weighting("pcgrad", ["a", "b"])(_linear_losses(f, vecs), f).backward()
    assert f.grad[0].tolist() == pytest.approx([2.0, 1.0])


def test_pcgrad_heads_keep_their_own_gradient():
    torch.manual_seed(0)
    trunk, heads = nn.Linear(3, 4), nn.ModuleDict({"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)})
    x = torch.randn(5, 3)

    def losses_and_features():
        f = trunk(x)
        return {"a": heads["a"](f).pow(2).mean(), "b": (heads["b"](f) - 3).pow(2).mean()}, f

    losses, _ = losses_and_features()
    sum(losses.values()).backward()
    plain = [p.grad.clone() for p in heads.parameters()]
    for p in [*trunk.parameters(), *heads.parameters()]:
        p.grad = None
    losses, f = losses_and_features()
    create_weighting("pcgrad", ["a", "b"])(losses, f).backward()
    for p, g in zip(heads.parameters(), plain):
        assert torch.allclose(p.grad, g)


def test_pcgrad_without_features_is_a_clear_error():
    with pytest.raises(ValueError, match="needs the shared features"):
        create_weighting("pcgrad", ["a", "b"])({"a": torch.tensor(1.0, requires_grad=True)})


# ----------------------------------------------------------------------------- GradNorm


def test_gradnorm_balances_gradient_norms():
    """Chen et al.: with alpha = 0 the weighted gradient norms of two tasks whose raw gradients
    differ tenfold are driven together, and the weights keep summing to K."""
    torch.manual_seed(0)
    f = torch.randn(8, 4, requires_grad=True)  # frozen "features": only the weights learn
    ta, tb = torch.randn(8, 4), torch.randn(8, 4)
    gn = create_weighting("gradnorm", ["a", "b"], alpha=0.0)
    opt = torch.optim.Adam(gn.parameters(), lr=0.02)

    def ratio():
        row = gn.weight_log().iloc[-1]
        return row["grad_norm.b"] / row["grad_norm.a"]

    for step in range(300):
        losses = {"a": (f - ta).pow(2).mean(), "b": 10 * (f - tb).pow(2).mean()}
        opt.zero_grad()
        gn(losses, f).backward()
        opt.step()
        if step == 0:
            first = ratio()
    assert first > 5
    assert abs(math.log(ratio())) < 0.1
    w = gn.weights()
    assert w["a"] > 5 * w["b"]
    assert sum(w.values()) == pytest.approx(2.0, rel=1e-3)


def test_gradnorm_model_gradient_is_the_weighted_sum():
    f = torch.ones(1, 2, requires_grad=True)
    vecs = {"a": torch.tensor([[1.0, 2.0]]), "b": torch.tensor([[3.0, -1.0]])}
    gn = create_weighting("gradnorm", ["a", "b"])
    with torch.no_grad():
        gn.task_weights["a"].fill_(1.5)
        gn.task_weights["b"].fill_(0.5)
    losses = _linear_losses(f, vecs)
    total = gn(losses, f)
    assert float(total.detach()) == pytest.approx(1.5 * float(losses["a"].detach()) + 0.5 * float(losses["b"].detach()))
    total.backward()
    assert f.grad[0].tolist() == pytest.approx((1.5 * vecs["a"] + 0.5 * vecs["b"])[0].tolist())
    assert gn.task_weights["a"].grad is not None


def test_gradnorm_renormalises_only_the_present_tasks():
    """After a step on tasks a, b only, the renormalisation restores the sum of a and b and leaves
    the absent c's weight as it was (a rule that also rescaled c would change it)."""
    torch.manual_seed(0)
    f = torch.randn(8, 4, requires_grad=True)
    targets = {t: torch.randn(8, 4) for t in "abc"}
    scale = {"a": 1.0, "b": 10.0, "c": 3.0}
    gn = create_weighting("gradnorm", ["a", "b", "c"], alpha=0.0)
    opt = torch.optim.SGD(gn.parameters(), lr=0.05)

    def step(present):
        opt.zero_grad()
        gn({t: scale[t] * (f - targets[t]).pow(2).mean() for t in present}, f).backward()
        opt.step()

    step("abc")
    w1 = gn.weights()
    assert sum(w1.values()) == pytest.approx(3.0, rel=1e-6) and w1["c"] != pytest.approx(1.0)
    step("ab")
    w2 = gn.weights()
    assert w2["a"] != pytest.approx(w1["a"])  # the step moved the present weights
    assert w2["a"] + w2["b"] == pytest.approx(w1["a"] + w1["b"], rel=1e-6)
    assert w2["c"] == pytest.approx(w1["c"], rel=1e-6)


# ----------------------------------------------------------------------------- missing tasks


def _trunk_grads(name, present, tasks=("a", "b", "c"), seed=0, **kw):
    """Gradient on a shared trunk, and the weighting, after one call with only ``present`` tasks."""
    torch.manual_seed(seed)
    trunk = nn.Linear(3, 4)
    heads = nn.ModuleDict({t: nn.Linear(4, 1) for t in tasks})
    x = torch.randn(6, 3)
    targets = {t: torch.randn(6) * (i + 1) for i, t in enumerate(tasks)}
    w = make(name, list(tasks), **kw)
    # Start from unequal weights: from the default 1.0 each, any rule would give every task 1.0 on
    # the first call, and a comparison between task sets could not fail.
    if name == "uncertainty":
        with torch.no_grad():
            for t, s in zip(tasks, (0.3, -0.7, 1.1)):
                w.log_vars[t].fill_(s)
    if name == "gradnorm":
        with torch.no_grad():
            for t, v in zip(tasks, (1.5, 0.9, 0.6)):
                w.task_weights[t].fill_(v)
    if name == "dwa":
        w.end_epoch({"a": 1.0, "b": 1.0, "c": 1.0})
        w.end_epoch({"a": 0.5, "b": 0.9, "c": 0.7})
    f = trunk(x)
    losses = {t: (heads[t](f)[:, 0] - targets[t]).pow(2).mean() for t in present}
    w(losses, f).backward()
    return trunk.weight.grad.clone(), w


@pytest.mark.parametrize("name", ["equal", "fixed", "uncertainty", "dwa", "random", "gradnorm"])
def test_missing_task_leaves_the_others_weights_unchanged(name):
    """A task absent from the batch has no term: the present tasks get the weights they would have
    had with it present, and the absent task's own parameters receive no gradient."""
    _, w_all = _trunk_grads(name, ["a", "b", "c"])
    _, w_ab = _trunk_grads(name, ["a", "b"])
    assert set(w_ab.last_weights) == {"a", "b"}
    if name not in ("equal", "random"):  # the weights differ between tasks, so a mix-up would show
        assert w_all.last_weights["a"] != pytest.approx(w_all.last_weights["b"])
    for t in "ab":
        assert w_ab.last_weights[t] == pytest.approx(w_all.last_weights[t])
    for p_name, p in w_ab.named_parameters():
        if p_name.endswith(".c"):
            assert p.grad is None, p_name
    log = w_ab.weight_log()
    assert np.isnan(log["weight.c"].iloc[-1])


def test_missing_task_has_no_pcgrad_row():
    """PCGrad over tasks (a, b, c) with c absent equals PCGrad over (a, b) alone; with c present
    (conflicting with a) the update differs, so the comparison can fail."""
    vecs = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[-1.0, 1.0]]), "c": torch.tensor([[-1.0, -2.0]])}

    def update(tasks, present):
        f = torch.zeros(1, 2, requires_grad=True)
        create_weighting("pcgrad", tasks)(_linear_losses(f, {t: vecs[t] for t in present}), f).backward()
        return f.grad[0]

    two = update(["a", "b"], "ab")
    assert two.tolist() == pytest.approx([0.5, 1.5])
    assert update(["a", "b", "c"], "ab").tolist() == pytest.approx(two.tolist())
    assert not torch.allclose(update(["a", "b", "c"], "abc"), two + vecs["c"][0])


def test_validation_does_not_change_state():
    """Under no_grad (validation) a weighting combines with its current weights and updates nothing."""
    for name in ALL:
        w = make(name, ["a", "b"])
        f = torch.zeros(1, 2, requires_grad=True)
        w(_linear_losses(f, {"a": torch.ones(1, 2), "b": -torch.ones(1, 2)}), f)
        before = (dict(w.last_weights), len(w.weight_log()), [p.detach().clone() for p in w.parameters()])
        with torch.no_grad():
            v = w({"a": torch.tensor(2.0), "b": torch.tensor(4.0)})
        assert math.isfinite(float(v)), name
        assert w.last_weights == before[0] and len(w.weight_log()) == before[1], name
        for p, q in zip(w.parameters(), before[2]):
            assert torch.equal(p, q), name
    rlw = create_weighting("random", ["a", "b"])
    with torch.no_grad():
        assert float(rlw({"a": torch.tensor(2.0), "b": torch.tensor(4.0)})) == pytest.approx(3.0)


# ----------------------------------------------------------------------------- fit() integration


@pytest.mark.parametrize("name", ["uncertainty", "dwa", "random", "gradnorm", "pcgrad"])
def test_fit_with_each_weighting_and_missing_labels(name):
    from mtbench.data import MultiTaskDataset
    from mtbench.models import create_model
    from mtbench.tasks import Task
    from mtbench.train import fit, make_loader

    rng = np.random.default_rng(0)
    n = 24
    images = rng.normal(size=(n, 1, 32, 32)).astype(np.float32)
    table = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "patient_id": [f"p{i}" for i in range(n)],
            "y": rng.integers(0, 2, n).astype(float),
            "r": rng.normal(size=n),
        }
    )
    table.loc[:11, "y"] = np.nan  # the first 12 rows lack a prognosis label: first batches have only r
    tasks = [Task("y", "binary"), Task("r", "regression")]
    ds = MultiTaskDataset(table, tasks, images)
    loader = make_loader(ds, batch_size=6, shuffle=False)
    model = create_model("convnet", tasks, backbone_kwargs={"channels": [4, 8]})
    loss = MultiTaskLoss(tasks, weighting=name)
    res = fit(model, loader, loader, tasks, loss, epochs=2, progress=False, lr=1e-2)
    assert {"weight.y", "weight.r"} <= set(res.history.columns)
    log = loss.weighting.weight_log()
    assert len(log) == 2 * 4 and set(log["epoch"]) == {1, 2}
    assert log["weight.y"].isna().sum() == 2 * 2  # two batches per epoch without a y label
    assert log["weight.r"].notna().all()
    assert np.isfinite(res.history["train_loss"]).all()
    if name == "gradnorm":
        w = loss.weighting.weights()
        assert sum(w.values()) == pytest.approx(2.0, rel=1e-3)


@pytest.mark.parametrize("name", ["dwa", "random", "pcgrad", "uncertainty", "gradnorm"])
def test_weighting_state_survives_a_checkpoint(name):
    """A checkpoint (state_dict) carries everything a strategy needs to continue exactly (resume)."""
    import copy as _copy

    from mtbench.mtl import create_weighting

    tasks = ["a", "b"]
    w = create_weighting(name, tasks)
    feats = torch.randn(4, 3, requires_grad=True)
    head = torch.nn.Linear(3, 2)

    def step(weighting):
        out = head(feats)
        losses = {"a": out[:, 0].pow(2).mean(), "b": out[:, 1].abs().mean()}
        total = weighting(losses, feats if weighting.needs_features else None)
        total.backward()
        return float(total)

    for _ in range(2):
        step(w)
    w.end_epoch({"a": 1.0, "b": 2.0})
    w.end_epoch({"a": 0.5, "b": 1.9})
    state = _copy.deepcopy(w.state_dict())
    fresh = create_weighting(name, tasks)
    fresh.load_state_dict(state)
    assert step(fresh) == pytest.approx(step(w))
    assert fresh.last_weights == pytest.approx(w.last_weights)
