"""Head-CT ICH prognosis set of Pérez del Barrio et al. (DIGITAL.CSIC, hdl 10261/275792; on request).

The data Cobo et al. (2024) used: 3D head CTs of patients with intracranial hemorrhage, one NIfTI
per patient, in two folders by outcome, and a clinical table::

    <root>/GOOD_PROGNOSIS/<id>_brain.nii.gz
    <root>/POOR_PROGNOSIS/<id>_brain.nii.gz
    <root>/<clinical>.csv (or .xlsx)   columns Patient, Label (poor_prognosis), Age, GCS, ...

Each prognosis folder may also hold ``<id>.nii(.gz)`` files (without the ``_brain`` suffix) or one
folder of DICOM slices per patient (``<id>/``, one series, any file names): the folder is the
image path, read by :func:`mtbench.data.io.read_dicom_series` into the canonical orientation and
cached by :class:`mtbench.data.cache.VolumeLoader` like a NIfTI file. Loose DICOM slices directly in
a prognosis folder are refused (which patient they belong to is not in the layout), and so is a
set that yields no volume; the error lists the files that were ignored.

Labels exactly as the paper derived them:

``prognosis``  1 = poor (column ``Label (poor_prognosis)``; the folder must agree);
``gcs_bin``    1 if GCS <= 8;
``gcs_ord``    0 = 13-15, 1 = 9-12, 2 = 3-8 (cumulative two-bit encoding in the ordinal task);
``age_80``     1 if age >= 80.

The published set has 261 volumes (99 good, 162 poor). :func:`load_manifest` reports what it
found against that (the returned report's ``counts``, :func:`report_text`): images without a clinical
row are kept (their GCS and age labels are missing, so those heads are masked), clinical rows
without an image are counted and listed, never silently dropped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtbench.data.report import Manifest, Report

from mtbench.data.sources import dataset_folder

from mtbench.data.phantom import gcs_ordinal

NAME = "ich_ct"
DESCRIPTION = "Head-CT ICH prognosis (Pérez del Barrio et al., DIGITAL.CSIC; on request): 3D CT, prognosis, GCS, age"
DEFAULT_FOLDER = "head_ct_ich"
PUBLISHED = {"n": 261, "good": 99, "poor": 162}
FOLDERS = {"GOOD_PROGNOSIS": 0, "POOR_PROGNOSIS": 1}
COLUMNS = {"patient": "Patient", "label": "Label (poor_prognosis)", "age": "Age", "gcs": "GCS"}
_SUFFIX = re.compile(r"(_brain)?\.nii(\.gz)?$", re.IGNORECASE)


def _is_dicom(path: Path) -> bool:
    from pydicom.misc import is_dicom

    return path.suffix.lower() == ".dcm" or is_dicom(path)


def _dicom_folder(path: Path) -> bool:
    """A folder holding DICOM files (the first few checked; the series itself is checked when read)."""
    files = [f for f in sorted(path.iterdir()) if f.is_file() and not f.name.startswith(".")][:5]
    return any(_is_dicom(f) for f in files)


def _find_clinical(root: Path, clinical: str | os.PathLike | None) -> Path:
    if clinical is not None:
        p = Path(clinical)
        p = p if p.is_absolute() else root / p
        if not p.is_file():
            raise FileNotFoundError(f"Clinical table not found: {str(p)!r}.")
        return p
    found = sorted([*root.glob("*.csv"), *root.glob("*.xlsx")])
    if len(found) != 1:
        raise FileNotFoundError(
            f"Expected one clinical table (.csv or .xlsx) in {str(root)!r}, found {[f.name for f in found]}; "
            "pass clinical='file name'."
        )
    return found[0]


def read_clinical(path: str | os.PathLike) -> pd.DataFrame:
    """The clinical table (CSV with any common separator, or XLSX), required columns checked."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        df = pd.read_excel(path)
    else:
        df = pd.read_csv(path, sep=None, engine="python")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in COLUMNS.values() if c not in df.columns]
    if missing:
        raise KeyError(f"{path}: missing column(s) {missing}; found {list(df.columns)}.")
    return df


