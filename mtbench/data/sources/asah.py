"""aSAH: 113 patients after aneurysmal subarachnoid hemorrhage (Turck et al. 2010; R package pROC).

A table, no images: ``<root>/asah.csv`` with columns ``gos6, outcome, gender, age, wfns, s100b,
ndka`` (see ``mtbench/data_cards/asah.md``). :func:`load_manifest` checks the columns and the outcome
values (``Good``/``Poor``, case and spaces ignored; anything else is refused naming the row) and
adds ``sample_id``/``patient_id`` (``asah-001``... in file order) and ``poor_outcome`` (1 = Poor).
Rows without an outcome are kept with NaN and counted (``missing-label`` warning).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtbench.data.report import Manifest, Report

NAME = "asah"
DESCRIPTION = "aSAH (pROC): 113 patients after subarachnoid hemorrhage, outcome Good/Poor, WFNS, S100B, NDKA (table)"
COLUMNS = ("gos6", "outcome", "gender", "age", "wfns", "s100b", "ndka")
OUTCOMES = {"GOOD": 0.0, "POOR": 1.0}
FILE = "asah.csv"


def default_root() -> Path:
    from mtbench.profiles import data_root

    return data_root() / "asah"


def load_manifest(root: str | Path | None = None, file: str = FILE) -> Manifest:
    """One row per patient: the CSV's columns plus ``sample_id``, ``patient_id``, ``poor_outcome``.

    ``root`` is the folder holding ``asah.csv`` (default ``<data_root>/asah``) or the CSV itself.
    """
    from mtbench.data.cards import compare_with_card

    root = Path(root) if root is not None else default_root()
    path = root if root.suffix.lower() == ".csv" else root / file
    if not path.is_file():
        raise FileNotFoundError(f"aSAH table not found: {path} (expected {FILE} from the R package pROC).")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty (expected a header {','.join(COLUMNS)}).") from None
    table = table.loc[:, ~table.columns.astype(str).str.startswith("Unnamed:")]  # R row names
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} are missing (has {list(table.columns)}).")
    if table.empty:
        raise ValueError(f"{path}: no data rows.")
    key = table["outcome"].astype("string").str.strip().str.upper()
    bad = key.notna() & ~key.isin(list(OUTCOMES))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}, row {i + 2}, column outcome: {table['outcome'].iloc[i]!r} is not Good/Poor.")
    for col in ("gos6", "age", "wfns", "s100b", "ndka"):
        v = pd.to_numeric(table[col], errors="coerce")
        nonnum = table[col].notna() & v.isna()
        if nonnum.any():
            i = int(np.flatnonzero(nonnum.to_numpy())[0])
            raise ValueError(f"{path}, row {i + 2}, column {col}: {table[col].iloc[i]!r} is not a number.")
        table[col] = v
    ids = [f"asah-{i + 1:03d}" for i in range(len(table))]
    out = table.assign(sample_id=ids, patient_id=ids, poor_outcome=key.map(OUTCOMES).astype(float).to_numpy())
    out = out[["sample_id", "patient_id", "poor_outcome", *COLUMNS]]
    report = {
        "file": str(path),
        "rows": len(out),
        "good": int((out["poor_outcome"] == 0).sum()),
        "poor": int((out["poor_outcome"] == 1).sum()),
        "no_outcome": int(out["poor_outcome"].isna().sum()),
    }
    validation = Report(dataset=NAME)
    if report["no_outcome"]:
        validation.warning("missing-label", f"{report['no_outcome']} row(s) without an outcome (kept, NaN)",
                           file=path, column="outcome")
    report["card_differences"] = compare_with_card(NAME, report, root=path.parent, report=validation)
    validation.counts = report
    return Manifest(out, validation)
