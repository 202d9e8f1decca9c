"""A native DenseNet for 2D or 3D inputs, architecturally equal to MONAI's ``DenseNet121``.

Cobo et al. (2024) used ``monai.networks.nets.DenseNet121(spatial_dims=3)``. This module builds the
same network (Huang et al. 2017: a 7x7x7 stride-2 stem, 3x3x3 max pooling, dense blocks of
BN-ReLU-Conv1-BN-ReLU-Conv3 bottleneck layers with growth rate 32 and bottleneck width 4x,
transitions BN-ReLU-Conv1-AvgPool halving the channels, a final BN, then ReLU and global average
pooling), with the **same module names** as MONAI (``features.conv0`` ... ``features.norm5``), so a
MONAI ``DenseNet121`` state dict loads into it (the classifier ``class_layers.out`` is dropped:
heads are separate in mtbench). Weight initialisation follows MONAI's (Kaiming-normal convolutions,
unit/zero batch norm). MONAI is not needed at run time; ``tests/test_ich_backbones3d.py`` checks
the equality against MONAI when it is installed (``pip install mtbench[benchmark]``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.utils.checkpoint
from torch import nn

from mtbench.models._builder import load_pretrained
from mtbench.models.backbones import Backbone, register_backbone
from mtbench.models.layers import SPATIAL_DIMS, layer


DENSENET_CONFIGS = {
    "densenet121": dict(init_features=64, growth_rate=32, block_config=(6, 12, 24, 16)),
    "densenet169": dict(init_features=64, growth_rate=32, block_config=(6, 12, 32, 32)),
    "densenet201": dict(init_features=64, growth_rate=32, block_config=(6, 12, 48, 32)),
    "densenet264": dict(init_features=64, growth_rate=32, block_config=(6, 12, 64, 48)),
}


class _DenseLayer(nn.Module):
    """BN-ReLU-Conv(1) to ``bn_size * growth_rate`` channels, BN-ReLU-Conv(3) to ``growth_rate``; concatenated.

    ``new_features(feats, checkpoint=True)`` is the memory-efficient path (torchvision's
    ``memory_efficient``): the concatenation + ``norm1`` + ``relu1`` + ``conv1`` is recomputed in the
    backward pass instead of stored, so a block keeps its growth-rate-wide outputs, not one ever wider
    concatenation per layer.
    """

    def __init__(self, spatial_dims: int, in_channels: int, growth_rate: int, bn_size: int, dropout_prob: float):
        super().__init__()
        mid = bn_size * growth_rate
        layers = [
            ("norm1", layer("batchnorm", spatial_dims)(in_channels)),
            ("relu1", nn.ReLU(inplace=True)),
            ("conv1", layer("conv", spatial_dims)(in_channels, mid, kernel_size=1, bias=False)),
            ("norm2", layer("batchnorm", spatial_dims)(mid)),
            ("relu2", nn.ReLU(inplace=True)),
            ("conv2", layer("conv", spatial_dims)(mid, growth_rate, kernel_size=3, padding=1, bias=False)),
        ]
        if dropout_prob > 0:
            layers.append(("dropout", layer("dropout", spatial_dims)(dropout_prob)))
        self.layers = nn.Sequential(OrderedDict(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.layers(x)], 1)

    def new_features(self, feats: list[torch.Tensor], checkpoint: bool) -> torch.Tensor:
        """This layer's ``growth_rate`` new channels from the block's features so far."""
        if checkpoint and torch.is_grad_enabled() and any(f.requires_grad for f in feats):
            calls = []

            def bottleneck(*fs):
                # The recomputation in backward must not update norm1's running statistics a second
                # time: it runs the same op on throw-away copies of them (the same output).
                first = not calls
                calls.append(1)
                bn = self.layers.norm1
                x = torch.cat(fs, 1)
                if first or not bn.training or bn.running_mean is None:
                    x = bn(x)
                else:
                    x = nn.functional.batch_norm(
                        x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias, True, 0.1, bn.eps
                    )
                return self.layers.conv1(self.layers.relu1(x))

            out = torch.utils.checkpoint.checkpoint(bottleneck, *feats, use_reentrant=False)
            rest = list(self.layers.children())[3:]  # norm2, relu2, conv2 (, dropout)
        else:
            out = torch.cat(feats, 1)
            rest = list(self.layers.children())
        for m in rest:
            out = m(out)
        return out


class _DenseBlock(nn.Sequential):
    def __init__(self, spatial_dims, num_layers, in_channels, bn_size, growth_rate, dropout_prob, memory_efficient=False):
        super().__init__()
        self.memory_efficient = memory_efficient
        for i in range(num_layers):
            self.add_module(
                f"denselayer{i + 1}",
                _DenseLayer(spatial_dims, in_channels + i * growth_rate, growth_rate, bn_size, dropout_prob),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.memory_efficient:
            return super().forward(x)
        feats = [x]  # concatenated once, at the end of the block
        for layer in self:
            feats.append(layer.new_features(feats, checkpoint=True))
        return torch.cat(feats, 1)


class _Transition(nn.Sequential):
    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int):
        super().__init__()
        self.add_module("norm", layer("batchnorm", spatial_dims)(in_channels))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", layer("conv", spatial_dims)(in_channels, out_channels, kernel_size=1, bias=False))
        self.add_module("pool", layer("avgpool", spatial_dims)(kernel_size=2, stride=2))


class DenseNet(Backbone):
    """DenseNet feature extractor for ``spatial_dims`` 2 or 3 (MONAI-compatible module names).

    Parameters
    ----------
    spatial_dims, in_chans:
        2 or 3; input channels.
    init_features, growth_rate, block_config, bn_size:
        The DenseNet hyper-parameters (DenseNet-121: 64, 32, (6, 12, 24, 16), 4).
    dropout_prob:
        Dropout after each dense layer (MONAI's ``dropout_prob``; 0 by default).
    memory_efficient:
        Recompute each dense layer's concatenation, ``norm1`` and bottleneck convolution in the
        backward pass (gradient checkpointing, as torchvision's ``memory_efficient``): much less
        activation memory for some extra time; the same outputs, gradients and weights.

    ``forward(x)`` returns ``[B, num_features]`` (ReLU + global average pooling of ``features.norm5``).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_chans: int = 1,
        init_features: int = 64,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        bn_size: int = 4,
        dropout_prob: float = 0.0,
        memory_efficient: bool = False,
    ):
        super().__init__()
        if spatial_dims not in SPATIAL_DIMS:
            raise ValueError(f"DenseNet supports spatial_dims 2 or 3, got {spatial_dims}.")
        self.spatial_dims = spatial_dims
        self.in_chans = in_chans
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", layer("conv", spatial_dims)(in_chans, init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                    ("norm0", layer("batchnorm", spatial_dims)(init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", layer("maxpool", spatial_dims)(kernel_size=3, stride=2, padding=1)),
                ]
            )
        )
        ch = init_features
        self._channels = [init_features]
        self._map_points = ["relu0"]
        for i, n in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", _DenseBlock(spatial_dims, n, ch, bn_size, growth_rate, dropout_prob, memory_efficient))
            ch += n * growth_rate
            if i == len(block_config) - 1:
                self.features.add_module("norm5", layer("batchnorm", spatial_dims)(ch))
                self._map_points.append("norm5")
            else:
                self.features.add_module(f"transition{i + 1}", _Transition(spatial_dims, ch, ch // 2))
                self._map_points.append(f"denseblock{i + 1}")
                self._channels.append(ch)
                ch = ch // 2
        self._channels.append(ch)
        self.num_features = int(ch)
        self.default_cam_layer_name = "features.norm5"
        self.pool = layer("adaptiveavgpool", spatial_dims)(1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(f"{self.spatial_dims}D DenseNet expects a {self.spatial_dims + 2}D input, got shape {tuple(x.shape)}.")
        # not in place: Grad-CAM hooks on features.norm5 must see its output unchanged
        x = torch.relu(self.features(x))
        return self.pool(x).flatten(1)

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Maps at strides 2, 4, 8, 16, 32 (after ``relu0``, dense blocks 1-3, and ReLU(``norm5``))."""
        maps = []
        for name, module in self.features.named_children():
            x = module(x)
            if name in self._map_points:
                maps.append(torch.relu(x) if name == "norm5" else x)
        return maps

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = self.forward_maps(x)  # the last map is ReLU(norm5), what forward() pools
        return self.pool(maps[-1]).flatten(1), maps

    def load_monai_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True):
        """Load a MONAI ``DenseNet`` state dict (``features.*``); its ``class_layers.*`` are ignored."""
        feats = {k: v for k, v in state.items() if k.startswith("features.")}
        return self.load_state_dict(feats, strict=strict)


def _monai_features(state):
    return {k: v for k, v in state.items() if k.startswith("features.")}


def _make_densenet(variant: str):
    def factory(spatial_dims=3, in_chans=1, pretrained=False, **kwargs) -> DenseNet:
        net = DenseNet(spatial_dims=spatial_dims, in_chans=in_chans, **{**DENSENET_CONFIGS[variant], **kwargs})
        # A MONAI or mtbench DenseNet state dict (e.g. Cobo et al.'s checkpoints); MONAI's class_layers are dropped.
        return load_pretrained(net, pretrained, filter_fn=_monai_features, name=f"{variant}_native")

    return factory


for _variant in ("densenet121", "densenet169", "densenet201", "densenet264"):
    register_backbone(
        f"{_variant}_native",
        spatial_dims=(2, 3),
        description=f"native {_variant.replace('densenet', 'DenseNet-')} (MONAI-equal architecture and names)",
    )(_make_densenet(_variant))