def load_manifest(
    root: str | os.PathLike | None = None,
    clinical: str | os.PathLike | None = None,
    require_clinical: bool = False,
) -> Manifest:
    """One row per CT volume: ``sample_id``, ``patient_id``, ``path``, ``folder``, ``prognosis``,
    ``age``, ``gcs``, ``age_80``, ``gcs_bin``, ``gcs_ord``; and a report whose ``counts`` compare
    what was found with the published set (:func:`report_text`).

    Parameters
    ----------
    root:
        The folder holding ``GOOD_PROGNOSIS/`` and ``POOR_PROGNOSIS/``; default
        ``<data root>/head_ct_ich`` (see :func:`mtbench.profiles.data_root`).
    clinical:
        The clinical table (file name inside ``root`` or a path); found automatically when ``root``
        holds exactly one ``.csv``/``.xlsx``.
    require_clinical:
        Refuse images without a clinical row instead of keeping them with missing GCS/age.
    """
    root = dataset_folder(root, DEFAULT_FOLDER, "ICH CT", (
        "The data set is given on request from DIGITAL.CSIC "
        "(https://digital.csic.es/handle/10261/275792); put it there or set MTBENCH_DATA_ROOT."))
    missing_folders = [f for f in FOLDERS if not (root / f).is_dir()]
    if missing_folders:
        raise FileNotFoundError(f"{str(root)!r} lacks the folder(s) {missing_folders} (expected {list(FOLDERS)}).")
    images = []
    other_files, loose_dicom = [], []
    for folder, label in FOLDERS.items():
        for f in sorted((root / folder).iterdir()):
            m = _SUFFIX.search(f.name)
            if f.name.startswith("."):
                continue
            if f.is_dir():
                if _dicom_folder(f):
                    images.append({"patient_id": f.name, "path": str(f), "folder": folder, "folder_label": label})
                else:
                    other_files.append(str(f))
            elif m:
                images.append({"patient_id": f.name[: m.start()], "path": str(f), "folder": folder, "folder_label": label})
            elif _is_dicom(f):
                loose_dicom.append(str(f))
            else:
                other_files.append(str(f))
    if loose_dicom:
        raise ValueError(
            f"{len(loose_dicom)} DICOM file(s) lie loose in the prognosis folders, e.g. {loose_dicom[:5]}: put each "
            "patient's series in its own folder (<folder>/<patient id>/*.dcm); the folder name is the patient id."
        )
    img = pd.DataFrame(images, columns=["patient_id", "path", "folder", "folder_label"])
    dup = img["patient_id"].duplicated(keep=False)
    if dup.any():
        raise ValueError(f"Patients with more than one volume: {img.loc[dup, 'path'].tolist()[:6]}.")

    clin_path = _find_clinical(root, clinical)
    clin = read_clinical(clin_path)
    if not images:
        raise ValueError(
            f"No CT volume found in {str(root)!r} ({', '.join(FOLDERS)}): expected <id>_brain.nii.gz, <id>.nii(.gz) "
            f"or one DICOM series folder per patient; ignored {len(other_files)} entr(ies): {other_files[:8]}."
        )
    clin = clin.rename(columns={COLUMNS["patient"]: "patient_id", COLUMNS["label"]: "label", COLUMNS["age"]: "age", COLUMNS["gcs"]: "gcs"})
    clin["patient_id"] = clin["patient_id"].astype(str).str.strip()
    cdup = clin["patient_id"].duplicated(keep=False)
    if cdup.any():
        raise ValueError(f"{clin_path}: patients listed more than once: {sorted(set(clin.loc[cdup, 'patient_id']))[:6]}.")
    df = img.merge(clin[["patient_id", "label", "age", "gcs"]], on="patient_id", how="left", indicator=True)
    no_clin = df.loc[df["_merge"] == "left_only", "path"].tolist()
    if no_clin and require_clinical:
        raise ValueError(f"{len(no_clin)} image(s) have no row in {clin_path.name}: {no_clin[:6]}.")
    no_image = sorted(set(clin["patient_id"]) - set(img["patient_id"]))
    label = pd.to_numeric(df["label"], errors="coerce")
    disagree = df.loc[label.notna() & (label != df["folder_label"]), "path"].tolist()
    if disagree:
        raise ValueError(
            f"{len(disagree)} volume(s) are in a folder that contradicts '{COLUMNS['label']}' in {clin_path.name}: {disagree[:6]}."
        )
    age = pd.to_numeric(df["age"], errors="coerce")
    gcs = pd.to_numeric(df["gcs"], errors="coerce")
    bad_gcs = df.loc[gcs.notna() & ((gcs < 3) | (gcs > 15)), "patient_id"].tolist()
    if bad_gcs:
        raise ValueError(f"{clin_path.name}: GCS outside 3-15 for patients {bad_gcs[:6]}.")
    out = pd.DataFrame(
        {
            "sample_id": df["patient_id"],
            "patient_id": df["patient_id"],
            "path": df["path"],
            "folder": df["folder"],
            "prognosis": df["folder_label"].astype(int),
            "age": age,
            "gcs": gcs,
            "age_80": np.where(age.isna(), np.nan, (age >= 80).astype(float)),
            "gcs_bin": np.where(gcs.isna(), np.nan, (gcs <= 8).astype(float)),
            "gcs_ord": gcs_ordinal(gcs.to_numpy(dtype=float)).astype(float),
        }
    )
    n_good, n_poor = int((out["prognosis"] == 0).sum()), int((out["prognosis"] == 1).sum())
    report = Report(dataset=NAME, counts={
        "root": str(root),
        "clinical": str(clin_path),
        "n": len(out),
        "good": n_good,
        "poor": n_poor,
        "published": dict(PUBLISHED),
        "images_without_clinical": no_clin,
        "clinical_without_image": no_image,
        "missing_age": int(age.isna().sum()),
        "missing_gcs": int(gcs.isna().sum()),
        "other_files": other_files,
    })
    return Manifest(out, report)


def report_text(manifest: Manifest | Report) -> str:
    """What :func:`load_manifest` found (its :class:`~mtbench.data.report.Manifest` or report),
    against the published 261 = 99 good + 162 poor."""
    report = manifest.report if isinstance(manifest, Manifest) else manifest
    r: dict[str, Any] = report.counts if isinstance(report, Report) else {}
    if not r:
        return "No load report on this table."
    p = r["published"]
    lines = [
        f"ICH CT volumes found: {r['n']} (good {r['good']}, poor {r['poor']}); "
        f"published: {p['n']} (good {p['good']}, poor {p['poor']}); "
        f"difference: {r['n'] - p['n']:+d} (good {r['good'] - p['good']:+d}, poor {r['poor'] - p['poor']:+d}).",
        f"missing age: {r['missing_age']}, missing GCS: {r['missing_gcs']}.",
    ]
    if r["images_without_clinical"]:
        lines.append(f"{len(r['images_without_clinical'])} image(s) without a clinical row (kept, GCS/age masked): {r['images_without_clinical'][:5]}")
    if r["clinical_without_image"]:
        lines.append(f"{len(r['clinical_without_image'])} clinical row(s) without an image (not used): {r['clinical_without_image'][:5]}")
    if r["other_files"]:
        lines.append(f"{len(r['other_files'])} other file(s) in the prognosis folders ignored: {r['other_files'][:5]}")
    return "\n".join(lines)
