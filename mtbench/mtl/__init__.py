"""Multi-task learning pieces: per-task losses, the masked multi-task loss, weighting strategies."""

from mtbench.mtl.loss import MultiTaskLoss, MultiTaskLossOutput
from mtbench.mtl.losses import get_loss, list_losses, register_loss, task_loss
from mtbench.mtl.weighting import Weighting, create_weighting, list_weightings, register_weighting

__all__ = [
    "MultiTaskLoss",
    "MultiTaskLossOutput",
    "Weighting",
    "create_weighting",
    "get_loss",
    "list_losses",
    "list_weightings",
    "register_loss",
    "register_weighting",
    "task_loss",
]
