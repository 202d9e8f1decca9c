"""One training epoch, one evaluation, and the best-checkpoint tracker that :func:`~mtbench.train.fit` composes.

In the style of timm's ``train_one_epoch`` / ``validate``: each returns the epoch's numbers as a
dict (a history row), and :class:`BestTracker` keeps the best weights on the monitored quantity.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mtbench.metrics import compute_metrics
from mtbench.mtl.loss import MultiTaskLoss
from mtbench.tasks import Task
from mtbench.train import distributed as ddp
from mtbench.train.device import autocast
from mtbench.train.inference import run_inference, to_device

# Warnings a metric raises on a degenerate fold (one class, constant scores): recorded per epoch.
METRIC_WARNINGS = (RuntimeWarning, UserWarning)


def _zero_loss(outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A zero loss connected to every output, so backward reaches the same parameters (and DDP's all-reduce)."""
    return sum(out.float().sum() for out in outputs.values()) * 0.0


def train_one_epoch(model: nn.Module, forward_model: nn.Module, loader: DataLoader, tasks: Mapping[str, Task],
                    loss: MultiTaskLoss, optimizer, scaler, cfg, device, amp_dtype, epoch: int,
                    show_progress: bool, on_step=None) -> dict[str, Any]:
    """Train for one epoch; returns ``train_loss``, ``train_loss.<task>``, ``weight.<task>`` (pooled over ranks).

    A batch with no label for any task is counted in ``skipped_batches``. On a single process it is
    skipped; under DDP it still goes through forward and backward with a zero loss, because every
    rank must join the gradient all-reduce (issue 14: a rank that skipped backward hung the others).
    A non-finite loss stops training *before* any update is applied. ``on_step(loss)``, if given, is
    called after every optimiser step with the (1/``grad_accum_steps``-scaled) loss of the batch that
    completed the step, averaged over ranks: a per-step scheduler (``"plateau_step"``).
    """
    distributed = ddp.info().enabled
    model.train()
    sums = {t: 0.0 for t in tasks}
    counts = {t: 0 for t in tasks}
    weight_sums: dict[str, float] = {}
    weight_counts: dict[str, int] = {}  # batches in which the task was present
    total_sum, n_batches, skipped = 0.0, 0, 0
    optimizer.zero_grad(set_to_none=True)
    steps = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not show_progress)
    for step, batch in enumerate(steps):
        x, targets, masks = to_device(batch, device, cfg.channels_last)
        labelled = any(bool(m.any()) for m in masks.values())
        if not labelled:
            skipped += 1  # no label for any task in this batch: nothing to learn from it
            if not distributed:
                continue
        with autocast(device, amp_dtype):
            if labelled and loss.needs_features:
                outputs, features = forward_model(x, return_features=True)
            else:
                outputs, features = forward_model(x), None
        if labelled:
            res = loss(outputs, targets, masks, features)
            if not math.isfinite(float(res.total.detach())):
                raise FloatingPointError(
                    f"Training loss became {float(res.total)} at epoch {epoch}, step {step} "
                    f"(per task: { {k: float(v) for k, v in res.per_task.items()} }); no update was applied. "
                    "Lower the learning rate or check the inputs for NaN/inf."
                )
            total = res.total
        else:
            total = _zero_loss(outputs)
        total = total / cfg.grad_accum_steps
        (scaler.scale(total) if scaler else total).backward()
        if (step + 1) % cfg.grad_accum_steps == 0 or step + 1 == len(loader):
            if cfg.max_grad_norm:
                if scaler:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if on_step is not None:
                v = float(total.detach())
                on_step(ddp.all_reduce_sum({"v": v})["v"] / ddp.info().world_size if distributed else v)
        if not labelled:
            continue
        total_sum += float(res.total.detach())
        n_batches += 1
        for t, v in res.per_task.items():
            sums[t] += float(v.detach()) * res.counts[t]
            counts[t] += res.counts[t]
        for t, w in res.weights.items():
            weight_sums[t] = weight_sums.get(t, 0.0) + w
            weight_counts[t] = weight_counts.get(t, 0) + 1
    if distributed:  # pool the epoch's training statistics over ranks
        pooled = ddp.all_reduce_sum(
            {"total": total_sum, "batches": float(n_batches), **{f"s.{t}": sums[t] for t in tasks},
             **{f"c.{t}": float(counts[t]) for t in tasks}}
        )
        total_sum, n_batches = pooled["total"], int(pooled["batches"])
        sums = {t: pooled[f"s.{t}"] for t in tasks}
        counts = {t: int(pooled[f"c.{t}"]) for t in tasks}
    if n_batches == 0:
        raise ValueError("No training batch had any label: check the dataset's label columns and masks.")
    train_task_loss = {t: sums[t] / counts[t] for t in tasks if counts[t]}
    loss.weighting.end_epoch(train_task_loss)
    row: dict[str, Any] = {
        "train_loss": total_sum / n_batches,
        **{f"train_loss.{t}": v for t, v in train_task_loss.items()},
        **{f"weight.{t}": w / weight_counts[t] for t, w in weight_sums.items()},  # mean over batches with the task
    }
    if skipped:
        row["skipped_batches"] = skipped
    return row


