"""Your own data: a CSV/XLSX table of image paths and labels, no adapter to write.

One row per image::

    image,patient,centre,poor_outcome,severity
    scans/p01.png,P01,A,1,2
    ct/p02/,P02,B,0,1            (a DICOM series folder)
    ct/p03.nii.gz,P03,B,0,0

``image`` is a 2D file (PNG, JPEG, TIFF, DICOM), a DICOM series folder or a NIfTI file; relative
paths are relative to the table's folder. The task columns and their kinds are given as
``tasks={"poor_outcome": "binary", "severity": "ordinal"}`` (or the string
``"poor_outcome:binary,severity:ordinal"`` from the command line). Kinds: ``binary``,
``multiclass``, ``ordinal`` (integer codes 0..K-1) and ``regression``; text classes are coded in
sorted order and the coding is reported.

What it assumes, it says (``load_manifest(...).report.counts["assumed"]``): column names are stripped of
spaces and matched without case; without a patient column every image is its own patient; rows
whose image is missing are dropped, counted and listed. A ``split`` or ``fold`` column is checked
for patients in two splits (refused). Errors name the column (and rows).
:func:`load_image` reads any of the image kinds, converting RGB/RGBA to gray and resizing without
distorting the aspect ratio (letterbox) unless ``keep_aspect=False``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from mtbench.data.report import Manifest, Report

NAME = "table"
DESCRIPTION = "Your own data: a CSV/XLSX of image paths (2D files, DICOM series folders, NIfTI) and task columns"
KINDS = ("binary", "multiclass", "ordinal", "regression")


def parse_tasks(tasks: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"a:binary,b:regression"`` or a mapping -> ``{column: kind}``, kinds checked."""
    if tasks is None or (isinstance(tasks, str) and not tasks.strip()):
        raise ValueError(f"table: give the task columns and kinds, e.g. tasks='outcome:binary' (kinds: {KINDS}).")
    if isinstance(tasks, str):
        pairs = [t.split(":", 1) for t in tasks.split(",") if t.strip()]
        bad = [":".join(p) for p in pairs if len(p) != 2]
        if bad:
            raise ValueError(f"table: tasks must be 'column:kind' pairs; got {bad}.")
        tasks = {c.strip(): k.strip() for c, k in pairs}
    out = {str(c).strip(): str(k).strip().lower() for c, k in dict(tasks).items()}
    bad = {c: k for c, k in out.items() if k not in KINDS}
    if bad:
        raise ValueError(f"table: unknown task kind(s) {bad}; use one of {KINDS}.")
    return out


def _column(df: pd.DataFrame, name: str | None, what: str, path: Path, required: bool = True) -> str | None:
    if name is None:
        return None
    by_key = {c.lower(): c for c in df.columns}
    col = by_key.get(str(name).strip().lower())
    if col is None and required:
        raise KeyError(f"{path}: no {what} column {name!r}; the table has {list(df.columns)}.")
    return col


def _code(values: pd.Series, kind: str, col: str, path: Path) -> tuple[pd.Series, dict | None]:
    num = pd.to_numeric(values, errors="coerce")
    text = values.notna() & num.isna()
    if kind == "regression":
        if text.any():
            raise ValueError(f"{path}: column {col!r} (regression) has non-numbers in rows {list(values.index[text][:5])}.")
        return num.astype(float), None
    if text.any():  # text classes: code in sorted order
        classes = sorted(values.dropna().astype(str).str.strip().unique())
        coding = {c: i for i, c in enumerate(classes)}
        num = values.astype(str).str.strip().map(coding).where(values.notna())
    else:
        coding = None
        bad = num.notna() & (num != num.round())
        if bad.any():
            raise ValueError(f"{path}: column {col!r} ({kind}) has non-integer values in rows {list(values.index[bad][:5])}.")
    if kind == "binary" and not set(num.dropna()) <= {0, 1}:
        raise ValueError(f"{path}: column {col!r} (binary) must hold two classes 0/1; found {sorted(set(values.dropna()))[:6]}.")
    return num.astype(float), coding


