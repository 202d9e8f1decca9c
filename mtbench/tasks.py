"""Tasks: what a model predicts, how it is trained and how it is scored.

A :class:`Task` is the single place that knows, for one prediction target,

* how many outputs its head needs (``num_outputs``),
* which per-sample loss trains it (``loss``, resolved in :mod:`mtbench.mtl.losses`),
* how raw outputs become probabilities / predictions (``decode``),
* which columns it owns in the Predictions table (``target_columns`` / ``output_columns``),
* which metrics score it (``metrics``, resolved in :mod:`mtbench.metrics`).

Kinds
-----
``binary``      one logit; target in {0, 1}; sigmoid probability of the positive class.
``multiclass``  ``num_classes`` logits; integer target; softmax probabilities.
``ordinal``     ``num_classes - 1`` cumulative logits (P(y > k)); integer target; the
                prediction is the number of thresholds passed (the cumulative encoding of
                Cobo et al. 2024 for GCS).
``regression``  ``num_targets`` real outputs; real target(s).
``segmentation`` a dense map (one foreground logit per voxel, from a U-Net decoder head); the
                Predictions table stores per-sample summaries (``t.volume_true_ml``,
                ``t.volume_pred_ml``, ``t.dice``, ``t.iou``), the masks go to disk on request
                (:func:`mtbench.train.predict` ``mask_dir=``). ``voxel_spacing`` (mm) turns voxel
                counts into millilitres.

Task names are used as dictionary keys and column prefixes, so they must be identifiers
(letters, digits, underscore) and must not contain a dot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch

KINDS = ("binary", "multiclass", "ordinal", "regression", "segmentation")

DEFAULT_LOSS = {
    "binary": "bce",
    "multiclass": "ce",
    "ordinal": "ordinal_bce",
    "regression": "mse",
    "segmentation": "dice_bce",
}

DEFAULT_METRICS = {
    "binary": ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1"),
    "multiclass": ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1"),
    "ordinal": ("qwk", "accuracy", "balanced_accuracy", "mae"),
    "regression": ("mae", "rmse", "pearson_r"),
    "segmentation": ("dice", "iou", "volume_mae_ml"),
}

# The metric used for model selection when nothing else is said, and whether larger is better.
DEFAULT_PRIMARY = {
    "binary": "auc",
    "multiclass": "auc",
    "ordinal": "qwk",
    "regression": "mae",
    "segmentation": "dice",
}

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Task:
    """One prediction target of a (multi-task) model.

    Parameters
    ----------
    name:
        Identifier, used as the head's key, the loss key and the column prefix.
    kind:
        One of ``binary``, ``multiclass``, ``ordinal``, ``regression``, ``segmentation``.
    num_classes:
        Number of classes for ``multiclass`` and ``ordinal`` (2 for ``binary``).
    num_targets:
        Number of real-valued outputs for ``regression`` (e.g. six lung-zone scores).
    class_names:
        Optional names of the classes (for tables and plots).
    loss:
        Name of a per-sample loss in :mod:`mtbench.mtl.losses`; defaults by kind.
    loss_kwargs:
        Extra arguments for the loss (e.g. ``{"pos_weight": 2.0}`` for ``bce``).
    metrics:
        Metric names from :mod:`mtbench.metrics`; defaults by kind.
    primary_metric:
        The metric that model selection uses by default.
    threshold:
        Decision threshold on the positive-class probability (``binary``; for ``segmentation``
        the per-voxel foreground threshold).
    voxel_spacing:
        ``segmentation`` only: voxel size in mm, e.g. ``(dz, dy, dx)`` of the model's input grid,
        for volumes in mL (default ``None``: 1 mm isotropic). A per-sample ``voxel_ml`` meta
        column, if the dataset passes one, takes precedence.
    description:
        A sentence for tables and notebooks.
    """

    name: str
    kind: str
    num_classes: int | None = None
    num_targets: int = 1
    class_names: tuple[str, ...] | None = None
    loss: str | None = None
    loss_kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    metrics: tuple[str, ...] | None = None
    primary_metric: str | None = None
    threshold: float = 0.5
    description: str = ""
    voxel_spacing: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(
                f"Task name {self.name!r} is not valid: use letters, digits and underscores "
                "(it becomes a column prefix, so no dots or spaces)."
            )
        if self.kind not in KINDS:
            raise ValueError(f"Task {self.name!r}: unknown kind {self.kind!r}; expected one of {KINDS}.")
        num_classes = self.num_classes
        if self.kind == "binary":
            if num_classes not in (None, 2):
                raise ValueError(f"Task {self.name!r}: a binary task has 2 classes, got num_classes={num_classes}.")
            num_classes = 2
        elif self.kind in ("multiclass", "ordinal"):
            if num_classes is None or num_classes < 2:
                raise ValueError(
                    f"Task {self.name!r}: kind {self.kind!r} needs num_classes >= 2, got {num_classes}."
                )
        if self.class_names is not None:
            names = tuple(str(c) for c in self.class_names)
            if num_classes is not None and len(names) != num_classes:
                raise ValueError(
                    f"Task {self.name!r}: {len(names)} class_names for {num_classes} classes."
                )
            object.__setattr__(self, "class_names", names)
        if self.num_targets < 1:
            raise ValueError(f"Task {self.name!r}: num_targets must be >= 1.")
        if self.kind != "regression" and self.num_targets != 1:
            raise ValueError(f"Task {self.name!r}: num_targets is only for regression tasks.")
        object.__setattr__(self, "num_classes", num_classes)
        if self.loss is None:
            object.__setattr__(self, "loss", DEFAULT_LOSS[self.kind])
        if self.metrics is None:
            object.__setattr__(self, "metrics", DEFAULT_METRICS[self.kind])
        else:
            object.__setattr__(self, "metrics", tuple(self.metrics))
        if self.primary_metric is None:
            object.__setattr__(self, "primary_metric", DEFAULT_PRIMARY[self.kind])
        object.__setattr__(self, "loss_kwargs", dict(self.loss_kwargs))
        if self.voxel_spacing is not None:
            if self.kind != "segmentation":
                raise ValueError(f"Task {self.name!r}: voxel_spacing is only for segmentation tasks.")
            sp = tuple(float(v) for v in self.voxel_spacing)
            if not sp or min(sp) <= 0:
                raise ValueError(f"Task {self.name!r}: voxel_spacing must be positive sizes in mm, got {self.voxel_spacing}.")
            object.__setattr__(self, "voxel_spacing", sp)

    # ------------------------------------------------------------------ shape
    @property
    def num_outputs(self) -> int:
        """Width of the head's output for this task."""
        if self.kind == "binary":
            return 1
        if self.kind == "multiclass":
            return int(self.num_classes)
        if self.kind == "ordinal":
            return int(self.num_classes) - 1
        if self.kind == "regression":
            return int(self.num_targets)
        return 1  # segmentation: one foreground channel

    @property
    def is_classification(self) -> bool:
        return self.kind in ("binary", "multiclass", "ordinal")

    def with_options(self, **changes: Any) -> "Task":
        """A copy with some fields changed (tasks are immutable)."""
        return replace(self, **changes)

    # --------------------------------------------------------------- decoding
    def decode(self, outputs: torch.Tensor) -> dict[str, np.ndarray]:
        """Turn a batch of raw head outputs into probabilities and predictions.

        Returns a dict with ``"pred"`` (class index or real value, shape ``[B]`` or
        ``[B, num_targets]``) and, for classification, ``"prob"`` (``[B]`` for binary: the
        positive-class probability; ``[B, C]`` otherwise).
        """
        out = outputs.detach().float()
        if self.kind == "binary":
            prob = torch.sigmoid(out.reshape(out.shape[0], -1)[:, 0])
            return {"prob": prob.cpu().numpy(), "pred": (prob >= self.threshold).long().cpu().numpy()}
        if self.kind == "multiclass":
            prob = torch.softmax(out, dim=1)
            return {"prob": prob.cpu().numpy(), "pred": prob.argmax(dim=1).cpu().numpy()}
        if self.kind == "ordinal":
            cum = torch.sigmoid(out)  # P(y > k), k = 0..C-2
            pred = (cum > 0.5).sum(dim=1)
            return {"prob": ordinal_class_probs(cum).cpu().numpy(), "pred": pred.cpu().numpy()}
        if self.kind == "regression":
            pred = out.reshape(out.shape[0], -1)
            pred = pred[:, 0] if self.num_targets == 1 else pred
            return {"pred": pred.cpu().numpy()}
        prob = torch.sigmoid(out[:, 0])  # segmentation: [B, 1, *spatial] logits -> [B, *spatial]
        return {"prob": prob.cpu().numpy(), "pred": (prob >= self.threshold).cpu().numpy()}

    # ------------------------------------------------ Predictions table columns
    def _value_columns(self, part: str, segmentation: str) -> list[str]:
        """``<task>.<part>`` (one per target of a multi-target regression); ``<task>.<segmentation>``
        for a segmentation task (its per-sample volume)."""
        if self.kind == "segmentation":
            return [f"{self.name}.{segmentation}"]
        if self.kind == "regression" and self.num_targets > 1:
            return [f"{self.name}.{part}.{j}" for j in range(self.num_targets)]
        return [f"{self.name}.{part}"]

    def target_columns(self) -> list[str]:
        """Names of this task's target column(s) in a Predictions table."""
        return self._value_columns("target", "volume_true_ml")

    def prob_columns(self) -> list[str]:
        """Names of the probability columns (empty for regression)."""
        if self.kind == "binary":
            return [f"{self.name}.prob"]
        if self.kind in ("multiclass", "ordinal"):
            return [f"{self.name}.prob.{k}" for k in range(int(self.num_classes))]
        return []

    def pred_columns(self) -> list[str]:
        """Names of this task's prediction column(s) in a Predictions table."""
        return self._value_columns("pred", "volume_pred_ml")

    def summary_columns(self) -> list[str]:
        """Per-sample scores stored beside the outputs (``segmentation``: Dice and IoU)."""
        if self.kind == "segmentation":
            return [f"{self.name}.dice", f"{self.name}.iou"]
        return []

    def output_columns(self) -> list[str]:
        return self.prob_columns() + self.pred_columns() + self.summary_columns()

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "kind": self.kind,
            "num_classes": self.num_classes,
            "num_targets": self.num_targets,
            "class_names": list(self.class_names) if self.class_names else None,
            "loss": self.loss,
            "loss_kwargs": dict(self.loss_kwargs),
            "metrics": list(self.metrics),
            "primary_metric": self.primary_metric,
            "threshold": self.threshold,
            "description": self.description,
        }
        if self.voxel_spacing is not None:
            d["voxel_spacing"] = list(self.voxel_spacing)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Task":
        d = dict(d)
        if d.get("class_names") is not None:
            d["class_names"] = tuple(d["class_names"])
        if d.get("metrics") is not None:
            d["metrics"] = tuple(d["metrics"])
        if d.get("kind") == "binary":
            d["num_classes"] = None
        if d.get("voxel_spacing") is not None:
            d["voxel_spacing"] = tuple(d["voxel_spacing"])
        return cls(**d)


