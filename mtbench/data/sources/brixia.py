"""BrixIA: 4,703 CXRs of COVID-19 patients with six-zone Brixia scores (Signoroni et al. 2021).

The data set is released on request (https://brixia.github.io). This adapter reads it as shipped::

    <root>/metadata_global_v2.csv     Filename, Subject, ..., PhotometricInterpretation,
                                      ConsensusTestset, BrixiaScore (6-char string), BrixiaScoreGlobal
    <root>/dicom_clean/<Filename>     DICOM images (MONOCHROME1 and MONOCHROME2)
    <root>/masks/<stem>.png           optional lung masks (for the lung bounding box)

and the split files of Ruffini et al. (2024), one line per image: ``img label center`` where, for
BrixIA, ``label`` is the zone string.

**Zone strings.** The Brixia score is six digits 0-3, zones A-F (A-C the right lung upper to
lower, D-F the left lung). Kept as a *string* (``"001233"``) it is exact. Read as a number, its
leading zeros vanish (``"001233"`` -> ``1233``); the paper's committed split files carry that loss
on 2,119 of 4,695 rows, so reading the string character by character shifts every zone (the
global score, the digit sum, survives). :func:`repair_zone_string` detects a string shorter than 6
characters and left-pads it with zeros (the only reading consistent with the global score, which is
checked when present). ``fix_zone_strings=False`` reproduces the original behaviour instead:
the short string read left-aligned, the missing trailing zones read as 0 — *our* reading of what
the original code did with a short string (a documented assumption: the code indexes characters).

Derived targets (:func:`add_brixia_targets`): per-lung scores (0-9), global score (0-18), the
global score binned ``<=4, 5-9, 10-14, >=15`` (4 classes, the paper's *Global* structure) and
per-lung 4-class bins (the *Lung* structure; the paper does not state the lung bin edges: the
default is the original code's ``<=1, 2-4, 5-7, >=8``, an option).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from mtbench.data.report import Manifest, Report

NAME = "brixia"
DESCRIPTION = "BrixIA (on request): DICOM CXRs with six-zone Brixia scores; zone strings kept as strings, lost zeros repaired"
ZONES = ("A", "B", "C", "D", "E", "F")
ZONE_COLUMNS = tuple(f"zone_{z}" for z in ZONES)
GLOBAL_EDGES = (4, 9, 14)  # classes: <=4, 5-9, 10-14, >=15
LUNG_EDGES = (1, 4, 7)  # classes: <=1, 2-4, 5-7, >=8 (the original code's; the paper does not state them)
_DIGITS = re.compile(r"^[0-3]{1,6}$")


# ------------------------------------------------------------------------- zone strings
def normalise_zone_token(value) -> str:
    """The zone string as text, undoing only float formatting (``12311.0`` -> ``"12311"``)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise ValueError("missing zone string")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if float(value) != int(value):
            raise ValueError(f"zone string {value!r} is not an integer")
        return str(int(value))
    s = str(value).strip()
    if s.endswith(".0") and s[:-2].isdigit():
        s = s[:-2]
    return s


def repair_zone_string(value, global_score: float | None = None) -> tuple[str, bool]:
    """``(six-character zone string, was_repaired)``; a short string is left-padded with zeros.

    With ``global_score`` the digit sum is checked (leading zeros add nothing, so the global score
    is the same before and after the repair); a mismatch is an error.
    """
    s = normalise_zone_token(value)
    if not _DIGITS.match(s):
        raise ValueError(f"zone string {value!r}: expected 1-6 digits 0-3")
    fixed = s.zfill(6)
    if global_score is not None and not pd.isna(global_score) and sum(map(int, fixed)) != int(global_score):
        raise ValueError(f"zone string {value!r} sums to {sum(map(int, fixed))}, but the global score is {global_score:g}")
    return fixed, len(s) < 6


def zones_original(value) -> tuple[int, ...]:
    """The original (buggy) reading: characters left-aligned into A..F, missing trailing zones 0."""
    s = normalise_zone_token(value)
    if not _DIGITS.match(s):
        raise ValueError(f"zone string {value!r}: expected 1-6 digits 0-3")
    return tuple(int(c) for c in s) + (0,) * (6 - len(s))


