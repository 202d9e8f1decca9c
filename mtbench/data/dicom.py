"""Reading DICOM CT: one series (a folder or a list of files) or one file to a canonical :class:`Volume` in HU.

Order
    Slices are ordered by their position along the slice normal (``ImagePositionPatient``
    projected on the cross product of the two ``ImageOrientationPatient`` direction cosines), never
    by file name or ``InstanceNumber``. A folder is refused, with an error naming the offending
    files, when it mixes series (``SeriesInstanceUID``), when two slices share a position, when
    slices are missing (a gap larger than ``gap_tolerance`` times the usual step), or when
    orientations or in-plane sizes differ.

Values
    ``RescaleSlope``/``RescaleIntercept`` are applied, so CT values are Hounsfield units.
    Compressed transfer syntaxes (JPEG Lossless, JPEG-LS, JPEG 2000, RLE) decode through the
    pylibjpeg plugins that mtbench depends on. **Padding becomes air**: for CT, pixels equal to
    ``PixelPaddingValue`` (up to ``PixelPaddingRangeLimit``) and any value below -1024 HU (the
    -2000 outside-the-field fill of many scanners, which would otherwise read as -3024 HU) are set
    to ``pad_hu`` (-1024 HU, air); the fraction changed is ``meta["padding_fraction"]``.
    ``pad_hu=None`` keeps the raw values.

Geometry
    The affine is built from ``ImagePositionPatient``/``ImageOrientationPatient``/``PixelSpacing``
    in DICOM's LPS frame, converted to RAS+, and the array is put in the canonical orientation
    (:func:`mtbench.data.io.to_canonical`). **Gantry tilt** (the slice step not along the slice
    normal, as on tilted head CT) is measured (``meta["gantry_tilt_deg"]``); by default the stack is
    resampled (trilinear, :func:`nibabel.processing.resample_from_to`) onto the orthogonal grid
    whose depth axis is the table direction, filling voxels outside the acquired slab with
    ``pad_hu``; ``correct_tilt=False`` refuses a tilted series instead.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mtbench.data.io import LPS_TO_RAS, DicomSeriesError, PathLike, Volume, spacing_of, to_canonical

AIR_HU = -1024.0
TILT_TOLERANCE_DEG = 0.05  # below this the step is along the normal up to rounding of positions


# ----------------------------------------------------------------------------- DICOM
def _hu(ds, pad_hu: float | None = AIR_HU) -> tuple[np.ndarray, int]:
    """Pixel data of one dataset in rescaled units (HU for CT), ``float32``, and the number of padding pixels set to air."""
    try:
        raw = ds.pixel_array
    except Exception as err:  # pydicom raises several types for missing handlers / bad data
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(ts, "name", ts)
        raise DicomSeriesError(
            f"{getattr(ds, 'filename', '<dataset>')}: cannot decode pixel data (transfer syntax {name}): "
            f"{type(err).__name__}: {err}. Compressed CT needs the pylibjpeg plugins "
            "(pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle), which mtbench installs."
        ) from err
    arr = raw.astype(np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    inter = float(getattr(ds, "RescaleIntercept", 0) or 0)
    if slope != 1 or inter != 0:
        arr = arr * np.float32(slope) + np.float32(inter)
    if pad_hu is None or str(getattr(ds, "Modality", "CT")) != "CT":
        return arr, 0
    pad = arr < AIR_HU
    ppv = getattr(ds, "PixelPaddingValue", None)
    if ppv is not None:  # a stored value (before rescale), possibly a range up to PixelPaddingRangeLimit
        lim = getattr(ds, "PixelPaddingRangeLimit", None)
        lo, hi = (ppv, ppv) if lim is None else (min(ppv, lim), max(ppv, lim))
        pad |= (raw >= lo) & (raw <= hi)
    n = int(pad.sum())
    if n:
        arr[pad] = np.float32(pad_hu)
    return arr, n


def read_dicom_file(path: PathLike, pad_hu: float | None = AIR_HU) -> Volume:
    """One DICOM file (a single slice, or a multi-frame image) as a canonical :class:`Volume` ``[D, H, W]``."""
    import pydicom

    path = Path(path)
    ds = pydicom.dcmread(path)
    arr, n_pad = _hu(ds, pad_hu)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim != 3:
        raise DicomSeriesError(f"{path}: expected a grayscale image, got pixel array of shape {arr.shape}.")
    dy, dx = (float(v) for v in getattr(ds, "PixelSpacing", (1.0, 1.0)))
    dz = float(getattr(ds, "SpacingBetweenSlices", 0) or getattr(ds, "SliceThickness", 0) or 1.0)
    meta = _meta(ds, [ds])
    meta["padding_fraction"] = n_pad / arr.size
    lps = _affine(ds)
    if lps is None:  # no geometry (secondary captures, some projections): array as stored
        meta["canonical"] = False
        return Volume(arr, (dz, dy, dx), np.eye(4), source=str(path), files=[str(path)], meta=meta)
    lps[:3, 0] *= dz
    arr, aff = to_canonical(arr, LPS_TO_RAS @ lps)
    meta["canonical"] = True
    return Volume(arr, spacing_of(aff), aff, source=str(path), files=[str(path)], meta=meta)


def _affine(ds, step: np.ndarray | None = None) -> np.ndarray | None:
    """Voxel ``(d, h, w)`` -> LPS mm from the first slice; the ``d`` column is ``step`` (the slice-to-slice
    displacement) or the unit normal. ``None`` when the file has no position/orientation."""
    iop = getattr(ds, "ImageOrientationPatient", None)
    ipp = getattr(ds, "ImagePositionPatient", None)
    if iop is None or ipp is None:
        return None
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    dy, dx = (float(v) for v in getattr(ds, "PixelSpacing", (1.0, 1.0)))
    aff = np.eye(4)
    # array index h moves along the column direction cosine (down the rows), w along the row cosine
    aff[:3, 0] = np.cross(row, col) if step is None else step
    aff[:3, 1] = col * dy
    aff[:3, 2] = row * dx
    aff[:3, 3] = np.asarray(ipp, float)
    return aff


def _untilt(arr: np.ndarray, lps: np.ndarray, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample a sheared (gantry-tilted) stack onto the orthogonal grid whose depth axis is the table step.

    In-plane axes are the row direction and the column direction made orthogonal to the step
    (Gram-Schmidt); spacings and shape are kept, so the grid covers the same field of view.
    """
    import nibabel as nib
    from nibabel.processing import resample_from_to

    step = lps[:3, 0]
    e_d = step / np.linalg.norm(step)
    row = lps[:3, 2] / np.linalg.norm(lps[:3, 2])
    e_w = row - (row @ e_d) * e_d
    e_w /= np.linalg.norm(e_w)
    col = lps[:3, 1] / np.linalg.norm(lps[:3, 1])
    e_h = col - (col @ e_d) * e_d - (col @ e_w) * e_w
    e_h /= np.linalg.norm(e_h)
    target = np.eye(4)
    target[:3, 0] = e_d * np.linalg.norm(step)
    target[:3, 1] = e_h * np.linalg.norm(lps[:3, 1])
    target[:3, 2] = e_w * np.linalg.norm(lps[:3, 2])
    target[:3, 3] = lps[:3, 3]
    img = nib.Nifti1Image(arr, lps)  # nibabel only needs voxel->world; the frame's name does not matter here
    out = resample_from_to(img, (arr.shape, target), order=1, mode="constant", cval=fill)
    return np.asarray(out.dataobj, dtype=np.float32), target


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
    correct_tilt: bool = True,
    pad_hu: float | None = AIR_HU,
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
        Ignore files that are not DICOM (READMEs, thumbnails); they are listed in ``meta["skipped"]``.
    correct_tilt:
        Resample a gantry-tilted series onto an orthogonal grid (default); ``False`` refuses it.
    pad_hu:
        Value given to padding pixels and to anything below -1024 HU (module docstring); ``None`` keeps them.

    Returns
    -------
    Volume
        ``array`` ``[D, H, W]`` float32 in rescaled units (HU for CT) in the canonical orientation
        (:data:`mtbench.data.io.CANONICAL_AXCODES`), RAS+ ``affine``; ``files`` in the order of the
        ``d`` axis (one per slice, also after tilt correction, which keeps the slice count).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    files = _list_files(path)
    if not files:
        raise DicomSeriesError(f"No files in {str(path)!r}.")
    headers, skipped = [], []
    for f in files:
        try:
            ds = pydicom.dcmread(f)  # once, with the (still encoded) pixel data: no second pass over the files
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

    datasets = [ds for _, ds in headers]
    decoded = [_hu(ds, pad_hu) for ds in datasets]
    bad = [str(f) for (f, _), (s, _) in zip(headers, decoded) if s.ndim != 2]
    if bad:
        raise DicomSeriesError(f"Expected single-frame grayscale slices; multi-frame or colour files: {_names(bad)}.")
    arr = np.stack([s for s, _ in decoded]).astype(np.float32, copy=False)
    first = datasets[0]
    meta = _meta(first, datasets)
    meta["skipped"] = skipped
    meta["positions"] = pos.tolist()
    meta["padding_fraction"] = sum(n for _, n in decoded) / arr.size
    if len(headers) > 1:  # the real slice-to-slice displacement: along the normal unless the gantry was tilted
        ipp = np.array([np.asarray(ds.ImagePositionPatient, float) for _, ds in headers])
        step = (ipp[-1] - ipp[0]) / (len(ipp) - 1)
    else:
        step = normal * abs(dz)
    cosang = abs(float(step @ normal)) / max(float(np.linalg.norm(step)), 1e-12)
    tilt = float(np.degrees(np.arccos(min(1.0, cosang))))
    meta["gantry_tilt_deg"] = round(tilt, 3)
    meta["tilt_corrected"] = False
    lps = _affine(first, step)
    where = str(path) if isinstance(path, (str, os.PathLike)) else str(Path(headers[0][0]).parent)
    if tilt > TILT_TOLERANCE_DEG:
        if not correct_tilt:
            raise DicomSeriesError(
                f"{where!r}: gantry tilt of {tilt:.2f} deg (slices step {np.round(step, 3).tolist()} mm, normal "
                f"{np.round(normal, 3).tolist()}). Pass correct_tilt=True to resample it onto an orthogonal grid."
            )
        fill = AIR_HU if pad_hu is not None else float(arr.min())
        arr, lps = _untilt(arr, lps, fill)
        meta["tilt_corrected"] = True
    ras = LPS_TO_RAS @ lps
    arr, aff = to_canonical(arr, ras)
    files = [str(f) for f, _ in headers]
    d_dir = ras[:3, 0]
    meta["files_along_d"] = bool(np.argmax(np.abs(d_dir)) == 2)  # axial-ish: one file per canonical slice
    if meta["files_along_d"] and d_dir[2] < 0:
        files, meta["positions"] = files[::-1], meta["positions"][::-1]
    meta["canonical"] = True
    return Volume(arr, spacing_of(aff), aff, source=where, files=files, meta=meta)


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


