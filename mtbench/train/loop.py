"""Training and inference: :func:`fit` and :func:`predict`.

``fit`` trains a :class:`~mtbench.models.MultiTaskModel` with a
:class:`~mtbench.mtl.MultiTaskLoss`, validates after every epoch through :func:`predict` (so the
numbers used for model selection are computed exactly as the final ones), keeps the best weights
on the monitored quantity, stops early, and returns the history. ``predict`` returns the
Predictions table (see :mod:`mtbench.predictions`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mtbench.metrics import compute_metrics, higher_is_better
from mtbench.mtl.loss import MultiTaskLoss
from mtbench.predictions import ID_COLUMN
from mtbench.segmentation import summarise_batch
from mtbench.tasks import Task, as_task_dict
from mtbench.train import distributed as ddp
from mtbench.train.device import autocast, resolve_amp, resolve_device

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = (None, "plateau", "cosine")


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    ``monitor`` is ``"loss"`` (validation loss, lower is better), ``"loss.<task>"`` (one task's
    validation loss, e.g. ``"loss.prognosis"``), or ``"<task>.<metric>"`` (e.g.
    ``"prognosis.auc"``, ``"prognosis.balanced_accuracy"``); ``mode`` follows the metric unless
    given. Early stopping ends training after ``patience`` epochs without improvement, but never
    before ``min_epochs``. ``amp="auto"`` enables mixed precision on CUDA only.

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
    monitor: str = "loss"
    mode: str | None = None
    patience: int | None = None
    min_epochs: int = 0
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
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}.")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"Unknown scheduler {self.scheduler!r}; choose from {SCHEDULERS}.")
        if self.mode not in (None, "min", "max"):
            raise ValueError(f"mode must be None, 'min' or 'max', got {self.mode!r}.")
        if self.grad_accum_steps < 1:
            raise ValueError("grad_accum_steps must be >= 1.")

    def resolved_mode(self) -> str:
        if self.mode:
            return self.mode
        if self.monitor == "loss" or self.monitor.startswith("loss."):
            return "min"
        metric = self.monitor.split(".", 1)[-1]
        return "max" if higher_is_better(metric) else "min"


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
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def _seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    import random

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


def _to_device(batch: Mapping[str, Any], device: torch.device, channels_last: bool):
    x = batch["image"].to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if x.ndim == 4 else torch.channels_last_3d)
    targets = {k: v.to(device, non_blocking=True) for k, v in batch["targets"].items()}
    masks = {k: v.to(device, non_blocking=True) for k, v in batch["mask"].items()}
    return x, targets, masks


def _meta_lists(meta: Mapping[str, Any]) -> dict[str, list]:
    out = {}
    for k, v in meta.items():
        out[k] = v.tolist() if torch.is_tensor(v) else list(v)
    return out


@torch.no_grad()
def _run_inference(
    model: nn.Module,
    loader: DataLoader,
    tasks: dict[str, Task],
    device: torch.device,
    amp_dtype,
    loss: MultiTaskLoss | None,
    channels_last: bool,
    progress: bool,
    desc: str,
    mask_dir: str | Path | None = None,
):
    was_training = model.training
    model.eval()
    cols: dict[str, list] = {}
    chunks: dict[str, list] = {}
    loss_sums = {t: 0.0 for t in tasks}
    loss_counts = {t: 0 for t in tasks}
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
            x, targets, masks = _to_device(batch, device, channels_last)
            with autocast(device, amp_dtype):
                outputs = model(x)
            meta = _meta_lists(batch["meta"])
            for k, v in meta.items():
                cols.setdefault(k, []).extend(v)
            for name, task in tasks.items():
                out = outputs[name].float()
                m = masks.get(name, torch.ones(out.shape[0], dtype=torch.bool, device=device))
                if task.kind == "segmentation":  # per-sample summaries, not the maps (see mtbench.segmentation)
                    for c, v in summarise_batch(task, out, targets[name], m, meta, mask_dir).items():
                        chunks.setdefault(c, []).append(v)
                    continue
                y = targets[name].float().reshape(out.shape[0], -1)
                y = torch.where(m.reshape(-1, 1), y, torch.full_like(y, float("nan")))
                chunks.setdefault(f"{name}.__target", []).append(y.cpu().numpy())
                for key, arr in task.decode(out).items():
                    chunks.setdefault(f"{name}.__{key}", []).append(np.asarray(arr).reshape(out.shape[0], -1))
            if loss is not None:
                res = loss(outputs, targets, masks) if any(bool(m.any()) for m in masks.values()) else None
                if res is not None:
                    for t, v in res.per_task.items():
                        # per_task is a masked mean; undo it to pool exactly over the whole set
                        n = res.counts[t] if loss.reduction == "masked_mean" else x.shape[0]
                        loss_sums[t] += float(v) * n
                        loss_counts[t] += n
    finally:
        model.train(was_training)
    table = pd.DataFrame(cols)
    if ID_COLUMN in table.columns:
        table[ID_COLUMN] = table[ID_COLUMN].astype(str)
    for name, task in tasks.items():
        if task.kind == "segmentation":
            for c in task.target_columns() + task.output_columns():
                table[c] = np.concatenate(chunks[c])
            continue
        y = np.concatenate(chunks[f"{name}.__target"])
        for j, c in enumerate(task.target_columns()):
            table[c] = y[:, j]
        if task.prob_columns():
            prob = np.concatenate(chunks[f"{name}.__prob"])
            for j, c in enumerate(task.prob_columns()):
                table[c] = prob[:, j]
        pred = np.concatenate(chunks[f"{name}.__pred"])
        for j, c in enumerate(task.pred_columns()):
            table[c] = pred[:, j]
    table.attrs["tasks"] = [t.to_dict() for t in tasks.values()]
    if ddp.info().enabled:
        ids = loader.dataset.sample_ids() if hasattr(loader.dataset, "sample_ids") else None
        table = ddp.gather_predictions(table, ids)
        # Loss sums include the sampler's few padding repeats; metrics (from the table) do not.
        loss_sums = ddp.all_reduce_sum(loss_sums)
        loss_counts = ddp.all_reduce_sum({k: float(v) for k, v in loss_counts.items()})
    val_losses = {t: loss_sums[t] / loss_counts[t] for t in tasks if loss_counts[t] > 0}
    return table, val_losses


def predict(
    model: nn.Module,
    loader: DataLoader,
    tasks: Sequence[Task] | Mapping[str, Task],
    device: str | torch.device = "auto",
    amp: Any = "auto",
    channels_last: bool = False,
    progress: bool = False,
    mask_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Run ``model`` over ``loader`` and return the Predictions table (one row per sample).

    Targets of samples without a label for a task are NaN; the model's training mode is
    restored afterwards. Segmentation tasks get per-sample summary columns (volumes, Dice, IoU);
    with ``mask_dir`` their predicted masks are also written there (``<task>/<sample_id>.npz``).
    """
    tasks = as_task_dict(tasks)
    dev = ddp.device_for_rank(resolve_device(device))
    model.to(dev)
    table, _ = _run_inference(model, loader, tasks, dev, resolve_amp(amp, dev), None, channels_last, progress, "predict", mask_dir)
    return table


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


