"""The masked multi-task loss.

For each task ``t`` only the samples whose label is present (``mask[t]`` true) enter its loss, so
a sample without a label for ``t`` contributes nothing to ``t``'s loss *or its gradient* (the
unlabelled rows are never passed to the loss function at all). The per-task losses are then
combined by a :class:`~mtbench.mtl.weighting.Weighting`.

``reduction`` chooses how a task's per-sample losses are averaged:

``"masked_mean"`` (default)
    sum over labelled samples / number of labelled samples: each task's loss is a proper mean
    whatever the mix of data sets in the batch.
``"batch_mean"``
    sum over labelled samples / batch size: masked entries still count in the denominator, as
    in the original code of Ruffini et al. (2024). A task's effective weight then depends on how
    many of its samples happen to be in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import nn

from mtbench.mtl.losses import task_loss
from mtbench.mtl.weighting import Weighting, create_weighting
from mtbench.tasks import Task, as_task_dict

REDUCTIONS = ("masked_mean", "batch_mean")


@dataclass
class MultiTaskLossOutput:
    """What :class:`MultiTaskLoss` returns: the total to optimise and its parts."""

    total: torch.Tensor
    per_task: dict[str, torch.Tensor] = field(default_factory=dict)  # present tasks only
    counts: dict[str, int] = field(default_factory=dict)  # labelled samples per task (all tasks)
    weights: dict[str, float] = field(default_factory=dict)


def _check_task_batch(name: str, task: Task, out: torch.Tensor, tgt: torch.Tensor, m: torch.Tensor) -> None:
    """Refuse outputs of the wrong width and labelled targets a task cannot take (NaN, a class out of
    range, a fractional class), which would otherwise give a silently wrong or NaN loss."""
    if task.kind == "segmentation":
        return
    if out.ndim == 2 and out.shape[1] != task.num_outputs:
        raise ValueError(f"Task {name!r} ({task.kind}) needs {task.num_outputs} output(s) per sample, "
                         f"the model gave {out.shape[1]} (output shape {tuple(out.shape)}).")
    y = tgt[m.to(tgt.device)]
    if y.numel() == 0:
        return
    if task.kind == "regression":
        per = y.reshape(y.shape[0], -1).shape[1]
        if per != task.num_targets:
            raise ValueError(f"Task {name!r}: {task.num_targets} regression target(s) per sample expected, "
                             f"got {per} (target shape {tuple(tgt.shape)}).")
        if y.is_floating_point() and not bool(torch.isfinite(y).all()):
            raise ValueError(f"Task {name!r}: a labelled sample has a NaN/inf target; set its mask to False "
                             "(label missing) instead.")
        return
    yf = y.reshape(-1).double()
    if bool(torch.isnan(yf).any()):
        raise ValueError(f"Task {name!r}: a labelled sample has a NaN target; set its mask to False (label missing) instead.")
    bad = (yf < 0) | (yf > int(task.num_classes) - 1)
    if task.kind != "binary":  # binary losses accept soft targets in [0, 1]; class indices must be whole
        bad = bad | (yf != yf.round())
    if bool(bad.any()):
        v = yf[bad][0].item()
        raise ValueError(f"Task {name!r} ({task.kind}) takes classes 0..{int(task.num_classes) - 1}, got target {v:g}.")


class MultiTaskLoss(nn.Module):
    """Per-task losses, masked by label presence, combined by a weighting strategy.

    Parameters
    ----------
    tasks:
        The tasks (a list or ``{name: Task}``).
    weighting:
        A registered name (``"equal"``, ``"fixed"``, ...) or a :class:`Weighting` instance.
    reduction:
        ``"masked_mean"`` or ``"batch_mean"`` (see the module docstring).
    **weighting_kwargs:
        Passed to the weighting, e.g. ``weights={"a": 0.4, "b": 0.6}`` for ``"fixed"``.

    Call it as ``loss(outputs, targets, masks)`` with dicts keyed by task name; ``masks`` may be
    omitted (every label present) or lack a task (that task fully labelled).
    """

    def __init__(
        self,
        tasks: Sequence[Task] | Mapping[str, Task],
        weighting: str | Weighting = "equal",
        reduction: str = "masked_mean",
        **weighting_kwargs,
    ):
        super().__init__()
        self.tasks = as_task_dict(tasks)
        if reduction not in REDUCTIONS:
            raise ValueError(f"Unknown reduction {reduction!r}; expected one of {REDUCTIONS}.")
        self.reduction = reduction
        self.weighting = create_weighting(weighting, list(self.tasks), **weighting_kwargs)

    @property
    def needs_features(self) -> bool:
        return self.weighting.needs_features

    def forward(
        self,
        outputs: Mapping[str, torch.Tensor],
        targets: Mapping[str, torch.Tensor],
        masks: Mapping[str, torch.Tensor] | None = None,
        features: torch.Tensor | None = None,
    ) -> MultiTaskLossOutput:
        per_task: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        for name, task in self.tasks.items():
            if name not in outputs:
                raise KeyError(f"The model produced no output for task {name!r} (outputs: {sorted(outputs)}).")
            if name not in targets:
                raise KeyError(f"No target for task {name!r} in the batch (targets: {sorted(targets)}).")
            out, tgt = outputs[name], targets[name]
            if not isinstance(out, torch.Tensor) or not isinstance(tgt, torch.Tensor):
                raise TypeError(f"Task {name!r}: outputs and targets must be torch.Tensors, got "
                                f"{type(out).__name__} and {type(tgt).__name__}.")
            if out.shape[0] != tgt.shape[0]:
                raise ValueError(
                    f"Task {name!r}: {out.shape[0]} outputs but {tgt.shape[0]} targets in the batch."
                )
            m = None if masks is None else masks.get(name)
            if m is None:
                m = torch.ones(out.shape[0], dtype=torch.bool, device=out.device)
            m = m.reshape(-1).to(device=out.device, dtype=torch.bool)
            if m.shape[0] != out.shape[0]:
                raise ValueError(f"Task {name!r}: mask has {m.shape[0]} entries for a batch of {out.shape[0]}.")
            _check_task_batch(name, task, out, tgt, m)
            n = int(m.sum())
            counts[name] = n
            if n == 0:
                continue
            losses = task_loss(task, out[m], tgt.to(out.device)[m])
            denom = n if self.reduction == "masked_mean" else out.shape[0]
            per_task[name] = losses.sum() / denom
        if not per_task:
            raise ValueError(
                "No sample in this batch has a label for any task "
                f"(tasks: {list(self.tasks)}); check the masks produced by the dataset."
            )
        total = self.weighting(per_task, features)
        return MultiTaskLossOutput(total, per_task, counts, dict(self.weighting.last_weights))
