"""Training: :class:`TrainConfig`, :func:`make_loader` and :func:`fit` (:func:`predict` lives in
:mod:`mtbench.train.inference`).

``fit`` trains a :class:`~mtbench.models.MultiTaskModel` with a
:class:`~mtbench.mtl.MultiTaskLoss`: one :func:`~mtbench.train.engine.train_one_epoch` and one
:func:`~mtbench.train.engine.evaluate` per epoch (validation goes through the same inference as
:func:`predict`, so model selection sees the final numbers), a
:class:`~mtbench.train.engine.BestTracker` for the best weights and early stopping, and
:mod:`~mtbench.train.checkpoint` for resumable checkpoints. Optimisers and schedulers are looked up
by name in :mod:`mtbench.train.optim`.
"""

from __future__ import annotations

import copy
import random
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mtbench.metrics import higher_is_better
from mtbench.mtl.loss import MultiTaskLoss
from mtbench.tasks import Task, as_task_dict
from mtbench.train import distributed as ddp
from mtbench.train.checkpoint import atomic_save, load_resumable, save_resumable, set_rng_state
from mtbench.train.device import resolve_amp, resolve_device
from mtbench.train.engine import BestTracker, evaluate, monitor_value, train_one_epoch
from mtbench.train.inference import predict
from mtbench.train.optim import OPTIMIZERS, SCHEDULERS, make_optimizer, make_scheduler, step_scheduler

