"""CT volume transforms: Hounsfield windows, resampling, depth padding/cropping, a simple skull strip.

All functions take and return NumPy arrays; volumes are ``[D, H, W]`` (or ``[C, D, H, W]`` where
said). :class:`CTPreprocess` chains them with settings that are plain data, so a preprocessed
volume can be cached on disk keyed by those settings (:mod:`mtbench.data.cache`).

Windows
-------
:func:`window` is the ordinary radiological window: ``(HU - (level - width/2)) / width`` clipped to
``[0, 1]``. :func:`window_zero_outside` is the exact transform of Cobo et al. (2024):
``(HU - 15) / 85`` with every value outside ``[0, 1]`` set to **0** (not clipped), so bone and air
both become black and only 15-100 HU (brain parenchyma and blood) keeps a grey value.
:data:`WINDOWS` holds the usual head-CT presets (level, width) in HU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch

# (level, width) in HU; common head-CT presets (e.g. Radiopaedia "Windowing (CT)").
WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (80.0, 200.0),
    "stroke": (40.0, 40.0),
    "bone": (600.0, 2800.0),
    "soft_tissue": (40.0, 350.0),
}

AIR_HU = -1024.0


def window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Ordinary window: linear from ``level - width/2`` (0) to ``level + width/2`` (1), clipped."""
    if width <= 0:
        raise ValueError(f"Window width must be positive, got {width}.")
    lo = level - width / 2.0
    return np.clip((np.asarray(hu, dtype=np.float32) - np.float32(lo)) / np.float32(width), 0.0, 1.0)


def window_zero_outside(hu: np.ndarray, offset: float = 15.0, scale: float = 85.0) -> np.ndarray:
    """Cobo et al. (2024): ``(HU - offset) / scale`` with values outside ``[0, 1]`` set to 0.

    The defaults are the paper's (``offset=15``, ``scale=85``): 15 HU -> 0, 100 HU -> 1, and
    anything below 15 HU or above 100 HU (air, CSF, fat, bone, calcification) -> 0.
    """
    x = (np.asarray(hu, dtype=np.float32) - np.float32(offset)) / np.float32(scale)
    x[(x < 0) | (x > 1)] = 0.0
    return x


def named_window(hu: np.ndarray, name: str | tuple[float, float]) -> np.ndarray:
    """A window by preset name (:data:`WINDOWS`), ``"cobo"`` for :func:`window_zero_outside`, or ``(level, width)``."""
    if isinstance(name, str):
        if name == "cobo":
            return window_zero_outside(hu)
        if name not in WINDOWS:
            raise ValueError(f"Unknown window {name!r}; presets: {sorted(WINDOWS) + ['cobo']} or a (level, width) pair.")
        return window(hu, *WINDOWS[name])
    level, width = name
    return window(hu, float(level), float(width))


def multi_window(hu: np.ndarray, windows: Sequence[str | tuple[float, float]] = ("brain", "subdural", "bone")) -> np.ndarray:
    """Stack several windows of one HU volume as channels: ``[D, H, W] -> [len(windows), D, H, W]``."""
    if not len(windows):
        raise ValueError("multi_window needs at least one window.")
    return np.stack([named_window(hu, w) for w in windows]).astype(np.float32, copy=False)


