"""When does multi-task learning help? A controlled benchmark on synthetic images with a known answer.

A main task (``prognosis``) is learned alone (single-task) or together with one auxiliary task
(multi-task, several weighting strategies), while **one factor at a time** is varied around a
baseline setting:

``relatedness``      the auxiliary task is *related* (severity, which prognosis depends on) or
                     *unrelated* (heart size, an independent generative factor that is just as
                     visible in the image). The images are the same in both cases: only the
                     auxiliary label changes.
``n_main_labels``    how many training images keep their main-task label (crossed with
                     ``relatedness``: these are the curves of the notebook).
``n_aux_labels``     how many training images keep their auxiliary label (``None``: all).
``label_noise``      the probability that a main-task label of the training and validation
                     images is flipped (test labels stay clean).

Every arm of one seed shares the split, the labelled subsets, the label noise and the
initialisation seed, so single- and multi-task results are **paired** by seed. The comparison is
a paired test of the per-seed test AUC differences (``scipy.stats``; :func:`paired_summary` is the
one place to swap in ``mtbench.stats``).

Fairness choices (visible options, see :func:`default_config`):

* ``single_task_steps="matched"``: the single-task model takes as many optimizer steps per epoch
  as the multi-task model (its few labelled images are resampled with replacement); ``"epochs"``
  gives it one pass over its own images per epoch instead (far fewer steps when labels are few).
* Model selection (best epoch) on the validation AUC of the main task; validation labels are
  all kept (only training labels are made scarce).

Data come from a *generator* (``config["generator"]``, a registered name): ``synthetic_cxr``
(2D) is built in; a 3D generator (e.g. a head-CT phantom) plugs in with
:func:`register_generator` and the same grid runs unchanged (see :mod:`.when_mtl_design`).

The grid runs as resumable units, one per setting and seed (``mtbench run when_mtl_helps``), in
the run folder of :mod:`mtbench.experiments.base`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import RandomSampler

from mtbench.data import MultiTaskDataset, flip_labels, subsample_labels, train_val_test_split
from mtbench.data.sampling import labelled_share_sampler
from mtbench.experiments.base import Experiment, UnitResult
from mtbench.experiments.when_mtl_design import (  # noqa: F401  (the benchmark's public names)
    FACTORS, GENERATORS, BenchmarkData, list_generators, paired_summary, register_generator, settings,
)
from mtbench.metrics import ignore_degenerate_input_warnings, metric_value
from mtbench.models import create_model
from mtbench.mtl import MultiTaskLoss
from mtbench.profiles import by_profile, current_profile
from mtbench.runs import unit_key
from mtbench.tasks import Task
from mtbench.train import TrainConfig, fit, make_loader, predict, seed_everything
from mtbench.train.device import torch_threads

NAME = "when_mtl_helps"
DESCRIPTION = (
    "controlled benchmark: single- vs multi-task (several weightings) as relatedness, "
    "label counts and label noise vary one at a time"
)


# ----------------------------------------------------------------------------- configuration


def default_config(profile: str | None = None) -> dict[str, Any]:
    """The benchmark's settings for a profile.

    The world (``data``) is the same in both profiles: a per-image exposure nuisance
    (``exposure_sd``) and a prognosis that depends closely on severity (low ``prognosis_noise``),
    so that with few prognosis labels the related auxiliary task is worth learning (docs/worlds.md
    lists the probes behind these numbers). ``smoke`` (about 90 CPU-seconds) runs only the
    smallest label count, where the designed effect is asserted, with 10 seeds; ``full`` runs the
    whole grid. ``main_label_share``: the share of each multi-task batch drawn from images with a
    main-task label (``None``: a plain shuffle).
    """
    p = profile or current_profile()
    return {
        "experiment": NAME,
        "profile": p,
        "generator": "synthetic_cxr",
        "data": {
            "n_patients": by_profile(500, 3000, p),
            "size": by_profile(48, 128, p),
            "heart_size_sd": 0.2,
            "exposure_sd": 0.3,
            "prognosis_noise": 0.3,
            "prognosis_slope": 1.0,
            "val_fraction": 0.15,
            "test_fraction": 0.3,
            "seed": 0,
        },
        # The setting every factor is varied around.
        "baseline": {"relatedness": "related", "n_main_labels": 10, "n_aux_labels": None, "label_noise": 0.0},
        # Values of each factor (the baseline value is added). n_main_labels x relatedness is crossed.
        "grid": {
            "relatedness": ["related", "unrelated"],
            "n_main_labels": by_profile([], [20, 40, 80, 160, 320], p),
            "n_aux_labels": by_profile([], [25, 50, 100, 200], p),
            "label_noise": by_profile([], [0.1, 0.2, 0.3], p),
        },
        "cross": ["n_main_labels", "relatedness"],
        # Weightings run in every multi-task setting, and those added at the baseline only.
        "weightings": by_profile(["equal"], ["equal", "uncertainty", "pcgrad"], p),
        "baseline_weightings": by_profile([], ["dwa", "random", "gradnorm"], p),
        "weighting_kwargs": {},
        "seeds": list(range(10)),
        "single_task_steps": "matched",
        "main_label_share": 0.5,
        "model": {"backbone": "convnet", "backbone_kwargs": {"channels": by_profile([8, 16, 32], [16, 32, 64, 128], p)},
                  "head_hidden": [], "head_dropout": 0.1},
        "train": {
            "epochs": by_profile(12, 40, p),
            "batch_size": 32,
            "lr": by_profile(5e-3, 2e-3, p),
            "weight_decay": 1e-4,
            "monitor": "prognosis.auc",
            "patience": by_profile(None, 10, p),
        },
        "metric": "auc",
        # Threads for torch on CPU (None: leave as is). One thread is faster on a busy shared CPU.
        "torch_threads": by_profile(1, None, p),
    }


# ----------------------------------------------------------------------------- running


@dataclass
class WhenMTLResult:
    """What :func:`run` returns.

    ``runs``: one row per trained model (setting, arm, weighting, seed, test metric, best epoch,
    seconds). ``comparisons``: one row per (setting, weighting): the paired multi- minus
    single-task difference over seeds. ``weight_logs``: the per-step weight log of every
    multi-task run, keyed ``"<setting>/<weighting>/seed<k>"``.
    """

    runs: pd.DataFrame
    comparisons: pd.DataFrame
    settings: pd.DataFrame
    config: dict[str, Any]
    weight_logs: dict[str, pd.DataFrame] = field(default_factory=dict)
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    run_dir: Path | None = None

    @classmethod
    def from_units(cls, cfg, run_dir, finished) -> "WhenMTLResult":
        """The result of the finished ``(unit, UnitResult)`` pairs of a run folder."""
        splits = pd.read_csv(run_dir / "splits.csv")
        grid = settings(cfg, int((splits["split"] == "train").sum()))
        runs = pd.concat([r.metrics for _, r in finished], ignore_index=True)
        runs["reused"] = runs["reused"].astype(bool)
        weight_logs, histories = {}, {}
        for unit, r in finished:
            for name, table in r.tables.items():  # "weights.<weighting>", "history.<arm or weighting>"
                kind, _, arm = name.partition(".")
                key = f"{unit['setting']}/{arm}/seed{unit['seed']}"
                (weight_logs if kind == "weights" else histories)[key] = table
        return cls(runs, compare(runs, cfg["metric"]), grid, cfg, weight_logs, histories, run_dir=run_dir)

    def table(self) -> pd.DataFrame:
        """The paired comparisons: ``gain [CI] (p)`` per setting and weighting."""
        c = self.comparisons.copy()
        c["gain"] = c.apply(lambda r: f"{r.mean_diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] p={r.p_ttest:.2f}", axis=1)
        return c.pivot_table(index=list(FACTORS), columns="weighting", values="gain", aggfunc="first")

    def curve(self, factor: str, hue: str | None = None, weighting: str = "equal") -> pd.DataFrame:
        """Comparison rows for the curve along ``factor`` (other factors at baseline, except ``hue``)."""
        base = self.settings[self.settings["is_baseline"]].iloc[0]
        keep = self.comparisons["weighting"] == weighting
        for f in FACTORS:
            if f not in (factor, hue):
                keep &= self.comparisons[f] == base[f]
        return self.comparisons[keep].sort_values([c for c in (hue, factor) if c])


def _standardise(table: pd.DataFrame, column: str, train_mask: np.ndarray) -> None:
    mu = table.loc[train_mask, column].mean()
    sd = table.loc[train_mask, column].std()
    table[column] = (table[column] - mu) / (sd if sd > 0 else 1.0)


def _prepare_seed(bench: BenchmarkData, split: np.ndarray, setting: Mapping[str, Any], seed: int) -> pd.DataFrame:
    """The label table of one (setting, seed): scarce main/aux labels and label noise."""
    main = bench.main.name
    aux = bench.auxiliary[setting["relatedness"]].name
    table = bench.table.copy()
    table["split"] = split
    train = (table["split"] == "train").to_numpy()
    train_val = train | (table["split"] == "val").to_numpy()
    table[main] = table[main].astype(float)
    if setting["label_noise"]:
        rng = np.random.default_rng([seed, 11])
        table.loc[train_val, main] = flip_labels(table.loc[train_val, main].to_numpy(), float(setting["label_noise"]), rng)
    n_train = int(train.sum())
    n_main = int(setting["n_main_labels"])
    if n_main > n_train:
        raise ValueError(f"n_main_labels={n_main} but only {n_train} training images.")
    scarce = subsample_labels(table[train], main, n_main, seed=seed)
    table.loc[train, main] = scarce[main].to_numpy()
    _standardise(table, aux, train)
    n_aux = setting["n_aux_labels"]
    n_aux = n_train if n_aux is None or pd.isna(n_aux) else int(n_aux)
    if n_aux > n_train:
        raise ValueError(f"n_aux_labels={n_aux} but only {n_train} training images.")
    if n_aux < n_train:
        scarce = subsample_labels(table[train], aux, n_aux, seed=seed + 1000, stratify=False)
        table.loc[train, aux] = scarce[aux].to_numpy()
    return table


def _fit_one(bench, table, tasks, cfg, seed, weighting, single_task, progress):
    main = bench.main.name
    tcfg = dict(cfg["train"])
    batch_size = tcfg.pop("batch_size")
    parts = {s: table[table["split"] == s] for s in ("train", "val", "test")}
    n_mt_train = len(parts["train"])
    if single_task:
        parts["train"] = parts["train"][parts["train"][main].notna()]
    loaders = {}
    for s, part in parts.items():
        ds = MultiTaskDataset(part, tasks, bench.images[part.index.to_numpy()])
        sampler = None
        if s == "train" and single_task and cfg["single_task_steps"] == "matched":
            g = torch.Generator().manual_seed(seed)
            sampler = RandomSampler(ds, replacement=True, num_samples=n_mt_train, generator=g)
        elif s == "train" and not single_task and cfg.get("main_label_share") and part[main].isna().any():
            sampler = labelled_share_sampler(part[main].to_numpy(), cfg["main_label_share"], seed=seed)
        loaders[s] = make_loader(ds, batch_size=batch_size, shuffle=(s == "train"), seed=seed, sampler=sampler)
    seed_everything(seed)
    model = create_model(
        cfg["model"]["backbone"], tasks, spatial_dims=bench.spatial_dims, in_chans=bench.images.shape[1],
        head_hidden=cfg["model"]["head_hidden"], head_dropout=cfg["model"]["head_dropout"],
        backbone_kwargs=cfg["model"].get("backbone_kwargs"),
    )
    wkw = dict(cfg.get("weighting_kwargs", {}).get(weighting, {}))
    loss = MultiTaskLoss(tasks, weighting=weighting, **wkw)
    res = fit(model, loaders["train"], loaders["val"], tasks, loss, TrainConfig(**tcfg, seed=seed, progress=False))
    preds = predict(res.model, loaders["test"], tasks)
    with ignore_degenerate_input_warnings():
        value = metric_value(preds, bench.main, cfg["metric"])
    return value, res, loss.weighting.weight_log()


class Prepared:
    """The generator's data, the split (one per run) and the grid of settings."""

    def __init__(self, cfg: Mapping[str, Any]):
        if cfg["single_task_steps"] not in ("matched", "epochs"):
            raise ValueError(f"single_task_steps must be 'matched' or 'epochs', got {cfg['single_task_steps']!r}.")
        self.bench = GENERATORS.get(cfg["generator"])(cfg["data"])
        d = cfg["data"]
        self.split = train_val_test_split(
            self.bench.table, val_fraction=d["val_fraction"], test_fraction=d["test_fraction"],
            stratify_column=self.bench.main.name, seed=d["seed"],
        ).to_numpy()
        self.grid = settings(cfg, int((self.split == "train").sum()))
        self.table = self.bench.table.assign(split=self.split)