def zones_from_string(s: str) -> tuple[int, ...]:
    """Six zone scores from an exact 6-character string."""
    if not isinstance(s, str) or len(s) != 6 or not _DIGITS.match(s):
        raise ValueError(f"zone string {s!r}: expected exactly six digits 0-3")
    return tuple(int(c) for c in s)


def parse_zone_strings(
    values: Iterable, global_scores: Iterable | None = None, fix: bool = True, source: str = "zone strings"
) -> tuple[pd.DataFrame, int]:
    """Zones of many strings: ``(DataFrame[brixia_zones, zone_A..zone_F], number of short strings)``.

    ``fix=True`` repairs short strings (default); ``fix=False`` reproduces the original reading
    (see the module docstring). Errors name the row.
    """
    values = list(values)
    gs = list(global_scores) if global_scores is not None else [None] * len(values)
    rows, n_short = [], 0
    for i, (v, g) in enumerate(zip(values, gs)):
        try:
            if fix:
                s, short = repair_zone_string(v, g)
                zones = zones_from_string(s)
            else:
                tok = normalise_zone_token(v)
                short = len(tok) < 6
                zones = zones_original(tok)
                s = "".join(map(str, zones))
        except ValueError as err:
            raise ValueError(f"{source}, row {i}: {err}") from None
        n_short += short
        rows.append({"brixia_zones": s, **{c: z for c, z in zip(ZONE_COLUMNS, zones)}})
    return pd.DataFrame(rows, columns=["brixia_zones", *ZONE_COLUMNS]), n_short


# ------------------------------------------------------------------------ derived targets
def bin_scores(scores, edges: Sequence[int]) -> np.ndarray:
    """Class index of each score for inclusive upper ``edges`` (NaN stays NaN)."""
    s = np.asarray(scores, dtype=float)
    out = np.searchsorted(np.asarray(edges, dtype=float), s, side="left").astype(float)
    out[np.isnan(s)] = np.nan
    return out


def add_brixia_targets(
    table: pd.DataFrame, global_edges: Sequence[int] = GLOBAL_EDGES, lung_edges: Sequence[int] = LUNG_EDGES
) -> pd.DataFrame:
    """Add ``brixia_right/left/global`` and the 4-class ``brixia_global_class``, ``brixia_right_class``,
    ``brixia_left_class`` from ``zone_A..zone_F`` (NaN rows stay NaN)."""
    missing = [c for c in ZONE_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"add_brixia_targets needs columns {missing} (has {list(table.columns)}).")
    out = table.copy()
    z = out[list(ZONE_COLUMNS)].astype(float)
    out["brixia_right"] = z.iloc[:, :3].sum(axis=1, min_count=3)
    out["brixia_left"] = z.iloc[:, 3:].sum(axis=1, min_count=3)
    total = z.sum(axis=1, min_count=6)
    if "brixia_global" in out.columns:
        bad = out["brixia_global"].notna() & total.notna() & (out["brixia_global"] != total)
        if bad.any():
            i = out.index[bad][0]
            raise ValueError(f"Row {i}: brixia_global {out.at[i, 'brixia_global']} but zones sum to {total[i]}.")
    out["brixia_global"] = total
    out["brixia_global_class"] = bin_scores(total, global_edges)
    out["brixia_right_class"] = bin_scores(out["brixia_right"], lung_edges)
    out["brixia_left_class"] = bin_scores(out["brixia_left"], lung_edges)
    return out


