"""Checkpoints of :func:`~mtbench.train.fit`: atomic writes, the full resumable state and every RNG.

``best.pt`` holds the best weights; ``last.pt`` everything needed to continue (model, optimiser,
scheduler, scaler, loss/weighting state, history, best-so-far and every RNG), so a resumed run on
the CPU ends with exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader

# Fields that may change between an interrupted run and its resumption.
RESUME_IGNORES = {"progress", "device", "resume", "checkpoint_dir", "epochs", "compile"}


def atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file and rename, so a kill mid-write never leaves a broken checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _loader_generators(loader: DataLoader) -> list:
    return [getattr(o, "generator", None) for o in (loader, getattr(loader, "sampler", None))]


def rng_state(train_loader: DataLoader) -> dict[str, Any]:
    """Every RNG a training epoch draws from (torch, CUDA, NumPy, Python, the loader's shuffling)."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "loader": [g.get_state() if isinstance(g, torch.Generator) else None for g in _loader_generators(train_loader)],
    }


def set_rng_state(state: Mapping[str, Any], train_loader: DataLoader) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for g, st in zip(_loader_generators(train_loader), state["loader"]):
        if isinstance(g, torch.Generator) and st is not None:
            g.set_state(st)


def load_resumable(path: Path, cfg) -> dict[str, Any]:
    """``last.pt`` as a dict, refused when the training configuration changed since it was written."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    now = {k: v for k, v in asdict(cfg).items() if k not in RESUME_IGNORES}
    # A field added after the checkpoint was written counts as its default value then.
    defaults = asdict(type(cfg)())
    saved = {k: state["config"].get(k, defaults.get(k)) for k in set(state["config"]) | set(now) if k not in RESUME_IGNORES}
    if saved != now:
        diff = {k: (saved.get(k), now.get(k)) for k in set(saved) | set(now) if saved.get(k) != now.get(k)}
        raise ValueError(f"Cannot resume from {path}: the training configuration changed {diff}.")
    return state


def save_resumable(path: Path, *, epoch, model, optimizer, scheduler, scaler, loss, history, best, stopped_early,
                   train_loader, cfg) -> None:
    """Write ``last.pt`` (see :func:`load_resumable`); ``best`` is the :class:`~mtbench.train.engine.BestTracker`."""
    atomic_save(
        {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "loss": loss.state_dict(),
            "history": history,
            **best.state_dict(),
            "finished_early": stopped_early,
            "rng": rng_state(train_loader),
            "config": asdict(cfg),
        },
        path,
    )
