"""Training and inference."""

from mtbench.train.device import resolve_amp, resolve_device
from mtbench.train.loop import FitResult, TrainConfig, fit, make_loader, predict, seed_everything

__all__ = ["FitResult", "TrainConfig", "fit", "make_loader", "predict", "resolve_amp", "resolve_device", "seed_everything"]
