"""File-level checks: missing or unreadable images, duplicate content, DICOM folders, NIfTI volumes.

Part of :mod:`mtbench.data.validate` (which re-exports every function here); each adds its
findings to a :class:`~mtbench.data.report.Report`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mtbench.data.cxr import is_dicom_file
from mtbench.data.report import DICOM_SUFFIXES, NIFTI_SUFFIXES, PLAUSIBLE_SPACING_MM, Report
from mtbench.data.report import row_name as _row_name

def check_files(manifest: pd.DataFrame, report: Report, path_column: str = "path", read: bool = True,
                progress: bool = False) -> Report:
    """Image files of the manifest: missing ones (error: the manifest promises them) counted and
    listed; with ``read`` each file is opened (headers and pixel data) and unreadable ones are
    errors naming the file and the reader's message."""
    if path_column not in manifest.columns:
        return report
    paths = manifest[path_column]
    missing = unreadable = 0
    it = zip(manifest.index, paths)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(list(it), desc="checking files", leave=False)
    for idx, p in it:
        if p is None or (isinstance(p, float) and np.isnan(p)):
            report.error("missing-file", "no path", row=_row_name(manifest, idx), column=path_column)
            missing += 1
            continue
        if not Path(p).exists():
            report.error("missing-file", "file not found", file=p, row=_row_name(manifest, idx))
            missing += 1
            continue
        if read:
            err = read_error(p)
            if err:
                report.error("unreadable-file", err, file=p, row=_row_name(manifest, idx))
                unreadable += 1
    report.counts["files_missing"] = missing
    if read:
        report.counts["files_unreadable"] = unreadable
    return report


def read_error(path: str | os.PathLike) -> str | None:
    """``None`` if the file reads fully (DICOM pixel data, NIfTI voxels, PNG/JPEG pixels), else why not."""
    path = Path(path)
    name = path.name.lower()
    try:
        if path.is_dir():
            return None
        if name.endswith(NIFTI_SUFFIXES):
            import nibabel as nib

            img = nib.load(str(path))
            np.asanyarray(img.dataobj)
        elif name.endswith(DICOM_SUFFIXES) or is_dicom_file(path):
            import pydicom

            ds = pydicom.dcmread(path)
            ds.pixel_array  # noqa: B018  (decodes the pixel data)
        else:
            from PIL import Image

            with Image.open(path) as im:
                im.load()
    except Exception as err:  # every reader raises its own types; the message is what matters
        return f"cannot be read: {type(err).__name__}: {err}"
    return None




def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-1 of a file's bytes."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def check_duplicate_images(manifest: pd.DataFrame, report: Report, path_column: str = "path",
                           group_column: str = "patient_id") -> Report:
    """The same image bytes under two sample ids: an error when the ids belong to different patients
    (a patient-grouped split could put one image in training and test), a warning otherwise."""
    if path_column not in manifest.columns:
        return report
    seen: dict[str, list] = {}
    for idx, p in zip(manifest.index, manifest[path_column]):
        if isinstance(p, str) and Path(p).is_file():
            seen.setdefault(file_hash(p), []).append(idx)
    n = 0
    for digest, rows in seen.items():
        if len(rows) < 2:
            continue
        n += 1
        ids = [manifest.at[i, "sample_id"] if "sample_id" in manifest else i for i in rows]
        groups = sorted(set(map(str, manifest.loc[rows, group_column]))) if group_column in manifest else []
        files = [str(manifest.at[i, path_column]) for i in rows]
        if len(groups) > 1:
            report.error("duplicate-image", f"identical image content under ids {ids} of different patients {groups}: "
                         f"merge their {group_column}s or drop one", file=files[0])
        else:
            report.warning("duplicate-image", f"identical image content under ids {ids} (same {group_column})", file=files[0])
    report.counts["duplicate_images"] = n
    return report


def check_dicom_folder(folder: str | os.PathLike, report: Report) -> Report:
    """A DICOM folder must hold one series: files of several ``SeriesInstanceUID`` (a scout and the
    axial series, bone and brain kernels) are an error listing each series and its file count.
    Files that are not readable DICOM are errors too."""
    import pydicom

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        report.error("empty-folder", "no file in the DICOM folder", file=folder)
        return report
    series: dict[str, list[Path]] = {}
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception as err:
            report.error("unreadable-file", f"not a readable DICOM file: {type(err).__name__}: {err}", file=f)
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "<no SeriesInstanceUID>"))
        desc = str(getattr(ds, "SeriesDescription", "")).strip()
        series.setdefault(f"{uid}{' (' + desc + ')' if desc else ''}", []).append(f)
    if len(series) > 1:
        listing = "; ".join(f"{k}: {len(v)} files, e.g. {v[0].name}" for k, v in series.items())
        report.error("mixed-series", f"{len(series)} series in one folder: {listing}; pick one (series_uid=...)", file=folder)
    return report


def check_nifti(path: str | os.PathLike, report: Report, spacing_mm: tuple[float, float] = PLAUSIBLE_SPACING_MM,
                read: bool = True) -> Report:
    """A NIfTI volume: readable, 3D, voxel spacing within ``spacing_mm`` and finite, an invertible
    affine (orientation), ``qform``/``sform`` set. Each failure names the file."""
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(str(path))
        if read:
            np.asanyarray(img.dataobj)
    except Exception as err:
        report.error("unreadable-file", f"cannot be read: {type(err).__name__}: {err}", file=path)
        return report
    shape = img.shape
    if len(shape) != 3 and not (len(shape) == 4 and shape[3] == 1):
        report.error("bad-shape", f"expected a 3D volume, got shape {shape}", file=path)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    lo, hi = spacing_mm
    if not all(np.isfinite(zooms)) or any(z < lo or z > hi for z in zooms):
        report.error("implausible-spacing", f"voxel spacing {zooms} mm outside the plausible {lo}-{hi} mm", file=path)
    aff = img.affine
    if not np.all(np.isfinite(aff)) or abs(np.linalg.det(aff[:3, :3])) < 1e-6:
        report.error("implausible-orientation", f"affine is singular or not finite: {np.round(aff, 3).tolist()}", file=path)
    else:
        axes = nib.aff2axcodes(aff)
        if None in axes:
            report.error("implausible-orientation", f"affine has no clear axis directions ({axes})", file=path)
        spacing_aff = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
        if not np.allclose(spacing_aff, zooms, rtol=1e-2, atol=1e-3):
            report.warning("spacing-affine-mismatch", f"header pixdim {zooms} disagrees with the affine's "
                           f"{np.round(spacing_aff, 4).tolist()}", file=path)
    qcode, scode = int(img.header["qform_code"]), int(img.header["sform_code"])
    if qcode == 0 and scode == 0:
        report.warning("no-orientation", "qform_code and sform_code are both 0: orientation unknown", file=path)
    return report


def check_volume_files(manifest: pd.DataFrame, report: Report, path_column: str = "path") -> Report:
    """:func:`check_nifti` on NIfTI paths and :func:`check_dicom_folder` on folder paths of a manifest."""
    if path_column not in manifest.columns:
        return report
    for p in manifest[path_column].dropna().astype(str):
        q = Path(p)
        if q.is_dir():
            check_dicom_folder(q, report)
        elif q.name.lower().endswith(NIFTI_SUFFIXES) and q.is_file():
            check_nifti(q, report)
    return report


# ------------------------------------------------------------------------------ entry points
