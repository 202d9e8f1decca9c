"""Run folders: where an experiment writes its configuration, provenance and results.

A configuration has one folder, ``<root>/<experiment>/<profile>-<config hash>`` (:func:`run_dir_for`):
re-running the same command resumes it unit by unit, a changed configuration gets a new folder, so
results are never overwritten (:func:`create_run_dir` makes a fresh ``<timestamp>-<profile>`` one).
"""

from __future__ import annotations

import contextlib
import json
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import yaml

from mtbench.locks import FolderLock
from mtbench.profiles import current_profile, runs_root


def create_run_dir(experiment: str, root: str | Path | None = None, profile: str | None = None) -> Path:
    """Make and return a fresh run folder (a numeric suffix is added rather than overwrite)."""
    root = Path(root) if root is not None else runs_root()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / experiment / f"{stamp}-{profile or current_profile()}"
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            k += 1
            path = base.with_name(f"{base.name}-{k}")


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict[str, Any]:
    """Versions, git commit, device and host: what is needed to say where a number came from."""
    from mtbench.profiles import environment_report

    env = environment_report()
    return {
        **env,
        "git_commit": _git_commit(),
        "command": " ".join(sys.argv),
        "host": socket.gethostname(),
        "machine": platform.machine(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_run_info(run_dir: str | Path, config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> None:
    """Write ``config.yaml`` and ``provenance.json`` into a run folder."""
    run_dir = Path(run_dir)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(_plain(config), sort_keys=False))
    (run_dir / "provenance.json").write_text(json.dumps({**provenance(), **dict(extra or {})}, indent=2, default=str))


def _plain(obj: Any) -> Any:
    """Make a config YAML-safe (tuples -> lists, paths -> strings)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ------------------------------------------------------------------ experiments as units
# Every experiment module (see mtbench.experiments.base.Experiment, which provides all but units) defines
#   units(config) -> list[dict]              independent pieces (arm x backbone x fold x seed ...),
#                                             in an order that respects dependencies; a unit may
#                                             name others in unit["after"] (keys, see unit_key)
#   run_unit(config, unit, unit_dir, progress) writes the unit's predictions/history into unit_dir
#   report(run_dir) -> str                    aggregates whatever units have finished
#   data_manifest(config), data_splits(config) the data fingerprinted, and splits.csv (always written)
UNIT_DONE = "DONE.json"


def data_fingerprint(manifest, path_column: str = "path") -> dict[str, Any]:
    """What data a run saw: the manifest's rows and content hash, and its files' names and sizes.

    ``manifest`` is a DataFrame (one row per image), a :class:`~mtbench.data.report.Manifest`, or a
    ``{name: DataFrame or Manifest}`` dict. Files are fingerprinted by name and size (hashing every
    image's bytes would cost as much as reading the data set).
    """
    import hashlib

    import pandas as pd

    from mtbench.data.report import as_manifests

    out: dict[str, Any] = {}
    for name, (df, report) in as_manifests(manifest).items():
        entry: dict[str, Any] = {
            "rows": int(len(df)),
            "columns": [str(c) for c in df.columns],
            "manifest_sha1": hashlib.sha1(pd.util.hash_pandas_object(df.astype(str), index=False).values.tobytes()).hexdigest(),
        }
        if path_column in df.columns:
            files = []
            for p in df[path_column].dropna().astype(str):
                path = Path(p)
                files.append((path.name, path.stat().st_size if path.is_file() else -1))
            entry["files"] = len(files)
            # absent files among the rows, plus those the loader dropped because absent (its report)
            dropped = report.counts.get("missing_files", 0)
            entry["missing_files"] = sum(1 for _, size in files if size < 0) + int(dropped or 0)
            entry["total_bytes"] = int(sum(size for _, size in files if size > 0))
            entry["files_sha1"] = hashlib.sha1(repr(sorted(files)).encode()).hexdigest()
        out[name] = entry
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable fingerprint of a configuration (same config -> same run folder)."""
    import hashlib

    text = yaml.safe_dump(_plain(config), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def run_dir_for(experiment: str, config: Mapping[str, Any], root: str | Path | None = None) -> Path:
    """The run folder of a configuration: ``<root>/<experiment>/<profile>-<hash>``.

    Re-running the same command finds the same folder and resumes it; a different configuration
    gets a different folder, so results are never overwritten.
    """
    root = Path(root) if root is not None else runs_root()
    return root / experiment / f"{config.get('profile', current_profile())}-{config_hash(config)}"


def unit_key(unit: Mapping[str, Any]) -> str:
    """``{"arm": "mt", "seed": 0}`` -> ``"arm=mt/seed=0"`` (also the unit's sub-folder)."""
    return "/".join(f"{k}={v}" for k, v in unit.items() if k != "after")


def select_units(units: list[dict], select: Mapping[str, Any] | None) -> list[dict]:
    """Units matching every ``key=value`` of ``select`` (values compared as strings)."""
    select = {k: v for k, v in (select or {}).items() if v is not None}
    for k in select:
        if units and not any(k in u for u in units):
            raise ValueError(f"This experiment's units have no {k!r} (they have {sorted(set().union(*units) - {'after'})}).")
    chosen = [u for u in units if all(str(u.get(k)) == str(v) for k, v in select.items())]
    if not chosen:
        raise ValueError(f"No unit matches {dict(select)}; units: {[unit_key(u) for u in units]}")
    return chosen


def is_done(run_dir: Path, unit: Mapping[str, Any]) -> bool:
    return (Path(run_dir) / "units" / unit_key(unit) / UNIT_DONE).is_file()


def start_run(run_dir: Path, config: Mapping[str, Any], manifest, splits=None, sources=None, quiet: bool = False) -> None:
    """Open (or re-open) a run folder: ``config.yaml`` + ``provenance.json`` on first use,
    ``data_fingerprint.json``, ``splits.csv`` and ``data_sources.json`` always; the data sources
    are printed (one line each, see :mod:`mtbench.run_checks`) unless ``quiet``.

    Re-opening with another configuration, or with data that changed since the run started, is
    refused: the results would mix two experiments. ``manifest`` is the label table (or
    ``{name: table}``) the run uses; ``splits`` each sample's split or fold (default: the
    manifest's ``split``/``fold`` columns) becomes ``splits.csv``; ``sources`` (default: derived
    from the manifest, :func:`mtbench.run_checks.manifest_sources`) becomes ``data_sources.json``.
    """
    from mtbench.experiments.base import splits_table
    from mtbench.run_checks import manifest_sources, source_lines

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_file = run_dir / "config.yaml"
    if cfg_file.is_file():
        if yaml.safe_load(cfg_file.read_text()) != _plain(config):
            raise ValueError(f"{run_dir} holds a run of a different configuration; choose another run folder.")
    else:
        write_run_info(run_dir, config)
    fingerprint = data_fingerprint(manifest)
    fp_file = run_dir / "data_fingerprint.json"
    if fp_file.is_file() and json.loads(fp_file.read_text()) != json.loads(json.dumps(fingerprint)):
        raise ValueError(
            f"The data changed since this run started ({fp_file} differs from the data found now): "
            "results would mix two data sets. Start a new run (--new) or restore the data."
        )
    fp_file.write_text(json.dumps(fingerprint, indent=2))
    (splits if splits is not None else splits_table(manifest)).to_csv(run_dir / "splits.csv", index=False)
    sources = sources if sources is not None else manifest_sources(manifest, config)
    (run_dir / "data_sources.json").write_text(json.dumps(sources, indent=2, default=str))
    if not quiet:
        for line in source_lines(sources):
            print(line)


def mark_done(unit_dir: Path, key: str, seconds: float) -> None:
    """Mark a unit finished (``DONE.json``): resumed runs skip it, reports read it."""
    (Path(unit_dir) / UNIT_DONE).write_text(json.dumps({"unit": key, "seconds": seconds,
                                                         "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))


def run_dir_of_unit(unit_dir: Path, unit: Mapping[str, Any]) -> Path:
    """The run folder a unit folder belongs to (``<run>/units/<unit key>``)."""
    return Path(unit_dir).parents[len(unit_key(unit).split("/"))]


def run_experiment(
    experiment, config: Mapping[str, Any], run_dir: str | Path, select: Mapping[str, Any] | None = None, progress: bool = True
) -> dict[str, list[str]]:
    """Run (or resume) the selected units of an experiment module in ``run_dir``.

    Finished units are skipped; an interrupted unit continues from its last checkpoint (the unit's
    folder is its ``checkpoint_dir``). Units named in another's ``after`` are run first if needed.
    Returns ``{"ran": [...], "skipped": [...]}`` unit keys.
    """
    from mtbench.train import distributed as ddp

    run_dir = Path(run_dir)
    main = ddp.is_main_process()
    if main:
        manifest = experiment.data_manifest(config)
        exp_obj = getattr(experiment, "EXPERIMENT", experiment)  # a paper module re-exports its Experiment
        sources = exp_obj.data_sources(config) if hasattr(exp_obj, "data_sources") else None
        start_run(run_dir, config, manifest, experiment.data_splits(config), sources)
        with open(run_dir / "invocations.jsonl", "a") as fh:
            fh.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv),
                                 "select": dict(select or {}), "world_size": ddp.info().world_size}) + "\n")
    exp_obj = getattr(experiment, "EXPERIMENT", experiment)
    if hasattr(exp_obj, "check_test_folds"):  # every rank: each refuses a single-class test fold alike, before training
        exp_obj.check_test_folds(config)
    ddp.barrier()
    all_units = experiment.units(config)
    by_key = {unit_key(u): u for u in all_units}
    todo: list[dict] = []

    def add(unit):
        for dep in unit.get("after", []):
            if dep not in by_key:
                raise ValueError(f"Unit {unit_key(unit)} depends on unknown unit {dep!r}.")
            if not is_done(run_dir, by_key[dep]) and by_key[dep] not in todo:
                add(by_key[dep])
        if unit not in todo:
            todo.append(unit)

    for u in select_units(all_units, select):
        add(u)
    ran, skipped = [], []
    for unit in todo:
        key = unit_key(unit)
        if is_done(run_dir, unit):
            skipped.append(key)
            if main and progress:
                print(f"[skip] {key}: finished earlier")
            continue
        unit_dir = run_dir / "units" / key
        with FolderLock(unit_dir) if main else contextlib.nullcontext():  # one job per unit folder
            ddp.barrier()
            if is_done(run_dir, unit):  # another job finished it while this one waited for the lock
                skipped.append(key)
                continue
            if main and progress:
                print(f"[unit] {key}")
            t0 = time.perf_counter()
            experiment.run_unit(config, unit, unit_dir, progress)
            if main:
                mark_done(unit_dir, key, time.perf_counter() - t0)
            ddp.barrier()
        ran.append(key)
    return {"ran": ran, "skipped": skipped}


def finished_units(run_dir: str | Path, units: list[dict]) -> list[tuple[dict, Path]]:
    """``(unit, unit folder)`` of every finished unit of a run folder, in unit order."""
    run_dir = Path(run_dir)
    return [(u, run_dir / "units" / unit_key(u)) for u in units if is_done(run_dir, u)]


def missing_units(experiment, config: Mapping[str, Any], run_dir: str | Path) -> list[str]:
    return [unit_key(u) for u in experiment.units(config) if not is_done(Path(run_dir), u)]


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no config.yaml).")
    return yaml.safe_load(path.read_text())
