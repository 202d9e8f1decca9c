"""The COVID-19 image data collection (Cohen et al.) with BrixIA public annotations.

Reads two public GitHub repositories *in their original layout* (a full clone or a partial one,
such as the 120-image subset in ``<data_root>/cohen-covid-mini``)::

    <root>/covid-chestxray-dataset/metadata.csv                 latin-1, header ends with a comma
    <root>/covid-chestxray-dataset/images/<filename>
    <root>/covid-chestxray-dataset/annotations/covid-severity-scores.csv   ('#' comment lines)
    <root>/Brixia-score-COVID-19/data/public-annotations.csv    UTF-8 with BOM; S-A..S-F, S-Global, J-*

References: J. P. Cohen et al., "COVID-19 Image Data Collection: Prospective Predictions Are the
Future", arXiv:2006.11988; A. Signoroni et al., "BS-Net: learning COVID-19 pneumonia severity on a
large chest X-ray dataset", Medical Image Analysis 2021.

What the adapter does (every choice is an option, every drop is counted in the report it returns,
``load_manifest(...).report.counts``):

* keeps X-ray rows whose ``view`` is frontal (``PA``, ``AP``, ``AP Supine``, ``AP semi erect``, ...);
* **missing image files** (the collection's rows whose file is not in the clone) are counted,
  listed in the report and skipped;
* every skip is also a :class:`~mtbench.data.report.Problem` of that
  :class:`~mtbench.data.report.Report`, and the counts are compared with the data card
  ``mtbench/data_cards/cohen_covid.md`` (differences in ``counts["card_differences"]`` and as warnings);
* **duplicated file names**: the collection lists five file names twice under two patient ids;
  each file becomes one sample, and the patient ids that share a file are merged into one group
  (``patient_id = "285+339"``) so that a patient-grouped split can never put the same image in
  training and test;
* prognosis as in AIforCOVID (Ruffini et al. 2024): **severe** (1) = died (``survival == N``),
  went to the ICU or was intubated; **mild** (0) = neither ICU nor intubated (both recorded ``N``);
  anything else has no prognosis label (NaN) and keeps only the tasks it has;
* BrixIA: the six zone scores A-F (A-C right lung, upper to lower; D-F left lung) of the senior
  (``S-``) or junior (``J-``) radiologist, the 6-character zone string, per-lung and global scores;
* the Cohen et al. geographic-extent and opacity scores where present.

The images themselves are read later (:func:`mtbench.data.cxr.preprocess_images`): grayscale from
RGB / RGBA, percentile clipping, resize.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mtbench.data.report import Manifest, Report

from mtbench.profiles import data_root

NAME = "cohen_covid"
DESCRIPTION = (
    "COVID-19 image data collection (Cohen et al.) + BrixIA public annotations: frontal CXRs, "
    "prognosis (severe = died/ICU/intubated) and six-zone Brixia scores"
)
ZONES = ("A", "B", "C", "D", "E", "F")
FRONTAL_PREFIXES = ("PA", "AP")
COHEN_DIR = "covid-chestxray-dataset"
BRIXIA_FILE = Path("Brixia-score-COVID-19") / "data" / "public-annotations.csv"
log = logging.getLogger("mtbench.data")


def default_root() -> Path:
    """``<data_root>/cohen-covid-mini`` (the subset shipped beside the project)."""
    return data_root() / "cohen-covid-mini"


def read_metadata(path: str | Path) -> pd.DataFrame:
    """``metadata.csv`` of the collection (latin-1; the trailing comma's empty column dropped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Cohen et al. metadata not found: {path}")
    meta = pd.read_csv(path, encoding="latin-1", dtype={"patientid": str}, low_memory=False)
    meta = meta.loc[:, ~meta.columns.str.startswith("Unnamed:")]
    needed = {"patientid", "filename", "view", "modality", "survival", "went_icu", "intubated"}
    missing = needed - set(meta.columns)
    if missing:
        raise ValueError(f"{path}: columns {sorted(missing)} are missing (has {list(meta.columns)}).")
    return meta


def read_brixia_annotations(path: str | Path, rater: str = "senior") -> pd.DataFrame:
    """BrixIA public annotations: ``filename``, ``zone_A..zone_F``, ``brixia_global``, ``brixia_zones``.

    ``rater`` is ``"senior"`` (``S-`` columns, the reference standard of BS-Net) or ``"junior"``.
    The zone string is built as text (``"012311"``), so leading zeros are kept.
    """
    prefix = {"senior": "S-", "junior": "J-"}.get(rater)
    if prefix is None:
        raise ValueError(f"rater must be 'senior' or 'junior', got {rater!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BrixIA public annotations not found: {path}")
    ann = pd.read_csv(path, encoding="utf-8-sig")
    cols = [f"{prefix}{z}" for z in ZONES] + [f"{prefix}Global"]
    missing = [c for c in ["filename", *cols] if c not in ann.columns]
    if missing:
        raise ValueError(f"{path}: columns {missing} are missing (has {list(ann.columns)}).")
    out = pd.DataFrame({"filename": ann["filename"].astype(str)})
    for z in ZONES:
        v = pd.to_numeric(ann[f"{prefix}{z}"], errors="coerce")
        bad = v.notna() & ~v.isin([0, 1, 2, 3])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{path}, row {i + 2}, column {prefix}{z}: zone score {ann[f'{prefix}{z}'].astype(object).iloc[i]!r} not in 0-3.")
        out[f"zone_{z}"] = v.astype(float)
    out["brixia_global"] = pd.to_numeric(ann[f"{prefix}Global"], errors="coerce").astype(float)
    zsum = out[[f"zone_{z}" for z in ZONES]].sum(axis=1, min_count=6)
    bad = out["brixia_global"].notna() & zsum.notna() & (zsum != out["brixia_global"])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}, row {i + 2} ({out['filename'].iloc[i]}): {prefix}Global = {out['brixia_global'].iloc[i]:g} "
            f"but the zones sum to {zsum.iloc[i]:g}."
        )
    out["brixia_zones"] = [
        "".join(str(int(r[f"zone_{z}"])) for z in ZONES) if all(pd.notna(r[f"zone_{z}"]) for z in ZONES) else None
        for _, r in out.iterrows()
    ]
    dup = out["filename"].duplicated(keep=False)
    if dup.any():
        raise ValueError(f"{path}: file names annotated twice: {sorted(set(out.loc[dup, 'filename']))[:5]}.")
    return out


