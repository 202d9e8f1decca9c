"""AIforCOVID: CXRs of COVID-19 patients from six Italian hospitals, prognosis mild vs severe.

Released after registration (https://aiforcovid.radiomica.it), in three releases. Layout read::

    <root>/<clinical>.xlsx        one row per image: ImageFile, Hospital, Prognosis (MILD / SEVERE),
                                  plus clinical variables (several xlsx files, one per release, are
                                  concatenated)
    <root>/imgs/<ImageFile>.dcm   DICOM images (``image_dir``; a file name without suffix gets ``.dcm``)
    <root>/masks/<ImageFile>.png  optional lung masks (``mask_dir``)

and the split files of Ruffini et al. (2024): ``<split_dir>/<fold>/{train,val,test}.txt`` with one
``img label center`` line per image (label ``MILD``/``SEVERE`` or 0/1). :func:`read_fold_splits`
turns a split directory into one table ``img, label, center, fold, split``; for
leave-one-center-out the fold folders are named after the held-out hospital.

Reference: P. Soda et al., "AIforCOVID: Predicting the clinical outcomes in patients with COVID-19
applying AI to chest-X-rays. An Italian multicentre study", Medical Image Analysis 74 (2021).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from mtbench.data.report import Manifest, Report

NAME = "aiforcovid"
DESCRIPTION = "AIforCOVID (registration): DICOM CXRs of six hospitals, clinical xlsx, prognosis mild/severe, paper split files"
PROGNOSIS_CODES = {"MILD": 0, "SEVERE": 1, "0": 0, "1": 1}
SPLITS = ("train", "val", "test")
log = logging.getLogger("mtbench.data")


def _prognosis(value, where: str) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return np.nan
    key = str(value).strip().upper()
    if key.endswith(".0"):
        key = key[:-2]
    if key not in PROGNOSIS_CODES:
        raise ValueError(f"{where}: prognosis {value!r} is not MILD/SEVERE (or 0/1).")
    return float(PROGNOSIS_CODES[key])


def read_clinical(paths: Sequence[str | Path], image_column: str = "ImageFile", center_column: str = "Hospital",
                  prognosis_column: str = "Prognosis") -> pd.DataFrame:
    """Concatenate the clinical spreadsheets (one per release), checking the needed columns."""
    frames = []
    for release, path in enumerate(paths, start=1):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"AIforCOVID clinical file not found: {path}")
        df = pd.read_excel(path)
        missing = [c for c in (image_column, center_column, prognosis_column) if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: columns {missing} are missing (has {list(df.columns)}).")
        df = df.assign(release=release, source_file=path.name, source_row=np.arange(len(df)) + 2)
        frames.append(df)
    if not frames:
        raise ValueError("No AIforCOVID clinical xlsx file given.")
    out = pd.concat(frames, ignore_index=True)
    dup = out[image_column].astype(str).duplicated(keep=False)
    if dup.any():
        raise ValueError(f"{image_column} listed twice across the clinical files: {sorted(set(out.loc[dup, image_column].astype(str)))[:5]}.")
    return out


def load_manifest(
    root: str | Path | None = None,
    clinical: str | Sequence[str] | None = None,
    image_dir: str = "imgs",
    mask_dir: str | None = None,
    require_image: bool = True,
    image_column: str = "ImageFile",
    center_column: str = "Hospital",
    prognosis_column: str = "Prognosis",
) -> Manifest:
    """One row per AIforCOVID image: ``sample_id``, ``patient_id``, ``path``, ``center``, ``prognosis``.

    ``clinical``: xlsx file name(s) under ``root`` (default: every ``*.xlsx`` in ``root``, sorted).
    A patient has one image in AIforCOVID, so ``patient_id`` is the image id. Missing DICOM files
    are counted in the report (``report.counts["missing_files"]``) and skipped; returns a
    :class:`~mtbench.data.report.Manifest`.
    """
    from mtbench.profiles import data_root

    root = Path(root) if root is not None else data_root() / "aiforcovid"
    if clinical is None:
        files = sorted(root.glob("*.xlsx"))
        if not files:
            raise FileNotFoundError(f"No clinical *.xlsx file in {root}; pass clinical='AIforCOVID.xlsx'.")
    else:
        files = [root / c for c in ([clinical] if isinstance(clinical, str) else clinical)]
    table = read_clinical(files, image_column, center_column, prognosis_column)
    ids = table[image_column].astype(str).str.strip()
    paths = [root / image_dir / (i if Path(i).suffix else i + ".dcm") for i in ids]
    exists = np.array([p.is_file() for p in paths], dtype=bool)
    prognosis = [
        _prognosis(v, f"{f}, row {r}, column {prognosis_column}")
        for v, f, r in zip(table[prognosis_column], table["source_file"], table["source_row"])
    ]
    out = pd.DataFrame(
        {
            "sample_id": ids.map(lambda s: Path(s).stem),
            "patient_id": ids.map(lambda s: Path(s).stem),
            "path": [str(p) for p in paths],
            "dataset": NAME,
            "center": table[center_column].astype(str).str.strip(),
            "release": table["release"],
            "prognosis": prognosis,
        }
    )
    if mask_dir is not None:
        out["mask_path"] = [str(root / mask_dir / (Path(i).stem + ".png")) for i in ids]
    extra = [c for c in table.columns if c not in (image_column, center_column, prognosis_column, "release", "source_file", "source_row")]
    for c in extra:
        out[f"clinical.{c}"] = table[c].to_numpy()
    report = {
        "clinical_files": [str(f) for f in files],
        "rows": len(out),
        "missing_files": int((~exists).sum()),
        "missing_examples": out.loc[~exists, "sample_id"].head(10).tolist(),
    }
    if report["missing_files"]:
        log.info("aiforcovid: %d of %d images missing under %s.", report["missing_files"], len(out), root / image_dir)
    from mtbench.data.cards import compare_with_card
    validation = Report(dataset=NAME)
    for p in out.loc[~exists, "path"]:
        validation.warning("missing-file", "DICOM file of a clinical row is absent" + (": skipped" if require_image else ""), file=p)
    no_label = out["prognosis"].isna()
    for sid, f, r in zip(out.loc[no_label, "sample_id"], table.loc[no_label.to_numpy(), "source_file"], table.loc[no_label.to_numpy(), "source_row"]):
        validation.warning("missing-label", f"image {sid!r} has no prognosis (kept, NaN)", file=f, row=int(r), column=prognosis_column)
    if require_image:
        out = out[exists].reset_index(drop=True)
    report.update(images=len(out), severe=int((out["prognosis"] == 1).sum()), mild=int((out["prognosis"] == 0).sum()),
                  centers=out["center"].value_counts().to_dict())
    report["card_differences"] = compare_with_card(NAME, report, root=root, report=validation)
    validation.counts = report
    return Manifest(out, validation)


def read_split_file(path: str | Path) -> pd.DataFrame:
    """One ``img label center`` file (whitespace, comma or semicolon separated; header optional)."""
    from mtbench.data.splits import read_split_lines

    raw = read_split_lines(path)
    return pd.DataFrame(
        {
            "img": [Path(x).stem for x in raw["img"]],
            "label": [_prognosis(lab, f"{path}, line {ln}") for lab, ln in zip(raw["label"], raw["line"])],
            "center": raw["center"],
        },
        columns=["img", "label", "center"],
    )


def read_fold_splits(split_dir: str | Path, check_disjoint: bool = True) -> pd.DataFrame:
    """All folds of a split directory ``<split_dir>/<fold>/{train,val,test}.txt`` as one table.

    Columns ``img, label, center, fold, split``. With ``check_disjoint`` an image in two splits
    of the same fold is an error (naming fold, image and splits).
    """
    split_dir = Path(split_dir)
    folds = sorted(p for p in split_dir.iterdir() if p.is_dir()) if split_dir.is_dir() else []
    if not folds:
        raise FileNotFoundError(f"No fold folders under {split_dir} (expected <fold>/train.txt, val.txt, test.txt).")
    parts = []
    for fold in folds:
        for split in SPLITS:
            f = fold / f"{split}.txt"
            if not f.is_file():
                raise FileNotFoundError(f"Fold {fold.name!r}: missing {f}.")
            parts.append(read_split_file(f).assign(fold=fold.name, split=split))
    table = pd.concat(parts, ignore_index=True)
    if check_disjoint:
        dup = table.duplicated(["fold", "img"], keep=False)
        if dup.any():
            r = table[dup].iloc[0]
            where = table[dup & (table["img"] == r["img"]) & (table["fold"] == r["fold"])]["split"].tolist()
            raise ValueError(f"Fold {r['fold']!r}: image {r['img']!r} is in several splits {where}.")
    return table


def attach_splits(manifest: Manifest, splits: pd.DataFrame, fold: str, require_positive: bool = True) -> Manifest:
    """The manifest rows of one fold with a ``split`` column; split images absent from the manifest
    are an error naming them, and label disagreements between split file and xlsx too. Manifest
    rows the fold's split files leave out are counted (``report.counts["not_in_split_files"]``)
    and named in a warning, never dropped silently.

    With ``require_positive`` (default) a fold whose test split has no SEVERE case is refused
    (:class:`~mtbench.data.validate.FoldError` naming the fold): its AUC would be undefined."""
    manifest, before = manifest
    part = splits[splits["fold"].astype(str) == str(fold)]
    if part.empty:
        raise ValueError(f"No fold {fold!r} in the split table (folds: {sorted(splits['fold'].unique())}).")
    merged = manifest.merge(part[["img", "label", "split"]], left_on="sample_id", right_on="img", how="inner")
    absent = sorted(set(part["img"]) - set(manifest["sample_id"]))
    if absent:
        raise ValueError(f"Fold {fold!r}: {len(absent)} split images are not in the manifest, e.g. {absent[:5]}.")
    bad = merged["label"].notna() & merged["prognosis"].notna() & (merged["label"] != merged["prognosis"])
    if bad.any():
        raise ValueError(f"Fold {fold!r}: split-file labels disagree with the clinical file for {merged.loc[bad, 'sample_id'].tolist()[:5]}.")
    out = merged.drop(columns=["img", "label"])
    left_out = sorted(set(manifest["sample_id"]) - set(part["img"]))
    report = before.with_counts(not_in_split_files=len(left_out))
    if left_out:
        warnings.warn(f"Fold {fold!r}: {len(left_out)} of {len(manifest)} manifest images are in none of its split files "
                      f"(e.g. {left_out[:5]}): left out of this fold.", stacklevel=2)
    if require_positive:
        from mtbench.data.validate import check_folds

        check_folds(out.assign(fold=str(fold)), "fold", ["prognosis"], split_column="split", split="test",
                    require_negative=False)
    return Manifest(out, report)