def load_manifest(
    root: str | os.PathLike | None = None,
    table: str | os.PathLike | None = None,
    tasks: str | Mapping[str, str] | None = None,
    image_column: str = "image",
    patient_column: str | None = "patient",
    centre_column: str | None = "centre",
) -> Manifest:
    """One row per image with an existing file: ``sample_id``, ``patient_id``, ``path``, ``centre``
    (when given) and the task columns coded as numbers; and a report whose ``counts`` say what was
    left out and assumed. ``root``: the table file, or its folder with ``table`` the file name."""
    if root is None and table is None:
        raise ValueError("table: pass the CSV/XLSX file (data.table=labels.csv).")
    path = Path(table) if root is None else Path(root) / table if table is not None else Path(root)
    if not path.is_file():
        raise FileNotFoundError(f"table: no file {str(path)!r}.")
    df = pd.read_excel(path) if path.suffix.lower() in (".xlsx", ".xls") else pd.read_csv(path, sep=None, engine="python")
    df.columns = [str(c).strip() for c in df.columns]
    assumed = []
    img_col = _column(df, image_column, "image", path)
    pat_col = _column(df, patient_column, "patient", path, required=False)
    cen_col = _column(df, centre_column, "centre", path, required=False)
    task_kinds = parse_tasks(tasks)
    out = pd.DataFrame(index=df.index)
    out["sample_id"] = [f"{path.stem}-{i:05d}" for i in range(len(df))]
    if pat_col is None:
        out["patient_id"] = out["sample_id"]
        assumed.append(f"no patient column ({patient_column!r}): one image per patient")
    else:
        pid = df[pat_col].astype(str).str.strip().where(df[pat_col].notna())
        if pid.isna().any():
            raise ValueError(f"{path}: column {pat_col!r} is empty in rows {list(pid.index[pid.isna()][:5])}.")
        out["patient_id"] = pid
    if cen_col is not None:
        out["centre"] = df[cen_col].astype(str).str.strip()
    paths = df[img_col].astype(str).str.strip().map(lambda p: str(Path(p) if Path(p).is_absolute() else path.parent / p))
    out["path"] = paths.where(df[img_col].notna())
    codings = {}
    for name, kind in task_kinds.items():
        col = _column(df, name, f"task ({kind})", path)
        out[name], coding = _code(df[col], kind, col, path)  # named as the task, whatever the header's spacing
        if coding:
            codings[name] = coding
            assumed.append(f"column {col!r}: text classes coded {coding}")
    for extra in ("split", "fold"):
        col = _column(df, extra, extra, path, required=False)
        if col is not None:
            out[extra] = df[col]
    exists = out["path"].map(lambda p: isinstance(p, str) and Path(p).exists())
    missing = out.loc[~exists, "path"].fillna("<empty>").tolist()
    out = out[exists].reset_index(drop=True)
    if "split" in out.columns:
        from mtbench.data.validate import check_splits

        check_splits(out)  # raises LeakageError naming the patients in two splits
    report = Report(dataset=NAME, counts={
        "table": str(path),
        "root": str(path),
        "images": len(out),
        "missing_images": len(missing),
        "missing_image_paths": missing[:50],
        "tasks": task_kinds,
        "codings": codings,
        "assumed": assumed,
    })
    if out.empty:
        raise ValueError(f"{path}: none of the {len(missing)} image path(s) in column {img_col!r} exists, e.g. {missing[:3]}.")
    return Manifest(out, report)


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None, keep_aspect: bool = True) -> np.ndarray:
    """A 2D image as float32 ``[H, W]`` in ``[0, 1]`` (RGB/RGBA -> gray), or a 3D volume (DICOM series
    folder, NIfTI: canonical orientation, HU). ``size`` resizes 2D images; with ``keep_aspect`` the
    image is scaled to fit and padded with zeros (letterbox) instead of being stretched."""
    p = Path(path)
    if p.is_dir() or p.name.lower().endswith((".nii", ".nii.gz")):
        from mtbench.data.io import read_volume

        return read_volume(p).array
    from PIL import Image

    if p.suffix.lower() == ".dcm":
        from mtbench.data.io import read_dicom_file

        arr = read_dicom_file(p).array[0]
        lo, hi = float(arr.min()), float(arr.max())
        im = Image.fromarray(((arr - lo) / (hi - lo or 1) * 255).astype(np.uint8))
    else:
        with Image.open(p) as raw:
            raw.load()
            im = raw.convert("RGBA").convert("RGB").convert("L") if raw.mode in ("RGBA", "LA", "P") else raw.convert("L")
    if size is not None:
        th, tw = (size, size) if isinstance(size, int) else size
        if keep_aspect:
            s = min(th / im.height, tw / im.width)
            inner = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BILINEAR)
            canvas = Image.new("L", (tw, th), 0)
            canvas.paste(inner, ((tw - inner.width) // 2, (th - inner.height) // 2))
            im = canvas
        else:
            im = im.resize((tw, th), Image.BILINEAR)
    return np.asarray(im, dtype=np.float32) / 255.0


def make_tasks(manifest: Manifest) -> dict:
    """The :class:`~mtbench.tasks.Task` of each task column of what :func:`load_manifest` returns
    (kinds from its report; classes of a multiclass/ordinal task: its highest code + 1, text codings named)."""
    from mtbench.tasks import Task

    manifest, report = manifest
    rep = report.counts
    tasks = {}
    for name, kind in rep.get("tasks", {}).items():
        coding = (rep.get("codings") or {}).get(name)
        names = tuple(coding) if coding else None
        if kind in ("multiclass", "ordinal"):
            k = max(int(manifest[name].max()) + 1, len(names or ()), 2)
            tasks[name] = Task(name, kind, num_classes=k, class_names=names if names and len(names) == k else None,
                               description=f"column {name!r} of {Path(rep.get('table', '')).name}")
        else:
            tasks[name] = Task(name, kind, class_names=names if kind == "binary" and names and len(names) == 2 else None,
                               description=f"column {name!r} of {Path(rep.get('table', '')).name}")
    return tasks


def load_images(manifest: pd.DataFrame, size: int | tuple[int, int], keep_aspect: bool = True,
                progress: bool = True) -> np.ndarray:
    """Every ``path`` of a :func:`load_manifest` table as one float32 array ``[N, 1, H, W]`` in
    ``[0, 1]`` (:func:`load_image`: gray, letterboxed unless ``keep_aspect=False``). 2D only: a
    volume (DICOM series folder, NIfTI) is refused naming its row."""
    from tqdm.auto import tqdm

    out = []
    for i, p in enumerate(tqdm(manifest["path"], desc="images", disable=not progress, leave=False)):
        img = load_image(p, size=size, keep_aspect=keep_aspect)
        if img.ndim != 2:
            raise ValueError(f"table: row {i} ({p}) is a {img.ndim}D volume; this experiment trains on 2D images "
                             "(use a 3D experiment, or export one slice per row).")
        out.append(img)
    return np.stack(out)[:, None]