def _make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _monitor_value(monitor: str, val_loss: float, val_metrics: pd.DataFrame, val_task_losses=None) -> float:
    if monitor == "loss":
        return val_loss
    if monitor.startswith("loss."):
        task = monitor[len("loss."):]
        losses = dict(val_task_losses or {})
        # A validation set without any label of the task has no loss for it: NaN (never "improves").
        return float(losses.get(task, float("nan")))
    task, _, metric = monitor.partition(".")
    hit = val_metrics[(val_metrics["task"] == task) & (val_metrics["metric"] == metric)]
    if hit.empty:
        raise ValueError(
            f"monitor={monitor!r}: no metric {metric!r} for task {task!r} in validation "
            f"(available: {sorted(set(val_metrics['task'] + '.' + val_metrics['metric']))})."
        )
    return float(hit["value"].iloc[0])


def _rng_state(train_loader: DataLoader) -> dict[str, Any]:
    import random

    gens = [getattr(o, "generator", None) for o in (train_loader, getattr(train_loader, "sampler", None))]
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "loader": [g.get_state() if isinstance(g, torch.Generator) else None for g in gens],
    }


def _set_rng_state(state: Mapping[str, Any], train_loader: DataLoader) -> None:
    import random

    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    gens = [getattr(o, "generator", None) for o in (train_loader, getattr(train_loader, "sampler", None))]
    for g, st in zip(gens, state["loader"]):
        if isinstance(g, torch.Generator) and st is not None:
            g.set_state(st)


