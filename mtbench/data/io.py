"""Reading CT volumes: DICOM series and NIfTI files to a :class:`Volume` in Hounsfield units.

A :class:`Volume` is a ``float32`` array ``[D, H, W]`` (slices, rows, columns), its voxel spacing in
mm ``(dz, dy, dx)``, a 4x4 affine and the source it came from. Everything downstream
(:mod:`mtbench.data.transforms`, :mod:`mtbench.data.cache`, the source adapters) starts from one.

One canonical orientation (:data:`CANONICAL_AXCODES` = ``("S", "P", "L")``)
    Every reader (DICOM series and files in :mod:`mtbench.data.dicom`, NIfTI here, and so the
    cache built on them) returns the array with index ``d`` running inferior->superior, ``h``
    anterior->posterior and ``w`` patient-right->patient-left, whatever the file's own orientation
    (flipped rows, reversed slices, sagittal acquisitions, LAS/RAS/LPS NIfTI ...). This is the
    layout of a standard axial DICOM series, so ``imshow(vol.array[d])`` is the radiological
    display (anterior up, patient's right on the viewer's left) and a standard series is returned
    voxel for voxel as stored. The reorientation is nibabel's (:func:`nibabel.orientations.io_orientation`,
    ``ornt_transform``, ``apply_orientation``): axis flips and permutations only, never resampling,
    so an oblique acquisition keeps its exact (oblique) affine and is put on its closest axes.

``Volume.affine`` is always in the RAS+ world frame of nibabel/NIfTI
    It maps ``(d, h, w, 1)`` to millimetres (DICOM's LPS positions are converted), so
    :func:`write_nifti` stores it as is and any NIfTI tool shows the image the right way round;
    ``read_nifti(write_nifti(v))`` gives back ``v.array`` and ``v.affine``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

PathLike = str | os.PathLike


class DicomSeriesError(ValueError):
    """A DICOM folder that cannot be read as one consistent volume (the message names the files)."""


@dataclass
class Volume:
    """A 3D image ``array`` ``[D, H, W]`` with its voxel ``spacing`` ``(dz, dy, dx)`` in mm.

    ``affine`` maps voxel indices ``(d, h, w, 1)`` to RAS+ world millimetres; readers return the
    array in the canonical orientation (module docstring). ``source`` names the file or folder;
    ``files`` (DICOM) lists the slice files in array order; ``meta`` carries a few header fields
    (modality, series UID, transfer syntaxes, rescale, ``gantry_tilt_deg``, ``padding_fraction``,
    ``axcodes`` of the file as stored).
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    source: str = ""
    files: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        return f"Volume(shape={self.shape}, spacing=({sp}) mm, range=[{self.array.min():.0f}, {self.array.max():.0f}], source={self.source!r})"


# ----------------------------------------------------------------------------- orientation
CANONICAL_AXCODES: tuple[str, str, str] = ("S", "P", "L")
"""Where the array axes ``(d, h, w)`` of every :class:`Volume` point (see the module docstring)."""

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def canonical_affine(spacing: Sequence[float], origin: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """The RAS+ affine of an array already in the canonical orientation with voxel ``spacing`` ``(dz, dy, dx)``.

    For arrays made in memory (the phantom, synthetic tests):
    ``Volume(arr, spacing, canonical_affine(spacing))``.
    """
    dz, dy, dx = (float(s) for s in spacing)
    aff = np.zeros((4, 4))
    aff[2, 0], aff[1, 1], aff[0, 2], aff[3, 3] = dz, -dy, -dx, 1.0  # d->S, h->P (-A), w->L (-R)
    aff[:3, 3] = np.asarray(origin, float)
    return aff


def to_canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip/transpose a 3D ``array`` whose voxel axes map to RAS+ mm by ``affine`` into :data:`CANONICAL_AXCODES`.

    Returns the reoriented array and its affine (the same world positions: only the voxel
    indexing changes). Uses nibabel's orientation utilities; an oblique affine is put on its
    closest axes without resampling.
    """
    from nibabel import orientations as no

    affine = np.asarray(affine, float)
    tr = no.ornt_transform(no.io_orientation(affine), no.axcodes2ornt(CANONICAL_AXCODES))
    out = no.apply_orientation(array, tr)
    return np.ascontiguousarray(out), affine @ no.inv_ornt_aff(tr, array.shape)


def axcodes(affine: np.ndarray) -> str:
    """The closest orientation letters of the voxel axes, e.g. ``"SPL"`` (:func:`nibabel.aff2axcodes`)."""
    import nibabel as nib

    return "".join(nib.aff2axcodes(np.asarray(affine, float)))


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along each array axis: the lengths of the affine's columns."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0))  # type: ignore[return-value]


# ----------------------------------------------------------------------------- NIfTI
def read_nifti(path: PathLike, canonical: bool = True) -> Volume:
    """A NIfTI file as a :class:`Volume` in the canonical orientation (module docstring).

    The header scaling (``scl_slope``/``scl_inter``) is applied by nibabel. With
    ``canonical=False`` the array keeps the file's voxel order, transposed to ``[k, j, i]``
    (``affine`` still correct). 4D files are refused.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No NIfTI file at {str(path)!r}.")
    img = nib.load(str(path))
    data = img.get_fdata(dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D image, got shape {data.shape}.")
    if canonical:
        arr, affine = to_canonical(data, img.affine)
    else:
        perm = np.zeros((4, 4))
        perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1  # (d, h, w) -> (i, j, k)
        arr, affine = np.ascontiguousarray(np.transpose(data, (2, 1, 0))), img.affine @ perm
    return Volume(
        arr.astype(np.float32, copy=False),
        spacing_of(affine),
        affine,
        source=str(path),
        files=[str(path)],
        meta={"axcodes": axcodes(img.affine), "canonical": canonical},
    )


def read_volume(path: PathLike, **kwargs) -> Volume:
    """Read a NIfTI file (``.nii``, ``.nii.gz``), a DICOM file or a DICOM series folder (canonical orientation)."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return read_nifti(p, **kwargs)
    if p.is_dir():
        return read_dicom_series(p, **kwargs)
    if p.is_file():
        return read_dicom_file(p, **kwargs)
    raise FileNotFoundError(f"No image at {str(p)!r}.")


def write_nifti(volume: Volume | np.ndarray, path: PathLike, spacing: Sequence[float] | None = None) -> Path:
    """Write a :class:`Volume` (or a canonical ``[D, H, W]`` array with ``spacing``) as NIfTI with its true affine.

    The file is stored RAS+ (:func:`nibabel.as_closest_canonical`) with qform and sform set, so
    other viewers show it the right way round, and :func:`read_nifti` gives the array and affine back.
    A plain array is taken to be in the canonical orientation (:func:`canonical_affine`).
    """
    import nibabel as nib

    if isinstance(volume, Volume):
        arr = volume.array
        affine = np.asarray(volume.affine, float) if spacing is None else canonical_affine(spacing)
    else:
        arr = np.asarray(volume)
        affine = canonical_affine(spacing or (1.0, 1.0, 1.0))
    if arr.ndim != 3:
        raise ValueError(f"write_nifti expects a 3D [D, H, W] array, got shape {arr.shape}.")
    img = nib.as_closest_canonical(nib.Nifti1Image(np.ascontiguousarray(arr), affine))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


# DICOM lives in its own module; re-exported here so ``mtbench.data.io`` stays the one entry point.
from mtbench.data.dicom import list_dicom_series, read_dicom_file, read_dicom_series  # noqa: E402
