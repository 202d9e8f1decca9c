import numpy as np
import pytest
import torch

from mtbench import MultiTaskLoss, Task, create_model
from mtbench.data import MultiTaskDataset, make_synthetic_cxr
from mtbench.metrics import compute_metrics
from mtbench.train import TrainConfig, fit, make_loader, predict, seed_everything

TASKS = [Task("prognosis", "binary"), Task("severity", "regression")]


@pytest.fixture(scope="module")
def loaders():
    d = make_synthetic_cxr(n_patients=96, size=32, seed=5)
    t = d.table.copy()
    t["prognosis"] = t["prognosis"].astype(float)
    t.loc[::3, "prognosis"] = np.nan  # a third without a prognosis label
    t["severity"] = (t["severity"] - t["severity"].mean()) / t["severity"].std()
    out = {}
    for name, idx in {"train": slice(0, 64), "val": slice(64, 96)}.items():
        part = t.iloc[idx]
        ds = MultiTaskDataset(part, TASKS, d.images[idx])
        out[name] = make_loader(ds, batch_size=16, shuffle=name == "train", seed=0)
    return out


def _train(loaders, **kw):
    seed_everything(0)
    model = create_model("convnet", TASKS, in_chans=1, backbone_kwargs={"channels": (8, 16)})
    cfg = dict(epochs=2, lr=1e-2, monitor="prognosis.auc", progress=False, seed=0)
    cfg.update(kw)
    return fit(model, loaders["train"], loaders["val"], TASKS, MultiTaskLoss(TASKS), **cfg)


def test_same_seed_same_numbers(loaders):
    a, b = _train(loaders), _train(loaders)
    cols = [c for c in a.history.columns if c != "time_s"]
    assert a.history[cols].equals(b.history[cols])
    pa, pb = predict(a.model, loaders["val"], TASKS), predict(b.model, loaders["val"], TASKS)
    assert compute_metrics(pa).equals(compute_metrics(pb))


def test_predictions_table_schema(loaders):
    res = _train(loaders, epochs=1)
    preds = predict(res.model, loaders["val"], TASKS)
    assert len(preds) == 32 and preds["sample_id"].is_unique
    expected = {"sample_id", "patient_id", "prognosis.target", "prognosis.prob", "prognosis.pred", "severity.target", "severity.pred"}
    assert set(preds.columns) == expected
    assert preds["prognosis.prob"].between(0, 1).all()
    assert set(preds["prognosis.pred"].unique()) <= {0, 1}
    # Samples without a label carry NaN targets but still get predictions.
    assert preds["prognosis.target"].isna().sum() == 10 and preds["prognosis.prob"].notna().all()
    assert [t["name"] for t in preds.attrs["tasks"]] == ["prognosis", "severity"]
    assert res.model.training  # predict restores the mode it found


def test_history_and_best_checkpoint(loaders, tmp_path):
    ckpt = tmp_path / "best.pt"
    res = _train(loaders, epochs=3, checkpoint_dir=str(tmp_path))
    h = res.history
    assert list(h["epoch"]) == [1, 2, 3]
    for col in ("train_loss", "train_loss.prognosis", "val_loss", "val.prognosis.auc", "val.severity.mae", "weight.severity"):
        assert col in h.columns
    best = h.loc[h["val.prognosis.auc"].idxmax(), "epoch"]
    assert res.best_epoch == best
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == best
    for k, v in res.model.state_dict().items():
        assert torch.equal(v.cpu(), saved["model"][k])


def test_monitor_last_keeps_the_last_epoch(loaders):
    """``monitor="last"`` (no selection, e.g. after a cosine schedule): the final weights, validation still recorded."""
    res = _train(loaders, epochs=3, monitor="last", scheduler="cosine")
    assert res.best_epoch == 3 and not res.stopped_early and res.history["val_loss"].notna().all()
    assert res.history["lr"].is_monotonic_decreasing  # the cosine schedule ran


def test_early_stopping_when_nothing_improves(loaders):
    seed_everything(0)
    model = create_model("convnet", TASKS, in_chans=1, backbone_kwargs={"channels": (8, 16)})
    for m in model.modules():  # freeze BatchNorm running statistics too: nothing can change
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.0
    res = fit(model, loaders["train"], loaders["val"], TASKS, epochs=10, lr=0.0, weight_decay=0.0, patience=2, progress=False)
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 1


