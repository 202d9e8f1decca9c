"""The :class:`Weighting` base class and the weighting registry (see :mod:`mtbench.mtl.weighting`)."""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from mtbench.registry import Registry

WEIGHTINGS = Registry("weighting")


def register_weighting(name: str) -> Callable[[type["Weighting"]], type["Weighting"]]:
    """Class decorator registering a :class:`Weighting` subclass under ``name`` (a taken name is refused)."""

    def deco(cls: type["Weighting"]) -> type["Weighting"]:
        cls.name = name
        return WEIGHTINGS.register(name, cls)

    return deco


def list_weightings() -> list[str]:
    return WEIGHTINGS.names()


def create_weighting(name: str | "Weighting", tasks: Sequence[str], **kwargs) -> "Weighting":
    """Build a weighting strategy by name for the given task names."""
    if isinstance(name, Weighting):
        return name
    return WEIGHTINGS.lookup(name)(list(tasks), **kwargs)


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
