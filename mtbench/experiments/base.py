"""The one shape of an experiment: a paper supplies the science, :class:`Experiment` the orchestration.

A paper module supplies only

* ``default_config(profile)``: every setting, one dict;
* ``prepare(cfg)``: data, labels and splits, loaded once per process;
* ``units(cfg)``: independent pieces (arm x seed, arm x fold ...); a unit names the units it needs
  in ``unit["after"]`` (see :mod:`mtbench.runs`);
* ``train_unit(cfg, unit, prepared, checkpoint_dir=None, progress=True, upstream=None)``: trains
  one unit and returns a :class:`UnitResult`; ``upstream`` holds the models of ``unit["after"]``;
* ``aggregate(result, run_dir)``: writes tables and figures over the finished units; returns text;

and builds ``EXPERIMENT = Experiment(NAME, default_config=..., prepare=..., ...)``, re-exporting its
``run``, ``run_unit``, ``report``, ``load`` (as ``load_result``) and ``data_manifest`` (what
:mod:`mtbench.runs` and the CLI call on the module). :class:`Experiment` then owns what
every experiment shares, in one place:

* the run folder, the same for the notebook and for ``mtbench run``::

      <run>/config.yaml  provenance.json  data_fingerprint.json  splits.csv
      <run>/units/<unit key>/predictions.csv  history.csv  metrics.csv  DONE.json
      <run>/results.csv  ... (what aggregate writes)

  so ``mtbench report`` reads a folder written by :meth:`Experiment.run` in a notebook;
* resume (finished units are skipped), dependencies (``after``), the data fingerprint (always
  written: a resumed run refuses data that changed) and ``splits.csv`` (always written);
* :meth:`Experiment.run` (in memory, for notebooks), :meth:`Experiment.run_unit` (one unit, for the
  CLI and clusters), :meth:`Experiment.load` and :meth:`Experiment.report`.
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

__all__ = ["Arm", "Experiment", "ExperimentResult", "UnitResult", "arm_seed_units", "cell_text", "write_tables"]


@dataclass
class Arm:
    """One arm of a comparison, as data: the tasks it learns, the data sets it sees, how it starts.

    ``init`` is ``None`` (fresh weights), ``"upstream:<arm>"`` (start from that arm's trained model,
    which is then a dependency) or ``"average_of:<arm>,<arm>"`` (the mean of those arms' weights).
    """

    tasks: tuple[str, ...]
    datasets: tuple[str, ...] = ()
    init: str | None = None

    @classmethod
    def parse(cls, spec: Any) -> "Arm":
        """A config entry: a list of task names, or ``{"tasks": [...], "upstream": arm, ...}``."""
        if isinstance(spec, Arm):
            return spec
        if isinstance(spec, (list, tuple)):
            return cls(tuple(spec))
        if not isinstance(spec, Mapping) or "tasks" not in spec:
            raise ValueError(f"An arm is a list of task names or a mapping with 'tasks'; got {spec!r}.")
        init = spec.get("init") or (f"upstream:{spec['upstream']}" if spec.get("upstream") else None)
        return cls(tuple(spec["tasks"]), tuple(spec.get("datasets") or ()), init)

    @property
    def needs(self) -> list[str]:
        """The arms whose trained models this arm starts from."""
        if not self.init:
            return []
        kind, _, names = self.init.partition(":")
        if kind not in ("upstream", "average_of"):
            raise ValueError(f"Arm init must be 'upstream:<arm>' or 'average_of:<arm>,...'; got {self.init!r}.")
        return [n.strip() for n in names.split(",") if n.strip()]


def arm_seed_units(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One unit per arm and seed (``cfg["arms"]``, ``cfg["seeds"]``); an arm that starts from
    others' models runs after them (same seed)."""
    out = []
    for seed in cfg["seeds"]:
        for name, spec in cfg["arms"].items():
            unit: dict[str, Any] = {"arm": name, "seed": seed}
            needs = Arm.parse(spec).needs
            if needs:
                unit["after"] = [f"arm={a}/seed={seed}" for a in needs]
            out.append(unit)
    return out


def cell_text(value: float, low: float, high: float) -> str:
    """``"0.812 [0.700, 0.901]"``: a metric with its confidence interval, as tables show it."""
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def write_tables(run_dir: Path, heading: str, csv: Mapping[str, pd.DataFrame], text: Mapping[str, pd.DataFrame]) -> str:
    """Write each of ``csv`` as ``<name>.csv`` into ``run_dir``; return ``heading`` and each of ``text``
    (``{caption: table}``) as text: the usual body of a paper's ``aggregate``."""
    for name, table in csv.items():
        table.to_csv(Path(run_dir) / f"{name}.csv", index=False)
    parts = [heading]
    for caption, table in text.items():
        parts.append((caption + "\n" if caption else "") + table.to_string(index=table.index.name is not None or table.index.nlevels > 1))
    return "\n\n".join(parts)


def tables_aggregate(heading: str, name: str, caption: str, extra: Callable[[Any], pd.DataFrame]) -> Callable:
    """A paper's ``aggregate`` that writes ``results.csv`` and ``<name>.csv`` (``extra(result)``) and
    returns ``heading``, ``result.table()`` and, under ``caption``, the extra table as text."""

    def aggregate(result, run_dir: Path) -> str:
        table = extra(result)
        return write_tables(run_dir, heading, csv={"results": result.results, name: table},
                            text={"": result.table(), caption: table})

    aggregate.__doc__ = f"``results.csv``, ``{name}.csv``; the tables as text."
    return aggregate


@dataclass
class UnitResult:
    """What one unit produced: test ``predictions`` (a Predictions table, or ``None``), training
    ``history`` (with ``best_epoch``), ``metrics`` (one row per task and metric, or per trained
    model), further named ``tables``, and ``model``: what units that run after it start from (the
    trained model; kept in memory only)."""

    predictions: pd.DataFrame | None
    history: pd.DataFrame
    metrics: pd.DataFrame
    model: Any = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def save(self, unit_dir: Path) -> None:
        from mtbench.predictions import save_predictions

        unit_dir.mkdir(parents=True, exist_ok=True)
        if self.predictions is not None:
            save_predictions(self.predictions, unit_dir / "predictions.csv")
        self.history.to_csv(unit_dir / "history.csv", index=False)
        self.metrics.to_csv(unit_dir / "metrics.csv", index=False)
        for name, table in self.tables.items():
            table.to_csv(unit_dir / f"{name}.csv", index=False)

    @classmethod
    def load(cls, unit_dir: Path) -> "UnitResult":
        from mtbench.predictions import load_predictions

        preds = unit_dir / "predictions.csv"
        tables = {p.stem: pd.read_csv(p) for p in sorted(unit_dir.glob("*.csv")) if p.stem not in _UNIT_FILES}
        return cls(load_predictions(preds) if preds.is_file() else None, pd.read_csv(unit_dir / "history.csv"),
                   pd.read_csv(unit_dir / "metrics.csv"), tables=tables)


_UNIT_FILES = ("predictions", "history", "metrics")


@dataclass
class ExperimentResult:
    """The finished units of a run: ``results`` (bootstrap CIs, one row per unit, task and metric),
    ``predictions`` and ``histories`` per unit label (``"arm/seed0"``); in memory also ``models``
    and ``prepared`` (for explanations in notebooks)."""

    results: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    histories: dict[str, pd.DataFrame]
    config: dict[str, Any]
    run_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    splits: pd.DataFrame = field(default_factory=pd.DataFrame)
    models: dict[str, Any] = field(default_factory=dict)
    prepared: Any = None

    @classmethod
    def from_units(cls, cfg: dict[str, Any], run_dir: Path, finished: list[tuple[dict, UnitResult]]):
        """The result of a run folder's finished ``(unit, UnitResult)`` pairs (override to collect more)."""
        results, predictions, histories = [], {}, {}
        for unit, r in finished:
            label = unit_label(unit)
            results.append(r.metrics)
            predictions[label], histories[label] = r.predictions, r.history
        splits = pd.read_csv(run_dir / "splits.csv") if (run_dir / "splits.csv").is_file() else pd.DataFrame()
        return cls(pd.concat(results, ignore_index=True), predictions, histories, cfg, run_dir, splits=splits)

    @property
    def best_epochs(self) -> dict[str, int]:
        return {k: int(h["best_epoch"].iloc[0]) for k, h in self.histories.items() if "best_epoch" in h.columns}


def unit_label(unit: Mapping[str, Any]) -> str:
    """How a unit is named in a result's dicts: its first value, then ``<key><value>`` for the rest
    (``{"arm": "mt", "seed": 0}`` -> ``"mt/seed0"``: the notebooks' keys)."""
    items = [(k, v) for k, v in unit.items() if k != "after"]
    return "/".join([str(items[0][1])] + [f"{k}{v}" for k, v in items[1:]])


def splits_table(manifest) -> pd.DataFrame:
    """The split and fold assignment of every sample (what ``splits.csv`` holds) of a table, a
    :class:`~mtbench.data.report.Manifest` or a ``{name: either}`` dict (a ``dataset`` column)."""
    from mtbench.data.report import as_manifests

    if isinstance(manifest, Mapping):
        parts = [splits_table(m.table).assign(dataset=name) for name, m in as_manifests(manifest).items()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    table = manifest if isinstance(manifest, pd.DataFrame) else manifest.table
    return table[[c for c in ("sample_id", "patient_id", "split", "fold") if c in table.columns]].reset_index(drop=True)


class Experiment:
    """Orchestration shared by every experiment (see the module docstring)."""

    def __init__(self, name: str, *, default_config: Callable, prepare: Callable, units: Callable, train_unit: Callable,
                 aggregate: Callable, manifest: Callable[[Any], Any] | None = None,
                 splits: Callable[[Any], pd.DataFrame] | None = None, result_cls: type = ExperimentResult,
                 load_upstream: Callable | None = None, tasks: Callable[[Mapping[str, Any]], Any] | None = None):
        self.name, self.default_config = name, default_config
        self.prepare, self.units, self.train_unit, self.aggregate = prepare, units, train_unit, aggregate
        # prepared -> the label table(s) the run uses (fingerprinted; its split/fold columns -> splits.csv)
        self.manifest = manifest or (lambda prepared: prepared.table)
        # prepared -> each sample's split/fold (splits.csv); default: the manifest's split/fold columns
        self.splits = splits or (lambda prepared: splits_table(self.manifest(prepared)))
        self._last: tuple[str, Any] | None = None  # (config hash, prepared): see prepared()
        self.result_cls = result_cls
        # (cfg, unit of the needed arm, its folder) -> its trained model, when a unit starts from another's
        self.load_upstream = load_upstream
        # cfg -> the tasks ({name: Task}, {data set: [Task]} or a list) whose test folds are checked before
        # training; default: the prepared data's ``tasks`` (attribute or key), if it has them
        self.tasks = tasks

    # ------------------------------------------------------------------ data
    def prepared(self, cfg: Mapping[str, Any]) -> Any:
        """``prepare(cfg)``, kept for the last configuration only: the units of one process (a job of a
        job array, or ``mtbench run`` resuming many units) load the data once."""
        from mtbench.runs import config_hash

        key = config_hash(cfg)
        if self._last is None or self._last[0] != key:
            self._last = None  # free the previous data before loading the next
            self._last = (key, self.prepare(cfg))
        return self._last[1]

    def data_manifest(self, cfg: Mapping[str, Any]):
        """The label table(s) of a configuration (what the run folder fingerprints)."""
        return self.manifest(self.prepared(cfg))

    def module_api(self) -> tuple:
        """``run, run_unit, report, load_result, data_manifest, data_splits``: what a paper module
        re-exports in one line (what :mod:`mtbench.runs` and the CLI call on the module)."""
        return self.run, self.run_unit, self.report, self.load, self.data_manifest, self.data_splits

    def data_splits(self, cfg: Mapping[str, Any]) -> pd.DataFrame:
        """Each sample's split or fold (what ``splits.csv`` holds)."""
        return self.splits(self.prepared(cfg))

    def data_sources(self, cfg: Mapping[str, Any], prepared: Any = None) -> list[dict[str, Any]]:
        """What data the run uses: synthetic or which real set, its root, counts found / missing /
        excluded (``data_sources.json``; see :mod:`mtbench.run_checks`)."""
        from mtbench.run_checks import data_sources

        prepared = prepared if prepared is not None else self.prepared(cfg)
        return data_sources(prepared, self.manifest(prepared), cfg)

    def check_test_folds(self, cfg: Mapping[str, Any], prepared: Any = None) -> list:
        """Before training: refuse a test fold holding one class of a classification task, unless
        ``allow_single_class`` (:func:`mtbench.run_checks.refuse_single_class_folds`); returns the flags."""
        from mtbench.run_checks import refuse_single_class_folds

        prepared = prepared if prepared is not None else self.prepared(cfg)
        tasks = self.tasks(cfg) if self.tasks is not None else getattr(prepared, "tasks", None)
        if tasks is None and isinstance(prepared, Mapping):
            tasks = prepared.get("tasks")
        return refuse_single_class_folds(cfg, self.manifest(prepared), self.splits(prepared), tasks) if tasks else []

    def _checked(self, cfg: Mapping[str, Any], unit: Mapping[str, Any], r: "UnitResult") -> "UnitResult":
        """Refuse a unit whose test fold held one class (unless ``allow_single_class``)."""
        from mtbench.run_checks import refuse_single_class_unit, unit_flags

        label = unit_label(unit)
        refuse_single_class_unit(cfg, label, unit_flags(label, r.predictions, None))
        return r

    # ------------------------------------------------------------------ one unit (CLI, clusters)
    def run_unit(self, cfg: Mapping[str, Any], unit: Mapping[str, Any], unit_dir: Path, progress: bool = True,
                 prepared: Any = None) -> UnitResult:
        """Train one unit into ``unit_dir`` (its checkpoints there too, so a killed unit resumes)."""
        from mtbench.runs import run_dir_of_unit, unit_key

        unit_dir = Path(unit_dir)
        upstream = None
        if unit.get("after"):
            if self.load_upstream is None:
                raise ValueError(f"{self.name}: unit {unit_key(unit)} needs other units' models but the experiment "
                                 "has no load_upstream.")
            run_dir = run_dir_of_unit(unit_dir, unit)
            by_key = {unit_key(u): u for u in self.units(cfg)}
            upstream = [self.load_upstream(cfg, by_key[k], run_dir / "units" / k) for k in unit["after"]]
        prepared = prepared if prepared is not None else self.prepared(cfg)
        r = self._checked(cfg, unit, self.train_unit(cfg, unit, prepared, checkpoint_dir=unit_dir, progress=progress,
                                                     upstream=upstream))
        from mtbench.train.distributed import is_main_process

        if is_main_process():
            r.save(unit_dir)
        return r

    # ------------------------------------------------------------------ everything (notebooks)
    def run(self, config: Mapping[str, Any] | None = None, run_dir: str | Path | None = None,
            progress: bool = True):
        """Run every unit in memory and return the result, writing the run folder as ``mtbench run`` does
        (into a temporary folder when ``run_dir`` is ``None``): ``mtbench report`` reads it alike.

        With ``run_dir`` it resumes like ``mtbench run``: units finished there are read, not trained
        again, an interrupted unit continues from its checkpoints, and changed data is refused. The
        ``models`` of units finished earlier are loaded (``load_upstream``) only where a unit needs them."""
        from mtbench.runs import is_done, mark_done, start_run, unit_key

        cfg = copy.deepcopy(dict(config if config is not None else self.default_config()))
        folder = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix=f"mtbench-{self.name}-"))
        t0 = time.perf_counter()
        prepared = self.prepare(cfg)
        timings = {"data_s": time.perf_counter() - t0}
        start_run(folder, cfg, self.manifest(prepared), self.splits(prepared), self.data_sources(cfg, prepared))
        self.check_test_folds(cfg, prepared)
        units = self.units(cfg)
        by_key, models = {unit_key(u): u for u in units}, {}
        done = {unit_key(u) for u in units if run_dir is not None and is_done(folder, u)}
        if done:
            print(f"{self.name}: {len(done)} of {len(units)} unit(s) already finished in {folder}: kept, not trained again.")
        for unit in units:
            key, label, t1 = unit_key(unit), unit_label(unit), time.perf_counter()
            udir = folder / "units" / key
            if key in done:
                models[key] = None
                continue
            for d in unit.get("after", []):  # a model finished in an earlier session: from its unit folder
                if models[d] is None and self.load_upstream is not None:
                    models[d] = self.load_upstream(cfg, by_key[d], folder / "units" / d)
            upstream = [models[d] for d in unit.get("after", [])] or None
            r = self._checked(cfg, unit, self.train_unit(cfg, unit, prepared, checkpoint_dir=udir if run_dir is not None else None,
                                                         progress=progress, upstream=upstream))
            r.save(udir)
            timings[f"{label}_s"] = time.perf_counter() - t1
            mark_done(udir, key, timings[f"{label}_s"])
            models[key] = r.model
        timings["total_s"] = time.perf_counter() - t0
        result = self.load(folder)
        result.timings, result.prepared = timings, prepared
        result.models = {unit_label(u): models[unit_key(u)] for u in units}
        self.aggregate(result, folder)
        for line in self._after_aggregate(cfg, folder):
            print(line)
        return result

    # ------------------------------------------------------------------ reading a run folder
    def load(self, run_dir: str | Path):
        """The result of the finished units of a run folder (made by the CLI or by :meth:`run`)."""
        from mtbench.runs import finished_units, load_run_config

        run_dir = Path(run_dir)
        cfg = load_run_config(run_dir)
        finished = [(u, UnitResult.load(udir)) for u, udir in finished_units(run_dir, self.units(cfg))]
        if not finished:
            raise FileNotFoundError(f"No finished unit in {run_dir}.")
        return self.result_cls.from_units(cfg, run_dir, finished)

    def report(self, run_dir: str | Path) -> str:
        """Aggregate the finished units of a run folder into its tables and figures; the summary as text."""
        run_dir = Path(run_dir)
        result = self.load(run_dir)
        text = self.aggregate(result, run_dir) or ""
        from mtbench.runs import load_run_config

        lines = self._after_aggregate(load_run_config(run_dir), run_dir)
        return text + ("\n\n" + "\n".join(lines) if lines else "")

    def _after_aggregate(self, cfg: Mapping[str, Any], run_dir: Path) -> list[str]:
        """What every run folder gets besides the paper's tables, read from its unit folders (the
        same for every experiment, whatever its result class): ``degenerate_flags.csv`` (one warning
        line per flag) and the figures of :func:`mtbench.plots.run_figures`."""
        from mtbench.plots import run_figures
        from mtbench.run_checks import unit_flags, write_flags
        from mtbench.runs import finished_units

        flags, predictions, histories, metrics = [], {}, {}, []
        for unit, udir in finished_units(run_dir, self.units(cfg)):
            label, r = unit_label(unit), UnitResult.load(udir)
            flags += unit_flags(label, r.predictions, r.metrics)
            predictions[label], histories[label] = r.predictions, r.history
            metrics.append(r.metrics.assign(unit=label))
        lines = write_flags(run_dir, flags)
        if metrics:
            figures = run_figures(pd.concat(metrics, ignore_index=True), histories, predictions, run_dir)
            if figures:
                lines.append(f"Figures: {', '.join(p.name for p in figures)}")
        return lines