def evaluate(model: nn.Module, loader: DataLoader, tasks: Mapping[str, Task], loss: MultiTaskLoss, device, amp_dtype,
             channels_last: bool) -> tuple[dict[str, Any], pd.DataFrame, dict[str, float]]:
    """Validation: ``(row, metrics table, per-task losses)``.

    Metric warnings (a one-class fold's undefined AUC, a constant prediction's correlation) are not
    silenced: they are recorded, with the names of the NaN metrics, in the row's ``val_warnings``.
    """
    preds, val_losses = run_inference(model, loader, tasks, device, amp_dtype, loss, channels_last, False, "validate")
    with torch.no_grad():
        present = {t: torch.tensor(v, device=device) for t, v in val_losses.items()}
        val_loss = float(loss.weighting(present)) if present else float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", METRIC_WARNINGS)
        val_metrics = compute_metrics(preds, tasks)
    for w in caught:  # anything that is not a metric's degenerate-input warning goes on to the caller
        if not issubclass(w.category, METRIC_WARNINGS):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    row: dict[str, Any] = {"val_loss": val_loss, **{f"val_loss.{t}": v for t, v in val_losses.items()}}
    row.update({f"val.{r.task}.{r.metric}": r.value for r in val_metrics.itertuples()})
    nan = [f"{r.task}.{r.metric}" for r in val_metrics.itertuples() if not np.isfinite(r.value)]
    notes = ([f"NaN: {', '.join(nan)}"] if nan else []) + sorted(
        {f"{w.category.__name__}: {w.message}" for w in caught if issubclass(w.category, METRIC_WARNINGS)}
    )
    if notes:
        row["val_warnings"] = "; ".join(notes)
    return row, val_metrics, val_losses


def monitor_value(monitor: str, val_loss: float, val_metrics: pd.DataFrame, val_task_losses=None) -> float:
    """The monitored number: ``loss``, ``loss.<task>`` or ``<task>.<metric>``."""
    if monitor == "loss":
        return val_loss
    if monitor.startswith("loss."):
        task = monitor[len("loss."):]
        losses = dict(val_task_losses or {})
        # A validation set without any label of the task has no loss for it: NaN (never "improves").
        return float(losses.get(task, float("nan")))
    task, _, metric = monitor.partition(".")
    hit = val_metrics[(val_metrics["task"] == task) & (val_metrics["metric"] == metric)]
    if hit.empty:
        raise ValueError(
            f"monitor={monitor!r}: no metric {metric!r} for task {task!r} in validation "
            f"(available: {sorted(set(val_metrics['task'] + '.' + val_metrics['metric']))})."
        )
    return float(hit["value"].iloc[0])


class BestTracker:
    """The best score so far, its epoch and weights (on the CPU), and epochs since it improved.

    A NaN score never improves; the first epoch's weights are kept regardless, so there is always a model.
    """

    def __init__(self, mode: str):
        self.mode = mode
        self.score, self.epoch, self.state, self.stale = float("nan"), -1, None, 0

    def improves(self, score: float) -> bool:
        if not math.isfinite(score):
            return False
        if not math.isfinite(self.score):
            return True
        return score > self.score if self.mode == "max" else score < self.score

    def update(self, score: float, epoch: int, model: nn.Module) -> bool:
        """Record an epoch; True when its weights were kept (a new best, or the very first epoch)."""
        improved = self.improves(score)
        if not (improved or self.state is None):
            self.stale += 1
            return False
        if improved:
            self.score = score
        self.epoch = epoch
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.stale = 0
        return True

    def state_dict(self) -> dict[str, Any]:  # the keys of last.pt written before this class existed
        return {"best_score": self.score, "best_epoch": self.epoch, "best_state": self.state, "stale": self.stale}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.score, self.epoch = state["best_score"], state["best_epoch"]
        self.state, self.stale = state["best_state"], state["stale"]
