"""Gradient-based strategies on the shared representation: GradNorm (Chen et al.), PCGrad (Yu et al.)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from mtbench.mtl.weighting.base import Weighting, _task_feature_grads, _with_gradient, register_weighting


@register_weighting("gradnorm")
class GradNorm(Weighting):
    """GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018), on the shared representation.

    Learned weights ``w_t`` (one parameter per task, summing to ``K``) scale the task losses,
    ``total = sum_t w_t L_t``. They are trained to make the norms of the weighted task gradients
    ``G_t = || d(w_t L_t) / d features ||`` equal to a common target that favours tasks that
    train slowly:

        ``L_grad = sum_t | G_t - mean(G) * r_t ** alpha |``,
        ``r_t = (L_t / L_t(0)) / mean_i(L_i / L_i(0))``

    with the target treated as a constant (as in the paper). ``L_t(0)`` is the task's first
    observed loss. The model receives the gradient of ``sum_t w_t L_t`` only; ``w`` receives the
    gradient of ``L_grad`` only (the returned scalar is a surrogate whose value is the weighted
    loss). ``w`` is stepped by the loop's optimizer at its learning rate (the paper's separate
    learning rate for ``w`` is not reproduced) and renormalised before the next use.

    The gradients are taken w.r.t. the backbone's pooled features rather than the last shared
    layer's weights (cheap on 3D volumes). Only present tasks enter ``L_grad``, the mean and the
    renormalisation (which rescales the present tasks' weights to keep their sum): a missing task's
    weight is left untouched.

    ``alpha`` (paper: 0.12 to 3; 1.5 a common default) sets how strongly slow tasks are favoured;
    ``alpha = 0`` pure gradient-norm equalisation.
    """

    needs_features = True

    def __init__(self, tasks: Sequence[str], alpha: float = 1.5, min_weight: float = 1e-3):
        super().__init__(tasks)
        self.alpha = float(alpha)
        self.min_weight = float(min_weight)
        self.task_weights = nn.ParameterDict({t: nn.Parameter(torch.tensor(1.0)) for t in self.tasks})
        self.register_buffer("initial_losses", torch.full((len(self.tasks),), float("nan")))
        self._pending: tuple[list[str], float] | None = None

    def weights(self) -> dict[str, float]:
        """The current (renormalised) weight of every task."""
        self._renormalise()
        return {t: float(self.task_weights[t].detach()) for t in self.tasks}

    def end_epoch(self, epoch_losses):
        super().end_epoch(epoch_losses)
        self._renormalise()  # so that the weights after fit() are the renormalised ones

    @torch.no_grad()
    def _renormalise(self) -> None:
        """Rescale the weights updated at the last step so that their sum is what it was before it."""
        if self._pending is None:
            return
        names, target_sum = self._pending
        self._pending = None
        for t in names:
            self.task_weights[t].clamp_(min=self.min_weight)
        current = sum(float(self.task_weights[t]) for t in names)
        for t in names:
            self.task_weights[t].mul_(target_sum / current)

    def combine(self, losses, features):
        features = self._check_features(features)
        self._renormalise()
        names = list(losses)
        w = torch.stack([self.task_weights[t] for t in names])
        L = torch.stack([losses[t].float() for t in names])
        with torch.no_grad():
            for t in names:
                i = self.tasks.index(t)
                if math.isnan(float(self.initial_losses[i])):
                    self.initial_losses[i] = L[names.index(t)].detach()
            L0 = torch.stack([self.initial_losses[self.tasks.index(t)] for t in names]).clamp_min(1e-12)
            ratio = L.detach() / L0
            mean_ratio = ratio.mean()
            # Zero initial or current losses give no usable training rate: treat all tasks alike.
            r = ratio / mean_ratio if bool(mean_ratio > 0) and bool(torch.isfinite(mean_ratio)) else torch.ones_like(ratio)
        raw_norms = _task_feature_grads(losses, features).norm(dim=1)  # ||dL_t / d features||
        G = w * raw_norms  # weighted gradient norms, differentiable in w only
        target = (G.mean() * r**self.alpha).detach()
        grad_loss = (G - target).abs().sum()
        total = (w.detach() * L).sum()
        self._pending = (names, float(w.detach().sum()))
        self.last_weights = {t: float(w[i].detach()) for i, t in enumerate(names)}
        self.last_stats = {f"grad_norm.{t}": float(G[i].detach()) for i, t in enumerate(names)}
        return _with_gradient(total, grad_loss)

    def evaluate(self, losses):
        w = self.weights()
        return sum(w[t] * losses[t] for t in losses)


@register_weighting("pcgrad")
class PCGrad(Weighting):
    """PCGrad, projecting conflicting gradients (Yu et al., NeurIPS 2020), on the shared representation.

    With ``g_t = dL_t / d features`` (flattened over the batch), each task's gradient is projected,
    in a random order of the other tasks, onto the normal plane of any task gradient it conflicts
    with (negative inner product): ``g_i <- g_i - (g_i . g_j / ||g_j||^2) g_j``. The backbone then
    receives ``sum_i g_i`` (projected) through the features; each head receives its own task's
    ordinary gradient. The returned scalar is a surrogate whose value is ``sum_t L_t`` and whose
    gradient w.r.t. the features is the projected sum. Task weights are 1 (logged as such); the step
    log also records the mean pairwise cosine of the raw task gradients and the fraction of
    conflicting pairs.

    The paper projects the gradients of all shared parameters; projecting at the representation
    (as LibMTL's ``rep_grad`` option does) costs one backward pass through the heads per task.
    A task missing from the batch has no gradient row and takes no part in the projections.
    """

    needs_features = True
    _state_attrs = ("_gen",)

    def __init__(self, tasks: Sequence[str], seed: int = 0, eps: float = 1e-12):
        super().__init__(tasks)
        self.seed = int(seed)
        self.eps = float(eps)
        self._gen = torch.Generator().manual_seed(self.seed)

    def project(self, grads: torch.Tensor) -> torch.Tensor:
        """PCGrad on a ``[K, N]`` matrix of task gradients; returns the projected ``[K, N]`` matrix."""
        k = grads.shape[0]
        out = grads.clone()
        for i in range(k):
            for j in torch.randperm(k, generator=self._gen).tolist():
                if j == i:
                    continue
                dot = torch.dot(out[i], grads[j])
                if dot < 0:
                    out[i] = out[i] - dot / (grads[j].pow(2).sum() + self.eps) * grads[j]
        return out

    def combine(self, losses, features):
        features = self._check_features(features)
        grads = _task_feature_grads(losses, features)
        projected = self.project(grads)
        correction = (projected.sum(0) - grads.sum(0)).reshape(features.shape).to(features.dtype)
        total = sum(losses.values())
        self.last_weights = {t: 1.0 for t in losses}
        if len(losses) > 1:
            unit = grads / grads.norm(dim=1, keepdim=True).clamp_min(self.eps)
            cos = unit @ unit.T
            iu = torch.triu_indices(len(losses), len(losses), offset=1)
            pair_cos = cos[iu[0], iu[1]]
            self.last_stats = {"cosine": float(pair_cos.mean()), "conflict_fraction": float((pair_cos < 0).float().mean())}
        return _with_gradient(total, (features * correction.detach()).sum())

    def evaluate(self, losses):
        return sum(losses.values())
