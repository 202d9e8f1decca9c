"""Chest X-ray (2D) reading and preprocessing.

The steps of Ruffini et al. (2024), each a small function, and :class:`CXRPreprocess` chaining them:

1. read: DICOM (``pydicom``; modality LUT applied, ``MONOCHROME1`` inverted so that air is dark in
   every image) or PNG/JPEG (Pillow; RGB and RGBA converted to one grayscale channel);
2. optional crop to the lung bounding box taken from a mask file (or given as a box), with a border
   and, optionally, squared with image content (:func:`square_box`);
3. percentile clipping (2nd-98th percentile by default), which removes burnt-in text and
   collimator edges before scaling (of the crop, or with ``clip_before_crop`` of the whole image,
   as the original code of Ruffini et al.);
4. resize to ``size x size`` (256 in the paper; bilinear with anti-aliasing);
5. grayscale replicated to 3 channels (ImageNet-shaped backbones) or kept as 1;
6. normalisation: ``"none"``, ``"minmax"`` (to [0, 1]) or ``"imagenet"`` (min-max, then the
   ImageNet channel mean / std).

Everything returns ``float32`` NumPy arrays; :func:`preprocess_images` preprocesses a manifest's
images once into an array ``[N, C, size, size]`` (with a progress bar), which
:class:`~mtbench.data.MultiTaskDataset` accepts directly.

(3D CT reading and windowing live in :mod:`mtbench.data.io` / :mod:`mtbench.data.transforms`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALISATIONS = ("none", "minmax", "imagenet")
DICOM_SUFFIXES = (".dcm", ".dicom", "")


# ----------------------------------------------------------------------------- reading
def read_dicom(path: str | Path) -> np.ndarray:
    """A DICOM radiograph as ``float32 [H, W]``, modality LUT applied, MONOCHROME1 inverted.

    ``MONOCHROME1`` stores air as *bright*; it is inverted (``max + min - x``) so that every image
    has air dark and bone bright, as ``MONOCHROME2`` images do.
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except Exception as err:
        raise ValueError(f"Could not read DICOM pixel data from {path}: {type(err).__name__}: {err}") from err
    arr = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):  # colour DICOM (rare for CXR)
        arr = arr[..., :3].mean(axis=-1)
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a 2D radiograph, got pixel array of shape {arr.shape}.")
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    return invert_monochrome1(arr, photometric)


def invert_monochrome1(image: np.ndarray, photometric: str) -> np.ndarray:
    """Invert a ``MONOCHROME1`` image (``max + min - x``); any other interpretation is returned as is."""
    if str(photometric).upper().strip() == "MONOCHROME1":
        return (float(image.max()) + float(image.min()) - image).astype(np.float32)
    return image.astype(np.float32, copy=False)


def read_image(path: str | Path) -> np.ndarray:
    """A radiograph as ``float32 [H, W]`` from DICOM, PNG, JPEG (and anything Pillow reads).

    Colour images (RGB, RGBA, palette) become one grayscale channel with Pillow's ITU-R 601-2
    luma transform; the alpha channel is dropped. 16-bit PNGs keep their range.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Image file not found: {path}")
    if path.suffix.lower() in (".dcm", ".dicom") or is_dicom_file(path):
        return read_dicom(path)
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(im, dtype=np.float32)
            else:
                arr = np.asarray(im.convert("L"), dtype=np.float32)
    except Exception as err:
        raise ValueError(f"Could not read image {path}: {type(err).__name__}: {err}") from err
    return arr


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` carries the DICOM preamble magic (``DICM`` at byte 128), whatever its suffix."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


# ------------------------------------------------------------------------------ steps
def clip_percentiles(image: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Clip intensities to the ``[low, high]`` percentiles of the image."""
    if not 0 <= low < high <= 100:
        raise ValueError(f"Percentiles must satisfy 0 <= low < high <= 100, got ({low}, {high}).")
    lo, hi = np.percentile(image, [low, high])
    return np.clip(image, lo, hi).astype(np.float32)


def mask_bbox(mask: np.ndarray, margin: float = 0.0) -> tuple[int, int, int, int]:
    """Bounding box ``(row0, row1, col0, col1)`` (end exclusive) of the nonzero pixels of a mask.

    ``margin`` enlarges the box by that fraction of its height/width on each side (clipped to the
    image). An empty mask is an error (a lung mask with no lung is a broken file).
    """
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask.any(axis=-1)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        raise ValueError("The mask is empty: no bounding box.")
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if margin:
        dr, dc = int(round((r1 - r0) * margin)), int(round((c1 - c0) * margin))
        r0, r1 = max(0, r0 - dr), min(mask.shape[0], r1 + dr)
        c0, c1 = max(0, c0 - dc), min(mask.shape[1], c1 + dc)
    return int(r0), int(r1), int(c0), int(c1)