# ------------------------------------------------------------------------------- files
def read_metadata(path: str | Path, fix_zone_strings: bool = True) -> Manifest:
    """BrixIA's metadata CSV with the zone string read **as text** (comma or semicolon separated);
    ``report.counts["zone_strings_short"]`` counts the zone strings shorter than 6 characters."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BrixIA metadata not found: {path}")
    meta = pd.read_csv(path, sep=None, engine="python", dtype=str)
    for col in ("Filename", "BrixiaScore"):
        if col not in meta.columns:
            raise ValueError(f"{path}: no column {col!r} (columns: {list(meta.columns)}).")
    g = pd.to_numeric(meta.get("BrixiaScoreGlobal"), errors="coerce") if "BrixiaScoreGlobal" in meta else None
    zones, n_short = parse_zone_strings(meta["BrixiaScore"], g, fix=fix_zone_strings, source=str(path))
    out = pd.concat([meta.reset_index(drop=True), zones], axis=1)
    return Manifest(out, Report(dataset=NAME, counts={"zone_strings_short": n_short}))


def read_split_file(path: str | Path, fix_zone_strings: bool = True, zone_labels: bool = True) -> Manifest:
    """A split file of Ruffini et al.: whitespace- or comma-separated ``img label center`` lines.

    A header line (``img label center``) is optional. For BrixIA (``zone_labels=True``) the label
    is the zone string, read as text and repaired (or read the original way with
    ``fix_zone_strings=False``); ``report.counts["zone_strings_short"]`` counts the short ones.
    """
    from mtbench.data.splits import read_split_lines

    table = read_split_lines(path)
    report = Report(dataset=NAME)
    if zone_labels:
        zones, n_short = parse_zone_strings(table["label"], fix=fix_zone_strings, source=str(path))
        table = pd.concat([table, zones], axis=1)
        report.counts["zone_strings_short"] = n_short
    return Manifest(table, report)


def load_manifest(
    root: str | Path | None = None,
    metadata: str = "metadata_global_v2.csv",
    image_dir: str = "dicom_clean",
    mask_dir: str | None = None,
    fix_zone_strings: bool = True,
    require_image: bool = True,
    global_edges: Sequence[int] = GLOBAL_EDGES,
    lung_edges: Sequence[int] = LUNG_EDGES,
) -> Manifest:
    """One row per BrixIA image: ``sample_id``, ``patient_id`` (``Subject``), ``path``, zone targets.

    Missing image files are counted in the report (``report.counts["missing_files"]``) and skipped
    (``require_image=True``); returns a :class:`~mtbench.data.report.Manifest`.
    ``center`` is the ``Manufacturer`` (BrixIA is one hospital; the column is what varies).
    """
    from mtbench.profiles import data_root

    root = Path(root) if root is not None else data_root() / "brixia"
    meta, meta_report = read_metadata(root / metadata, fix_zone_strings=fix_zone_strings)
    paths = [root / image_dir / f for f in meta["Filename"]]
    exists = np.array([p.is_file() for p in paths], dtype=bool)
    out = pd.DataFrame(
        {
            "sample_id": meta["Filename"].astype(str),
            "patient_id": meta["Subject"].astype(str) if "Subject" in meta else meta["Filename"].astype(str),
            "path": [str(p) for p in paths],
            "dataset": NAME,
            "center": meta["Manufacturer"].fillna("unknown") if "Manufacturer" in meta else "unknown",
            "photometric": meta.get("PhotometricInterpretation"),
            "consensus_test": meta["ConsensusTestset"].astype(str).str.upper().isin(["1", "TRUE", "Y", "YES"])
            if "ConsensusTestset" in meta
            else False,
            "brixia_zones": meta["brixia_zones"],
            **{c: meta[c].astype(float) for c in ZONE_COLUMNS},
        }
    )
    if "BrixiaScoreGlobal" in meta:
        out["brixia_global"] = pd.to_numeric(meta["BrixiaScoreGlobal"], errors="coerce")
    if mask_dir is not None:
        out["mask_path"] = [str(root / mask_dir / (Path(f).stem + ".png")) for f in meta["Filename"]]
    out = add_brixia_targets(out, global_edges, lung_edges)
    report = {
        "metadata_rows": len(meta),
        "zone_strings_short": int(meta_report.counts["zone_strings_short"]),
        "zone_strings_fixed": bool(fix_zone_strings),
        "missing_files": int((~exists).sum()),
        "missing_examples": out.loc[~exists, "sample_id"].head(10).tolist(),
    }
    from mtbench.data.cards import compare_with_card

    validation = Report(dataset=NAME)
    for p in out.loc[~exists, "path"]:
        validation.warning("missing-file", "DICOM file listed in the metadata is absent" + (": skipped" if require_image else ""), file=p)
    if report["zone_strings_short"]:
        validation.warning(
            "zone-strings-repaired" if fix_zone_strings else "zone-strings-short",
            f"{report['zone_strings_short']} zone strings shorter than 6 characters (leading zeros lost) "
            + ("were left-padded with zeros" if fix_zone_strings else "read the original (shifted) way"),
            file=root / metadata, column="BrixiaScore")
    if require_image:
        out = out[exists].reset_index(drop=True)
    report["images"] = len(out)
    report["card_differences"] = compare_with_card(NAME, report, root=root, report=validation)
    validation.counts = report
    return Manifest(out, validation)
