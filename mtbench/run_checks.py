"""What a run says about itself: the data it used (``data_sources.json``) and its degenerate results
(``degenerate_flags.csv``). :class:`mtbench.experiments.base.Experiment` and :mod:`mtbench.runs`
call these for every experiment, so no run trains on data it does not name, and no one-class
fold or NaN metric reaches a table without a printed warning.

Data sources, the optional protocol: an experiment's prepared data may carry ``sources`` (an
attribute or, for a dict, a key): a list of dicts, one per data set, with

``name``      the table it feeds (e.g. ``"prognosis"``);
``kind``      ``"synthetic"`` or ``"real"``;
``source``    which generator or real collection (``"cohen_covid"``, ``"phantom"`` ...);
``root``      the folder read (``None`` for synthetic data);
``rows``      samples used; ``files_found`` / ``files_missing``: image files on disk / absent;
``excluded``  ``{reason: count}`` of rows the loader left out;
``assumed``   (optional) what the loader assumed, one sentence each.

Without it, :func:`manifest_sources` derives the same from the manifest: its rows, its path column
(files found/missing) and the loader's report when the experiment names its data as
:class:`~mtbench.data.report.Manifest` s (the counts of what a loader such as
:func:`mtbench.data.sources.cohen_covid.load_manifest` found missing or skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

SYNTHETIC = ("synthetic", "phantom", "known_answer", "world")
# loader-report keys that count rows left out, and the reason they are reported under
EXCLUSION_KEYS = {"missing_files": "image file missing", "missing_images": "image file missing", "not_xray": "not an X-ray", "not_frontal": "not a frontal view",
                  "duplicate_rows_dropped": "duplicated file name", "dropped_rows": "dropped by the loader",
                  "unreadable_files": "unreadable image", "not_in_split_files": "in no fold of the split files",
                  "reads_without_image": "labels without a usable image series",
                  "labels_without_file": "labelled slice file missing"}


def manifest_sources(manifest, cfg: Mapping[str, Any] | None = None, path_column: str = "path") -> list[dict[str, Any]]:
    """The generic data-source records of a manifest (one per table), see the module docstring."""
    declared = ((cfg or {}).get("data") or {}).get("source") if isinstance((cfg or {}).get("data"), Mapping) else None
    out = []
    from mtbench.data.report import as_manifests

    for name, (df, rep) in as_manifests(manifest).items():
        report = rep.counts
        has_files = path_column in df.columns
        kind = "synthetic" if (str(declared or "").startswith(SYNTHETIC) or (declared is None and not has_files)) else "real"
        rec: dict[str, Any] = {"name": name, "kind": kind, "source": declared or report.get("source") or
                               (str(df["dataset"].iloc[0]) if "dataset" in df.columns and len(df) else None),
                               "root": report.get("root"), "rows": int(len(df))}
        if has_files:
            exists = df[path_column].dropna().astype(str).map(lambda p: Path(p).is_file())
            rec["files_found"] = int(exists.sum())
            rec["files_missing"] = int((~exists).sum())
        excluded = {why: int(report[k]) for k, why in EXCLUSION_KEYS.items()
                    if isinstance(report.get(k), (int, float)) and report[k]}
        if excluded.get("image file missing"):  # rows the loader dropped because their file is absent
            rec["files_missing"] = rec.get("files_missing", 0) + excluded["image file missing"]
        rec["excluded"] = excluded
        if report.get("assumed"):  # what a loader assumed (e.g. the own-table source: one image per patient)
            rec["assumed"] = [str(a) for a in report["assumed"]]
        out.append(rec)
    return out


def data_sources(prepared: Any, manifest, cfg: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """``prepared.sources`` (or ``prepared["sources"]``) if the experiment declares them, else
    :func:`manifest_sources`."""
    declared = getattr(prepared, "sources", None)
    if declared is None and isinstance(prepared, Mapping):
        declared = prepared.get("sources")
    if callable(declared):
        declared = declared()
    if declared:
        return [dict(s) for s in declared]
    return manifest_sources(manifest, cfg)


def source_lines(sources: list[Mapping[str, Any]]) -> list[str]:
    """One line per data source, as runs print them; a line with missing files starts with WARNING."""
    lines = []
    for s in sources:
        where = f" at {s['root']}" if s.get("root") else ""
        files = ""
        if "files_found" in s:
            files = f", files found {s['files_found']}, missing {s.get('files_missing', 0)}"
        excl = s.get("excluded") or {}
        excl_text = f"; the loader left out (whole collection): {', '.join(f'{n} ({why})' for why, n in excl.items())}" if excl else ""
        warn = "WARNING " if s.get("files_missing") else ""
        assumed = f"; assumed: {'; '.join(s['assumed'])}" if s.get("assumed") else ""
        lines.append(f"{warn}data {s.get('name')}: {s.get('kind')} ({s.get('source')}){where}: "
                     f"{s.get('rows')} rows{files}{excl_text}{assumed}")
    return lines


# ------------------------------------------------------------------------------ degenerate results
def unit_flags(unit_label: str, predictions: pd.DataFrame | None, metrics: pd.DataFrame | None):
    """Degenerate-result flags (:mod:`mtbench.guards`) of one finished unit."""
    from mtbench import guards

    flags = []
    if predictions is not None and len(predictions):
        flags += guards.check_predictions(predictions, model=unit_label)
    if metrics is not None and {"task", "metric", "value"} <= set(metrics.columns):
        flags += guards.check_metrics(metrics, model=unit_label)
    return flags


def refuse_single_class_unit(cfg: Mapping[str, Any], unit_label: str, flags) -> None:
    """Refuse a unit whose test fold holds one class of a classification task, unless the
    configuration says ``allow_single_class: true`` (then the flags stay, as warnings)."""
    from mtbench.guards import DegenerateResultError

    single = [f for f in flags if f.what == "single_class_fold"]
    if single and not cfg.get("allow_single_class", False):
        raise DegenerateResultError(single, f"Unit {unit_label}: a test fold needs both classes to measure a classifier. "
                                    "Fix the split (fewer folds, stratify) or accept it with --set allow_single_class=true "
                                    "(a top-level config key).")


def _classification_tasks(tasks) -> list:
    """Tasks from ``{name: Task}``, ``{name: [Task, ...]}`` (one list per data set) or a list of Tasks."""
    from mtbench.tasks import Task

    items = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks or [])
    flat = [t for x in items for t in (x if isinstance(x, (list, tuple)) else [x])]
    return [t for t in flat if isinstance(t, Task) and t.is_classification]


def fold_test_tables(table: pd.DataFrame, splits: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The test rows of each fold of one label table: rows with ``split == "test"`` (per ``fold`` if
    there is one), else each ``fold`` value (cross-validation: a fold is its own test set). A table
    without ``split``/``fold`` columns takes them from ``splits`` (``splits.csv``, by ``sample_id``;
    a long table with one row per fold and sample, as Cobo et al.'s, works too)."""
    if not {"split", "fold"} & set(table.columns) and splits is not None and "sample_id" in table.columns \
            and "sample_id" in splits.columns:
        cols = ["sample_id", *[c for c in ("split", "fold") if c in splits.columns]]
        table = splits[cols].merge(table, on="sample_id", how="inner")
    if "split" in table.columns:
        test = table[table["split"].astype(str) == "test"]
        return {str(k): g for k, g in test.groupby("fold", sort=True)} if "fold" in test.columns else {"test": test}
    if "fold" in table.columns:
        return {str(k): g for k, g in table.groupby("fold", sort=True)}
    return {}


