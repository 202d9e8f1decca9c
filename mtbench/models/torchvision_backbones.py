"""torchvision classifiers that timm does not provide, registered as 2D backbones.

``googlenet``, ``shufflenet_v2_x0_5``, ``shufflenet_v2_x1_0`` and ``mobilenet_v2`` (timm's
``mobilenetv2_100`` is the same architecture under another name; this one keeps torchvision's
module names so torchvision checkpoints load as they are). Used by the backbone sweep of Ruffini
et al. (2024), which names its 18 backbones as torchvision does.

Each becomes a :class:`~mtbench.models.Backbone`: the classifier is replaced by an identity so
``forward`` returns the pooled features (``num_features`` wide); ``default_cam_layer`` is the last
convolutional stage. ``in_chans != 3`` replaces the first convolution (pretrained RGB weights are
averaged over the colour channels). ``pretrained`` is ``False``, a local state-dict file, or
``True`` (torchvision's download/cache, which needs a network the first time).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from mtbench.models._builder import load_pretrained
from mtbench.models.backbones import Backbone, Pretrained, register_backbone


def _googlenet():
    from torchvision.models import googlenet

    m = googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=True)
    return m, "fc", 1024, "inception5b"


def _shufflenet(width: str):
    import torchvision.models as tvm

    def build():
        m = getattr(tvm, f"shufflenet_v2_{width}")(weights=None)
        return m, "fc", int(m._stage_out_channels[-1]), "conv5"

    return build


def _mobilenet_v2():
    from torchvision.models import mobilenet_v2

    m = mobilenet_v2(weights=None)
    return m, "classifier", int(m.last_channel), "features.18"


_BUILDERS: dict[str, Callable] = {
    "googlenet": _googlenet,
    "shufflenet_v2_x0_5": _shufflenet("x0_5"),
    "shufflenet_v2_x1_0": _shufflenet("x1_0"),
    "mobilenet_v2": _mobilenet_v2,
}
_TV_WEIGHTS = {
    "googlenet": "GoogLeNet_Weights",
    "shufflenet_v2_x0_5": "ShuffleNet_V2_X0_5_Weights",
    "shufflenet_v2_x1_0": "ShuffleNet_V2_X1_0_Weights",
    "mobilenet_v2": "MobileNet_V2_Weights",
}


def _adapt_first_conv(model: nn.Module, in_chans: int) -> None:
    """Replace the first 3-channel convolution by one with ``in_chans`` inputs (weights averaged)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            new = nn.Conv2d(
                in_chans, module.out_channels, module.kernel_size, module.stride, module.padding,
                module.dilation, module.groups, module.bias is not None,
            )
            with torch.no_grad():
                w = module.weight.mean(dim=1, keepdim=True).repeat(1, in_chans, 1, 1) * (3.0 / in_chans)
                new.weight.copy_(w)
                if module.bias is not None:
                    new.bias.copy_(module.bias)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
            return
    raise ValueError("No 3-channel first convolution found to adapt.")


def _drop_classifier(state):
    return {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier.", "aux1.", "aux2."))}


class TorchvisionBackbone(Backbone):
    """A torchvision classifier without its classifier, returning pooled features."""

    def __init__(self, name: str, in_chans: int = 3, pretrained: Pretrained = False):
        super().__init__()
        if name not in _BUILDERS:
            raise ValueError(f"No torchvision backbone {name!r}; available: {sorted(_BUILDERS)}.")
        model, head_attr, num_features, cam = _BUILDERS[name]()
        setattr(model, head_attr, nn.Identity())  # before loading: the classifier's weights are not needed

        def download():
            import torchvision.models as tvm

            return getattr(tvm, _TV_WEIGHTS[name]).DEFAULT.get_state_dict(progress=False)

        load_pretrained(model, pretrained, filter_fn=_drop_classifier, name=name, download=download,
                        adapt_stem=(lambda m: _adapt_first_conv(m, in_chans)) if in_chans != 3 else None)
        self.model = model
        self.name = name
        self.spatial_dims = 2
        self.in_chans = in_chans
        self.num_features = num_features
        self.default_cam_layer_name = "model." + cam

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, tuple):  # GoogLeNetOutputs in training with aux heads (disabled here)
            out = out[0]
        return out.flatten(1)


def _register(name: str) -> None:
    @register_backbone(name, spatial_dims=(2,), description=f"torchvision {name} (classifier removed)")
    def factory(spatial_dims: int = 2, in_chans: int = 3, pretrained: Pretrained = False, **kwargs) -> Backbone:
        if kwargs:
            raise TypeError(f"torchvision backbone {name!r} takes no extra arguments, got {sorted(kwargs)}.")
        return TorchvisionBackbone(name, in_chans=in_chans, pretrained=pretrained)


for _name in _BUILDERS:
    _register(_name)