def square_box(box: Sequence[int], shape: Sequence[int]) -> tuple[int, int, int, int]:
    """Widen the shorter side of ``(row0, row1, col0, col1)`` to the longer one with image content.

    The extra pixels are split between the two sides (the odd one after the box), shifted inwards
    where the box meets the image edge; where the image is too narrow the box stops at its edges
    (and stays oblong), as the original code of Ruffini et al. (2024) ``get_box`` does.
    """
    r0, r1, c0, c1 = (int(v) for v in box)
    h, w = r1 - r0, c1 - c0

    def widen(a0, a1, extra, limit):
        lo = a0 - extra // 2
        hi = a1 + extra - extra // 2
        if lo < 0:
            lo, hi = 0, hi - lo
        if hi > limit:
            lo, hi = max(0, lo - (hi - limit)), limit
        return lo, hi

    if w < h:
        c0, c1 = widen(c0, c1, h - w, int(shape[1]))
    elif h < w:
        r0, r1 = widen(r0, r1, w - h, int(shape[0]))
    return r0, r1, c0, c1


def crop(image: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """``image[row0:row1, col0:col1]``, refusing a box outside the image or empty."""
    r0, r1, c0, c1 = (int(v) for v in box)
    h, w = image.shape[:2]
    if not (0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w):
        raise ValueError(f"Box {tuple(box)} (row0, row1, col0, col1) does not fit an image of shape {image.shape}.")
    return image[r0:r1, c0:c1]


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Bilinear resize with anti-aliasing (PyTorch) to ``size`` (int: square)."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    t = torch.as_tensor(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=hw, mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].numpy()


def minmax(image: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] (a constant image becomes all zeros)."""
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros_like(image, dtype=np.float32)
    return ((image - lo) / (hi - lo)).astype(np.float32)


def normalise(image: np.ndarray, mode: str = "imagenet") -> np.ndarray:
    """Normalise a ``[C, H, W]`` image: ``none``, ``minmax`` (to [0, 1]) or ``imagenet``.

    ``imagenet`` first scales to [0, 1], then subtracts the ImageNet mean and divides by its
    standard deviation per channel (3 channels; for 1 channel the means of the three are used).
    """
    if mode not in NORMALISATIONS:
        raise ValueError(f"Unknown normalisation {mode!r}; choose from {NORMALISATIONS}.")
    if mode == "none":
        return image.astype(np.float32, copy=False)
    out = minmax(image)
    if mode == "imagenet":
        c = out.shape[0]
        if c == 3:
            mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
        elif c == 1:
            mean, std = np.asarray([np.mean(IMAGENET_MEAN)]), np.asarray([np.mean(IMAGENET_STD)])
        else:
            raise ValueError(f"ImageNet normalisation needs 1 or 3 channels, got {c}.")
        out = (out - mean[:, None, None]) / std[:, None, None]
    return out.astype(np.float32)


# ------------------------------------------------------------------------- augmentation
def _elastic_range():
    from torchvision.transforms import v2

    class ElasticRange(v2.ElasticTransform):
        """Elastic deformation (Simard et al. 2003) with ``alpha`` drawn uniformly from a range on
        every call; ``alpha`` and ``sigma`` in pixels, as scipy-style code states them (torchvision's
        own ``alpha`` moves pixels by half as much, hence the factor 2)."""

        def __init__(self, alpha_range: Sequence[float], sigma: float):
            super().__init__(alpha=2.0 * float(alpha_range[0]), sigma=float(sigma))
            self.alpha_range = (float(alpha_range[0]), float(alpha_range[1]))

        def _draw(self, flat_inputs, parent):
            a = 2.0 * float(torch.empty(1).uniform_(*self.alpha_range))
            self.alpha = [a, a]
            return parent(flat_inputs)

        def make_params(self, flat_inputs):  # torchvision >= 0.21
            return self._draw(flat_inputs, super().make_params)

        def _get_params(self, flat_inputs):  # older torchvision
            return self._draw(flat_inputs, super()._get_params)

    return ElasticRange


def augmentation(spec: dict | None):
    """Training-time augmentation of a ``[C, H, W]`` X-ray tensor from a spec (``None``: none), with
    ``torchvision.transforms.v2``, so masks and boxes given as ``tv_tensors`` move with the image.

    ``spec`` keys, each step applied with probability ``p`` (default 0.5), in this order:
    ``shift`` (fraction of the side, e.g. 0.1), ``zoom`` (``[low, high]`` scale), ``hflip`` (bool),
    ``rotate_deg`` (degrees either way), ``elastic`` (``{"alpha": [low, high], "sigma": s}`` in pixels).
    The order and values of Ruffini et al. (2024) are
    ``{"p": 0.5, "shift": 0.1, "zoom": [0.9, 1.1], "hflip": True, "rotate_deg": 10, "elastic": {"alpha": [20, 40], "sigma": 7}}``.
    Pixels moved in from outside the image are 0.
    """
    if not spec:
        return None
    from torchvision.transforms import InterpolationMode, v2

    known = {"p", "shift", "zoom", "hflip", "rotate_deg", "elastic"}
    if set(spec) - known:
        raise ValueError(f"Unknown augmentation keys {sorted(set(spec) - known)}; use {sorted(known)}.")
    p, bil = float(spec.get("p", 0.5)), InterpolationMode.BILINEAR
    steps = []
    if spec.get("shift"):
        steps.append(v2.RandomApply([v2.RandomAffine(0, translate=(float(spec["shift"]),) * 2, interpolation=bil)], p))
    if spec.get("zoom"):
        steps.append(v2.RandomApply([v2.RandomAffine(0, scale=tuple(float(z) for z in spec["zoom"]), interpolation=bil)], p))
    if spec.get("hflip"):
        steps.append(v2.RandomHorizontalFlip(p))
    if spec.get("rotate_deg"):
        steps.append(v2.RandomApply([v2.RandomRotation(float(spec["rotate_deg"]), interpolation=bil)], p))
    if spec.get("elastic"):
        e = spec["elastic"]
        steps.append(v2.RandomApply([_elastic_range()(e["alpha"], e["sigma"])], p))
    return v2.Compose(steps)


# --------------------------------------------------------------------------- pipeline
@dataclass(frozen=True)
class CXRPreprocess:
    """The preprocessing chain of Ruffini et al. (2024) with every step a visible option.

    Parameters
    ----------
    size:
        Output side in pixels (256 in the paper; smaller in the smoke profile).
    clip:
        ``(low, high)`` percentiles, or ``None`` to skip clipping.
    channels:
        3 (grayscale replicated, for ImageNet-shaped backbones) or 1.
    normalisation:
        ``"none"``, ``"minmax"`` or ``"imagenet"``.
    bbox_margin:
        Fraction of the box's height/width added on each side of a lung bounding box taken from a mask
        (the original: 5% in all, 0.025 a side).
    bbox_square:
        Square that box with image content (:func:`square_box`), as the original.
    clip_before_crop:
        Take the clipping percentiles of the whole image, then crop (the original's order); otherwise
        of the crop.
    """

    size: int = 256
    clip: tuple[float, float] | None = (2.0, 98.0)
    channels: int = 3
    normalisation: str = "imagenet"
    bbox_margin: float = 0.0
    bbox_square: bool = False
    clip_before_crop: bool = False

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}.")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"Unknown normalisation {self.normalisation!r}; choose from {NORMALISATIONS}.")
        if self.size < 8:
            raise ValueError(f"size must be >= 8, got {self.size}.")

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None, box: Sequence[int] | None = None) -> np.ndarray:
        """``[H, W]`` radiograph (+ optional lung mask or box) -> ``float32 [channels, size, size]``."""
        img = np.asarray(image, dtype=np.float32)
        if img.ndim != 2:
            raise ValueError(f"Expected a 2D grayscale image, got shape {img.shape}.")
        if mask is not None:
            if mask.shape[:2] != img.shape:
                mask = resize(np.asarray(mask, dtype=np.float32), img.shape) > 0.5
            box = mask_bbox(mask, self.bbox_margin)
            if self.bbox_square:
                box = square_box(box, img.shape)
        if self.clip is not None and self.clip_before_crop:
            img = clip_percentiles(img, *self.clip)
        if box is not None:
            img = crop(img, box)
        if self.clip is not None and not self.clip_before_crop:
            img = clip_percentiles(img, *self.clip)
        img = resize(img, self.size)[None]
        if self.channels == 3:
            img = np.repeat(img, 3, axis=0)
        return normalise(img, self.normalisation)

    def load(self, path: str | Path, mask_path: str | Path | None = None, box: Sequence[int] | None = None) -> np.ndarray:
        """Read ``path`` (and a mask file) and preprocess it."""
        mask = None
        if mask_path is not None and not (isinstance(mask_path, float) and np.isnan(mask_path)):
            if not Path(mask_path).is_file():
                raise FileNotFoundError(f"Lung mask {mask_path} not found (the image's mask_path): produce the lung masks, "
                                        "or load the images without masks (Ruffini: data.use_lung_masks = false).")
            mask = read_image(mask_path) > 0
        return self(read_image(path), mask=mask, box=box)


def preprocess_images(
    manifest: pd.DataFrame,
    preprocess: CXRPreprocess | None = None,
    path_column: str = "path",
    mask_column: str | None = "mask_path",
    progress: bool = True,
) -> np.ndarray:
    """Read and preprocess every image of a manifest once: ``float32 [N, C, size, size]``.

    A ``mask_path`` column (if present and filled) crops each image to its lung bounding box.
    Errors name the row and file.
    """
    preprocess = preprocess or CXRPreprocess()
    if path_column not in manifest.columns:
        raise KeyError(f"The manifest has no {path_column!r} column (columns: {list(manifest.columns)}).")
    use_mask = mask_column is not None and mask_column in manifest.columns
    out = np.empty((len(manifest), preprocess.channels, preprocess.size, preprocess.size), dtype=np.float32)
    rows = manifest.reset_index(drop=True)
    for i in tqdm(range(len(rows)), desc="preprocess X-rays", disable=not progress, leave=False):
        path = rows.at[i, path_column]
        mask_path = rows.at[i, mask_column] if use_mask else None
        if mask_path is not None and pd.isna(mask_path):
            mask_path = None
        try:
            out[i] = preprocess.load(path, mask_path)
        except Exception as err:
            raise ValueError(f"Manifest row {i} ({path}): {type(err).__name__}: {err}") from err
    return out