def refuse_single_class_folds(cfg: Mapping[str, Any], manifest, splits: pd.DataFrame | None, tasks) -> list:
    """Before any training: refuse a test fold whose labelled rows hold one class of a
    classification task (a task whose label column, its name, is in the table), unless the
    configuration says ``allow_single_class: true`` (then the flags are returned and warned about).
    ``manifest``: the run's label table(s); ``splits``: its ``splits.csv`` table; ``tasks``: see
    :func:`_classification_tasks`. The same check runs again on each unit's predictions."""
    import warnings

    from mtbench.guards import DegenerateResultError, DegenerateResultWarning, act_on, refuse_single_class

    flags = []
    from mtbench.data.report import as_manifests

    for name, (table, _) in as_manifests(manifest).items():
        sp = splits
        if sp is not None and "dataset" in sp.columns and name in set(sp["dataset"]):
            sp = sp[sp["dataset"] == name]
        cols = {t.name: t.name for t in _classification_tasks(tasks) if t.name in table.columns}
        if not cols:
            continue
        with warnings.catch_warnings():  # collected over every fold first, warned about (or refused) once below
            warnings.simplefilter("ignore", DegenerateResultWarning)
            for fold, test in fold_test_tables(table, sp).items():
                flags += refuse_single_class(test, cols, allow_single_class=True, fold=fold,
                                             model=None if name == "data" else name)
    if flags and not cfg.get("allow_single_class", False):
        raise DegenerateResultError(flags, "A test fold needs both classes to measure a classifier; nothing was trained. "
                                    "Fix the split (fewer folds, stratify) or accept it with --set allow_single_class=true "
                                    "(a top-level config key).")
    return act_on(flags, "warn")


def write_flags(run_dir: Path, flags) -> list[str]:
    """``degenerate_flags.csv`` (header only when clean) and one printed-style line per flag."""
    from mtbench.guards import flags_frame

    flags_frame(flags).to_csv(Path(run_dir) / "degenerate_flags.csv", index=False)
    return [f"WARNING degenerate result: {f}" for f in flags]
