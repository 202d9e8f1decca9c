"""Initialising one model from others: weight averaging (the MDMT start of Ruffini et al. 2024)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn


def beta_average(state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor], beta: float = 0.5) -> dict[str, torch.Tensor]:
    """``beta * a + (1 - beta) * b`` for every floating-point tensor of two state dicts.

    Integer buffers (e.g. batch norm's ``num_batches_tracked``) are taken from ``a``. The two state
    dicts must have the same keys and shapes; the first difference is named.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}.")
    ka, kb = set(state_a), set(state_b)
    if ka != kb:
        raise ValueError(f"State dicts differ: only in a {sorted(ka - kb)[:5]}, only in b {sorted(kb - ka)[:5]}.")
    out = {}
    for k, va in state_a.items():
        vb = state_b[k]
        if va.shape != vb.shape:
            raise ValueError(f"{k!r}: shapes {tuple(va.shape)} and {tuple(vb.shape)} differ.")
        if torch.is_floating_point(va):
            out[k] = beta * va.detach() + (1.0 - beta) * vb.detach().to(va.dtype)
        else:
            out[k] = va.detach().clone()
    return out


def init_from_two(target: nn.Module, model_a: nn.Module, model_b: nn.Module, beta: float = 0.5) -> nn.Module:
    """Initialise a :class:`~mtbench.models.MultiTaskModel` from two trained ones.

    The backbone becomes the beta-average of ``model_a``'s and ``model_b``'s backbones; each head
    of ``target`` is copied from whichever source model has a head of that name (``model_a``
    first). A head in neither source keeps its fresh initialisation.
    """
    target.backbone.load_state_dict(beta_average(model_a.backbone.state_dict(), model_b.backbone.state_dict(), beta))
    for name, head in target.heads.items():
        for src in (model_a, model_b):
            if name in src.heads:
                head.load_state_dict(src.heads[name].state_dict())
                break
    return target
