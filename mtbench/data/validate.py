"""Input validation: every problem a data set can have, as an error or a warning naming where it is.

Medical data sets go wrong silently: label files that lost leading zeros, "held-out" centres that
are not held out, the same image under two patient ids, a fold with no positive case, a DICOM
folder holding two series. This module finds such problems and reports them; it never drops a row
itself. The adapters (:mod:`mtbench.data.sources`) put what they skipped into the same structure
(``manifest.attrs["validation"]``), and ``mtbench data check DATASET`` prints it.

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

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from mtbench.data.cxr import is_dicom_file
from mtbench.data.splits import LeakageError, check_no_leakage

SEVERITIES = ("error", "warning")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
#: Voxel spacing (mm) outside this range is implausible for a clinical CT/MR volume.
PLAUSIBLE_SPACING_MM = (0.05, 20.0)


class DataValidationError(ValueError):
    """A data set has errors; ``.report`` holds every problem found."""

    def __init__(self, report: "Report"):
        self.report = report
        super().__init__(report.format(max_per_code=5))


class FoldError(ValueError):
    """A fold (or split) cannot be evaluated, e.g. it has no positive case of a binary task."""


@dataclass(frozen=True)
class Problem:
    """One finding. ``file``/``row``/``column`` say where (``row`` is the manifest or file row)."""

    severity: str
    code: str
    message: str
    file: str | None = None
    row: Any = None
    column: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}.")

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        w = self.where()
        return f"{self.severity.upper()} [{self.code}] {w + ': ' if w else ''}{self.message}"


@dataclass
class Report:
    """The problems found in one data set, and the counts the checks saw."""

    dataset: str = ""
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ adding
    def add(self, severity: str, code: str, message: str, file=None, row=None, column=None) -> Problem:
        p = Problem(severity, code, message, None if file is None else str(file), row, column)
        self.problems.append(p)
        return p

    def error(self, code: str, message: str, **where) -> Problem:
        return self.add("error", code, message, **where)

    def warning(self, code: str, message: str, **where) -> Problem:
        return self.add("warning", code, message, **where)

    def extend(self, other: "Report | Iterable[Problem]") -> "Report":
        if isinstance(other, Report):
            self.problems.extend(other.problems)
            for k, v in other.counts.items():
                self.counts.setdefault(k, v)
        else:
            self.problems.extend(other)
        return self

    # ------------------------------------------------------------------ reading
    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def codes(self) -> dict[str, int]:
        """``{code: number of problems}``."""
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.code] = out.get(p.code, 0) + 1
        return out

    def by_code(self, code: str) -> list[Problem]:
        return [p for p in self.problems if p.code == code]

    def to_frame(self) -> pd.DataFrame:
        cols = ["severity", "code", "message", "file", "row", "column"]
        return pd.DataFrame([{c: getattr(p, c) for c in cols} for p in self.problems], columns=cols)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise DataValidationError(self)

    def format(self, max_per_code: int = 10) -> str:
        """Readable text: a summary line, then the problems grouped by code (errors first)."""
        head = f"{self.dataset or 'data'}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines = [head]
        if self.counts:
            lines.append("  counts: " + ", ".join(f"{k}={v}" for k, v in self.counts.items()))
        order = sorted(self.codes(), key=lambda c: (self.by_code(c)[0].severity != "error", c))
        for code in order:
            ps = self.by_code(code)
            lines.append(f"  {ps[0].severity.upper()} {code} ({len(ps)}):")
            for p in ps[:max_per_code]:
                w = p.where()
                lines.append(f"    - {w + ': ' if w else ''}{p.message}")
            if len(ps) > max_per_code:
                lines.append(f"    ... and {len(ps) - max_per_code} more")
        return "\n".join(lines)

    __str__ = format


# ---------------------------------------------------------------------------- manifest checks
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


def _row_name(manifest: pd.DataFrame, idx) -> str:
    if "sample_id" in manifest.columns:
        return f"{idx} ({manifest.at[idx, 'sample_id']})"
    return str(idx)


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
        if path.is_dir():  # a DICOM series folder: read it as the adapters' loader will
            from mtbench.data.io import read_dicom_series

            read_dicom_series(path)
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


def check_counts(observed: Mapping[str, Any], expected: Mapping[str, Any], report: Report, label: str = "card") -> Report:
    """Observed counts against a card's expected counts: one warning per difference."""
    for key, want in expected.items():
        if want is None:
            continue
        if key not in observed:
            report.warning("count-unknown", f"the {label} expects {key}={want}, the adapter did not count {key!r}")
            continue
        got = observed[key]
        if got != want:
            report.warning("count-mismatch", f"{key}: found {got}, the {label} says {want} ({got - want:+d})"
                           if isinstance(got, (int, np.integer)) and isinstance(want, int) else
                           f"{key}: found {got!r}, the {label} says {want!r}")
    return report


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
        manifest = source.load_manifest(root, **options)
    except LOAD_ERRORS as err:
        report.error("load-failed", f"{type(err).__name__}: {err}", file=root)
        return report
    if len(manifest) == 0:  # an adapter that found nothing must not pass as "0 error(s)"
        report.error("no-images", "the adapter found no image (check the folder layout in the data card)", file=root)
    adapter_rep = manifest.attrs.get("validation")
    if isinstance(adapter_rep, Report):
        report.extend(adapter_rep)
    adapter_counts = manifest.attrs.get("report") or {}
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
        keep = [c for c in ("split", "fold") if c in sp.columns]
        manifest = manifest.drop(columns=[c for c in keep if c in manifest.columns]).merge(
            sp[["sample_id", *keep]], on="sample_id", how="inner")
    validate_manifest(manifest, card, read_files=read_files, hash_files=hash_files, report=report, progress=progress)
    return report
