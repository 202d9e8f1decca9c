"""Per-dimension layer lookup: one table of 2D/3D layer classes for every network here (MONAI's
``Conv[Conv.CONV, 3]`` idea), so a network is written once for ``spatial_dims`` 2 and 3.

    layer("conv", 3)        # nn.Conv3d
    layer("batchnorm", 2)   # nn.BatchNorm2d
"""

from __future__ import annotations

from torch import nn

SPATIAL_DIMS = (2, 3)

_LAYERS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "conv": (nn.Conv2d, nn.Conv3d),
    "convtranspose": (nn.ConvTranspose2d, nn.ConvTranspose3d),
    "batchnorm": (nn.BatchNorm2d, nn.BatchNorm3d),
    "instancenorm": (nn.InstanceNorm2d, nn.InstanceNorm3d),
    "maxpool": (nn.MaxPool2d, nn.MaxPool3d),
    "avgpool": (nn.AvgPool2d, nn.AvgPool3d),
    "adaptiveavgpool": (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
    "adaptivemaxpool": (nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
    "dropout": (nn.Dropout2d, nn.Dropout3d),
}


def layer(kind: str, spatial_dims: int) -> type[nn.Module]:
    """The ``kind`` layer class (``conv``, ``batchnorm``, ``maxpool``, ...) for 2 or 3 spatial dimensions."""
    if kind not in _LAYERS:
        raise ValueError(f"Unknown layer kind {kind!r}; choose from {sorted(_LAYERS)}.")
    if spatial_dims not in SPATIAL_DIMS:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    return _LAYERS[kind][spatial_dims - 2]


def layer_types(kind: str) -> tuple[type[nn.Module], ...]:
    """Both classes of ``kind`` (for ``isinstance`` checks)."""
    return _LAYERS[kind]
