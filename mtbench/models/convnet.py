"""A small plain CNN for 2D or 3D inputs (one class serves both, as in MONAI).

Stages of ``conv(k) -> batch norm -> ReLU -> max pool``, widths given by ``channels``, then a
global average or max pooling. Small and fast on a CPU: the default backbone of the smoke
profile, and the shape of the Pérez del Barrio et al. baseline 3D CNN (16-32-64-128 channels).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mtbench.models._builder import load_pretrained
from mtbench.models.backbones import Backbone, register_backbone
from mtbench.models.layers import SPATIAL_DIMS, layer



class ConvNet(Backbone):
    """Plain conv-BN-ReLU-pool network returning globally pooled features."""

    def __init__(
        self,
        spatial_dims: int = 2,
        in_chans: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128),
        kernel_size: int = 3,
        dropout: float = 0.0,
        global_pool: str = "avg",
    ):
        super().__init__()
        if spatial_dims not in SPATIAL_DIMS:
            raise ValueError(f"ConvNet supports spatial_dims 2 or 3, got {spatial_dims}.")
        if global_pool not in ("avg", "max"):
            raise ValueError(f"global_pool must be 'avg' or 'max', got {global_pool!r}.")
        self.spatial_dims = spatial_dims
        self.in_chans = in_chans
        self.global_pool = global_pool
        stages = []
        prev = in_chans
        for ch in channels:
            layers: list[nn.Module] = [
                layer("conv", spatial_dims)(prev, ch, kernel_size, padding=kernel_size // 2, bias=False),
                layer("batchnorm", spatial_dims)(ch),
                nn.ReLU(inplace=True),
            ]
            if dropout > 0:
                layers.append(layer("dropout", spatial_dims)(dropout))
            stages.append(nn.Sequential(*layers))
            prev = ch
        self.stages = nn.ModuleList(stages)
        self.pool = layer("maxpool", spatial_dims)(2, ceil_mode=True)
        self.num_features = int(prev)
        self._channels = [int(c) for c in channels]
        self.default_cam_layer_name = f"stages.{len(stages) - 1}"

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.pool(x)
            x = stage(x)
            maps.append(x)
        return maps

    def _pool(self, fm: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, fm.ndim))
        return fm.amax(dim=dims) if self.global_pool == "max" else fm.mean(dim=dims)

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = self.forward_maps(x)
        return self._pool(maps[-1]), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"{self.spatial_dims}D ConvNet expects input [B, C, {'D, ' if self.spatial_dims == 3 else ''}H, W], "
                f"got shape {tuple(x.shape)}."
            )
        return self._pool(self.forward_maps(x)[-1])


@register_backbone("convnet", spatial_dims=(2, 3), description="small plain CNN (16-32-64-128), CPU-friendly")
def _convnet(spatial_dims=2, in_chans=1, pretrained=False, **kwargs) -> ConvNet:
    return load_pretrained(ConvNet(spatial_dims=spatial_dims, in_chans=in_chans, **kwargs), pretrained, name="convnet")