def test_config_errors_are_clear(loaders):
    with pytest.raises(ValueError, match="Unknown optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="monitor='prognosis.nope'"):
        _train(loaders, epochs=1, monitor="prognosis.nope")
    with pytest.raises(ValueError, match=r"monitor='grade.auc'.*from \['prognosis', 'severity'\]"):
        _train(loaders, epochs=1, monitor="grade.auc")


def test_amp_bf16_path_runs_on_cpu(loaders):
    res = _train(loaders, epochs=1, amp="bf16", channels_last=True, grad_accum_steps=2, max_grad_norm=1.0)
    assert np.isfinite(res.history["train_loss"]).all()


@pytest.mark.slow
def test_torch_compile_path_runs_on_cpu(loaders):
    """torch.compile (inductor, C++ on the CPU) trains to finite losses; slow: compiles once."""
    res = _train(loaders, epochs=1, compile=True)
    assert np.isfinite(res.history["train_loss"]).all()


def test_workers_and_accumulation_match_the_plain_loop(loaders):
    """Gradient accumulation over 2 half-batches equals one full batch (same data order, no BN noise)."""
    d = make_synthetic_cxr(n_patients=32, size=32, seed=9)
    ds = MultiTaskDataset(d.table.assign(severity=lambda t: t.severity / 18), TASKS, d.images)

    def run(batch, accum, workers):
        seed_everything(0)
        model = create_model("convnet", TASKS, in_chans=1, backbone_kwargs={"channels": (4,)})
        model.backbone.stages[0][1].eval().requires_grad_(False)  # fixed BN: batch size must not matter
        model.backbone.stages[0][1].train = lambda mode=True: model.backbone.stages[0][1]
        dl = make_loader(ds, batch_size=batch, shuffle=False, num_workers=workers)
        r = fit(model, dl, None, TASKS, epochs=1, lr=0.1, optimizer="sgd", momentum=0.0, weight_decay=0.0,
                grad_accum_steps=accum, progress=False)
        return torch.cat([p.detach().flatten() for p in r.model.parameters()])

    full = run(32, 1, 0)
    accumulated = run(16, 2, 2)
    # Accumulation averages two half-batch means = the full-batch mean (equal halves).
    assert torch.allclose(full, accumulated, atol=1e-5)


class _Linear(torch.nn.Module):
    """A BN-free, dropout-free model: accumulation must equal the large batch exactly."""

    def __init__(self):
        super().__init__()
        self.f = torch.nn.Linear(32 * 32, 1)

    def forward(self, x, return_features=False):
        return {"prognosis": self.f(x.flatten(1))}


def _linear_fit(ds, batch, accum, epochs=2, **kw):
    seed_everything(0)
    dl = make_loader(ds, batch_size=batch, shuffle=False)
    return fit(_Linear(), dl, None, [TASKS[0]], epochs=epochs, lr=1e-2, optimizer="adamw", amsgrad=True,
               weight_decay=1e-4, grad_accum_steps=accum, progress=False, **kw)


def test_accumulating_k_batches_of_b_is_one_step_on_a_batch_of_kb():
    """grad_accum_steps=3 over batches of 4 = one AdamW step per batch of 12 (loss scaled by 1/3)."""
    d = make_synthetic_cxr(n_patients=48, size=32, seed=3)
    ds = MultiTaskDataset(d.table, [TASKS[0]], d.images)
    big, acc, plain = _linear_fit(ds, 12, 1), _linear_fit(ds, 4, 3), _linear_fit(ds, 4, 1)
    w = {k: torch.cat([p.detach().flatten() for p in r.model.parameters()]) for k, r in
         (("big", big), ("acc", acc), ("plain", plain))}
    assert torch.allclose(w["big"], w["acc"], atol=1e-6)
    assert not torch.allclose(w["big"], w["plain"], atol=1e-4)  # without accumulation: 3x the steps


def test_accumulation_steps_at_the_end_of_an_epoch(tmp_path):
    """5 batches with grad_accum_steps=3: a step after batch 3 and one after batch 5 (the remainder)."""
    d = make_synthetic_cxr(n_patients=20, size=32, seed=4)
    ds = MultiTaskDataset(d.table, [TASKS[0]], d.images)
    _linear_fit(ds, 4, 3, epochs=2, checkpoint_dir=str(tmp_path), resume=False)
    state = torch.load(tmp_path / "last.pt", weights_only=False)["optimizer"]["state"]
    assert {int(s["step"]) for s in state.values()} == {4}  # 2 optimiser steps x 2 epochs


def test_plateau_step_scheduler_steps_on_each_optimiser_steps_training_loss(monkeypatch):
    """scheduler="plateau_step": ReduceLROnPlateau fed, after every optimiser step, that step's last
    batch loss / grad_accum_steps (Cobo et al. 2024), never once per epoch."""
    from mtbench.mtl.loss import MultiTaskLoss as MTL

    fed, batch_losses = [], []
    orig_step, orig_forward = torch.optim.lr_scheduler.ReduceLROnPlateau.step, MTL.forward

    def spy_step(self, metrics, *a, **k):
        fed.append(float(metrics))
        return orig_step(self, metrics, *a, **k)

    def spy_forward(self, *a, **k):
        res = orig_forward(self, *a, **k)
        if torch.is_grad_enabled():  # training batches only
            batch_losses.append(float(res.total.detach()))
        return res

    monkeypatch.setattr(torch.optim.lr_scheduler.ReduceLROnPlateau, "step", spy_step)
    monkeypatch.setattr(MTL, "forward", spy_forward)
    d = make_synthetic_cxr(n_patients=20, size=32, seed=4)
    ds = MultiTaskDataset(d.table, [TASKS[0]], d.images)
    res = _linear_fit(ds, 4, 3, epochs=2, scheduler="plateau_step", plateau_patience=0, plateau_factor=0.5)
    # 5 batches per epoch, steps after batches 3 and 5 of each epoch
    assert len(batch_losses) == 10
    assert np.allclose(fed, [batch_losses[i] / 3 for i in (2, 4, 7, 9)], rtol=1e-6)
    # patience 0: every step that does not improve on the best halves the learning rate
    best, bad = float("inf"), []
    for v in fed:
        bad.append(not v < best * (1 - 1e-4))
        best = min(best, v)
    assert res.history["lr"].tolist() == pytest.approx([1e-2, 1e-2 * 0.5 ** sum(bad[:2])])
    assert sum(bad) >= 1  # the run exercised a reduction
