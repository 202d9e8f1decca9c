"""Input validation: every problem a data set can have, as an error or a warning naming where it is.

Medical data sets go wrong silently: label files that lost leading zeros, "held-out" centres that
are not held out, the same image under two patient ids, a fold with no positive case, a DICOM
folder holding two series. This module finds such problems and reports them; it never drops a row
itself. The adapters (:mod:`mtbench.data.sources`) put what they skipped into the same structure
(the ``report`` of the :class:`~mtbench.data.report.Manifest` they return), and
``mtbench data check DATASET`` prints it.

Structure
---------
:class:`Problem`
    one finding: ``severity`` (``"error"`` or ``"warning"``), a short ``code`` (``missing-file``,
    ``unknown-label``, ...), a ``message``, and where it is (``file``, ``row``, ``column``).
:class:`Report`
    the problems of one data set plus the counts found; ``report.ok`` is true without errors;
    ``report.raise_if_errors()`` raises :class:`DataValidationError`; ``report.format()`` prints.

Checks (each adds to a :class:`Report`)
---------------------------------------
:func:`check_labels` unknown label values, missing label columns, missing labels per task;
:func:`check_ids` duplicated sample ids; :func:`check_files` missing or unreadable image files;
:func:`check_duplicate_images` the same bytes under two ids (content hash);
:func:`check_splits` patients in two splits (:func:`mtbench.data.splits.check_no_leakage`);
:func:`check_folds` a fold without a positive case for a binary task (AUC undefined);
:func:`check_counts` counts against the data card; :func:`check_views` non-frontal radiographs;
:func:`check_dicom_folder` DICOM folders mixing series; :func:`check_nifti` NIfTI volumes with an
implausible spacing or orientation. :func:`validate_manifest` runs the manifest checks a card asks
for; :func:`validate_dataset` loads a registered data set through its adapter and runs them all.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mtbench.data.splits import LeakageError, check_no_leakage

# Report/Problem live in mtbench.data.report and the file checks in mtbench.data.filechecks; both are
# re-exported here so ``from mtbench.data.validate import Report, check_files`` keeps working.
from mtbench.data.filechecks import (  # noqa: F401
    check_dicom_folder, check_duplicate_images, check_files, check_nifti, check_volume_files, file_hash, read_error,
)
from mtbench.data.report import (  # noqa: F401
    DICOM_SUFFIXES, NIFTI_SUFFIXES, PLAUSIBLE_SPACING_MM, SEVERITIES, DataValidationError, FoldError, Problem, Report,
    check_counts, row_name as _row_name,
)


def _task_columns(task: Mapping) -> list[str]:
    if "columns" in task:
        return list(task["columns"])
    return [task.get("column", task["name"])]


def check_labels(manifest: pd.DataFrame, tasks: Sequence[Mapping], report: Report, source: str | None = None) -> Report:
    """Label columns against a card's task schema.

    Missing label column: error. A value outside the task's ``values`` (classification) or
    ``range`` (regression), or non-numeric: error naming row and column. Rows without a label:
    one warning per task with their count (a masked loss can use them for the other tasks).
    """
    for task in tasks:
        for col in _task_columns(task):
            if col not in manifest.columns:
                report.error("missing-column", f"label column of task {task['name']!r} is absent "
                             f"(columns: {list(manifest.columns)[:20]})", file=source, column=col)
                continue
            raw = manifest[col]
            values = pd.to_numeric(raw, errors="coerce")
            non_num = raw.notna() & values.isna()
            for idx in manifest.index[non_num][:20]:
                report.error("unknown-label", f"non-numeric label {_fmt(raw[idx])} for task {task['name']!r}",
                             file=source, row=_row_name(manifest, idx), column=col)
            present = values.dropna()
            if "values" in task:
                allowed = {float(v) for v in task["values"]}
                bad = ~present.isin(allowed)
                for idx in present.index[bad][:20]:
                    report.error("unknown-label", f"value {_fmt(raw[idx])} not in {sorted(allowed)} for task {task['name']!r}",
                                 file=source, row=_row_name(manifest, idx), column=col)
            elif "range" in task:
                lo, hi = task["range"]
                bad = (present < lo) | (present > hi)
                for idx in present.index[bad][:20]:
                    report.error("unknown-label", f"value {_fmt(raw[idx])} outside {lo}-{hi} for task {task['name']!r}",
                                 file=source, row=_row_name(manifest, idx), column=col)
            n_missing = int(values.isna().sum() - non_num.sum())
            if n_missing:
                report.warning("missing-label", f"{n_missing} of {len(manifest)} rows have no {task['name']!r} label "
                               "(kept; the masked loss skips them for this task)", file=source, column=col)
            report.counts[f"labelled.{col}"] = int(values.notna().sum())
    return report


def _fmt(v) -> str:
    """A label value as a reader wants it: ``2`` not ``np.float64(2.0)``, strings quoted."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


