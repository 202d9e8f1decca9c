"""Loss-based strategies: equal, fixed, uncertainty (Kendall et al.), DWA (Liu et al.), random (RLW)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from mtbench.mtl.weighting.base import Weighting, register_weighting


@register_weighting("equal")
class EqualWeighting(Weighting):
    """Every present task has weight 1: ``total = sum_t L_t``."""

    def combine(self, losses, features):
        return self._weighted_sum(losses, {t: 1.0 for t in losses})


@register_weighting("fixed")
class FixedWeighting(Weighting):
    """Fixed, user-given weights, e.g. ``{"prognosis": 0.4, "gcs": 0.3, "age": 0.3}`` (Cobo et al. 2024).

    Weights are *not* renormalised when a task is missing from a batch: a missing task simply
    contributes nothing, so the other tasks' gradients are unchanged by its absence.
    """

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float] | None = None):
        super().__init__(tasks)
        if weights is None:
            raise ValueError("The 'fixed' weighting needs weights={task: weight, ...}.")
        missing = set(self.tasks) - set(weights)
        extra = set(weights) - set(self.tasks)
        if missing or extra:
            raise ValueError(
                f"Fixed weights must name exactly the tasks {self.tasks}; "
                f"missing {sorted(missing)}, unknown {sorted(extra)}."
            )
        bad = {t: w for t, w in weights.items() if not float(w) >= 0}
        if bad:
            raise ValueError(f"Fixed weights must be non-negative numbers, got {bad}.")
        self.weights = {t: float(w) for t, w in weights.items()}

    def combine(self, losses, features):
        return self._weighted_sum(losses, self.weights)


@register_weighting("uncertainty")
class UncertaintyWeighting(Weighting):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

    Each task has a learned log-variance ``s_t = log sigma_t^2`` and

        ``total = sum_t exp(-s_t) * L_t + s_t``.

    The minimiser over ``s_t`` is ``s_t = log L_t``: a task with noisier labels (larger irreducible
    loss) gets a larger ``s_t`` and so a smaller weight ``exp(-s_t)`` (logged as the task weight).
    This is twice Kendall et al.'s regression form ``L / (2 sigma^2) + log sigma``, used for every
    task kind as in most re-implementations (LibMTL); the factor 2 starts the weights at 1, like
    ``equal``, and the paper's per-kind constants are not reproduced. The log-variances are
    trained by the same optimizer as the model (and so also see its weight decay, which pulls
    them gently towards 0, i.e. weight 1).

    A task missing from a batch contributes no term, so its ``s_t`` gets no gradient and no update.
    """

    def __init__(self, tasks: Sequence[str], init_log_var: float | Mapping[str, float] = 0.0):
        super().__init__(tasks)
        init = init_log_var if isinstance(init_log_var, Mapping) else {t: init_log_var for t in self.tasks}
        self.log_vars = nn.ParameterDict(
            {t: nn.Parameter(torch.tensor(float(init.get(t, 0.0)))) for t in self.tasks}
        )

    def weights(self) -> dict[str, float]:
        """The current weight ``exp(-s_t)`` of every task."""
        return {t: float(torch.exp(-self.log_vars[t].detach())) for t in self.tasks}

    def combine(self, losses, features):
        terms = [torch.exp(-self.log_vars[t]) * losses[t] + self.log_vars[t] for t in losses]
        self.last_weights = {t: float(torch.exp(-self.log_vars[t].detach())) for t in losses}
        self.last_stats = {f"log_var.{t}": float(self.log_vars[t].detach()) for t in losses}
        return sum(terms)


@register_weighting("dwa")
class DynamicWeightAverage(Weighting):
    """Dynamic weight average (Liu, Johns & Davison, CVPR 2019).

    ``w_t(e) = K * exp(r_t / T) / sum_i exp(r_i / T)`` with ``r_t = L_t(e-1) / L_t(e-2)``, the
    ratio of the task's mean training loss over the last two epochs (a task whose loss falls
    slowly gets more weight) and ``K`` the number of tasks. Until a task has two epochs of
    history its ratio is 1 (so every weight is 1 in the first two epochs, as in the paper).

    A task absent from a whole epoch (no labelled sample) gets no ratio update: its loss history
    is left as it was. A task absent from a batch contributes no term; the other tasks' weights
    are not renormalised.
    """

    _state_attrs = ("loss_history",)

    def __init__(self, tasks: Sequence[str], temperature: float = 2.0):
        super().__init__(tasks)
        if not temperature > 0:
            raise ValueError(f"DWA temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)
        self.loss_history: dict[str, list[float]] = {t: [] for t in self.tasks}

    def ratios(self) -> dict[str, float]:
        """``L_t(e-1) / L_t(e-2)`` per task (1 until two epochs of history exist)."""
        out = {}
        for t in self.tasks:
            h = self.loss_history[t]
            out[t] = h[-1] / h[-2] if len(h) >= 2 and h[-2] > 0 else 1.0
        return out

    def weights(self) -> dict[str, float]:
        r = self.ratios()
        z = torch.tensor([r[t] / self.temperature for t in self.tasks], dtype=torch.float64)
        w = len(self.tasks) * torch.softmax(z, dim=0)
        return {t: float(w[i]) for i, t in enumerate(self.tasks)}

    def combine(self, losses, features):
        return self._weighted_sum(losses, self.weights())

    def evaluate(self, losses):
        w = self.weights()
        return sum(w[t] * losses[t] for t in losses)

    def end_epoch(self, epoch_losses):
        super().end_epoch(epoch_losses)
        for t, v in epoch_losses.items():
            if t in self.loss_history and v is not None and math.isfinite(float(v)):
                self.loss_history[t] = (self.loss_history[t] + [float(v)])[-2:]


@register_weighting("random")
class RandomLossWeighting(Weighting):
    """Random loss weighting, RLW (Lin et al., TMLR 2022).

    At every step ``lambda = softmax(z)``, ``z ~ N(0, I_K)`` over all ``K`` tasks, and
    ``total = sum_t lambda_t L_t`` over the present tasks. The draw is over all tasks (not only the
    present ones), so whether a task is in the batch does not change the others' weights. The
    draws come from a private generator (``seed``), so they do not disturb other random streams.
    Validation uses the expected weight ``1/K``.
    """

    _state_attrs = ("_gen",)

    def __init__(self, tasks: Sequence[str], seed: int = 0):
        super().__init__(tasks)
        self.seed = int(seed)
        self._gen = torch.Generator().manual_seed(self.seed)

    def draw(self) -> dict[str, float]:
        z = torch.randn(len(self.tasks), generator=self._gen, dtype=torch.float64)
        w = torch.softmax(z, dim=0)
        return {t: float(w[i]) for i, t in enumerate(self.tasks)}

    def combine(self, losses, features):
        return self._weighted_sum(losses, self.draw())

    def evaluate(self, losses):
        return sum(losses[t] / len(self.tasks) for t in losses)
