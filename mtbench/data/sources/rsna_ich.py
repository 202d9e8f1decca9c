"""RSNA 2019 Intracranial Hemorrhage Detection (Flanders et al. 2020; Kaggle), grouped into studies.

The Kaggle layout: one DICOM per slice in a flat folder, and a long label table::

    <root>/stage_2_train.csv          ID,Label   with rows ID_<slice>_<subtype>,0/1 (6 per slice)
    <root>/stage_2_train/ID_<slice>.dcm

Subtypes: :data:`SUBTYPES` (``any`` and the five hemorrhage types). Labels are per slice; a split
by slice would put one patient's slices on both sides, so :func:`load_manifest` groups the slices
into studies by ``StudyInstanceUID`` (headers only) and gives one row per study: a study is
positive for a subtype when any of its slices is. Each study becomes a folder of symbolic links
to its slices (under ``studies_dir``), so the canonical reader
(:func:`mtbench.data.io.read_dicom_series`) stacks it by position, and the cache handles it like
any series folder. :func:`read_labels` gives the per-slice table.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from mtbench.data.report import Manifest, Report

from mtbench.data.sources import dataset_folder

NAME = "rsna_ich"
DESCRIPTION = "RSNA 2019 ICH detection (Kaggle): head CT slices grouped into studies, any + 5 hemorrhage subtypes"
DEFAULT_FOLDER = "rsna_ich"
SUBTYPES = ("any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
PUBLISHED = {"images": 874035}


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """The long ``ID,Label`` table pivoted to one row per slice (``slice_id`` and the :data:`SUBTYPES` columns)."""
    path = Path(path)
    df = pd.read_csv(path)
    df.columns = [str(c).strip() for c in df.columns]
    if not {"ID", "Label"} <= set(df.columns):
        raise KeyError(f"{path}: expected columns 'ID' and 'Label'; found {list(df.columns)}.")
    parts = df["ID"].astype(str).str.strip().str.rsplit("_", n=1, expand=True)
    if parts.shape[1] != 2 or parts[1].isna().any():
        raise ValueError(f"{path}: column 'ID' must look like 'ID_<slice>_<subtype>'; e.g. {df['ID'].iloc[0]!r}.")
    bad = sorted(set(parts[1]) - set(SUBTYPES))
    if bad:
        raise ValueError(f"{path}: column 'ID' has unknown subtype(s) {bad[:5]}; expected {list(SUBTYPES)}.")
    label = pd.to_numeric(df["Label"], errors="coerce")
    odd = df.index[~label.isin([0, 1])].tolist()
    if odd:
        raise ValueError(f"{path}: column 'Label' must be 0/1; rows {odd[:5]} are not.")
    long = pd.DataFrame({"slice_id": parts[0], "subtype": parts[1], "label": label})
    dup = long.duplicated(["slice_id", "subtype"], keep=False)
    if dup.any():
        raise ValueError(f"{path}: repeated rows for {long.loc[dup, 'slice_id'].unique()[:5].tolist()}.")
    wide = long.pivot(index="slice_id", columns="subtype", values="label").reindex(columns=list(SUBTYPES))
    return wide.reset_index().rename_axis(columns=None)


def load_manifest(
    root: str | os.PathLike | None = None,
    labels: str = "stage_2_train.csv",
    images: str = "stage_2_train",
    studies_dir: str | os.PathLike | None = None,
) -> Manifest:
    """One row per study: ``sample_id`` (StudyInstanceUID), ``patient_id`` (PatientID), ``path``
    (the study's folder of links), ``n_slices``, and the :data:`SUBTYPES` columns (max over slices);
    and a report whose ``counts`` say what was left out.

    ``studies_dir``: where the per-study link folders go (default ``~/.cache/mtbench/rsna_ich_studies``).
    """
    import pydicom

    root = dataset_folder(root, DEFAULT_FOLDER, "RSNA ICH", (
        "Download the Kaggle competition "
        "rsna-intracranial-hemorrhage-detection (see mtbench/data_cards/rsna_ich.md) or set MTBENCH_DATA_ROOT."))
    table = read_labels(root / labels)
    img_dir = root / images
    if not img_dir.is_dir():
        raise FileNotFoundError(f"Slice folder {str(img_dir)!r} not found (pass images='...').")
    files = {f.stem: f for f in img_dir.iterdir() if f.suffix.lower() == ".dcm"}
    missing = sorted(set(table["slice_id"]) - set(files))
    unlabelled = sorted(set(files) - set(table["slice_id"]))
    rows = []
    for sid in table["slice_id"]:
        f = files.get(sid)
        if f is None:
            continue
        ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "PatientID"])
        rows.append({"slice_id": sid, "file": str(f), "study": str(getattr(ds, "StudyInstanceUID", "") or ""),
                     "patient_id": str(getattr(ds, "PatientID", "") or "")})
    slices = table.merge(pd.DataFrame(rows, columns=["slice_id", "file", "study", "patient_id"]), on="slice_id")
    no_study = slices.loc[slices["study"] == "", "file"].tolist()
    if no_study:
        raise ValueError(f"{len(no_study)} slice(s) have no StudyInstanceUID, so they cannot be grouped: {no_study[:5]}.")
    out_dir = Path(studies_dir) if studies_dir is not None else Path.home() / ".cache" / "mtbench" / "rsna_ich_studies"
    studies = []
    for uid, g in slices.groupby("study", sort=True):
        folder = out_dir / uid
        folder.mkdir(parents=True, exist_ok=True)
        for f in g["file"]:
            link = folder / Path(f).name
            if not link.exists():
                link.symlink_to(Path(f).resolve())
        patients = sorted(set(g["patient_id"]))
        studies.append({"sample_id": uid, "patient_id": patients[0], "path": str(folder), "n_slices": len(g),
                        **{s: float(g[s].max()) for s in SUBTYPES}})
    out = pd.DataFrame(studies, columns=["sample_id", "patient_id", "path", "n_slices", *SUBTYPES])
    report = Report(dataset=NAME, counts={
        "root": str(root),
        "images": len(slices),
        "studies": len(out),
        "published": dict(PUBLISHED),
        "labelled_slices_without_file": missing,
        "labels_without_file": len(missing),  # counted for the run's data_sources.json
        "files_without_labels": unlabelled,
    })
    if missing:  # labelled slices without a file are left out of their study: say so, never silently
        warnings.warn(f"RSNA ICH: {len(missing)} labelled slice(s) have no file in {str(img_dir)!r} "
                      f"(e.g. {missing[:5]}): left out of their studies.", stacklevel=2)
    return Manifest(out, report)
