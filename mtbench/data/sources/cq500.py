"""CQ500: 491 head CT studies read by three radiologists (Chilamkurthy et al., Lancet 2018; qure.ai).

The layout of the public download (one zip per study, extracted in place) and the readers' table::

    <root>/reads.csv                                   name, Category, R1:ICH, R1:IPH, ..., R3:MassEffect
    <root>/CQ500CT0 CQ500CT0/Unknown Study/CT PLAIN THIN/CT000000.dcm ...
    <root>/CQ500CT0 CQ500CT0/Unknown Study/CT 4cm/...      (several series per study)

``reads.csv`` names a study ``CQ500-CT-<n>``; its folder is ``CQ500CT<n> CQ500CT<n>`` (the series
folders may sit one level deeper or shallower: every folder of DICOM files under the study counts).

Series selection (one volume per study, documented rule :func:`select_series`): drop bone-kernel
series (description contains ``BONE``), series of fewer than ``min_slices`` files (scouts,
localisers) and non-axial ones; of the rest take the thinnest ``SliceThickness``, then prefer
``PLAIN`` in the description, then the most slices. The chosen folder is the image ``path``
(read by :func:`mtbench.data.io.read_dicom_series`, canonical orientation, tilt corrected).

Labels: the majority vote (at least 2 of the 3 readers) of each finding, 0/1, in the columns of
:data:`FINDINGS` (``ich``, the five subtypes, ``fracture``, ``calvarial_fracture``,
``midline_shift``, ``mass_effect``): a multi-label, multi-task target. Per-reader columns are kept
as ``r1_ich`` ... for reader studies.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mtbench.data.report import Manifest, Report

from mtbench.data.sources import dataset_folder

NAME = "cq500"
DESCRIPTION = "CQ500 (qure.ai): 491 head CT studies, 3 readers: ICH + 5 subtypes, fractures, midline shift, mass effect"
DEFAULT_FOLDER = "cq500"
PUBLISHED = {"scans": 491}
FINDINGS = {
    "ich": "ICH", "iph": "IPH", "ivh": "IVH", "sdh": "SDH", "edh": "EDH", "sah": "SAH",
    "fracture": "Fracture", "calvarial_fracture": "CalvarialFracture",
    "midline_shift": "MidlineShift", "mass_effect": "MassEffect",
}
READERS = ("R1", "R2", "R3")
_NAME = re.compile(r"CQ500-?CT-?(\d+)", re.IGNORECASE)


def study_number(name: str) -> int | None:
    """``"CQ500-CT-12"`` or ``"CQ500CT12 CQ500CT12"`` -> 12."""
    m = _NAME.search(str(name))
    return int(m.group(1)) if m else None


def read_reads(path: str | os.PathLike) -> pd.DataFrame:
    """``reads.csv``: one row per study, majority-vote finding columns plus ``r1_ich``... per reader."""
    path = Path(path)
    df = pd.read_csv(path)
    df.columns = [str(c).strip() for c in df.columns]
    need = ["name"] + [f"{r}:{f}" for r in READERS for f in FINDINGS.values()]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise KeyError(f"{path}: missing column(s) {missing[:8]}; found {list(df.columns)[:12]}...")
    out = pd.DataFrame({"name": df["name"].astype(str).str.strip()})
    out["study"] = out["name"].map(study_number)
    if out["study"].isna().any():
        raise ValueError(f"{path}: column 'name' has ids not like 'CQ500-CT-<n>': {out.loc[out['study'].isna(), 'name'].tolist()[:5]}")
    for col, f in FINDINGS.items():
        votes = []
        for r in READERS:
            v = pd.to_numeric(df[f"{r}:{f}"], errors="coerce")
            bad = df.index[v.notna() & ~v.isin([0, 1])].tolist()
            if bad:
                raise ValueError(f"{path}: column '{r}:{f}' has values other than 0/1 in rows {bad[:5]}.")
            out[f"{r.lower()}_{col}"] = v
            votes.append(v)
        votes = pd.concat(votes, axis=1)
        out[col] = np.where(votes.notna().sum(axis=1) < 2, np.nan, (votes.sum(axis=1) >= 2).astype(float))
    if "Category" in df.columns:
        out["batch"] = df["Category"].astype(str).str.strip()
    return out


def _series_info(folder: Path) -> dict | None:
    import pydicom
    from pydicom.misc import is_dicom

    files = [f for f in sorted(folder.iterdir()) if f.is_file() and not f.name.startswith(".")]
    dcm = [f for f in files if f.suffix.lower() == ".dcm" or is_dicom(f)]
    if not dcm:
        return None
    ds = pydicom.dcmread(dcm[0], stop_before_pixels=True)
    iop = np.asarray(getattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 1, 0]), float)
    normal = np.cross(iop[:3], iop[3:])
    return {
        "folder": str(folder),
        "description": str(getattr(ds, "SeriesDescription", "") or folder.name),
        "n_slices": len(dcm),
        "thickness": float(getattr(ds, "SliceThickness", 0) or np.inf),
        "axial": bool(abs(normal[2]) > 0.9),
    }


def select_series(candidates: list[dict], min_slices: int = 20) -> dict | None:
    """The documented rule (module docstring): thin, plain (non-bone) axial series with enough slices."""
    ok = [c for c in candidates if c["axial"] and c["n_slices"] >= min_slices and "BONE" not in c["description"].upper()]
    if not ok:
        return None
    return min(ok, key=lambda c: (c["thickness"], "PLAIN" not in c["description"].upper(), -c["n_slices"]))


def load_manifest(root: str | os.PathLike | None = None, reads: str = "reads.csv", min_slices: int = 20) -> Manifest:
    """One row per study with an image: ``sample_id`` (``CQ500-CT-<n>``), ``patient_id`` (the same:
    one study per patient), ``path`` (the chosen series folder), ``series``, ``n_series``, finding
    columns (:data:`FINDINGS`, majority vote) and per-reader columns; and a report whose ``counts``
    say what was left out."""
    root = dataset_folder(root, DEFAULT_FOLDER, "CQ500", (
        "Download the studies and reads.csv from "
        "http://headctstudy.qure.ai/dataset (see mtbench/data_cards/cq500.md) or set MTBENCH_DATA_ROOT."))
    reads_path = root / reads
    if not reads_path.is_file():
        raise FileNotFoundError(f"{str(reads_path)!r} not found: the readers' table comes with the download.")
    table = read_reads(reads_path)
    studies: dict[int, Path] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        n = study_number(d.name)
        if n is not None:
            studies[n] = d
    rows, no_series = [], []
    for n, d in sorted(studies.items()):
        cands = [c for c in (_series_info(f) for f in [d, *sorted(p for p in d.rglob("*") if p.is_dir())]) if c]
        chosen = select_series(cands, min_slices)
        if chosen is None:
            no_series.append(f"{d.name}: {[c['description'] for c in cands]}")
            continue
        rows.append({"study": n, "path": chosen["folder"], "series": chosen["description"], "n_series": len(cands)})
    img = pd.DataFrame(rows, columns=["study", "path", "series", "n_series"])
    df = table.merge(img, on="study", how="inner")
    out = df.assign(sample_id=df["name"], patient_id=df["name"]).drop(columns=["study"])
    first = ["sample_id", "patient_id", "path", "series", "n_series", *FINDINGS]
    out = out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)
    no_image = sorted(table.loc[~table["study"].isin(img["study"]), "name"].tolist())
    report = Report(dataset=NAME, counts={
        "root": str(root),
        "scans": len(out),
        "reads_without_image": len(no_image),  # counted for the run's data_sources.json
        "published": dict(PUBLISHED),
        "studies_without_reads": sorted(f"CQ500-CT-{n}" for n in set(studies) - set(table["study"])),
        "reads_without_study": sorted(table.loc[~table["study"].isin(studies), "name"].tolist()),
        "studies_without_usable_series": no_series,
    })
    if no_image and not out.empty:  # the inner merge leaves these reads out: say so, never silently
        warnings.warn(f"CQ500: {len(no_image)} of {len(table)} rows of {reads} have no study folder with a usable "
                      f"series in {str(root)!r} (e.g. {no_image[:5]}): left out. See the report's counts.", stacklevel=2)
    if out.empty:
        raise ValueError(
            f"No CQ500 study with a usable series in {str(root)!r} ({len(studies)} study folder(s); "
            f"without a thin plain axial series: {no_series[:5]}; reads.csv has {len(table)} rows)."
        )
    return Manifest(out, report)