def check_ids(manifest: pd.DataFrame, report: Report, id_column: str = "sample_id") -> Report:
    """Every ``sample_id`` once; a missing id column or empty ids are errors."""
    if id_column not in manifest.columns:
        report.error("missing-column", f"no id column (columns: {list(manifest.columns)[:20]})", column=id_column)
        return report
    ids = manifest[id_column]
    for idx in manifest.index[ids.isna() | ids.astype(str).str.strip().eq("")][:20]:
        report.error("missing-id", "empty sample id", row=idx, column=id_column)
    dup = ids.duplicated(keep=False) & ids.notna()
    for value, rows in manifest[dup].groupby(id_column).groups.items():
        report.error("duplicate-id", f"sample id {value!r} appears {len(rows)} times (rows {list(rows)[:5]})", column=id_column)
    return report


def check_splits(table: pd.DataFrame, report: Report | None = None, split_column: str = "split",
                 group_column: str = "patient_id") -> Report:
    """Patients in two splits are refused: :class:`~mtbench.data.splits.LeakageError` is raised
    when no ``report`` is given, otherwise recorded as an error."""
    parts = {str(s): table[table[split_column] == s] for s in pd.unique(table[split_column].dropna())}
    try:
        check_no_leakage(parts, group_column)
    except LeakageError as err:
        if report is None:
            raise
        report.error("patient-leakage", str(err), column=split_column)
    return report if report is not None else Report()


def check_folds(table: pd.DataFrame, fold_column: str, label_columns: Sequence[str], report: Report | None = None,
                split_column: str | None = None, split: str = "test", require_negative: bool = True) -> Report:
    """Every fold (its ``split`` rows when ``split_column`` is given) needs a positive (and, with
    ``require_negative``, a negative) case of each binary label column, or its AUC is undefined.
    Raises :class:`FoldError` naming the fold when no ``report`` is given."""
    rep = report if report is not None else Report()
    rows = table if split_column is None else table[table[split_column].astype(str) == split]
    for fold, part in rows.groupby(fold_column, sort=True):
        for col in label_columns:
            y = pd.to_numeric(part[col], errors="coerce").dropna()
            where = f"fold {fold!r}" + (f" ({split} split)" if split_column else "")
            if not (y == 1).any():
                rep.error("fold-without-positive", f"{where} has no positive case of {col!r} "
                          f"({len(y)} labelled, all negative): AUC is undefined", column=col, row=str(fold))
            elif require_negative and not (y == 0).any():
                rep.error("fold-without-negative", f"{where} has no negative case of {col!r} "
                          f"({len(y)} labelled, all positive): AUC is undefined", column=col, row=str(fold))
    if report is None and rep.errors:
        raise FoldError("; ".join(p.message for p in rep.errors))
    return rep


def check_views(manifest: pd.DataFrame, report: Report, frontal_prefixes: Sequence[str] = ("PA", "AP"),
                view_column: str = "view", severity: str = "error") -> Report:
    """Rows whose view does not start with one of ``frontal_prefixes`` (lateral, unknown)."""
    if view_column not in manifest.columns:
        return report
    view = manifest[view_column].fillna("").astype(str).str.strip()
    bad = ~view.str.startswith(tuple(frontal_prefixes))
    for idx in manifest.index[bad][:50]:
        report.add(severity, "non-frontal-view", f"view {view[idx]!r} where a frontal view ({', '.join(frontal_prefixes)}) "
                   "is expected", row=_row_name(manifest, idx), column=view_column)
    report.counts["non_frontal"] = int(bad.sum())
    return report


