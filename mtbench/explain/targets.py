"""What a saliency map explains: one head of a multi-task model, and one scalar of its output.

A :class:`~mtbench.models.MultiTaskModel` returns ``{task: output}``; saliency methods want a
module returning one tensor and, per sample, a scalar to differentiate. :class:`TaskHead` is the
first, :class:`HeadTarget` the second. The scalar depends on the task's kind:

================  ===========================================  ====================================
kind              ``target`` (per sample)                      scalar explained
================  ===========================================  ====================================
``binary``        class ``c`` in {0, 1} (default: predicted)   ``+logit`` for 1, ``-logit`` for 0:
                                                               the evidence *for* class ``c``
``multiclass``    class ``c`` (default: predicted)             logit ``c`` (pre-softmax, as in
                                                               Selvaraju et al. 2017); ``score=
                                                               "prob"``: softmax probability
``ordinal``       threshold ``k`` in 0..C-2, or ``None``       ``None``/``score="expected"``: the
                                                               expected class ``sum_k P(y > k)``;
                                                               ``k``: the logit of ``P(y > k)``
``regression``    output index ``j`` (default 0)               output ``j`` (``sign=-1``: what
                                                               makes it *smaller*)
================  ===========================================  ====================================

Targets are plain callables ``target(head_output) -> scalar`` (for one sample's ``[K]`` output)
or ``[B]`` (for a ``[B, K]`` batch), so they also work with every pytorch-grad-cam method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from mtbench.tasks import Task

SCORES = ("logit", "neg_logit", "prob", "threshold_logit", "expected", "output")


class TaskHead(nn.Module):
    """Expose one head of a multi-task model as an ordinary ``x -> [B, K]`` network.

    The wrapper holds a reference (not a copy) to ``model``: explaining through it explains the
    model itself. It has no parameters of its own.
    """

    def __init__(self, model: nn.Module, task: str | Task):
        super().__init__()
        name = task.name if isinstance(task, Task) else str(task)
        heads = getattr(model, "heads", None)
        if heads is not None and name not in heads:
            raise KeyError(f"The model has no head {name!r}; its heads are {list(heads.keys())}.")
        self.model = model
        self.task_name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if not isinstance(out, dict):
            raise TypeError(f"TaskHead expects a model returning {{task: output}}, got {type(out).__name__}.")
        y = out[self.task_name]
        return y.reshape(y.shape[0], -1)


@dataclass(frozen=True)
class HeadTarget:
    """One scalar of a head's output, as a differentiable callable.

    ``score``: ``logit`` (output ``index``), ``neg_logit`` (minus it), ``prob`` (softmax
    probability of ``index``), ``threshold_logit`` (ordinal: logit of ``P(y > index)``),
    ``expected`` (ordinal: expected class ``sum_k sigmoid(logit_k)``), ``output`` (regression:
    ``sign * output[index]``).
    """

    score: str
    index: int = 0
    sign: float = 1.0

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"Unknown score {self.score!r}; choose from {SCORES}.")

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        single = output.ndim == 1
        out = output[None] if single else output
        if self.score in ("logit", "threshold_logit"):
            val = out[:, self.index]
        elif self.score == "neg_logit":
            val = -out[:, self.index]
        elif self.score == "prob":
            val = torch.softmax(out, dim=1)[:, self.index]
        elif self.score == "expected":
            val = torch.sigmoid(out).sum(dim=1)
        else:  # output
            val = self.sign * out[:, self.index]
        return val[0] if single else val

    def describe(self, task: Task | None = None) -> str:
        """A short label for plots, e.g. ``'severe (+logit)'``."""
        names = task.class_names if task is not None else None
        if self.score == "logit" and task is not None and task.kind == "binary":
            return f"{names[1] if names else 'class 1'} (+logit)"
        if self.score == "neg_logit":
            return f"{names[0] if names else 'class 0'} (-logit)"
        if self.score in ("logit", "prob"):
            label = names[self.index] if names else f"class {self.index}"
            return f"{label} ({self.score})"
        if self.score == "threshold_logit":
            return f"y > {self.index} (logit)"
        if self.score == "expected":
            return "expected class"
        return f"{'+' if self.sign > 0 else '-'}output[{self.index}]"


def _per_sample(target: Any, batch_size: int) -> list:
    if target is None or isinstance(target, (int, np.integer)):
        return [target] * batch_size
    if torch.is_tensor(target):
        target = target.detach().cpu().reshape(-1).tolist()
    vals = list(np.asarray(target).reshape(-1).tolist()) if not isinstance(target, (list, tuple)) else list(target)
    if len(vals) != batch_size:
        raise ValueError(f"{len(vals)} targets for a batch of {batch_size} samples; give one per sample (or one int).")
    return vals


def head_targets(
    task: Task,
    outputs: torch.Tensor | None,
    target: int | Sequence[int | None] | np.ndarray | torch.Tensor | None = None,
    score: str | None = None,
    sign: float = 1.0,
) -> list[HeadTarget]:
    """One :class:`HeadTarget` per sample for ``task`` (see the module table).

    ``outputs`` (``[B, K]``, the head's output) decides the default target (the predicted class)
    and the batch size; ``target`` is an int for every sample or one value per sample; ``score``
    overrides the kind's default scalar (``"prob"`` for multiclass, ``"expected"`` /
    ``"threshold_logit"`` for ordinal).
    """
    if not isinstance(task, Task):
        raise TypeError(f"head_targets needs a Task (for its kind), got {type(task).__name__}.")
    if task.kind == "segmentation":
        raise NotImplementedError(f"Task {task.name!r}: saliency of segmentation heads is not supported.")
    if outputs is None:
        raise ValueError("head_targets needs the head's outputs to size the batch.")
    out = outputs.detach().reshape(outputs.shape[0], -1)
    b = out.shape[0]
    values = _per_sample(target, b)
    if any(callable(v) for v in values):
        return values  # custom callables, passed through
    result: list[HeadTarget] = []
    for i, v in enumerate(values):
        if task.kind == "binary":
            c = int(out[i, 0] >= 0) if v is None else int(v)
            if c not in (0, 1):
                raise ValueError(f"Task {task.name!r} (binary): target must be 0 or 1, got {v!r} (sample {i}).")
            result.append(HeadTarget("logit" if c == 1 else "neg_logit", 0))
        elif task.kind == "multiclass":
            c = int(out[i].argmax()) if v is None else int(v)
            if not 0 <= c < task.num_classes:
                raise ValueError(f"Task {task.name!r}: class {c} out of range 0..{task.num_classes - 1} (sample {i}).")
            s = score or "logit"
            if s not in ("logit", "prob"):
                raise ValueError(f"Task {task.name!r} (multiclass): score must be 'logit' or 'prob', got {s!r}.")
            result.append(HeadTarget(s, c))
        elif task.kind == "ordinal":
            s = score or ("expected" if v is None else "threshold_logit")
            if s == "expected":
                result.append(HeadTarget("expected"))
            elif s == "threshold_logit":
                k = int((torch.sigmoid(out[i]) > 0.5).sum().clamp(max=task.num_classes - 2)) if v is None else int(v)
                if not 0 <= k < task.num_classes - 1:
                    raise ValueError(
                        f"Task {task.name!r} (ordinal, {task.num_classes} classes): threshold must be in "
                        f"0..{task.num_classes - 2}, got {k} (sample {i})."
                    )
                result.append(HeadTarget("threshold_logit", k))
            else:
                raise ValueError(f"Task {task.name!r} (ordinal): score must be 'expected' or 'threshold_logit', got {s!r}.")
        else:  # regression
            j = 0 if v is None else int(v)
            if not 0 <= j < task.num_targets:
                raise ValueError(f"Task {task.name!r}: output index {j} out of range 0..{task.num_targets - 1}.")
            result.append(HeadTarget("output", j, float(sign)))
    return result
