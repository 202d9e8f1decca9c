"""Weighting strategies: how per-task losses are combined into the one scalar that is optimised.

Strategies are separate, swappable pieces (as in LibMTL): a :class:`Weighting` receives the
losses of the tasks *present in the batch* and returns the total. A task absent from a batch
(no labelled sample) is simply not in the dict: it contributes no term and no update.

``create_weighting(name, tasks, **kwargs)`` builds one from the registry; ``list_weightings()``
lists them. Register more with :func:`register_weighting`.

Registered strategies
---------------------
``equal``        every present task weight 1.
``fixed``        user-given weights (e.g. Cobo et al. 2024's 0.4/0.3/0.3).
``uncertainty``  learned homoscedastic uncertainty (Kendall, Gal & Cipolla, CVPR 2018).
``dwa``          dynamic weight average from the epoch-to-epoch loss ratios (Liu, Johns & Davison, CVPR 2019).
``random``       random loss weighting, RLW (Lin et al., TMLR 2022).
``gradnorm``     learned weights that balance per-task gradient norms (Chen et al., ICML 2018).
``pcgrad``       gradient surgery: remove the conflicting component of task gradients (Yu et al., NeurIPS 2020).

How strategies hook into training
---------------------------------
Every strategy returns one scalar; the training loop calls ``total.backward()`` on it and steps
one optimizer over the model *and* the weighting's parameters, so no strategy needs a special loop.

* Learned weights (``uncertainty``, ``gradnorm``) are ``nn.Parameter`` s of the weighting; one
  parameter per task, so a task missing from a batch gets no gradient and the optimizer leaves it
  alone (PyTorch optimizers skip parameters whose ``.grad`` is ``None``).
* Gradient-based strategies (``gradnorm``, ``pcgrad``) set ``needs_features = True``: the loop
  passes the backbone's pooled features and the strategy takes per-task gradients with respect to
  that **shared representation** (not every shared parameter), which costs one small backward
  pass per task through the heads only, so it stays affordable on 3D volumes. They return a
  *surrogate* scalar whose value is the weighted loss (what is logged) and whose gradient is the
  one the method prescribes (``x + (y - y.detach())`` has the value of ``x`` and the gradient of
  ``x + y``).
* Epoch-level strategies (``dwa``) update in :meth:`Weighting.end_epoch`, which the loop calls with
  the epoch's mean training loss per task.

Under ``torch.no_grad()`` (validation) a weighting never updates its state: :meth:`Weighting.evaluate`
combines the losses with the current weights (``random``: their expectation; ``pcgrad``: the sum).

Every training-time call is recorded in a per-step log (:meth:`Weighting.weight_log`): the weight
of each present task and, for gradient-based strategies, gradient statistics.
"""

from __future__ import annotations

import copy

import math
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

_WEIGHTINGS: dict[str, type["Weighting"]] = {}


def register_weighting(name: str) -> Callable[[type["Weighting"]], type["Weighting"]]:
    def deco(cls: type["Weighting"]) -> type["Weighting"]:
        if name in _WEIGHTINGS:
            raise ValueError(f"A weighting named {name!r} is already registered.")
        cls.name = name
        _WEIGHTINGS[name] = cls
        return cls

    return deco


def list_weightings() -> list[str]:
    return sorted(_WEIGHTINGS)


def create_weighting(name: str | "Weighting", tasks: Sequence[str], **kwargs) -> "Weighting":
    """Build a weighting strategy by name for the given task names."""
    if isinstance(name, Weighting):
        return name
    try:
        cls = _WEIGHTINGS[name]
    except KeyError:
        raise ValueError(f"Unknown weighting {name!r}; available: {list_weightings()}") from None
    return cls(list(tasks), **kwargs)