# ------------------------------------------------------------------------------ volume checks
def validate_manifest(manifest: pd.DataFrame, card=None, read_files: bool = True, hash_files: bool = True,
                      report: Report | None = None, progress: bool = False) -> Report:
    """Run the manifest checks (ids, labels per the card's schema, files, duplicates, views,
    volumes, splits/folds when the manifest has ``split``/``fold`` columns)."""
    rep = report if report is not None else Report(dataset=getattr(card, "name", ""))
    check_ids(manifest, rep)
    if card is not None:
        check_labels(manifest, card.tasks, rep)
        if card.meta.get("expected_views"):
            check_views(manifest, rep, card.meta["expected_views"])
    if "path" in manifest.columns:
        is_volume = card is not None and str(card.meta.get("modality", "")).upper() in ("CT", "MR", "MRI")
        check_files(manifest, rep, read=read_files and not is_volume, progress=progress)
        if is_volume and read_files:
            check_volume_files(manifest, rep)
        if hash_files:
            check_duplicate_images(manifest, rep)
    if "split" in manifest.columns:
        check_splits(manifest, rep, "split")
    if "fold" in manifest.columns and card is not None:
        binary = [c for t in card.tasks if t.get("kind") == "binary" for c in _task_columns(t) if c in manifest.columns]
        split_col = "split" if "split" in manifest.columns else None
        check_folds(manifest, "fold", binary, rep, split_column=split_col)
    rep.counts.setdefault("rows", len(manifest))
    return rep


LOAD_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, OSError, TypeError)


def validate_dataset(name: str, root: str | os.PathLike | None = None, read_files: bool = True,
                     hash_files: bool = True, splits: str | os.PathLike | None = None, progress: bool = False,
                     **options) -> Report:
    """Load data set ``name`` through its adapter and validate it against its card.

    An adapter that refuses the input (a missing column, an unknown label, an empty folder) is
    an error problem carrying the adapter's message, not a traceback. ``splits``: an optional CSV
    with ``sample_id`` and ``split`` and/or ``fold`` columns, joined to the manifest and checked
    for patient leakage and folds without positives.
    """
    from mtbench.data.cards import find_card
    from mtbench.data.sources import get_source

    source = get_source(name)
    card = find_card(adapter=name)
    report = Report(dataset=name)
    try:
        manifest, adapter_rep = source.load_manifest(root, **options)
    except LOAD_ERRORS as err:
        report.error("load-failed", f"{type(err).__name__}: {err}", file=root)
        return report
    if len(manifest) == 0:  # an adapter that found nothing must not pass as "0 error(s)"
        report.error("no-images", "the adapter found no image (check the folder layout in the data card)", file=root)
    report.extend(adapter_rep.problems)
    adapter_counts = adapter_rep.counts
    for k, v in adapter_counts.items():
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            report.counts.setdefault(k, int(v))
    if card is not None and "card_differences" not in adapter_counts:  # an adapter that does not compare itself
        variant = card.variant_for(root)
        if variant:
            check_counts(adapter_counts, card.expected_counts(variant), report, label=f"card {card.name!r} ({variant})")
    if splits is not None:
        try:
            sp = pd.read_csv(splits, dtype={"sample_id": str})
        except Exception as err:  # a split file that is not a CSV
            report.error("load-failed", f"split file: {type(err).__name__}: {err}", file=splits)
            return report
        if "sample_id" not in sp.columns:
            report.error("missing-column", f"split file has no sample_id column (has {list(sp.columns)})", file=splits)
            return report
        unknown = sorted(set(sp["sample_id"]) - set(manifest["sample_id"].astype(str)))
        for sid in unknown[:20]:
            report.error("unknown-id", f"split file names sample {sid!r}, which the data set does not have", file=splits)
        if len(unknown) > 20:
            report.error("unknown-id", f"... {len(unknown)} split-file ids in all name no sample of the data set", file=splits)
        report.counts["split_ids_unknown"] = len(unknown)
        keep = [c for c in ("split", "fold") if c in sp.columns]
        dup = sp.duplicated(["sample_id", *keep], keep="first")
        if dup.any():  # the same assignment twice would count a sample twice; one in two splits stays (leakage)
            report.warning("duplicate-id", f"{int(dup.sum())} split-file rows repeat an earlier row's sample and "
                           f"assignment (e.g. {sp.loc[dup, 'sample_id'].iloc[0]!r}): counted once", file=splits,
                           column="sample_id")
            sp = sp[~dup]
        unassigned = ~manifest["sample_id"].astype(str).isin(set(sp["sample_id"]))
        report.counts["samples_without_split"] = int(unassigned.sum())
        if unassigned.any():  # kept (a left merge: every row is still checked), but no split/fold for them
            report.warning("not-in-splits", f"{int(unassigned.sum())} of {len(manifest)} samples have no row in the split "
                           f"file (e.g. {manifest.loc[unassigned, 'sample_id'].astype(str).iloc[0]!r}): their files and "
                           "labels are checked, their split is not", file=splits)
        manifest = manifest.drop(columns=[c for c in keep if c in manifest.columns]).merge(
            sp[["sample_id", *keep]], on="sample_id", how="left")
    validate_manifest(manifest, card, read_files=read_files, hash_files=hash_files, report=report, progress=progress)
    return report
