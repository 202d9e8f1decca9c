"""Data-parallel training with ``torchrun`` (DistributedDataParallel).

Launch any mtbench command under torchrun and it runs data-parallel::

    torchrun --standalone --nproc_per_node 4 -m mtbench run quickstart --profile full

* NCCL on GPUs, gloo on CPUs (chosen automatically; ``MTBENCH_DIST_BACKEND`` overrides).
* Training and validation loaders are sharded with a ``DistributedSampler``
  (:func:`mtbench.train.make_loader` does it when a process group is up).
* Predictions are gathered from every rank and de-duplicated by ``sample_id``: the sampler pads
  shards with repeated samples so all ranks see equal batch counts, and those repeats must not reach
  the Predictions table. Every sample appears exactly once, in its original order.
* Only rank 0 writes files; every rank computes the same metrics, so early stopping agrees.

Multi-node: run the same command on every node with ``--nnodes N --node_rank K
--rdzv_endpoint HOST:PORT`` (see docs/scale.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_with_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_distributed() -> DistInfo:
    """Join the process group torchrun describes (idempotent); a no-op for a plain run."""
    if not launched_with_torchrun():
        return DistInfo()
    if not dist.is_initialized():
        backend = os.environ.get("MTBENCH_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
    return info()


def info() -> DistInfo:
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def is_main_process() -> bool:
    return info().rank == 0


def barrier() -> None:
    if info().enabled:
        dist.barrier()


def device_for_rank(device: torch.device) -> torch.device:
    """On CUDA each rank uses its local GPU."""
    if info().enabled and device.type == "cuda":
        return torch.device("cuda", info().local_rank)
    return device


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank."""
    if not info().enabled:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_reduce_sum(values: dict[str, float]) -> dict[str, float]:
    """Sum a dict of floats over ranks (keys must agree across ranks)."""
    if not info().enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return {k: float(v) for k, v in zip(keys, t.cpu().tolist())}


def gather_predictions(table: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Concatenate every rank's Predictions table; drop the sampler's padding repeats.

    ``order`` (the dataset's sample ids) restores the original row order.
    """
    if not info().enabled:
        return table
    parts: list = [None] * info().world_size
    dist.all_gather_object(parts, table)
    attrs = dict(table.attrs)
    # A sample is (sample_id, dataset) when data sets are concatenated (one image may be in two).
    keys = ["sample_id"] + (["dataset"] if "dataset" in table.columns else [])
    full = pd.concat(parts, ignore_index=True).drop_duplicates(keys, keep="first")
    if order is not None and len(keys) == 1:
        full = full.set_index("sample_id").loc[[str(s) for s in order]].reset_index()
    full.attrs.update(attrs)
    return full.reset_index(drop=True)


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP-wrap ``model`` when a process group is up. Unused parameters are allowed: a task head
    whose task has no label in a batch takes no part in that step's loss."""
    if not info().enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=True)
