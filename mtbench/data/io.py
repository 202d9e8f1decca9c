"""Reading CT volumes: DICOM series and NIfTI files to a :class:`Volume` in Hounsfield units.

A :class:`Volume` is a ``float32`` array ``[D, H, W]`` (slices, rows, columns), its voxel spacing in
mm ``(dz, dy, dx)``, a 4x4 affine and the source it came from. Everything downstream
(:mod:`mtbench.data.transforms`, :mod:`mtbench.data.cache`, the source adapters) starts from one.

DICOM (:func:`read_dicom_series`)
    Slices are ordered by their position along the slice normal (``ImagePositionPatient`` projected
    on the cross product of the two ``ImageOrientationPatient`` direction cosines), never by file
    name or ``InstanceNumber``. ``RescaleSlope``/``RescaleIntercept`` are applied, so CT values are
    Hounsfield units. Compressed transfer syntaxes (JPEG Lossless, JPEG-LS, JPEG 2000, RLE) decode
    through the pylibjpeg plugins that mtbench depends on. A folder is refused, with an error naming
    the offending files, when it mixes series (``SeriesInstanceUID``), when two slices share a
    position, when slices are missing (a gap larger than ``gap_tolerance`` times the usual step),
    or when orientations or in-plane sizes differ.

NIfTI (:func:`read_nifti`)
    Read with nibabel and reoriented to its closest canonical orientation (RAS+), then transposed so
    the array is ``[D, H, W] = [S, A, R]`` axes: depth runs inferior to superior, like a sorted
    axial DICOM series. The scaling in the header (``scl_slope``/``scl_inter``) is applied by nibabel.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

PathLike = str | os.PathLike


class DicomSeriesError(ValueError):
    """A DICOM folder that cannot be read as one consistent volume (the message names the files)."""


@dataclass
class Volume:
    """A 3D image ``array`` ``[D, H, W]`` with its voxel ``spacing`` ``(dz, dy, dx)`` in mm.

    ``affine`` maps voxel indices ``(d, h, w, 1)`` to patient/world millimetres (for DICOM, in the
    DICOM LPS frame; for NIfTI, RAS after canonical reorientation). ``source`` names the file or
    folder; ``files`` (DICOM) lists the slice files in array order; ``meta`` carries a few header
    fields (modality, series UID, transfer syntaxes, rescale).
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


# ----------------------------------------------------------------------------- DICOM
def _hu(ds) -> np.ndarray:
    """Pixel data of one dataset in rescaled units (HU for CT), ``float32``."""
    try:
        arr = ds.pixel_array
    except Exception as err:  # pydicom raises several types for missing handlers / bad data
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(ts, "name", ts)
        raise DicomSeriesError(
            f"{getattr(ds, 'filename', '<dataset>')}: cannot decode pixel data (transfer syntax {name}): "
            f"{type(err).__name__}: {err}. Compressed CT needs the pylibjpeg plugins "
            "(pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle), which mtbench installs."
        ) from err
    arr = arr.astype(np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    inter = float(getattr(ds, "RescaleIntercept", 0) or 0)
    if slope != 1 or inter != 0:
        arr = arr * np.float32(slope) + np.float32(inter)
    return arr


def read_dicom_file(path: PathLike) -> Volume:
    """One DICOM file (a single slice, or a multi-frame image) as a :class:`Volume` ``[D, H, W]``."""
    import pydicom

    path = Path(path)
    ds = pydicom.dcmread(path)
    arr = _hu(ds)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim != 3:
        raise DicomSeriesError(f"{path}: expected a grayscale image, got pixel array of shape {arr.shape}.")
    dy, dx = (float(v) for v in getattr(ds, "PixelSpacing", (1.0, 1.0)))
    dz = float(getattr(ds, "SpacingBetweenSlices", 0) or getattr(ds, "SliceThickness", 0) or 1.0)
    return Volume(
        arr,
        (dz, dy, dx),
        _affine(ds, dz),
        source=str(path),
        files=[str(path)],
        meta=_meta(ds, [ds]),
    )


def _affine(ds, dz: float, normal: np.ndarray | None = None) -> np.ndarray:
    """Voxel ``(d, h, w)`` -> LPS mm, from the first slice's position and orientation."""
    aff = np.eye(4)
    iop = getattr(ds, "ImageOrientationPatient", None)
    ipp = getattr(ds, "ImagePositionPatient", None)
    if iop is None or ipp is None:
        return aff
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, col) if normal is None else normal
    dy, dx = (float(v) for v in getattr(ds, "PixelSpacing", (1.0, 1.0)))
    # array index h moves along the column direction cosine (down the rows), w along the row cosine
    aff[:3, 0] = normal * dz
    aff[:3, 1] = col * dy
    aff[:3, 2] = row * dx
    aff[:3, 3] = np.asarray(ipp, float)
    return aff


