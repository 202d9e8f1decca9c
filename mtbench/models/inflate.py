"""2D -> 3D inflation of timm ResNet and DenseNet models (Carreira & Zisserman 2017, "I3D").

Every ``Conv2d`` with kernel ``k x k`` becomes a ``Conv3d`` with kernel ``t x k x k`` (``t = k`` by
default), its weights taken from the 2D ones in one of two ways:

``"i3d"`` (repeat and divide)
    the 2D kernel repeated ``t`` times along depth and divided by ``t``: on a volume that is constant
    along depth, each output slice equals the 2D output of one slice.
``"centre"``
    the 2D kernel on the centre depth tap, zeros elsewhere: every slice is first processed exactly
    like the 2D model, and training can grow the depth taps from there.

Batch norms become 3D batch norms with the same statistics, 2D pools become 3D pools (depth
kernel/stride/padding equal to the in-plane ones), so a model loaded from a 2D checkpoint keeps
its behaviour on depth-constant input. ``depth_padding="replicate"`` pads depth by repeating the
edge slices instead of zeros, which makes the i3d equality hold at the first and last slices too
(with zero padding the edge slices see fewer taps).

The golden test (``tests/test_ich_backbones3d.py``) checks that on a depth-constant volume the
inflated model's pooled features equal the 2D model's features of one slice (relative tolerance
1e-4 in float32), for both modes and for ResNet and DenseNet.
"""

from __future__ import annotations

import copy
import fnmatch
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mtbench.models.backbones import Backbone, Pretrained, _create_timm_model, register_backbone

MODES = ("i3d", "centre")
SUPPORTED_PATTERNS = ("resnet*", "resnext*", "wide_resnet*", "densenet*")
REGISTERED = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "densenet121",
    "densenet169",
    "densenet201",
)


class InflatedConv3d(nn.Conv3d):
    """A ``Conv3d`` whose depth padding can replicate the edge slices instead of adding zeros."""

    def __init__(self, *args, depth_pad: int = 0, depth_padding: str = "zeros", **kwargs):
        super().__init__(*args, **kwargs)
        self.depth_pad = int(depth_pad)
        self.depth_padding = depth_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.depth_pad:
            x = F.pad(x, (0, 0, 0, 0, self.depth_pad, self.depth_pad), mode="replicate")
        return super().forward(x)


