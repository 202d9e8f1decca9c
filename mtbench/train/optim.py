"""Optimisers and learning-rate schedulers, by name (``TrainConfig.optimizer`` / ``.scheduler``).

Add one with a decorator; the factory receives the parameters (or the optimiser) and the
:class:`~mtbench.train.TrainConfig`::

    @register_optimizer("rmsprop")
    def rmsprop(params, cfg):
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
"""

from __future__ import annotations

import math

import torch

from mtbench.registry import Registry

OPTIMIZERS = Registry("optimizer")
SCHEDULERS = Registry("scheduler")


def register_optimizer(name: str, **meta):
    """Decorator: ``fn(params, cfg) -> torch.optim.Optimizer`` under ``name``."""
    return OPTIMIZERS.register(name, **meta)


def register_scheduler(name: str, **meta):
    """Decorator: ``fn(optimizer, cfg) -> scheduler`` under ``name``."""
    return SCHEDULERS.register(name, **meta)


@register_optimizer("adamw")
def _adamw(params, cfg):
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@register_optimizer("adam")
def _adam(params, cfg):
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@register_optimizer("sgd")
def _sgd(params, cfg):
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


@register_scheduler("plateau", description="ReduceLROnPlateau on cfg.scheduler_monitor (default: the monitored quantity)")
def _plateau(optimizer, cfg):
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=cfg.scheduler_mode(), factor=cfg.plateau_factor, patience=cfg.plateau_patience,
        min_lr=cfg.plateau_min_lr,
    )


@register_scheduler("cosine", description="cosine annealing over cfg.epochs")
def _cosine(optimizer, cfg):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)


def make_optimizer(params, cfg) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(cfg.optimizer)(params, cfg)


def make_scheduler(optimizer, cfg):
    """The scheduler named by ``cfg.scheduler``, or None."""
    return None if cfg.scheduler is None else SCHEDULERS.get(cfg.scheduler)(optimizer, cfg)


def step_scheduler(scheduler, score: float, best_score: float) -> None:
    """One epoch's scheduler step; a plateau scheduler is fed the score (a NaN one counts as no change)."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(score if math.isfinite(score) else (best_score if math.isfinite(best_score) else 0.0))
    else:
        scheduler.step()