__all__ = ["FitResult", "TrainConfig", "fit", "make_loader", "predict", "seed_everything"]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    ``monitor`` is ``"loss"`` (validation loss, lower is better), ``"loss.<task>"`` (one task's
    validation loss, e.g. ``"loss.prognosis"``), or ``"<task>.<metric>"`` (e.g.
    ``"prognosis.auc"``, ``"prognosis.balanced_accuracy"``); ``mode`` follows the metric unless
    given. Early stopping ends training after ``patience`` epochs without improvement, but never
    before ``min_epochs``. ``amp="auto"`` enables mixed precision on CUDA only.

    ``warmup_epochs``: the first epochs are never selected as the best and do not count towards
    ``patience`` (the original code of Ruffini et al. 2024 waits 40); a run that ends inside the
    warm-up keeps its last epoch. ``scheduler_monitor``: what a plateau scheduler watches (None: the
    same as ``monitor``; e.g. ``"loss"``, the total validation loss, while ``monitor`` selects on
    ``"loss.prognosis"``). ``plateau_min_lr``: the plateau scheduler's floor on the learning rate.

    ``checkpoint_dir``: where ``best.pt`` (best weights) and ``last.pt`` (everything needed to
    continue: model, optimiser, scheduler, scaler, loss/weighting state, history and every RNG) are
    written after each epoch. With ``resume=True`` a later ``fit`` with the same directory continues
    from ``last.pt``, and on the CPU ends with exactly the numbers of an uninterrupted run.
    """

    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    momentum: float = 0.9
    scheduler: str | None = None
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    plateau_min_lr: float = 0.0
    scheduler_monitor: str | None = None
    monitor: str = "loss"
    mode: str | None = None
    patience: int | None = None
    min_epochs: int = 0
    warmup_epochs: int = 0
    grad_accum_steps: int = 1
    max_grad_norm: float | None = None
    device: str = "auto"
    amp: Any = "auto"
    channels_last: bool = False
    compile: bool = False
    seed: int | None = 0
    progress: bool = True
    checkpoint_dir: str | None = None
    resume: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS.names()}.")
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise ValueError(f"Unknown scheduler {self.scheduler!r}; choose from {[None, *SCHEDULERS.names()]}.")
        if self.mode not in (None, "min", "max"):
            raise ValueError(f"mode must be None, 'min' or 'max', got {self.mode!r}.")
        if self.grad_accum_steps < 1:
            raise ValueError("grad_accum_steps must be >= 1.")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}.")

    def resolved_mode(self) -> str:
        if self.mode:
            return self.mode
        return _mode_of(self.monitor)

    def scheduler_mode(self) -> str:
        """``min``/``max`` for what the plateau scheduler watches (``scheduler_monitor`` or ``monitor``)."""
        return self.resolved_mode() if self.scheduler_monitor in (None, self.monitor) else _mode_of(self.scheduler_monitor)


def _mode_of(monitor: str) -> str:
    if monitor == "loss" or monitor.startswith("loss."):
        return "min"
    return "max" if higher_is_better(monitor.split(".", 1)[-1]) else "min"


@dataclass
class FitResult:
    """What :func:`fit` returns. ``model`` holds the best weights."""

    model: nn.Module
    history: pd.DataFrame
    best_epoch: int
    best_score: float
    monitor: str
    stopped_early: bool
    config: TrainConfig = field(repr=False, default=None)

    def summary(self) -> str:
        return (
            f"best {self.monitor} = {self.best_score:.4f} at epoch {self.best_epoch} "
            f"of {len(self.history)}" + (" (early stop)" if self.stopped_early else "")
        )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def _seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_loader(
    dataset,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    sampler=None,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    distributed: bool | None = None,
) -> DataLoader:
    """A DataLoader whose shuffling and worker RNGs are seeded (same seed, same batches).

    Under ``torchrun`` (``distributed=None`` detects it) the data set is sharded across ranks with a
    ``DistributedSampler``; :func:`fit` calls its ``set_epoch`` and :func:`predict` gathers the shards.
    """
    g = torch.Generator()
    g.manual_seed(seed)
    if distributed is None:
        distributed = ddp.info().enabled
    if distributed and sampler is None:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=_seed_worker,
        generator=g,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=num_workers > 0,
    )


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    tasks: Sequence[Task] | Mapping[str, Task],
    loss: MultiTaskLoss | None = None,
    config: TrainConfig | None = None,
    **overrides,
) -> FitResult:
    """Train ``model`` and return a :class:`FitResult` whose ``model`` carries the best weights.

    Parameters
    ----------
    model:
        A :class:`~mtbench.models.MultiTaskModel` (or any module returning ``{task: output}``).
    train_loader, val_loader:
        Loaders yielding the sample dicts of :mod:`mtbench.data.datasets`. Without a validation
        loader the last epoch is kept and ``monitor`` must be ``"loss"`` (training loss).
    tasks:
        The tasks the model is trained and scored on.
    loss:
        A :class:`~mtbench.mtl.MultiTaskLoss`; default: equal weights, masked mean.
    config, **overrides:
        A :class:`TrainConfig`, and/or its fields as keyword arguments.

    Under ``torchrun`` the model is wrapped in DistributedDataParallel, loaders made by
    :func:`make_loader` are sharded, validation predictions are gathered from all ranks, and only
    rank 0 writes checkpoints.
    """
    cfg = config or TrainConfig()
    if overrides:
        cfg = TrainConfig(**{**asdict(cfg), **overrides})
    tasks = as_task_dict(tasks)
    loss = loss if loss is not None else MultiTaskLoss(tasks)
    _check_monitor(cfg, tasks, val_loader)
    if cfg.seed is not None:
        seed_everything(cfg.seed)
        _reseed_loader(train_loader, cfg.seed)
    main = ddp.info().rank == 0
    device = ddp.device_for_rank(resolve_device(cfg.device))
    amp_dtype = resolve_amp(cfg.amp, device)
    model.to(device)
    loss.to(device)
    if cfg.channels_last:
        _to_channels_last(model)  # weights here, inputs per batch
    train_model = ddp.wrap_model(model, device)
    forward_model = torch.compile(train_model) if cfg.compile else train_model
    optimizer = make_optimizer(list(model.parameters()) + [p for p in loss.parameters() if p.requires_grad], cfg)
    scheduler = make_scheduler(optimizer, cfg)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    best = BestTracker(cfg.resolved_mode())
    history: list[dict[str, Any]] = []
    stopped_early, start_epoch = False, 1

    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    last_path = ckpt_dir / "last.pt" if ckpt_dir else None
    if last_path is not None and cfg.resume and last_path.is_file():
        state = load_resumable(last_path, cfg)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for obj, key in ((scheduler, "scheduler"), (scaler, "scaler")):
            if obj is not None and state[key] is not None:
                obj.load_state_dict(state[key])
        loss.load_state_dict(state["loss"])
        history, stopped_early = state["history"], state["finished_early"]
        best.load_state_dict(state)
        set_rng_state(state["rng"], train_loader)
        start_epoch = cfg.epochs + 1 if stopped_early else state["epoch"] + 1  # early-stopped: nothing left
        if main and cfg.progress:
            print(f"Resuming from {last_path} after epoch {state['epoch']}.")

    epoch_bar = tqdm(range(start_epoch, cfg.epochs + 1), desc="epochs", disable=not (cfg.progress and main))
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        for obj in (train_loader.sampler, getattr(train_loader, "batch_sampler", None)):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)  # DistributedSampler: a new shuffle each epoch
        row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
        row.update(train_one_epoch(model, forward_model, train_loader, tasks, loss, optimizer, scaler, cfg, device,
                                   amp_dtype, epoch, cfg.progress and main))
        if val_loader is not None:
            val_row, val_metrics, val_losses = evaluate(model, val_loader, tasks, loss, device, amp_dtype, cfg.channels_last)
            row.update(val_row)
            score = monitor_value(cfg.monitor, row["val_loss"], val_metrics, val_losses)
            sched_score = score if cfg.scheduler_monitor in (None, cfg.monitor) else \
                monitor_value(cfg.scheduler_monitor, row["val_loss"], val_metrics, val_losses)
        else:
            score = sched_score = row["train_loss"]
        if score != score and main:  # NaN: say so (and why) instead of silently never improving
            warnings.warn(f"monitor {cfg.monitor!r} is NaN at epoch {epoch}; this epoch cannot become the best "
                          f"({row.get('val_warnings', 'no metric warning recorded')}).", RuntimeWarning, stacklevel=2)
        row["time_s"] = time.perf_counter() - t0
        history.append(row)
        step_scheduler(scheduler, sched_score, best.score if cfg.scheduler_monitor in (None, cfg.monitor) else float("nan"))
        # Warm-up: these epochs are never the best (nor stale); one ending the run is kept as the last.
        in_warmup = epoch <= cfg.warmup_epochs and epoch < cfg.epochs
        if not in_warmup and best.update(score, epoch, model) and ckpt_dir is not None and main:
            atomic_save({"model": best.state, "epoch": epoch, "score": score, "monitor": cfg.monitor}, ckpt_dir / "best.pt")
        stopped_early = cfg.patience is not None and best.stale >= cfg.patience and epoch >= cfg.min_epochs
        if ckpt_dir is not None and main:
            save_resumable(last_path, epoch=epoch, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                           loss=loss, history=history, best=best, stopped_early=stopped_early,
                           train_loader=train_loader, cfg=cfg)
        epoch_bar.set_postfix({cfg.monitor: f"{score:.4f}", "best": f"{best.score:.4f}@{best.epoch}"})
        if stopped_early:
            break
    epoch_bar.close()
    ddp.barrier()
    model.load_state_dict(best.state)
    return FitResult(model, pd.DataFrame(history), best.epoch, best.score, cfg.monitor, stopped_early, copy.deepcopy(cfg))


def _check_monitor(cfg: TrainConfig, tasks: Mapping[str, Task], val_loader) -> None:
    if cfg.scheduler_monitor not in (None, cfg.monitor):
        _check_monitor(replace(cfg, monitor=cfg.scheduler_monitor, scheduler_monitor=None), tasks, val_loader)
    if cfg.monitor.startswith("loss.") and cfg.monitor[len("loss."):] not in tasks:
        raise ValueError(f"monitor={cfg.monitor!r}: no task {cfg.monitor[len('loss.'):]!r} (tasks: {list(tasks)}).")
    if val_loader is None and cfg.monitor != "loss":
        raise ValueError(f"monitor={cfg.monitor!r} needs a validation loader.")
    if cfg.monitor != "loss" and not cfg.monitor.startswith("loss."):
        mon_task, _, mon_metric = cfg.monitor.partition(".")
        if mon_task not in tasks or mon_metric not in tasks[mon_task].metrics:
            raise ValueError(
                f"monitor={cfg.monitor!r}: use 'loss', 'loss.<task>' or '<task>.<metric>' with a task from {list(tasks)} "
                f"and one of its metrics ({ {t: list(v.metrics) for t, v in tasks.items()} })."
            )


def _to_channels_last(model: nn.Module) -> None:
    """Channels-last for 2D (NHWC) and 3D (NDHWC) conv weights alike (``Module.to`` handles one rank only)."""
    for p in model.parameters():
        if p.ndim == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
        elif p.ndim == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)


def _reseed_loader(loader: DataLoader, seed: int) -> None:
    """Restart the loader's shuffling RNG, so the seed alone fixes the batch order (loaders are reused)."""
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        g = getattr(obj, "generator", None)
        if isinstance(g, torch.Generator):
            g.manual_seed(seed)