def ordinal_class_probs(cum: torch.Tensor) -> torch.Tensor:
    """Class probabilities from cumulative probabilities ``P(y > k)``.

    ``P(y = 0) = 1 - P(y > 0)``, ``P(y = k) = P(y > k-1) - P(y > k)``, ``P(y = C-1) = P(y > C-2)``.
    Independent sigmoids need not be monotone, so negative differences are clipped to 0 and
    each row renormalised.
    """
    ones = torch.ones_like(cum[:, :1])
    zeros = torch.zeros_like(cum[:, :1])
    upper = torch.cat([ones, cum], dim=1)
    lower = torch.cat([cum, zeros], dim=1)
    p = (upper - lower).clamp_min(0)
    return p / p.sum(dim=1, keepdim=True).clamp_min(1e-12)


def ordinal_encode(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Cumulative encoding: class k -> ``[1]*k + [0]*(C-1-k)`` (e.g. GCS 3 classes: 00, 10, 11)."""
    thresholds = torch.arange(num_classes - 1, device=y.device)
    return (y.reshape(-1, 1).long() > thresholds).float()


def as_task_dict(tasks: Sequence[Task] | dict[str, Task]) -> dict[str, Task]:
    """Normalise a list or dict of tasks to an ordered ``{name: Task}``, refusing duplicates."""
    if isinstance(tasks, dict):
        items = list(tasks.values())
    elif isinstance(tasks, Task):
        items = [tasks]
    else:
        items = list(tasks)
    out: dict[str, Task] = {}
    for t in items:
        if not isinstance(t, Task):
            raise TypeError(f"Expected Task objects, got {type(t).__name__}: {t!r}")
        if t.name in out:
            raise ValueError(f"Two tasks are named {t.name!r}; task names must be unique.")
        out[t.name] = t
    if not out:
        raise ValueError("At least one task is needed.")
    return out