# ------------------------------------------------------------------------- geometry
def _interp(arr: np.ndarray, size: Sequence[int], order: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    lead = x.shape[:-3]
    x = x.reshape(1, -1, *x.shape[-3:])
    mode = {0: "nearest", 1: "trilinear"}.get(order)
    if mode is None:
        raise ValueError(f"order must be 0 (nearest) or 1 (linear), got {order}.")
    kw = {"align_corners": False} if mode == "trilinear" else {}
    y = F.interpolate(x, size=tuple(int(s) for s in size), mode=mode, **kw)
    return y.reshape(*lead, *y.shape[-3:]).numpy()


def resize_to_shape(arr: np.ndarray, shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resample the last three axes to ``shape`` (``[..., D, H, W]``); ``order`` 1 = trilinear, 0 = nearest."""
    if len(shape) != 3 or any(int(s) < 1 for s in shape):
        raise ValueError(f"shape must be three positive sizes (D, H, W), got {shape}.")
    if tuple(arr.shape[-3:]) == tuple(int(s) for s in shape):
        return np.asarray(arr, dtype=np.float32)
    return _interp(arr, shape, order)


def resample_to_spacing(
    arr: np.ndarray, spacing: Sequence[float], new_spacing: Sequence[float], order: int = 1
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Resample ``[..., D, H, W]`` from ``spacing`` to ``new_spacing`` (mm, ``(dz, dy, dx)``).

    Returns the array and the exact spacing obtained (sizes are rounded to whole voxels).
    """
    spacing = [float(s) for s in spacing]
    new_spacing = [float(s) for s in new_spacing]
    if len(spacing) != 3 or len(new_spacing) != 3 or min(spacing + new_spacing) <= 0:
        raise ValueError(f"spacings must be three positive numbers, got {spacing} -> {new_spacing}.")
    size = [max(1, int(round(n * s / t))) for n, s, t in zip(arr.shape[-3:], spacing, new_spacing)]
    out = resize_to_shape(arr, size, order)
    actual = tuple(n * s / m for n, s, m in zip(arr.shape[-3:], spacing, size))
    return out, actual  # type: ignore[return-value]


def pad_or_crop_depth(arr: np.ndarray, depth: int, pad_value: float = AIR_HU, where: str = "center") -> np.ndarray:
    """Pad (with ``pad_value``) or crop the depth axis (``-3``) to ``depth`` slices.

    ``where="center"`` pads/crops evenly on both ends (the extra slice goes to the end);
    ``"end"`` pads/crops at the end only.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}.")
    if where not in ("center", "end"):
        raise ValueError(f"where must be 'center' or 'end', got {where!r}.")
    d = arr.shape[-3]
    if d == depth:
        return arr
    if d > depth:
        start = (d - depth) // 2 if where == "center" else 0
        return arr[..., start : start + depth, :, :]
    total = depth - d
    before = total // 2 if where == "center" else 0
    pad = [(0, 0)] * (arr.ndim - 3) + [(before, total - before), (0, 0), (0, 0)]
    return np.pad(arr, pad, mode="constant", constant_values=pad_value)


def skull_strip(
    hu: np.ndarray, low: float = -15.0, high: float = 100.0, bone: float = 300.0, fill: float = AIR_HU
) -> tuple[np.ndarray, np.ndarray]:
    """A simple intensity skull strip: keep the largest soft-tissue component inside the skull.

    Steps: voxels in ``[low, high]`` HU that are not bone (``>= bone``), eroded once to cut the
    thin links through the skull base and scalp, the largest 3D connected component, dilated back,
    holes filled slice by slice (ventricles). Returns ``(stripped, mask)`` where voxels outside the
    mask are set to ``fill``. Meant for clean head CT; it is not a substitute for a trained
    brain-extraction tool.
    """
    from scipy import ndimage as ndi

    hu = np.asarray(hu, dtype=np.float32)
    tissue = (hu >= low) & (hu <= high) & (hu < bone)
    struct = ndi.generate_binary_structure(3, 1)
    core = ndi.binary_erosion(tissue, struct, iterations=1)
    labels, n = ndi.label(core, struct)
    if n == 0:
        mask = np.zeros_like(tissue)
    else:
        sizes = ndi.sum_labels(core, labels, index=np.arange(1, n + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
        mask = ndi.binary_dilation(mask, struct, iterations=1) & tissue | mask
        mask = np.stack([ndi.binary_fill_holes(s) for s in mask])
    out = np.where(mask, hu, np.float32(fill)).astype(np.float32)
    return out, mask


# ------------------------------------------------------------------------- pipeline
@dataclass(frozen=True)
class CTPreprocess:
    """A head-CT preprocessing pipeline whose settings are plain data (and so a cache key).

    Order (``order="resize_window"``, default): optional skull strip (native resolution, HU) ->
    resample to ``spacing`` (mm) -> resize to ``shape`` -> pad/crop depth to ``depth`` (padding with
    air) -> windows as channels. ``order="window_pad_resize"`` (Cobo et al. 2024's original code):
    skull strip / resample as above -> windows (out-of-window voxels 0 for ``"cobo"``) -> zero-pad
    the depth symmetrically to at least ``shape[0]`` (MONAI ``SpatialPad``; never cropped) -> resize
    to ``shape`` (MONAI ``Resize``, ``mode="area"``, MONAI's default), so the slices are not
    stretched to fill the depth; ``depth`` must be None there.

    Parameters
    ----------
    windows:
        Window names/pairs for :func:`multi_window` (``("cobo",)`` is the paper's transform;
        ``("brain", "subdural", "bone")`` three channels); ``()`` keeps raw HU (one channel).
    spacing:
        Target voxel spacing ``(dz, dy, dx)`` in mm, or ``None``.
    shape:
        Target ``(D, H, W)`` after resampling, or ``None``.
    depth:
        Pad/crop the number of slices to this, or ``None``.
    skull_strip:
        Apply :func:`skull_strip` first.
    order:
        ``"resize_window"`` or ``"window_pad_resize"`` (above).
    """

    windows: tuple = ("cobo",)
    spacing: tuple[float, float, float] | None = None
    shape: tuple[int, int, int] | None = None
    depth: int | None = None
    skull_strip: bool = False
    order: str = "resize_window"

    def __post_init__(self) -> None:
        if self.order not in ("resize_window", "window_pad_resize"):
            raise ValueError(f"order must be 'resize_window' or 'window_pad_resize', got {self.order!r}.")
        if self.order == "window_pad_resize" and (self.shape is None or self.depth is not None or not self.windows):
            raise ValueError("order='window_pad_resize' needs shape (D, H, W) and at least one window, and depth=None "
                             "(the depth is zero-padded to shape[0]).")
        object.__setattr__(self, "windows", tuple(tuple(w) if isinstance(w, list) else w for w in self.windows))
        for w in self.windows:
            named_window(np.zeros(1, np.float32), w)  # validate early
        if self.spacing is not None:
            object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def out_channels(self) -> int:
        return max(1, len(self.windows))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = [list(w) if isinstance(w, tuple) else w for w in self.windows]
        if self.order == "resize_window":
            d.pop("order")  # the default: cache keys written before the setting existed stay valid
        return d

    def __call__(self, hu: np.ndarray, spacing: Sequence[float] | None = None) -> np.ndarray:
        """``[D, H, W]`` HU volume (and its spacing, needed for ``spacing=``) -> ``float32 [C, D, H, W]``."""
        x = np.asarray(hu, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"CTPreprocess expects a [D, H, W] HU volume, got shape {x.shape}.")
        if self.skull_strip:
            x, _ = skull_strip(x)
        if self.spacing is not None:
            if spacing is None:
                raise ValueError("CTPreprocess(spacing=...) needs the volume's spacing: call it as pre(hu, spacing).")
            x, _ = resample_to_spacing(x, spacing, self.spacing)
        if self.order == "window_pad_resize":
            from monai.transforms import Resize, SpatialPad

            x = SpatialPad([self.shape[0], -1, -1], method="symmetric", mode="constant")(multi_window(x, self.windows))
            return np.asarray(Resize(self.shape, mode="area")(x), dtype=np.float32)
        if self.shape is not None:
            x = resize_to_shape(x, self.shape)
        if self.depth is not None:
            x = pad_or_crop_depth(x, self.depth, pad_value=AIR_HU)
        if self.windows:
            return multi_window(x, self.windows)
        return x[None].astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- dictionary transforms
class DictTransform:
    """A transform of a whole sample ``{"image": [C, *spatial], "mask": {task: [1, *spatial]}, ...}``
    (MONAI's dictionary transforms): a spatial transform moves the image and every mask together,
    so a segmentation target follows an augmentation. :class:`~mtbench.data.MultiTaskDataset`
    recognises these and applies them before the masks are checked against the image."""

    def __call__(self, sample: dict) -> dict:
        raise NotImplementedError

    @staticmethod
    def _apply_spatial(sample: dict, fn) -> dict:
        out = dict(sample)
        out["image"] = fn(sample["image"])
        out["mask"] = {k: fn(v) for k, v in sample.get("mask", {}).items()}
        return out


class ComposeDict(DictTransform):
    """Apply dictionary transforms in order."""

    def __init__(self, transforms: Sequence[DictTransform]):
        self.transforms = list(transforms)

    def __call__(self, sample: dict) -> dict:
        for t in self.transforms:
            sample = t(sample)
        return sample


class ImageOnlyd(DictTransform):
    """An image-only callable (intensity scaling, noise) as a dictionary transform; masks untouched."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, sample: dict) -> dict:
        return {**sample, "image": self.fn(sample["image"])}


class RandFlipd(DictTransform):
    """Flip image and masks along each of ``spatial_axes`` (0 = first spatial axis) with probability ``prob``.

    Draws from torch's RNG, which :func:`~mtbench.train.make_loader` seeds per worker."""

    def __init__(self, spatial_axes: Sequence[int] = (0, 1), prob: float = 0.5):
        self.spatial_axes, self.prob = tuple(spatial_axes), float(prob)

    def __call__(self, sample: dict) -> dict:
        for ax in self.spatial_axes:
            if float(torch.rand(())) < self.prob:
                sample = self._apply_spatial(sample, lambda t, ax=ax: torch.flip(t, dims=(ax + 1,)))
        return sample


class RandRot90d(DictTransform):
    """Rotate image and masks by k x 90 degrees (k uniform in 1..3) in the plane of ``spatial_axes``
    with probability ``prob``."""

    def __init__(self, spatial_axes: tuple[int, int] = (0, 1), prob: float = 0.5):
        self.spatial_axes, self.prob = tuple(spatial_axes), float(prob)

    def __call__(self, sample: dict) -> dict:
        if float(torch.rand(())) >= self.prob:
            return sample
        k = int(torch.randint(1, 4, ()))
        dims = (self.spatial_axes[0] + 1, self.spatial_axes[1] + 1)
        return self._apply_spatial(sample, lambda t: torch.rot90(t, k, dims=dims))