def _atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file and rename, so a kill mid-write never leaves a broken checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


_RESUME_IGNORES = {"progress", "device", "resume", "checkpoint_dir", "epochs", "compile"}


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
    if cfg.seed is not None:
        seed_everything(cfg.seed)
        _reseed_loader(train_loader, cfg.seed)
    dist_info = ddp.info()
    main = dist_info.rank == 0
    device = ddp.device_for_rank(resolve_device(cfg.device))
    amp_dtype = resolve_amp(cfg.amp, device)
    model.to(device)
    loss.to(device)
    if cfg.channels_last:
        _to_channels_last(model)  # weights here, inputs per batch
    train_model = ddp.wrap_model(model, device)
    forward_model = torch.compile(train_model) if cfg.compile else train_model
    params = list(model.parameters()) + [p for p in loss.parameters() if p.requires_grad]
    optimizer = _make_optimizer(params, cfg)
    scheduler = None
    if cfg.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=cfg.resolved_mode(), factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
    elif cfg.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None

    mode = cfg.resolved_mode()
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    best_score, best_epoch, best_state = float("nan"), -1, None
    history: list[dict[str, Any]] = []
    stale, stopped_early, start_epoch = 0, False, 1

    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    last_path = ckpt_dir / "last.pt" if ckpt_dir else None
    if last_path is not None and cfg.resume and last_path.is_file():
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        saved = {k: v for k, v in state["config"].items() if k not in _RESUME_IGNORES}
        now = {k: v for k, v in asdict(cfg).items() if k not in _RESUME_IGNORES}
        if saved != now:
            diff = {k: (saved.get(k), now.get(k)) for k in set(saved) | set(now) if saved.get(k) != now.get(k)}
            raise ValueError(f"Cannot resume from {last_path}: the training configuration changed {diff}.")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        loss.load_state_dict(state["loss"])
        history, best_score, best_epoch = state["history"], state["best_score"], state["best_epoch"]
        best_state, stale, stopped_early = state["best_state"], state["stale"], state["finished_early"]
        start_epoch = state["epoch"] + 1
        _set_rng_state(state["rng"], train_loader)
        if stopped_early:
            start_epoch = cfg.epochs + 1  # nothing left to do
        if main and cfg.progress:
            print(f"Resuming from {last_path} after epoch {state['epoch']}.")

    epoch_bar = tqdm(range(start_epoch, cfg.epochs + 1), desc="epochs", disable=not (cfg.progress and main))
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        for obj in (train_loader.sampler, getattr(train_loader, "batch_sampler", None)):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)  # DistributedSampler: a new shuffle each epoch
        model.train()
        sums = {t: 0.0 for t in tasks}
        counts = {t: 0 for t in tasks}
        weight_sums: dict[str, float] = {}
        weight_counts: dict[str, int] = {}  # batches in which the task was present
        total_sum, n_batches, skipped = 0.0, 0, 0
        optimizer.zero_grad(set_to_none=True)
        steps = tqdm(train_loader, desc=f"epoch {epoch}", leave=False, disable=not (cfg.progress and main))
        for step, batch in enumerate(steps):
            x, targets, masks = _to_device(batch, device, cfg.channels_last)
            if not any(bool(m.any()) for m in masks.values()):
                skipped += 1  # no label for any task in this batch: nothing to learn from it
                continue
            with autocast(device, amp_dtype):
                if loss.needs_features:
                    outputs, features = forward_model(x, return_features=True)
                else:
                    outputs, features = forward_model(x), None
            res = loss(outputs, targets, masks, features)
            total = res.total / cfg.grad_accum_steps
            (scaler.scale(total) if scaler else total).backward()
            if (step + 1) % cfg.grad_accum_steps == 0 or step + 1 == len(train_loader):
                if cfg.max_grad_norm:
                    if scaler:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if not math.isfinite(float(res.total.detach())):
                raise FloatingPointError(
                    f"Training loss became {float(res.total)} at epoch {epoch}, step {step} "
                    f"(per task: { {k: float(v) for k, v in res.per_task.items()} }); lower the learning rate."
                )
            total_sum += float(res.total.detach())
            n_batches += 1
            for t, v in res.per_task.items():
                sums[t] += float(v.detach()) * res.counts[t]
                counts[t] += res.counts[t]
            for t, w in res.weights.items():
                weight_sums[t] = weight_sums.get(t, 0.0) + w
                weight_counts[t] = weight_counts.get(t, 0) + 1
        if dist_info.enabled:  # pool the epoch's training statistics over ranks
            pooled = ddp.all_reduce_sum(
                {"total": total_sum, "batches": float(n_batches), **{f"s.{t}": sums[t] for t in tasks},
                 **{f"c.{t}": float(counts[t]) for t in tasks}}
            )
            total_sum, n_batches = pooled["total"], int(pooled["batches"])
            sums = {t: pooled[f"s.{t}"] for t in tasks}
            counts = {t: int(pooled[f"c.{t}"]) for t in tasks}
        if n_batches == 0:
            raise ValueError("No training batch had any label: check the dataset's label columns and masks.")
        train_task_loss = {t: sums[t] / counts[t] for t in tasks if counts[t]}
        loss.weighting.end_epoch(train_task_loss)
        row: dict[str, Any] = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": total_sum / n_batches,
            **{f"train_loss.{t}": v for t, v in train_task_loss.items()},
            **{f"weight.{t}": w / weight_counts[t] for t, w in weight_sums.items()},  # mean over batches with the task
        }
        if skipped:
            row["skipped_batches"] = skipped
        if val_loader is not None:
            preds, val_losses = _run_inference(
                model, val_loader, tasks, device, amp_dtype, loss, cfg.channels_last, False, "validate"
            )
            with torch.no_grad():
                present = {t: torch.tensor(v, device=device) for t, v in val_losses.items()}
                val_loss = float(loss.weighting(present)) if present else float("nan")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                val_metrics = compute_metrics(preds, tasks)
            row["val_loss"] = val_loss
            row.update({f"val_loss.{t}": v for t, v in val_losses.items()})
            row.update({f"val.{r.task}.{r.metric}": r.value for r in val_metrics.itertuples()})
            score = _monitor_value(cfg.monitor, val_loss, val_metrics, val_losses)
        else:
            score = row["train_loss"]
        row["time_s"] = time.perf_counter() - t0
        history.append(row)
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(score if math.isfinite(score) else (best_score if math.isfinite(best_score) else 0.0))
            else:
                scheduler.step()
        improved = math.isfinite(score) and (not math.isfinite(best_score) or better(score, best_score))
        if improved or best_state is None:
            if improved:
                best_score = score
            best_epoch = epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            stale = 0
            if ckpt_dir is not None and main:
                ckpt_dir.mkdir(parents=True, exist_ok=True)
                _atomic_save({"model": best_state, "epoch": epoch, "score": score, "monitor": cfg.monitor}, ckpt_dir / "best.pt")
        else:
            stale += 1
        if cfg.patience is not None and stale >= cfg.patience and epoch >= cfg.min_epochs:
            stopped_early = True
        if ckpt_dir is not None and main:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            _atomic_save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "loss": loss.state_dict(),
                    "history": history,
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "stale": stale,
                    "finished_early": stopped_early,
                    "rng": _rng_state(train_loader),
                    "config": asdict(cfg),
                },
                last_path,
            )
        epoch_bar.set_postfix({cfg.monitor: f"{score:.4f}", "best": f"{best_score:.4f}@{best_epoch}"})
        if stopped_early:
            break
    epoch_bar.close()
    ddp.barrier()
    model.load_state_dict(best_state)
    return FitResult(model, pd.DataFrame(history), best_epoch, best_score, cfg.monitor, stopped_early, copy.deepcopy(cfg))