class Weighting(nn.Module):
    """Base class. Subclasses implement :meth:`combine` (and, if stateful, :meth:`evaluate`).

    Attributes
    ----------
    needs_features:
        True for gradient-based strategies that need the shared representation (the loop then
        passes ``features``, the backbone output, to :meth:`forward`).
    last_weights:
        The weight each present task received in the last call, for logging and plots.
    last_stats:
        Extra per-step numbers of the last training call (e.g. gradient norms), for the step log.
    """

    name = "base"
    needs_features = False
    # Python attributes (besides parameters and buffers) that a checkpoint must carry for an exact
    # resume; torch.Generator attributes are saved by their state.
    _state_attrs: tuple[str, ...] = ()

    def get_extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"epochs_done": self._epochs_done, "step_log": list(self._step_log)}
        for attr in self._state_attrs:
            value = getattr(self, attr)
            state[attr] = value.get_state() if isinstance(value, torch.Generator) else copy.deepcopy(value)
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._epochs_done = int(state["epochs_done"])
        self._step_log = list(state["step_log"])
        for attr in self._state_attrs:
            if attr in state:
                current = getattr(self, attr)
                if isinstance(current, torch.Generator):
                    current.set_state(state[attr])
                else:
                    setattr(self, attr, copy.deepcopy(state[attr]))

    def __init__(self, tasks: Sequence[str]):
        super().__init__()
        if not tasks:
            raise ValueError("A weighting needs at least one task name.")
        if len(set(tasks)) != len(list(tasks)):
            raise ValueError(f"Duplicated task names in {list(tasks)}.")
        self.tasks = list(tasks)
        self.last_weights: dict[str, float] = {}
        self.last_stats: dict[str, float] = {}
        self.log_steps = True
        self._step_log: list[dict[str, Any]] = []
        self._epochs_done = 0

    def forward(self, losses: Mapping[str, torch.Tensor], features: torch.Tensor | None = None) -> torch.Tensor:
        unknown = set(losses) - set(self.tasks)
        if unknown:
            raise KeyError(f"Losses for unknown tasks {sorted(unknown)}; this weighting knows {self.tasks}.")
        if not losses:
            raise ValueError("No task has a labelled sample in this batch: there is nothing to optimise.")
        # Keep the tasks in the weighting's order whatever the dict order (reproducible sums).
        ordered = {t: losses[t] for t in self.tasks if t in losses}
        if not torch.is_grad_enabled():
            return self.evaluate(ordered)
        self.last_stats = {}
        total = self.combine(ordered, features)
        if self.log_steps:
            self._step_log.append(
                {
                    "step": len(self._step_log),
                    "epoch": self._epochs_done + 1,
                    **{f"weight.{t}": w for t, w in self.last_weights.items()},
                    **self.last_stats,
                }
            )
        return total

    def combine(self, losses: dict[str, torch.Tensor], features: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The total without updating any state (used under ``torch.no_grad()``, e.g. validation).

        The default calls :meth:`combine` and restores ``last_weights``; stateful strategies override it.
        """
        saved, saved_stats = dict(self.last_weights), dict(self.last_stats)
        try:
            return self.combine(dict(losses), None)
        finally:
            self.last_weights, self.last_stats = saved, saved_stats

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        """Hook called by the training loop after each epoch with the mean training loss per task.

        Subclasses that override it should call ``super().end_epoch(epoch_losses)`` (it numbers the
        epochs of the step log).
        """
        self._epochs_done += 1

    def weight_log(self) -> pd.DataFrame:
        """One row per training step: ``step``, ``epoch``, ``weight.<task>`` (NaN where the task was
        absent from the batch) and any strategy-specific statistics (e.g. ``grad_norm.<task>``)."""
        if not self._step_log:
            return pd.DataFrame(columns=["step", "epoch", *[f"weight.{t}" for t in self.tasks]])
        df = pd.DataFrame(self._step_log)
        for t in self.tasks:
            if f"weight.{t}" not in df.columns:
                df[f"weight.{t}"] = float("nan")
        return df

    def reset_log(self) -> None:
        """Forget the step log (e.g. before re-using the weighting in a new fit)."""
        self._step_log = []
        self._epochs_done = 0

    def _weighted_sum(self, losses: dict[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
        self.last_weights = {t: float(weights[t]) for t in losses}
        return sum(weights[t] * losses[t] for t in losses)

    def _check_features(self, features: torch.Tensor | None) -> torch.Tensor:
        if features is None:
            raise ValueError(
                f"The {self.name!r} weighting needs the shared features: call the model with "
                "return_features=True and pass them, loss(outputs, targets, masks, features) "
                "(mtbench.train.fit does this when loss.needs_features is True)."
            )
        if not features.requires_grad:
            raise ValueError(
                f"The {self.name!r} weighting takes gradients with respect to the shared features, "
                "but they do not require grad (frozen backbone, or torch.no_grad()); use 'equal' or "
                "'uncertainty' instead."
            )
        return features


def _task_feature_grads(losses: Mapping[str, torch.Tensor], features: torch.Tensor) -> torch.Tensor:
    """Gradient of each task's loss w.r.t. the shared features, flattened: ``[K, features.numel()]``.

    One backward pass per task through the heads only (the graph is retained for the real backward).
    A task whose loss does not depend on the features gets a zero row.
    """
    rows = []
    for loss in losses.values():
        (g,) = torch.autograd.grad(loss, features, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros(features.numel(), device=features.device) if g is None else g.detach().float().reshape(-1))
    return torch.stack(rows)


def _with_gradient(value: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
    """``value`` plus ``extra``'s gradient: the result has the value of ``value``."""
    return value + (extra - extra.detach())


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
