"""Backbones: a registry and one factory, :func:`create_backbone`, for 2D and 3D feature extractors.

Every backbone is a :class:`Backbone`: ``forward(x)`` returns pooled features ``[B, num_features]``;
``default_cam_layer`` is the module whose activations saliency methods use by default;
``forward_maps(x)`` returns the multi-scale feature maps (finest first) for dense decoders.

Names are resolved in this order:

1. backbones registered here with :func:`register_backbone` (native 3D networks, torchvision
   models, inflated 2D models, ...), for the requested ``spatial_dims``;
2. for ``spatial_dims=2``, any model name timm knows (``timm.list_models()``).

Weights: ``pretrained=False`` (default) initialises randomly and never touches the network;
``pretrained="path/to/weights.pth"`` (or ``.safetensors``) loads a local file; ``pretrained=True``
uses timm's own cache / hub, which needs a network connection the first time.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from mtbench.models._builder import check_weights_file, download_error, load_state_dict_file  # noqa: F401 (public here too)
from mtbench.registry import Registry

Pretrained = bool | str | os.PathLike


class Backbone(nn.Module):
    """Base class of every feature extractor in mtbench.

    Subclasses set ``num_features``, ``spatial_dims``, ``in_chans`` and ``default_cam_layer_name``
    (a dotted submodule path) and implement :meth:`forward`.
    """

    num_features: int
    spatial_dims: int
    in_chans: int
    default_cam_layer_name: str
    name: str = "backbone"

    @property
    def default_cam_layer(self) -> nn.Module:
        """The layer Grad-CAM and friends use unless told otherwise (the last feature stage)."""
        return self.get_submodule(self.default_cam_layer_name)

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Multi-scale feature maps, finest first (for U-Net-style decoders)."""
        raise NotImplementedError(f"Backbone {self.name!r} does not expose multi-scale feature maps.")

    @property
    def feature_channels(self) -> list[int]:
        """Channels of each map returned by :meth:`forward_maps` (a subclass lists them in ``_channels``)."""
        channels = getattr(self, "_channels", None)
        if channels is None:
            raise NotImplementedError(f"Backbone {self.name!r} does not expose multi-scale feature maps.")
        return list(channels)

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(pooled features, multi-scale maps)`` for models with both pooled and dense heads.

        The default runs :meth:`forward` and :meth:`forward_maps` (two passes); backbones whose
        pooled features are a pooling of their last map override it to run the encoder once.
        """
        return self(x), self.forward_maps(x)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, spatial_dims={self.spatial_dims}, num_features={self.num_features}"


class TimmBackbone(Backbone):
    """Any 2D timm model, headless (``num_classes=0``), returning pooled features."""

    def __init__(self, name: str, in_chans: int = 3, pretrained: Pretrained = False, **kwargs):
        super().__init__()
        import timm

        self.name = name
        self.spatial_dims = 2
        self.in_chans = in_chans
        self.model = _create_timm_model(name, in_chans=in_chans, pretrained=pretrained, **kwargs)
        # Width of the pooled output: models with a pre-logits head (MobileNetV3) differ from num_features.
        self.num_features = int(getattr(self.model, "head_hidden_size", None) or self.model.num_features)
        info = getattr(self.model, "feature_info", None)
        if not info:
            raise ValueError(f"timm model {name!r} has no feature_info; it cannot serve as a backbone here.")
        self.default_cam_layer_name = "model." + info[-1]["module"]
        self._feature_channels = [int(i["num_chs"]) for i in info]
        # Preprocessing travels with the weights it belongs to (mean/std, input size).
        self.pretrained_cfg = dict(getattr(self.model, "pretrained_cfg", {}) or {})
        self._timm = timm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        if not hasattr(self.model, "forward_intermediates"):
            return super().forward_maps(x)
        return list(self.model.forward_intermediates(x, intermediates_only=True))

    @property
    def feature_channels(self) -> list[int]:
        return list(self._feature_channels)


def _create_timm_model(name: str, in_chans: int, pretrained: Pretrained, **kwargs) -> nn.Module:
    import timm

    if pretrained is False or pretrained is None:
        return timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans, **kwargs)
    if pretrained is True:
        try:
            return timm.create_model(name, pretrained=True, num_classes=0, in_chans=in_chans, **kwargs)
        except Exception as err:  # network errors come in many types (OSError, HF hub errors, ...)
            raise download_error(name, err) from err
    path = check_weights_file(pretrained)
    try:
        return timm.create_model(
            name,
            pretrained=True,
            pretrained_cfg_overlay={"file": str(path)},
            num_classes=0,
            in_chans=in_chans,
            **kwargs,
        )
    except Exception as err:
        raise RuntimeError(
            f"Could not load weights for timm model {name!r} from {path}: {type(err).__name__}: {err}"
        ) from err


# ---------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class BackboneSpec:
    name: str
    factory: Callable[..., Backbone]
    spatial_dims: tuple[int, ...]
    description: str = ""


BACKBONES = Registry("backbone")  # name -> BackboneSpec (timm names are resolved separately)


def register_backbone(
    name: str, spatial_dims: Iterable[int] = (2,), description: str = ""
) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    """Decorator registering ``factory(spatial_dims=, in_chans=, pretrained=, **kwargs) -> Backbone``."""

    def deco(factory: Callable[..., Backbone]) -> Callable[..., Backbone]:
        BACKBONES.register(name, BackboneSpec(name, factory, tuple(spatial_dims), description), description=description)
        return factory

    return deco


def _timm_names(pattern: str | None = None) -> list[str]:
    import timm

    return list(timm.list_models(pattern or "*"))


def list_backbones(spatial_dims: int | None = None, pattern: str | None = None, include_timm: bool = True) -> list[str]:
    """Names :func:`create_backbone` accepts.

    ``spatial_dims`` filters by 2 or 3; ``pattern`` is a shell-style filter (``"resnet*"``);
    ``include_timm=False`` lists only the backbones registered by mtbench itself.
    """
    import fnmatch

    names = {
        s.name
        for s in map(BACKBONES.get, BACKBONES.names())
        if spatial_dims is None or spatial_dims in s.spatial_dims
    }
    if include_timm and spatial_dims in (None, 2):
        names.update(_timm_names())
    if pattern:
        names = {n for n in names if fnmatch.fnmatch(n, pattern)}
    return sorted(names)


def backbone_info(name: str) -> BackboneSpec | None:
    """The registration of a native backbone (``None`` for plain timm names)."""
    return BACKBONES.get(name) if name in BACKBONES else None


def create_backbone(
    name: str,
    spatial_dims: int = 2,
    in_chans: int = 3,
    pretrained: Pretrained = False,
    **kwargs,
) -> Backbone:
    """Build a feature extractor by name.

    Parameters
    ----------
    name:
        A registered mtbench backbone or (2D) any timm model name.
    spatial_dims:
        2 for images, 3 for volumes.
    in_chans:
        Input channels (1 for grayscale CT/X-ray, 3 for multi-window or ImageNet-style inputs).
    pretrained:
        ``False`` (random init, default), a path to a local weights file, or ``True`` (timm's
        cache/hub; needs a network the first time).
    **kwargs:
        Passed to the model constructor (e.g. ``drop_rate`` for timm models).
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"in_chans must be a positive integer, got {in_chans!r}.")
    if isinstance(pretrained, (str, os.PathLike)):
        check_weights_file(pretrained)  # fail before building anything
    spec = BACKBONES.get(name) if name in BACKBONES else None
    if spec is not None:
        if spatial_dims not in spec.spatial_dims:
            raise ValueError(
                f"Backbone {name!r} supports spatial_dims {spec.spatial_dims}, not {spatial_dims}. "
                f"{spatial_dims}D backbones: {list_backbones(spatial_dims, include_timm=False)}"
            )
        backbone = spec.factory(spatial_dims=spatial_dims, in_chans=in_chans, pretrained=pretrained, **kwargs)
        backbone.name = name
        return backbone
    if spatial_dims == 2:
        import timm

        if timm.is_model(name):
            return TimmBackbone(name, in_chans=in_chans, pretrained=pretrained, **kwargs)
    candidates = list_backbones(spatial_dims)
    close = difflib.get_close_matches(name, candidates, n=5)
    hint = f" Did you mean {close}?" if close else ""
    native = list_backbones(spatial_dims, include_timm=False)
    raise ValueError(
        f"Unknown {spatial_dims}D backbone {name!r}.{hint} mtbench's own {spatial_dims}D backbones: {native}"
        + ("; plus any timm model name (mtbench list backbones)." if spatial_dims == 2 else ".")
    )