def _meta(first, datasets) -> dict[str, Any]:
    ts = sorted({str(getattr(getattr(d, "file_meta", None), "TransferSyntaxUID", "")) for d in datasets})
    names = []
    for uid in ts:
        try:
            import pydicom.uid

            names.append(pydicom.uid.UID(uid).name)
        except Exception:  # pragma: no cover
            names.append(uid)
    return {
        "modality": str(getattr(first, "Modality", "")),
        "series_uid": str(getattr(first, "SeriesInstanceUID", "")),
        "patient_id": str(getattr(first, "PatientID", "")),
        "transfer_syntaxes": names,
        "rescale_slope": float(getattr(first, "RescaleSlope", 1) or 1),
        "rescale_intercept": float(getattr(first, "RescaleIntercept", 0) or 0),
    }


def _list_files(path: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if p.is_file():
            return [p]
        if not p.is_dir():
            raise FileNotFoundError(f"No DICOM file or folder at {str(p)!r}.")
        return sorted(f for f in p.iterdir() if f.is_file() and f.name != "DICOMDIR" and not f.name.startswith("."))
    return [Path(f) for f in path]


def _names(paths: Iterable[Any], limit: int = 6) -> str:
    paths = [str(p) for p in paths]
    shown = ", ".join(paths[:limit])
    return shown + (f" ... (+{len(paths) - limit} more)" if len(paths) > limit else "")


def read_dicom_series(
    path: PathLike | Sequence[PathLike],
    series_uid: str | None = None,
    gap_tolerance: float = 1.5,
    allow_gaps: bool = False,
    skip_non_dicom: bool = True,
) -> Volume:
    """Read one DICOM series (a folder, or a list of slice files) into a HU :class:`Volume`.

    Parameters
    ----------
    path:
        A folder holding the slices of one series, or a list of slice files.
    series_uid:
        Pick this ``SeriesInstanceUID`` from a folder that holds several series (otherwise a mixed
        folder is refused, listing the series and their files).
    gap_tolerance:
        A step between neighbouring slices larger than ``gap_tolerance`` times the median step
        means missing slices, and the series is refused (unless ``allow_gaps``).
    allow_gaps:
        Accept gaps; the reported ``dz`` is then the median step and the volume is not regular.
    skip_non_dicom:
        Ignore files that are not DICOM (READMEs, thumbnails); they are counted in ``meta["skipped"]``.

    Returns
    -------
    Volume
        ``array`` ``[D, H, W]`` float32 in rescaled units (HU for CT), ordered along the slice normal
        from the lowest to the highest position; ``files`` in the same order.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    files = _list_files(path)
    if not files:
        raise DicomSeriesError(f"No files in {str(path)!r}.")
    headers, skipped = [], []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except InvalidDicomError:
            if not skip_non_dicom:
                raise DicomSeriesError(f"{f} is not a DICOM file.") from None
            skipped.append(str(f))
            continue
        if "PixelData" not in ds and not hasattr(ds, "Rows"):
            skipped.append(str(f))  # DICOMDIR, structured reports, ...
            continue
        headers.append((f, ds))
    if not headers:
        raise DicomSeriesError(f"No DICOM image in {str(path)!r} ({len(skipped)} non-image files skipped).")

    by_series: dict[str, list] = {}
    for f, ds in headers:
        by_series.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), []).append((f, ds))
    if series_uid is not None:
        if series_uid not in by_series:
            raise DicomSeriesError(f"Series {series_uid!r} is not in {str(path)!r}; found {sorted(by_series)}.")
        headers = by_series[series_uid]
    elif len(by_series) > 1:
        detail = "; ".join(f"{uid or '<no UID>'}: {_names(f for f, _ in hs)}" for uid, hs in by_series.items())
        raise DicomSeriesError(
            f"{str(path)!r} mixes {len(by_series)} series ({detail}). Pass series_uid= to choose one "
            "(see list_dicom_series())."
        )

    # Orientation and in-plane geometry must agree.
    def iop_of(ds):
        iop = getattr(ds, "ImageOrientationPatient", None)
        return None if iop is None else tuple(round(float(v), 4) for v in iop)

    iops = Counter(iop_of(ds) for _, ds in headers)
    if len(iops) > 1:
        common = iops.most_common(1)[0][0]
        odd = [f for f, ds in headers if iop_of(ds) != common]
        raise DicomSeriesError(
            f"Inconsistent ImageOrientationPatient in {str(path)!r}: {len(iops)} orientations; "
            f"files differing from the most common {common}: {_names(odd)}."
        )
    shapes = Counter((int(ds.Rows), int(ds.Columns)) for _, ds in headers)
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        odd = [f for f, ds in headers if (int(ds.Rows), int(ds.Columns)) != common]
        raise DicomSeriesError(f"Slices of different sizes in {str(path)!r}: {dict(shapes)}; odd files: {_names(odd)}.")
    iop = next(iter(iops))
    if iop is None:
        if len(headers) > 1:
            raise DicomSeriesError(
                f"{str(path)!r}: slices have no ImageOrientationPatient, so they cannot be ordered in space "
                f"(files: {_names(f for f, _ in headers)})."
            )
        return read_dicom_file(headers[0][0])
    missing_pos = [f for f, ds in headers if getattr(ds, "ImagePositionPatient", None) is None]
    if missing_pos:
        raise DicomSeriesError(f"Slices without ImagePositionPatient: {_names(missing_pos)}.")
    normal = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:]))
    pos = np.array([float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))) for _, ds in headers])
    order = np.argsort(pos, kind="stable")
    headers = [headers[i] for i in order]
    pos = pos[order]

    steps = np.diff(pos)
    if len(steps):
        dup = np.flatnonzero(np.abs(steps) < 1e-3)
        if len(dup):
            pairs = [f"{headers[i][0]} and {headers[i + 1][0]} (at {pos[i]:.3f} mm)" for i in dup[:5]]
            raise DicomSeriesError(f"Duplicated slice positions in {str(path)!r}: {'; '.join(pairs)}.")
        dz = float(np.median(steps))
        gaps = np.flatnonzero(steps > gap_tolerance * dz)
        if len(gaps) and not allow_gaps:
            where = [
                f"{steps[i]:.2f} mm between {headers[i][0]} and {headers[i + 1][0]}" for i in gaps[:5]
            ]
            raise DicomSeriesError(
                f"Missing slices in {str(path)!r}: the usual step is {dz:.3f} mm but there are gaps of "
                f"{'; '.join(where)}. Pass allow_gaps=True to read it anyway."
            )
    else:
        first = headers[0][1]
        dz = float(getattr(first, "SpacingBetweenSlices", 0) or getattr(first, "SliceThickness", 0) or 1.0)

    datasets = [pydicom.dcmread(f) for f, _ in headers]
    slices = [_hu(ds) for ds in datasets]
    bad = [str(f) for (f, _), s in zip(headers, slices) if s.ndim != 2]
    if bad:
        raise DicomSeriesError(f"Expected single-frame grayscale slices; multi-frame or colour files: {_names(bad)}.")
    first = datasets[0]
    dy, dx = (float(v) for v in getattr(first, "PixelSpacing", (1.0, 1.0)))
    meta = _meta(first, datasets)
    meta["skipped"] = skipped
    meta["positions"] = pos.tolist()
    return Volume(
        np.stack(slices).astype(np.float32, copy=False),
        (abs(dz), dy, dx),
        _affine(first, abs(dz), normal),
        source=str(path) if isinstance(path, (str, os.PathLike)) else str(Path(headers[0][0]).parent),
        files=[str(f) for f, _ in headers],
        meta=meta,
    )


def list_dicom_series(folder: PathLike, recursive: bool = True) -> "Any":
    """A table of the DICOM series under ``folder``: UID, modality, description, number of files, folder."""
    import pandas as pd
    import pydicom
    from pydicom.errors import InvalidDicomError

    folder = Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    rows: dict[str, dict[str, Any]] = {}
    for f in sorted(it):
        if not f.is_file() or f.name == "DICOMDIR":
            continue
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError):
            continue
        if not hasattr(ds, "Rows"):
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", ""))
        r = rows.setdefault(
            uid,
            {
                "series_uid": uid,
                "modality": str(getattr(ds, "Modality", "")),
                "description": str(getattr(ds, "SeriesDescription", "")),
                "n_files": 0,
                "folders": set(),
            },
        )
        r["n_files"] += 1
        r["folders"].add(str(f.parent))
    out = pd.DataFrame(list(rows.values()), columns=["series_uid", "modality", "description", "n_files", "folders"])
    out["folders"] = out["folders"].map(lambda s: ";".join(sorted(s)))
    return out


# ----------------------------------------------------------------------------- NIfTI
def read_nifti(path: PathLike, canonical: bool = True) -> Volume:
    """A NIfTI file as a :class:`Volume` ``[D, H, W]`` (see the module docstring for the axis order).

    With ``canonical=True`` (default) the image is reoriented with
    :func:`nibabel.as_closest_canonical` (RAS+) and the array transposed to ``[S, A, R]``, so every
    file comes out in the same axis order whatever its header says. 4D files are refused.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No NIfTI file at {str(path)!r}.")
    img = nib.load(str(path))
    source_axcodes = "".join(nib.aff2axcodes(img.affine))
    if canonical:
        img = nib.as_closest_canonical(img)
    data = img.get_fdata(dtype=np.float32)  # applies scl_slope / scl_inter
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D image, got shape {data.shape}.")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])  # (x, y, z) = (R, A, S)
    arr = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))  # -> [S, A, R]
    perm = np.zeros((4, 4))
    perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1  # (d, h, w) -> (i, j, k)
    affine = img.affine @ perm
    return Volume(
        arr,
        (zooms[2], zooms[1], zooms[0]),
        affine,
        source=str(path),
        files=[str(path)],
        meta={"axcodes": "".join(nib.aff2axcodes(img.affine)), "source_axcodes": source_axcodes, "canonical": canonical},
    )


def read_volume(path: PathLike, **kwargs) -> Volume:
    """Read a NIfTI file (``.nii``, ``.nii.gz``), a DICOM file or a DICOM series folder."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return read_nifti(p, **kwargs)
    if p.is_dir():
        return read_dicom_series(p, **kwargs)
    if p.is_file():
        return read_dicom_file(p)
    raise FileNotFoundError(f"No image at {str(p)!r}.")


def write_nifti(volume: Volume | np.ndarray, path: PathLike, spacing: Sequence[float] | None = None) -> Path:
    """Write a ``[D, H, W]`` array (or a :class:`Volume`) as NIfTI, inverse of :func:`read_nifti`'s axis order."""
    import nibabel as nib

    if isinstance(volume, Volume):
        arr, spacing = volume.array, spacing or volume.spacing
    else:
        arr = np.asarray(volume)
    dz, dy, dx = (float(s) for s in (spacing or (1.0, 1.0, 1.0)))
    data = np.transpose(arr, (2, 1, 0))  # [S, A, R] -> (R, A, S)
    img = nib.Nifti1Image(np.ascontiguousarray(data), np.diag([dx, dy, dz, 1.0]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path
