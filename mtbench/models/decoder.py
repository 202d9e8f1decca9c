"""A U-Net-style decoder head for segmentation tasks, on any backbone exposing ``forward_maps``.

The shared encoder is the multi-task backbone; its multi-scale maps (finest first, see
:meth:`mtbench.models.backbones.Backbone.forward_maps`) feed a decoder that walks from the coarsest
map back up, at each scale upsampling, concatenating the encoder's map of that scale (the skip
connection) and applying two ``conv -> norm -> ReLU`` blocks, as in U-Net (Ronneberger et al.
2015). The last map is resized to the input's spatial size and a 1x1 convolution gives one logit
per voxel. One class serves 2D and 3D (``spatial_dims``), as MONAI's networks do.

The decoder is a *head*: :class:`mtbench.models.MultiTaskModel` sees ``needs_maps = True`` and
calls it as ``head(maps, output_size)`` instead of ``head(pooled_features)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtbench.models.layers import SPATIAL_DIMS, layer

_NORMS = {"batch": "batchnorm", "instance": "instancenorm"}  # norm= option -> layer kind



def _block(spatial_dims: int, cin: int, cout: int, norm: str) -> nn.Sequential:
    conv, nrm = layer("conv", spatial_dims), layer(_NORMS[norm], spatial_dims)
    return nn.Sequential(
        conv(cin, cout, 3, padding=1, bias=False), nrm(cout), nn.ReLU(inplace=True),
        conv(cout, cout, 3, padding=1, bias=False), nrm(cout), nn.ReLU(inplace=True),
    )


class UNetDecoder(nn.Module):
    """Decoder with skip connections over an encoder's multi-scale maps.

    Parameters
    ----------
    feature_channels:
        Channels of the encoder maps, finest first (``backbone.feature_channels``).
    spatial_dims:
        2 or 3.
    out_channels:
        Output channels (1: one foreground logit per voxel, as ``Task(kind="segmentation")``).
    decoder_channels:
        Width of the decoder block at each scale, finest first (default: the encoder's widths,
        halved and at least 8). Must have one entry per encoder map.
    norm:
        ``"batch"`` or ``"instance"`` normalisation in the decoder blocks.
    skip_levels:
        How many of the finest used maps get a skip connection (default: all). ``0`` decodes from
        the coarsest map alone (no skips: an ablation).
    first_level:
        Ignore the ``first_level`` finest maps: the decoder stops at that scale and its logits are
        interpolated to the input size (``1`` halves the cost of full-resolution 3D convolutions
        on a CPU, at the price of coarser mask borders).
    foreground_prior:
        If given, the output bias starts at ``log(p / (1 - p))`` so the initial prediction is the
        expected foreground fraction ``p`` rather than 0.5 (the prior initialisation of Lin et al.
        2017); helps small lesions (hematomas are ~1% of a head volume) learn in few epochs.

    ``forward(maps, output_size)`` returns logits ``[B, out_channels, *output_size]``.
    """

    needs_maps = True

    def __init__(
        self,
        feature_channels: Sequence[int],
        spatial_dims: int = 2,
        out_channels: int = 1,
        decoder_channels: Sequence[int] | None = None,
        norm: str = "batch",
        skip_levels: int | None = None,
        first_level: int = 0,
        foreground_prior: float | None = None,
    ):
        super().__init__()
        if spatial_dims not in SPATIAL_DIMS:
            raise ValueError(f"UNetDecoder supports spatial_dims 2 or 3, got {spatial_dims}.")
        if norm not in _NORMS:
            raise ValueError(f"Unknown norm {norm!r}; use one of {sorted(_NORMS)}.")
        all_chans = [int(c) for c in feature_channels]
        if not 0 <= int(first_level) < len(all_chans):
            raise ValueError(f"first_level must be in [0, {len(all_chans) - 1}] for {len(all_chans)} encoder maps, got {first_level}.")
        self.first_level = int(first_level)
        chans = all_chans[self.first_level:]
        dec = [max(8, c // 2) for c in chans] if decoder_channels is None else [int(c) for c in decoder_channels]
        if len(dec) != len(chans):
            raise ValueError(f"decoder_channels has {len(dec)} entries for the {len(chans)} encoder maps used {chans}.")
        n = len(chans)
        self.skip_levels = n - 1 if skip_levels is None else int(skip_levels)
        if not 0 <= self.skip_levels <= n - 1:
            raise ValueError(f"skip_levels must be in [0, {n - 1}], got {skip_levels}.")
        self.spatial_dims = spatial_dims
        self.feature_channels = all_chans
        self.decoder_channels = dec
        self.bottleneck = _block(spatial_dims, chans[-1], dec[-1], norm)
        blocks = []
        for level in range(n - 2, -1, -1):  # coarse -> fine
            skip = chans[level] if level < self.skip_levels else 0
            blocks.append(_block(spatial_dims, dec[level + 1] + skip, dec[level], norm))
        self.blocks = nn.ModuleList(blocks)
        self.out = layer("conv", spatial_dims)(dec[0], out_channels, 1)
        if foreground_prior is not None:
            p = float(foreground_prior)
            if not 0 < p < 1:
                raise ValueError(f"foreground_prior must be in (0, 1), got {foreground_prior}.")
            nn.init.constant_(self.out.bias, float(torch.logit(torch.tensor(p))))

    def forward(self, maps: Sequence[torch.Tensor], output_size: Sequence[int]) -> torch.Tensor:
        if len(maps) != len(self.feature_channels):
            raise ValueError(f"UNetDecoder was built for {len(self.feature_channels)} maps, got {len(maps)}.")
        mode = "trilinear" if self.spatial_dims == 3 else "bilinear"
        maps = list(maps)[self.first_level:]
        x = self.bottleneck(maps[-1])
        for block, level in zip(self.blocks, range(len(maps) - 2, -1, -1)):
            skip = maps[level]
            x = F.interpolate(x, size=skip.shape[2:], mode=mode, align_corners=False)
            if level < self.skip_levels:
                x = torch.cat([x, skip], dim=1)
            x = block(x)
        x = self.out(x)
        if tuple(x.shape[2:]) != tuple(output_size):
            x = F.interpolate(x, size=tuple(int(s) for s in output_size), mode=mode, align_corners=False)
        return x