class BatchNormAct3d(nn.BatchNorm3d):
    """3D counterpart of timm's ``BatchNormAct2d``: batch norm, then its dropout and activation."""

    def __init__(self, num_features: int, drop: nn.Module, act: nn.Module, **kwargs):
        super().__init__(num_features, **kwargs)
        self.drop = drop
        self.act = act

    def forward(self, x):
        return self.act(self.drop(super().forward(x)))


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def inflate_conv(conv: nn.Conv2d, mode: str = "i3d", depth_kernel: int | None = None, depth_padding: str = "zeros") -> nn.Conv3d:
    """A ``Conv3d`` from a ``Conv2d`` (see the module docstring for ``mode``)."""
    if mode not in MODES:
        raise ValueError(f"Unknown inflation mode {mode!r}; choose from {MODES}.")
    if depth_padding not in ("zeros", "replicate"):
        raise ValueError(f"depth_padding must be 'zeros' or 'replicate', got {depth_padding!r}.")
    if isinstance(conv.padding, str):
        raise ValueError(f"Cannot inflate a Conv2d with string padding {conv.padding!r}.")
    kh, kw = _pair(conv.kernel_size)
    sh, sw = _pair(conv.stride)
    ph, pw = _pair(conv.padding)
    dh, dw = _pair(conv.dilation)
    kt = int(depth_kernel or kh)
    pt = (kt // 2) * dh if kt > 1 else 0
    replicate = depth_padding == "replicate" and pt > 0
    new = InflatedConv3d(
        conv.in_channels,
        conv.out_channels,
        (kt, kh, kw),
        stride=(sh, sh, sw),
        padding=(0 if replicate else pt, ph, pw),
        dilation=(dh, dh, dw),
        groups=conv.groups,
        bias=conv.bias is not None,
        depth_pad=pt if replicate else 0,
        depth_padding=depth_padding,
    )
    w2 = conv.weight.detach()
    with torch.no_grad():
        if mode == "i3d":
            w3 = w2.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        else:
            w3 = torch.zeros(w2.shape[0], w2.shape[1], kt, *w2.shape[2:], dtype=w2.dtype)
            w3[:, :, kt // 2] = w2
        new.weight.copy_(w3)
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach())
    return new


def _inflate_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm3d:
    kwargs = dict(eps=bn.eps, momentum=bn.momentum, affine=bn.affine, track_running_stats=bn.track_running_stats)
    if hasattr(bn, "act") and hasattr(bn, "drop"):  # timm BatchNormAct2d
        new = BatchNormAct3d(bn.num_features, copy.deepcopy(bn.drop), copy.deepcopy(bn.act), **kwargs)
    else:
        new = nn.BatchNorm3d(bn.num_features, **kwargs)
    new.load_state_dict(bn.state_dict())
    new.train(bn.training)
    return new


def _inflate_pool(pool: nn.Module) -> nn.Module:
    if isinstance(pool, nn.MaxPool2d):
        k, s, p, d = (_pair(v) for v in (pool.kernel_size, pool.stride or pool.kernel_size, pool.padding, pool.dilation))
        return nn.MaxPool3d((k[0], *k), (s[0], *s), (p[0], *p), (d[0], *d), ceil_mode=pool.ceil_mode)
    if isinstance(pool, nn.AvgPool2d):
        k, s, p = (_pair(v) for v in (pool.kernel_size, pool.stride or pool.kernel_size, pool.padding))
        return nn.AvgPool3d((k[0], *k), (s[0], *s), (p[0], *p), ceil_mode=pool.ceil_mode, count_include_pad=pool.count_include_pad)
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d(1 if pool.output_size in (1, (1, 1)) else (1, *_pair(pool.output_size)))
    if isinstance(pool, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveMaxPool3d(1 if pool.output_size in (1, (1, 1)) else (1, *_pair(pool.output_size)))
    raise TypeError(type(pool).__name__)


_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def inflate_module(module: nn.Module, mode: str = "i3d", depth_padding: str = "zeros") -> nn.Module:
    """A deep copy of ``module`` with every 2D conv / batch norm / pool replaced by its 3D counterpart.

    Raises ``ValueError`` naming any remaining 2D-only layer it does not know how to inflate.
    """
    module = copy.deepcopy(module)

    def convert(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, inflate_conv(child, mode, depth_padding=depth_padding))
            elif isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, _inflate_bn(child))
            elif isinstance(child, _POOLS):
                setattr(parent, name, _inflate_pool(child))
            else:
                convert(child)

    if isinstance(module, nn.Conv2d):
        return inflate_conv(module, mode, depth_padding=depth_padding)
    convert(module)
    left = [n for n, m in module.named_modules() if type(m).__name__.endswith("2d") and not isinstance(m, nn.Conv3d) and type(m).__name__ != "SelectAdaptivePool2d"]
    if left:
        raise ValueError(f"Cannot inflate layers {left[:5]} ({type(module.get_submodule(left[0])).__name__}).")
    return module


def _check_supported(name: str) -> None:
    if not any(fnmatch.fnmatch(name, p) for p in SUPPORTED_PATTERNS):
        raise ValueError(
            f"Inflation supports timm's ResNet and DenseNet families ({', '.join(SUPPORTED_PATTERNS)}), not {name!r}. "
            f"Registered inflated backbones: {['inflated_' + n for n in REGISTERED]}."
        )


class InflatedBackbone(Backbone):
    """A timm 2D ResNet/DenseNet inflated to 3D: ``[B, C, D, H, W] -> [B, num_features]``.

    Parameters
    ----------
    timm_name:
        A timm model of the ResNet (``resnet*``, ``resnext*``, ``wide_resnet*``) or DenseNet
        (``densenet*``) families; blocks with attention (SE, ECA, ...) are refused.
    in_chans:
        Input channels (a 2D checkpoint is adapted by timm, e.g. summed over RGB for 1 channel).
    pretrained:
        ``False``, a path to a **2D** timm state dict, or ``True`` (timm's hub; needs a network).
    mode:
        ``"i3d"`` (repeat and divide) or ``"centre"``.
    depth_padding:
        ``"zeros"`` (I3D's) or ``"replicate"``.
    """

    def __init__(
        self,
        timm_name: str,
        in_chans: int = 1,
        pretrained: Pretrained = False,
        mode: Literal["i3d", "centre"] = "i3d",
        depth_padding: str = "zeros",
        **timm_kwargs,
    ):
        super().__init__()
        _check_supported(timm_name)
        if mode not in MODES:
            raise ValueError(f"Unknown inflation mode {mode!r}; choose from {MODES}.")
        model2d = _create_timm_model(timm_name, in_chans=in_chans, pretrained=pretrained, **timm_kwargs)
        import timm.models.densenet as tdn
        import timm.models.resnet as trn

        if not isinstance(model2d, (trn.ResNet, tdn.DenseNet)):
            raise ValueError(f"timm model {timm_name!r} is a {type(model2d).__name__}, not a ResNet or DenseNet.")
        if isinstance(model2d, trn.ResNet):
            with_attn = [n for n, m in model2d.named_modules() if n.endswith((".se", ".attn")) and not isinstance(m, nn.Identity)]
            if with_attn:
                raise ValueError(f"{timm_name!r} has attention blocks ({with_attn[0]}, ...) that cannot be inflated.")
        model2d.eval()
        self.source_name = timm_name
        self.mode = mode
        self.depth_padding = depth_padding
        self.model = inflate_module(model2d, mode, depth_padding)
        self.spatial_dims = 3
        self.in_chans = in_chans
        self.num_features = int(model2d.num_features)
        info = model2d.feature_info
        self._map_modules = ["model." + i["module"] for i in info]
        self._channels = [int(i["num_chs"]) for i in info]
        self.default_cam_layer_name = self._map_modules[-1]
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"Inflated {self.source_name} expects [B, C, D, H, W], got shape {tuple(x.shape)}.")
        return self.model(x)

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps at timm's ``feature_info`` points (strides 2 ... 32), captured with hooks."""
        out: dict[str, torch.Tensor] = {}
        hooks = [
            self.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: out.__setitem__(name, o))
            for name in self._map_modules
        ]
        try:
            self.model.forward_features(x)
        finally:
            for h in hooks:
                h.remove()
        return [out[n] for n in self._map_modules]

    @property
    def feature_channels(self) -> list[int]:
        return list(self._channels)


def create_inflated(timm_name: str, in_chans: int = 1, pretrained: Pretrained = False, **kwargs) -> InflatedBackbone:
    """Inflate any supported timm ResNet/DenseNet name (not only the registered ones)."""
    return InflatedBackbone(timm_name, in_chans=in_chans, pretrained=pretrained, **kwargs)


for _n in REGISTERED:

    def _factory(spatial_dims=3, in_chans=1, pretrained=False, _n=_n, **kwargs):
        return InflatedBackbone(_n, in_chans=in_chans, pretrained=pretrained, **kwargs)

    register_backbone(f"inflated_{_n}", spatial_dims=(3,), description=f"timm {_n} inflated to 3D (i3d or centre)")(_factory)