def units(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One unit per setting and seed. A single-task model ignores the auxiliary task, so it is trained
    once per (main labels, noise, seed): a later setting that shares them runs after that unit and reuses it."""
    grid = settings(cfg)
    first: dict[tuple, str] = {}
    out = []
    for _, s in grid.iterrows():
        for seed in cfg["seeds"]:
            unit: dict[str, Any] = {"setting": s["setting"], "seed": seed}
            st_key = (s["n_main_labels"], s["label_noise"], seed)
            if st_key in first:
                unit["after"] = [first[st_key]]
            else:
                first[st_key] = unit_key(unit)
            out.append(unit)
    return out


def train_unit(cfg: Mapping[str, Any], unit: Mapping[str, Any], prepared: Prepared, checkpoint_dir=None,
               progress: bool = True, upstream=None) -> UnitResult:
    """The single-task model (or ``upstream``'s, reused) and every weighting's multi-task model of one
    setting and seed; ``metrics`` holds one row per model, ``model`` the single-task row."""
    bench, seed = prepared.bench, int(unit["seed"])
    s = prepared.grid.set_index("setting").loc[unit["setting"]]
    setting = {f: s[f] for f in FACTORS}
    names = list(cfg["weightings"]) + (list(cfg.get("baseline_weightings", [])) if s["is_baseline"] else [])
    rows, tables = [], {}
    with torch_threads(cfg.get("torch_threads")):
        table = _prepare_seed(bench, prepared.split, setting, seed)
        aux = bench.auxiliary[setting["relatedness"]]
        for weighting in ([] if upstream else [None]) + list(dict.fromkeys(names)):
            tasks = [bench.main] if weighting is None else [bench.main, aux]
            t_fit = time.perf_counter()
            value, res, wlog = _fit_one(bench, table, tasks, cfg, seed, weighting or "equal", weighting is None, progress)
            rows.append({
                "setting": unit["setting"], **setting, "arm": "single_task" if weighting is None else "multi_task",
                "weighting": weighting or "-", "aux_task": "-" if weighting is None else aux.name, "seed": seed,
                cfg["metric"]: value, "task": bench.main.name, "metric": cfg["metric"], "value": value,  # long form for run figures
                "best_epoch": res.best_epoch, "seconds": time.perf_counter() - t_fit, "reused": False,
            })
            tables[f"history.{weighting or 'single_task'}"] = res.history
            if weighting is not None:
                tables[f"weights.{weighting}"] = wlog
    if upstream:
        rows.insert(0, {**upstream[0], "setting": unit["setting"], **setting, "reused": True})
    single = {k: v for k, v in rows[0].items() if k not in ("setting", *FACTORS, "reused")}
    return UnitResult(None, pd.DataFrame({"best_epoch": [rows[0]["best_epoch"]]}), pd.DataFrame(rows), single, tables)


def load_single_task(cfg, unit, unit_dir: Path) -> dict[str, Any]:
    """The single-task row a finished unit trained (what a later unit with the same labels reuses)."""
    runs = pd.read_csv(Path(unit_dir) / "metrics.csv")
    row = runs[runs["arm"] == "single_task"].iloc[0].to_dict()
    return {k: v for k, v in row.items() if k not in ("setting", *FACTORS, "reused")}


def aggregate(result: WhenMTLResult, run_dir: Path) -> str:
    """Tables, weight logs and the gain curves into the run folder; the comparison table as text."""
    write_outputs(result, run_dir)
    return result.table().to_string()


EXPERIMENT = Experiment(NAME, default_config=default_config, prepare=Prepared, units=units, train_unit=train_unit,
                        aggregate=aggregate, result_cls=WhenMTLResult, load_upstream=load_single_task)
run, run_unit, report, load_result, data_manifest, data_splits = EXPERIMENT.module_api()


def compare(runs: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Paired multi- minus single-task differences per (setting, weighting), paired by seed."""
    out = []
    st = runs[runs["arm"] == "single_task"].set_index(["setting", "seed"])[metric]
    mt = runs[runs["arm"] == "multi_task"]
    for (setting, weighting), grp in mt.groupby(["setting", "weighting"], sort=False):
        grp = grp.sort_values("seed")
        control = st.loc[[(setting, k) for k in grp["seed"]]].to_numpy()
        first = grp.iloc[0]
        out.append({
            "setting": setting, **{f: first[f] for f in FACTORS}, "weighting": weighting,
            f"single_{metric}": float(np.mean(control)), f"multi_{metric}": float(grp[metric].mean()),
            **paired_summary(grp[metric].to_numpy(), control),
        })
    return pd.DataFrame(out)


def write_outputs(result: WhenMTLResult, run_dir: Path) -> None:
    """Tables, weight logs and figures into a run folder."""
    import matplotlib.pyplot as plt

    from mtbench.plots import plot_gain_curves

    result.settings.to_csv(run_dir / "settings.csv", index=False)
    result.runs.to_csv(run_dir / "runs.csv", index=False)
    result.comparisons.to_csv(run_dir / "comparisons.csv", index=False)
    for key, log in result.weight_logs.items():
        path = run_dir / "weights" / (key.replace("/", "_") + ".csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        log.to_csv(path, index=False)
    fig = plot_gain_curves(result.curve("n_main_labels", hue="relatedness"), x="n_main_labels", hue="relatedness")
    fig.savefig(run_dir / "gain_vs_main_labels.png", dpi=110)
    plt.close(fig)
