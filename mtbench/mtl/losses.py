"""Per-sample losses for single tasks.

Every loss here maps a batch of head outputs and targets to a vector of **per-sample** losses
(shape ``[B]``), so :class:`mtbench.mtl.MultiTaskLoss` can mask samples whose label is missing
before anything is averaged. Register a new one with :func:`register_loss`.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from mtbench.registry import Registry
from mtbench.tasks import Task, ordinal_encode

LossFn = Callable[..., torch.Tensor]
LOSSES = Registry("loss")


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    """Decorator: make ``fn(output, target, task, **kwargs) -> [B]`` available as ``Task(loss=name)``."""

    def deco(fn: LossFn) -> LossFn:
        return LOSSES.register(name, fn)  # a taken name is refused

    return deco


def list_losses() -> list[str]:
    return LOSSES.names()


def get_loss(name: str) -> LossFn:
    return LOSSES.lookup(name)


def task_loss(task: Task, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample loss of ``task`` (shape ``[B]``), computed in float32 for AMP safety."""
    return get_loss(task.loss)(output.float(), target, task, **task.loss_kwargs)


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


@register_loss("bce")
def bce(output, target, task, pos_weight: float | None = None):
    """Binary cross-entropy on one logit; ``pos_weight`` up-weights positives (imbalance)."""
    pw = None if pos_weight is None else torch.as_tensor(float(pos_weight), device=output.device)
    return F.binary_cross_entropy_with_logits(
        _flat(output)[:, 0], target.reshape(-1).float(), pos_weight=pw, reduction="none"
    )


@register_loss("focal")
def focal(output, target, task, gamma: float = 2.0, alpha: float | None = 0.25):
    """Focal loss (Lin et al. 2017) on one logit, for rare positives."""
    logit = _flat(output)[:, 0]
    y = target.reshape(-1).float()
    ce = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
    p = torch.sigmoid(logit)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * y + (1 - alpha) * (1 - y))
    return loss


@register_loss("ce")
def cross_entropy(output, target, task, label_smoothing: float = 0.0, class_weights=None):
    """Softmax cross-entropy over ``num_classes`` logits."""
    w = None if class_weights is None else torch.as_tensor(class_weights, dtype=output.dtype, device=output.device)
    return F.cross_entropy(
        output, target.reshape(-1).long(), weight=w, reduction="none", label_smoothing=label_smoothing
    )


@register_loss("ordinal_bce")
def ordinal_bce(output, target, task):
    """Cumulative-link loss: mean BCE over the ``C-1`` thresholds ``P(y > k)``."""
    bits = ordinal_encode(target, int(task.num_classes)).to(output.dtype)
    return F.binary_cross_entropy_with_logits(output, bits, reduction="none").mean(dim=1)


@register_loss("mse")
def mse(output, target, task):
    """Squared error, averaged over a task's regression targets."""
    return F.mse_loss(_flat(output), _flat(target).to(output.dtype), reduction="none").mean(dim=1)


@register_loss("l1")
def l1(output, target, task):
    return F.l1_loss(_flat(output), _flat(target).to(output.dtype), reduction="none").mean(dim=1)


@register_loss("huber")
def huber(output, target, task, delta: float = 1.0):
    return F.huber_loss(_flat(output), _flat(target).to(output.dtype), reduction="none", delta=delta).mean(dim=1)


@register_loss("onehot_mse")
def onehot_mse(output, target, task):
    """MSE between raw logits and a one-hot target (the original code of Ruffini et al. 2024)."""
    onehot = F.one_hot(target.reshape(-1).long(), output.shape[1]).to(output.dtype)
    return F.mse_loss(output, onehot, reduction="none").mean(dim=1)


@register_loss("softmax_bce")
def softmax_bce(output, target, task):
    """BCE between the softmax of the logits and a one-hot target, averaged over the classes (the
    single-task prognosis model of Ruffini et al. 2024: softmax in its forward, ``nn.BCELoss``)."""
    onehot = F.one_hot(target.reshape(-1).long(), output.shape[1]).to(output.dtype)
    return F.binary_cross_entropy(torch.softmax(output, dim=1), onehot, reduction="none").mean(dim=1)


@register_loss("dice_bce")
def dice_bce(output, target, task, smooth: float = 1.0, bce_weight: float = 0.5):
    """Soft Dice + BCE on a one-channel logit map, per sample.

    ``(1 - bce_weight) * (1 - Dice_soft) + bce_weight * BCE`` with
    ``Dice_soft = (2 * sum(p * y) + smooth) / (sum(p) + sum(y) + smooth)``, ``p = sigmoid(logit)``
    (Milletari et al. 2016 with additive smoothing, so an empty target and an empty prediction
    give Dice 1) and the voxel-mean BCE.
    """
    logit = _flat(output)
    y = _flat(target).to(logit.dtype)
    if y.shape != logit.shape:
        raise ValueError(f"Task {task.name!r}: the target mask has {y.shape[1]} voxels per sample, the output "
                         f"{logit.shape[1]} (output {tuple(output.shape)}, target {tuple(target.shape)}).")
    p = torch.sigmoid(logit)
    inter = (p * y).sum(dim=1)
    dice = (2 * inter + smooth) / (p.sum(dim=1) + y.sum(dim=1) + smooth)
    bce_term = F.binary_cross_entropy_with_logits(logit, y, reduction="none").mean(dim=1)
    return (1 - bce_weight) * (1 - dice) + bce_weight * bce_term
