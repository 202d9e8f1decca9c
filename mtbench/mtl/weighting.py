"""Weighting strategies: how per-task losses are combined into the one scalar that is optimised.

Strategies are separate, swappable pieces (as in LibMTL): a :class:`Weighting` receives the
losses of the tasks *present in the batch* and returns the total. A task absent from a batch
(no labelled sample) is simply not in the dict: it contributes no term and no update.

``create_weighting(name, tasks, **kwargs)`` builds one from the registry; ``list_weightings()``
lists them. Register more with :func:`register_weighting`.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

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
    """Base class. Subclasses implement :meth:`combine`.

    Attributes
    ----------
    needs_features:
        True for gradient-based strategies that need the shared representation (the loop then
        passes ``features``, the backbone output, to :meth:`forward`).
    last_weights:
        The weight each present task received in the last call, for logging and plots.
    """

    name = "base"
    needs_features = False

    def __init__(self, tasks: Sequence[str]):
        super().__init__()
        if not tasks:
            raise ValueError("A weighting needs at least one task name.")
        self.tasks = list(tasks)
        self.last_weights: dict[str, float] = {}

    def forward(self, losses: Mapping[str, torch.Tensor], features: torch.Tensor | None = None) -> torch.Tensor:
        unknown = set(losses) - set(self.tasks)
        if unknown:
            raise KeyError(f"Losses for unknown tasks {sorted(unknown)}; this weighting knows {self.tasks}.")
        if not losses:
            raise ValueError("No task has a labelled sample in this batch: there is nothing to optimise.")
        return self.combine(dict(losses), features)

    def combine(self, losses: dict[str, torch.Tensor], features: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        """Hook called by the training loop after each epoch with the mean training loss per task."""

    def _weighted_sum(self, losses: dict[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
        self.last_weights = {t: float(weights[t]) for t in losses}
        return sum(weights[t] * losses[t] for t in losses)


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
