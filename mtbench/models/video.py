"""3D backbones from torchvision's video models, and the Pérez del Barrio et al. baseline 3D CNN.

``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (Tran et al. 2018) with the stem's first convolution
rebuilt for ``in_chans`` input channels. With a weights file (a torchvision state dict for the
3-channel model), the stem weights are adapted the way timm adapts 2D stems: summed over the
RGB channels for one input channel, repeated and rescaled for more.

``perez_del_barrio_cnn``: the baseline of Cobo et al. (2024), the 3D CNN of Pérez del Barrio et
al.: four blocks of Conv3d (kernel 3; 16, 32, 64, 128 filters) + ReLU, 3D max pooling (2), batch
normalisation; global max pooling and dropout. Details the text does not fix (padding, the
dropout rate) are options: ``padding="valid"`` (Keras' default, their framework) or ``"same"``;
``dropout=0.3``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from mtbench.models._builder import load_pretrained
from mtbench.models.backbones import Backbone, Pretrained, register_backbone

VIDEO_RESNETS = ("r3d_18", "mc3_18", "r2plus1d_18")


def adapt_input_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Adapt a stem weight ``[O, I, ...]`` trained for ``I`` channels to ``in_chans`` channels.

    One channel: the sum over the input channels (a grey image equals an RGB image with equal
    channels). More: the channels repeated cyclically and scaled by ``I / in_chans``.
    """
    i = weight.shape[1]
    if in_chans == i:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // i)
    w = weight.repeat(1, reps, *([1] * (weight.ndim - 2)))[:, :in_chans]
    return w * (i / float(in_chans))


_VIDEO_WEIGHTS = {"r3d_18": "R3D_18_Weights", "mc3_18": "MC3_18_Weights", "r2plus1d_18": "R2Plus1D_18_Weights"}


def _drop_fc(state):
    """The classifier is replaced by the identity: its weights are not needed (nor required)."""
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


class VideoResNetBackbone(Backbone):
    """A torchvision video ResNet without its classifier: ``[B, C, D, H, W] -> [B, 512]``."""

    def __init__(self, name: str, in_chans: int = 1, pretrained: Pretrained = False):
        super().__init__()
        from torchvision.models import video

        if name not in VIDEO_RESNETS:
            raise ValueError(f"Unknown video ResNet {name!r}; supported: {list(VIDEO_RESNETS)}.")
        builder = getattr(video, name)

        def adapt_stem(model: nn.Module) -> None:  # the 3-channel stem rebuilt for in_chans, weights adapted
            old = model.stem[0]
            if in_chans != old.in_channels:
                new = nn.Conv3d(in_chans, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
                with torch.no_grad():
                    new.weight.copy_(adapt_input_weight(old.weight, in_chans))
                model.stem[0] = new

        model = builder(weights=None)
        model.fc = nn.Identity()  # before loading: the classifier's weights are not needed
        load_pretrained(
            model, pretrained, filter_fn=_drop_fc, adapt_stem=adapt_stem, name=name,
            download=lambda: getattr(video, _VIDEO_WEIGHTS[name]).DEFAULT.get_state_dict(progress=False),
        )
        self.model = model
        self.name = name
        self.spatial_dims = 3
        self.in_chans = in_chans
        self.num_features = 512
        self.default_cam_layer_name = "model.layer4"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        m = self.model
        x = m.stem(x)
        maps = [x]
        for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
            x = layer(x)
            maps.append(x)
        return maps

    @property
    def feature_channels(self) -> list[int]:
        return [64, 64, 128, 256, 512]


for _name in VIDEO_RESNETS:

    def _factory(spatial_dims=3, in_chans=1, pretrained=False, _name=_name, **kwargs):
        if kwargs:
            raise TypeError(f"{_name}: unexpected arguments {sorted(kwargs)}.")
        return VideoResNetBackbone(_name, in_chans=in_chans, pretrained=pretrained)

    register_backbone(_name, spatial_dims=(3,), description=f"torchvision video ResNet {_name} (stem adapted to in_chans)")(_factory)


class PerezDelBarrioCNN(Backbone):
    """The 3D CNN baseline of Pérez del Barrio et al. (as used by Cobo et al. 2024).

    Blocks ``Conv3d(k=3) -> ReLU -> MaxPool3d(2) -> BatchNorm3d`` with ``channels`` filters, then
    global max pooling and dropout; ``forward`` returns ``[B, channels[-1]]``.
    """

    def __init__(
        self,
        in_chans: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128),
        kernel_size: int = 3,
        padding: str = "valid",
        dropout: float = 0.3,
    ):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}.")
        self.spatial_dims = 3
        self.in_chans = in_chans
        pad = 0 if padding == "valid" else kernel_size // 2
        blocks = []
        prev = in_chans
        for ch in channels:
            blocks.append(
                nn.Sequential(
                    OrderedDict(
                        [
                            ("conv", nn.Conv3d(prev, ch, kernel_size, padding=pad)),
                            ("relu", nn.ReLU(inplace=True)),
                            ("pool", nn.MaxPool3d(2, ceil_mode=True)),
                            ("norm", nn.BatchNorm3d(ch)),
                        ]
                    )
                )
            )
            prev = ch
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.num_features = int(prev)
        self._channels = [int(c) for c in channels]
        self.default_cam_layer_name = f"blocks.{len(blocks) - 1}.conv"

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"PerezDelBarrioCNN expects [B, C, D, H, W], got shape {tuple(x.shape)}.")
        fm = self.forward_maps(x)[-1]
        return self.dropout(fm.amax(dim=(2, 3, 4)))

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = self.forward_maps(x)
        return self.dropout(maps[-1].amax(dim=(2, 3, 4))), maps


@register_backbone("perez_del_barrio_cnn", spatial_dims=(3,), description="baseline 3D CNN of Pérez del Barrio et al. (16-32-64-128, global max pool)")
def _perez(spatial_dims=3, in_chans=1, pretrained=False, **kwargs) -> PerezDelBarrioCNN:
    return load_pretrained(PerezDelBarrioCNN(in_chans=in_chans, **kwargs), pretrained, name="perez_del_barrio_cnn")