def read_severity_scores(path: str | Path) -> pd.DataFrame:
    """Cohen et al.'s geographic-extent (0-8) and opacity (0-6) means (lines starting ``#`` skipped)."""
    ann = pd.read_csv(path, comment="#")
    ann = ann.loc[:, ~ann.columns.str.startswith("Unnamed:")]
    return ann.rename(columns={"geographic_mean": "geographic_extent", "opacity_mean": "opacity"})


def prognosis_from_outcomes(meta: pd.DataFrame) -> pd.Series:
    """1 = severe (died, ICU or intubated), 0 = mild (ICU = N and intubated = N), NaN otherwise."""
    y = lambda c: meta[c].astype(str).str.strip().str.upper().eq("Y")  # noqa: E731
    n = lambda c: meta[c].astype(str).str.strip().str.upper().eq("N")  # noqa: E731
    severe = n("survival") | y("went_icu") | y("intubated")
    mild = ~severe & n("went_icu") & n("intubated")
    out = pd.Series(np.nan, index=meta.index, name="prognosis")
    out[severe] = 1.0
    out[mild] = 0.0
    return out


def _merge_patient_groups(meta: pd.DataFrame) -> pd.Series:
    """Patient ids that share a file name are one group (union-find); returns the group per row."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for _, ids in meta.groupby("filename")["patientid"]:
        ids = list(pd.unique(ids))
        for other in ids[1:]:
            ra, rb = find(ids[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, set[str]] = {}
    for pid in meta["patientid"]:
        members.setdefault(find(pid), set()).add(pid)
    name = {root: "+".join(sorted(m, key=lambda s: (len(s), s))) for root, m in members.items()}
    return meta["patientid"].map(lambda p: name[find(p)])


def load_manifest(
    root: str | Path | None = None,
    frontal_only: bool = True,
    brixia: bool = True,
    brixia_rater: str = "senior",
    require_image: bool = True,
) -> Manifest:
    """One row per frontal X-ray image of the collection found on disk.

    Parameters
    ----------
    root:
        Folder holding ``covid-chestxray-dataset/`` and ``Brixia-score-COVID-19/``; default
        ``<data_root>/cohen-covid-mini``.
    frontal_only:
        Keep only views starting with ``PA`` or ``AP`` (PA, AP, AP Supine, AP semi erect...).
    brixia:
        Join the BrixIA public annotations (zone scores; NaN where an image has none).
    brixia_rater:
        ``"senior"`` or ``"junior"`` radiologist.
    require_image:
        Drop (and count) rows whose image file is absent. With ``False`` they stay, ``exists`` False.

    Returns
    -------
    :class:`~mtbench.data.report.Manifest`: a table with ``sample_id`` (the file name), ``patient_id`` (merged group), ``path``,
    ``dataset``, ``center`` (the ``location`` column), ``view``, outcome columns, ``prognosis``
    (1 severe / 0 mild / NaN), ``zone_A..zone_F``, ``brixia_zones`` (6-char string),
    ``brixia_right`` (A+B+C), ``brixia_left`` (D+E+F), ``brixia_global`` (0-18),
    ``geographic_extent``, ``opacity``; and a report whose ``counts`` say what was kept and dropped
    and why, and whose ``problems`` name every skipped row.
    """
    from mtbench.data.cards import compare_with_card

    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise FileNotFoundError(f"Cohen et al. data folder not found: {root} (expected {COHEN_DIR}/ inside).")
    cohen = root / COHEN_DIR
    meta = read_metadata(cohen / "metadata.csv")
    if meta.empty:
        raise ValueError(f"{cohen / 'metadata.csv'}: no data rows.")
    report: dict = {"root": str(root), "metadata_rows": len(meta)}
    validation = Report(dataset=NAME)
    meta_file = str(cohen / "metadata.csv")
    meta = meta.copy()
    meta["patientid"] = meta["patientid"].astype(str).str.strip()
    # Groups are found on the whole table (a file listed twice merges its patient ids everywhere).
    meta["patient_group"] = _merge_patient_groups(meta)
    all_dup = meta["filename"].duplicated(keep=False)
    report["duplicated_filenames"] = sorted(set(meta.loc[all_dup, "filename"]))
    report["merged_patient_groups"] = sorted(set(meta.loc[meta["patient_group"].str.contains("+", regex=False), "patient_group"]))

    for g in report["merged_patient_groups"]:
        validation.warning("merged-patients", f"patient ids {g.split('+')} share an image file: merged into group {g!r}",
                           file=meta_file, column="patientid")
    for fname in report["duplicated_filenames"]:
        rows = list(meta.index[meta["filename"] == fname] + 2)
        validation.warning("duplicate-filename", f"{fname!r} listed {len(rows)} times (file rows {rows}): one sample kept",
                           file=meta_file, column="filename")

    xray = meta["modality"].astype(str).str.strip().eq("X-ray")
    report["not_xray"] = int((~xray).sum())
    if report["not_xray"]:
        mods = meta.loc[~xray, "modality"].astype(str).value_counts().to_dict()
        validation.warning("not-xray-skipped", f"{report['not_xray']} rows are not X-rays {mods}: skipped",
                           file=meta_file, column="modality")
    meta = meta[xray]
    if frontal_only:
        view = meta["view"].fillna("").astype(str).str.strip()
        frontal = view.str.startswith(FRONTAL_PREFIXES)
        report["not_frontal"] = int((~frontal).sum())
        report["not_frontal_views"] = view[~frontal].value_counts().to_dict()
        for v, n in report["not_frontal_views"].items():
            validation.warning("non-frontal-skipped", f"{n} X-ray rows with view {v!r} (not frontal): skipped",
                               file=meta_file, column="view")
        meta = meta[frontal]

    # Duplicated file names: one sample per file, patient ids sharing it merged into one group.
    dup = meta["filename"].duplicated(keep=False)
    conflicts = []
    for fname, rows in meta[dup].groupby("filename"):
        p = prognosis_from_outcomes(rows)
        if p.nunique(dropna=False) > 1:
            conflicts.append(fname)
    report["duplicate_label_conflicts"] = conflicts
    before = len(meta)
    meta = meta.drop_duplicates("filename", keep="first")
    report["duplicate_rows_dropped"] = before - len(meta)

    folder = meta["folder"].fillna("images").astype(str) if "folder" in meta.columns else "images"
    meta = meta.assign(path=[str(cohen / f / n) for f, n in zip(folder, meta["filename"])])
    exists = meta["path"].map(lambda p: Path(p).is_file())
    report["missing_files"] = int((~exists).sum())
    report["missing_examples"] = meta.loc[~exists, "filename"].head(10).tolist()
    meta = meta.assign(exists=exists.to_numpy())
    for fname, p in zip(meta.loc[~exists, "filename"], meta.loc[~exists, "path"]):
        validation.warning("missing-file", f"image of metadata row {fname!r} is not in this clone"
                           + (": skipped" if require_image else ": kept with exists=False"), file=p)
    if require_image:
        meta = meta[exists]
    if report["missing_files"]:
        log.info("cohen_covid: %d of %d frontal X-ray rows have no image file under %s (skipped=%s).",
                 report["missing_files"], len(exists), cohen, require_image)

    out = pd.DataFrame(
        {
            "sample_id": meta["filename"].astype(str).to_numpy(),
            "patient_id": meta["patient_group"].to_numpy(),
            "path": meta["path"].to_numpy(),
            "dataset": NAME,
            "center": meta["location"].fillna("unknown").astype(str).to_numpy() if "location" in meta else "unknown",
            "view": meta["view"].astype(str).to_numpy(),
            "survival": meta["survival"].to_numpy(),
            "went_icu": meta["went_icu"].to_numpy(),
            "intubated": meta["intubated"].to_numpy(),
            "prognosis": prognosis_from_outcomes(meta).to_numpy(),
            "exists": meta["exists"].to_numpy(),
        }
    )
    zone_cols = [f"zone_{z}" for z in ZONES]
    if brixia:
        bx = read_brixia_annotations(root / BRIXIA_FILE, rater=brixia_rater)
        out = out.merge(bx.rename(columns={"filename": "sample_id"}), on="sample_id", how="left")
        report["brixia_annotations"] = len(bx)
        report["brixia_matched"] = int(out["brixia_global"].notna().sum())
    else:
        for c in zone_cols + ["brixia_global"]:
            out[c] = np.nan
        out["brixia_zones"] = None
    out["brixia_right"] = out[zone_cols[:3]].sum(axis=1, min_count=3)
    out["brixia_left"] = out[zone_cols[3:]].sum(axis=1, min_count=3)
    sev_path = cohen / "annotations" / "covid-severity-scores.csv"
    if sev_path.is_file():
        sev = read_severity_scores(sev_path).rename(columns={"filename": "sample_id"})
        out = out.merge(sev, on="sample_id", how="left")
    else:
        out["geographic_extent"] = np.nan
        out["opacity"] = np.nan
    report.update(
        images=len(out),
        patients=int(out["patient_id"].nunique()),
        severe=int((out["prognosis"] == 1).sum()),
        mild=int((out["prognosis"] == 0).sum()),
        no_prognosis=int(out["prognosis"].isna().sum()),
        with_brixia=int(out["brixia_global"].notna().sum()),
    )
    if brixia:
        unmatched = report["brixia_annotations"] - report["brixia_matched"]
        if unmatched:
            validation.warning("annotation-without-image", f"{unmatched} BrixIA annotations name no kept image "
                               "(absent from the clone or not frontal)", file=str(root / BRIXIA_FILE))
    # Counts against the data card (mtbench/data_cards/cohen_covid.md): differences are reported, not raised.
    report["card_differences"] = compare_with_card(NAME, report, root=root, report=validation)
    validation.counts = report
    return Manifest(out, validation)


def format_report(report: Report | dict) -> str:
    """A few readable lines from the report of :func:`load_manifest` (or its ``counts``)."""
    report = report.counts if isinstance(report, Report) else report
    lines = [
        f"metadata rows {report['metadata_rows']}; non-X-ray {report['not_xray']}; non-frontal {report.get('not_frontal', 0)}",
        f"duplicated file names {len(report['duplicated_filenames'])} -> merged patient groups {report['merged_patient_groups']}",
        f"frontal X-ray files missing from this clone: {report['missing_files']} (counted and skipped)",
        f"kept {report['images']} images of {report['patients']} patients: severe {report['severe']}, "
        f"mild {report['mild']}, no prognosis {report['no_prognosis']}; with BrixIA scores {report['with_brixia']}",
    ]
    return "\n".join(lines)
