"""Quickstart: single-task vs multi-task on synthetic chest X-rays when prognosis labels are few.

The question: with only a few prognosis labels, does also learning the (cheaper, plentiful)
severity score help the prognosis head? On the synthetic generator prognosis depends on severity
(see :mod:`mtbench.data.synthetic`), so it should, and this experiment measures whether it does.

Arms (same backbone, data, seed and budget):

``single_task``  prognosis head only, trained on the images that have a prognosis label;
``multi_task``   prognosis + severity heads, trained on all images; each image trains the heads
                 it has labels for (masked loss).

Fair baseline (issue 13): the two arms see different numbers of training images, so by default
(``train.single_task_steps = "matched"``) the single-task model draws its labelled images with
replacement until it has taken as many optimizer steps per epoch as the multi-task model
(``"epochs"``: one pass over its own images). Binary decisions use the threshold chosen on the
validation split (``eval.threshold``, Youden's J; ``"fixed"`` is the 0.5 of most papers).

Everything is in :func:`default_config`; :func:`run` executes it and writes a run folder
(:mod:`mtbench.experiments.base`).

Your own data: ``data.source = "table"`` trains the same two arms on a CSV/XLSX of image paths and
task columns (:mod:`mtbench.data.sources.table`)::

    mtbench run quickstart --set data.source=table --set data.table=labels.csv \
        --set data.tasks=outcome:binary,score:regression

The first task is the main one (``data.main_task`` to choose another); unless ``arms`` names the
table's tasks, the arms are the main task alone vs all tasks, and a ``train.monitor`` naming a task
the table lacks becomes the main task's primary metric. Regression columns are standardised with
the training mean and SD (the raw values stay in ``<task>_raw``); no training labels are hidden.
The table's own ``split`` column is used when it has one, else a patient-grouped split stratified
by the main task.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import pandas as pd
import torch
from torch.utils.data import RandomSampler

from mtbench.data import MultiTaskDataset, make_synthetic_cxr, subsample_labels, train_val_test_split
from mtbench.data.report import Manifest, Report
from mtbench.experiments.base import Experiment, ExperimentResult, UnitResult, cell_text
from mtbench.models import create_model
from mtbench.mtl import MultiTaskLoss
from mtbench.profiles import by_profile, current_profile
from mtbench.tasks import Task
from mtbench.thresholds import predict_thresholded
from mtbench.train import TrainConfig, fit, make_loader, seed_everything
from mtbench.train.device import torch_threads

NAME = "quickstart"
DESCRIPTION = "single-task vs multi-task (prognosis + severity) on synthetic chest X-rays with scarce prognosis labels"


def default_config(profile: str | None = None) -> dict[str, Any]:
    """The experiment's settings for a profile (``smoke``: a 2-core CPU in about a minute)."""
    p = profile or current_profile()
    return {
        "experiment": NAME, "profile": p,
        "data": {
            "n_patients": by_profile(700, 3000, p),
            "size": by_profile(64, 128, p),
            "test_fraction": by_profile(0.3, 0.3, p),
            "val_fraction": 0.15,
            # Label scarcity: how many training images keep their prognosis label.
            "n_prognosis_labels": by_profile(60, 150, p),
            "seed": 0,
            # "synthetic", or "table": your own CSV/XLSX (module docstring; README "Your own data")
            "source": "synthetic",
            "table": None, "tasks": None, "main_task": None, "image_column": "image", "patient_column": "patient",
        },
        "model": {"backbone": "convnet", "backbone_kwargs": {"channels": [16, 32, 64, 128]}, "head_hidden": [], "head_dropout": 0.2},
        "loss": {"weighting": "equal", "reduction": "masked_mean"},
        "train": {
            "epochs": by_profile(12, 60, p),
            "batch_size": 32,
            "lr": 2e-3,
            "weight_decay": 1e-4,
            "monitor": "prognosis.auc",
            "patience": by_profile(6, 15, p),
            # "matched": the single-task arm takes as many steps per epoch as the multi-task arm.
            "single_task_steps": "matched",
        },
        # Threshold of the binary decisions, chosen on validation ("fixed" = the papers' 0.5).
        "eval": {"threshold": "youden"},
        # CPU threads for torch (None: torch's default); one is the most CPU-efficient on 2 cores.
        "torch_threads": by_profile(1, None, p),
        "arms": {
            "single_task": ["prognosis"],
            "multi_task": ["prognosis", "severity"],
        },
        "seeds": by_profile([0, 1, 2], [0, 1, 2, 3, 4], p),
        "bootstrap": {"n_boot": by_profile(500, 2000, p), "ci": 0.95},
    }


TASKS = {
    "prognosis": Task("prognosis", "binary", class_names=("mild", "severe"), description="severe outcome (synthetic)"),
    "severity": Task(
        "severity",
        "regression",
        metrics=("mae", "rmse", "pearson_r"),
        description="Brixia-style global score 0-18, standardised with the training mean and SD",
    ),
}


def task_set(cfg: Mapping[str, Any]) -> dict[str, Task]:
    """The tasks of a configuration: :data:`TASKS`, or those of ``data.table`` (``data.tasks``)."""
    d = cfg["data"]
    if d.get("source", "synthetic") == "synthetic":
        return TASKS
    if d.get("source") != "table":
        raise ValueError(f"data.source must be 'synthetic' or 'table', got {d.get('source')!r}.")
    return _table(cfg)[1]


def _table(cfg: Mapping[str, Any]):
    """``(manifest, tasks)`` of ``data.table`` (read once per table, tasks and columns); ``manifest``
    is the :class:`~mtbench.data.report.Manifest` of the own-table adapter."""
    from mtbench.data.sources import table as own

    d = cfg["data"]
    if not d.get("table"):
        raise ValueError("data.source=table needs data.table=<your labels.csv> and data.tasks=<column:kind,...> "
                         "(README, 'Your own data').")
    key = (str(d["table"]), str(d.get("tasks")), d.get("image_column"), d.get("patient_column"))
    if _TABLE_CACHE.get("key") != key:
        m = own.load_manifest(table=d["table"], tasks=d.get("tasks"), image_column=d.get("image_column") or "image",
                              patient_column=d.get("patient_column"))
        _TABLE_CACHE.update(key=key, value=(m, own.make_tasks(m)))
    return _TABLE_CACHE["value"]


_TABLE_CACHE: dict[str, Any] = {}


def main_task(cfg: Mapping[str, Any]) -> str:
    """The task the arms are compared on: ``prognosis``, or ``data.main_task`` / the table's first task."""
    tasks = task_set(cfg)
    name = cfg["data"].get("main_task") or ("prognosis" if "prognosis" in tasks else next(iter(tasks)))
    if name not in tasks:
        raise ValueError(f"data.main_task={name!r} is not a task of the table (tasks: {list(tasks)}).")
    return name


def arms_of(cfg: Mapping[str, Any]) -> dict[str, list[str]]:
    """``cfg["arms"]`` if it names these tasks, else main task alone vs all tasks (own tables)."""
    tasks = task_set(cfg)
    if all(n in tasks for names in cfg["arms"].values() for n in names):
        return dict(cfg["arms"])
    main = main_task(cfg)
    return {"single_task": [main], "multi_task": [main, *[n for n in tasks if n != main]]}


class QuickstartResult(ExperimentResult):
    """Everything :func:`run` produced; ``results`` is the comparison table with CIs."""

    def table(self, metrics=("auc", "balanced_accuracy", "f1")) -> pd.DataFrame:
        """Prognosis metrics as ``value [ci_low, ci_high]`` strings, one row per arm (and seed)."""
        main = "prognosis" if "prognosis" in set(self.results["task"]) else main_task(self.config)
        have = set(self.results.loc[self.results["task"] == main, "metric"])
        metrics = [m for m in metrics if m in have] or sorted(have)  # a regression main task: its own metrics
        sub = self.results[(self.results["task"] == main) & self.results["metric"].isin(metrics)].copy()
        sub["cell"] = [cell_text(v, lo, hi) for v, lo, hi in zip(sub["value"], sub["ci_low"], sub["ci_high"])]
        return sub.pivot_table(index=["model", "seed"], columns="metric", values="cell", aggfunc="first")[list(metrics)]


def prepare_data(cfg: Mapping[str, Any]):
    """Generate the images, split by patient and hide all but ``n_prognosis_labels`` training labels."""
    d = cfg["data"]
    if d.get("source", "synthetic") != "synthetic":
        return _prepare_table(cfg)
    data = make_synthetic_cxr(n_patients=d["n_patients"], size=d["size"], seed=d["seed"])
    split = train_val_test_split(
        data.table, val_fraction=d["val_fraction"], test_fraction=d["test_fraction"],
        stratify_column="prognosis", seed=d["seed"],
    )
    table = data.table.copy()
    table["split"] = split.to_numpy()
    train_mask = (table["split"] == "train").to_numpy()
    # Scarcity applies to training labels only; validation and test keep theirs.
    scarce = subsample_labels(table[train_mask], "prognosis", int(d["n_prognosis_labels"]), seed=d["seed"])
    table["prognosis"] = table["prognosis"].astype(float)
    table.loc[train_mask, "prognosis"] = scarce["prognosis"].to_numpy()
    mu = table.loc[train_mask, "severity"].mean()
    sd = table.loc[train_mask, "severity"].std()
    table["severity_points"] = table["severity"]
    table["severity"] = (table["severity"] - mu) / sd
    return data, table


def _prepare_table(cfg: Mapping[str, Any]):
    """Your own table: images read and letterboxed to ``data.size``, its split (or a patient-grouped
    one stratified by the main task), regression columns standardised on the training split."""
    from mtbench.data.sources import table as own

    d = cfg["data"]
    (manifest, report), tasks = _table(cfg)
    table = manifest.copy()
    main = main_task(cfg)
    if "split" in table.columns:
        bad = sorted(set(table["split"].astype(str)) - {"train", "val", "test"})
        if bad:
            raise ValueError(f"{d['table']}: column 'split' must hold train/val/test, found {bad}.")
        table["split"] = table["split"].astype(str)
    else:
        table["split"] = train_val_test_split(
            table, val_fraction=d["val_fraction"], test_fraction=d["test_fraction"],
            stratify_column=main if tasks[main].is_classification else None, seed=d["seed"]).to_numpy()
    train = table["split"] == "train"
    for name, task in tasks.items():
        if task.kind == "regression":
            mu, sd = table.loc[train, name].mean(), table.loc[train, name].std()
            table[f"{name}_raw"] = table[name]
            table[name] = (table[name] - mu) / (sd or 1.0)
    images = own.load_images(table, d["size"])
    return SimpleNamespace(images=images, table=table, report=report), table


def manifest_of(prepared) -> Manifest:
    """What a run fingerprints: the prepared table, with the own-table adapter's report (an empty one
    for the synthetic data)."""
    data, table = prepared
    return Manifest(table, data.report if isinstance(data, SimpleNamespace) else Report())


def units(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Independent pieces of the experiment: one per arm and seed."""
    return [{"arm": arm, "seed": seed} for seed in cfg["seeds"] for arm in arms_of(cfg)]


def train_unit(
    cfg: Mapping[str, Any], unit: Mapping[str, Any], prepared=None, checkpoint_dir: str | Path | None = None,
    progress: bool = True, upstream=None,
) -> UnitResult:
    """Train one arm with one seed and score it on the test split."""
    from mtbench.stats import bootstrap_metrics

    arm, seed = unit["arm"], int(unit["seed"])
    data, table = prepared if prepared is not None else prepare_data(cfg)
    task_names = arms_of(cfg)[arm]
    tasks = [task_set(cfg)[n] for n in task_names]
    tcfg = dict(cfg["train"])
    batch_size = tcfg.pop("batch_size")
    num_workers = tcfg.pop("num_workers", 0)
    steps = tcfg.pop("single_task_steps", "epochs")
    if steps not in ("matched", "epochs"):
        raise ValueError(f"train.single_task_steps must be 'matched' or 'epochs', got {steps!r}.")
    train_rows = table["split"] == "train"
    n_all_train = int(train_rows.sum())
    if len(task_names) == 1:
        # A single-task model only sees the images that carry its label.
        train_rows &= table[task_names[0]].notna()
    loaders = {}
    for s in ("train", "val", "test"):
        part = table[(table["split"] == s) & (train_rows if s == "train" else True)]
        ds = MultiTaskDataset(part, tasks, data.images[part.index.to_numpy()])
        sampler = None
        if s == "train" and steps == "matched" and len(part) < n_all_train:
            # Same optimisation budget: as many draws (with replacement) per epoch as the arm with every image.
            sampler = RandomSampler(ds, replacement=True, num_samples=n_all_train, generator=torch.Generator().manual_seed(seed))
        loaders[s] = make_loader(ds, batch_size=batch_size, shuffle=(s == "train"), seed=seed,
                                 num_workers=num_workers, sampler=sampler)
    with torch_threads(cfg.get("torch_threads")):
        seed_everything(seed)
        model = create_model(
            cfg["model"]["backbone"], tasks, in_chans=1,
            head_hidden=cfg["model"]["head_hidden"], head_dropout=cfg["model"]["head_dropout"],
            backbone_kwargs=cfg["model"].get("backbone_kwargs"),
        )
        loss_cfg = dict(cfg["loss"])
        if "weights" in loss_cfg:  # fixed weights: keep those of this arm's tasks
            loss_cfg["weights"] = {t: loss_cfg["weights"][t] for t in task_names}
        loss = MultiTaskLoss(tasks, **loss_cfg)
        if tcfg.get("monitor", "loss").split(".")[0] not in (*task_set(cfg), "loss"):  # own table: the main task's metric
            tcfg["monitor"] = f"{main_task(cfg)}.{task_set(cfg)[main_task(cfg)].primary_metric}"
        train_cfg = TrainConfig(**tcfg, seed=seed, progress=progress,
                                checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None)
        res = fit(model, loaders["train"], loaders["val"], tasks, loss, train_cfg)
        # Decisions at the threshold chosen on validation (stored in prognosis.threshold).
        preds = predict_thresholded(res.model, loaders["val"], loaders["test"], tasks,
                                    method=cfg.get("eval", {}).get("threshold", "youden"))
    preds.insert(1, "model", arm)
    preds.insert(2, "seed", seed)
    boot = bootstrap_metrics(preds, tasks, n_boot=cfg["bootstrap"]["n_boot"], ci=cfg["bootstrap"]["ci"], seed=seed)
    boot.insert(0, "model", arm)
    boot.insert(1, "seed", seed)
    return UnitResult(preds, res.history.assign(model=arm, seed=seed, best_epoch=res.best_epoch), boot, res.model)


def aggregate(result: QuickstartResult, run_dir: Path) -> str:
    """``results.csv``; the table as text. The figures are those of every run folder
    (``fig_metrics.png``, ``fig_learning_curves.png``: prognosis losses per arm, ``fig_roc.png``)."""
    result.results.to_csv(run_dir / "results.csv", index=False)
    return result.table().to_string()


EXPERIMENT = Experiment(NAME, default_config=default_config, prepare=prepare_data, units=units, train_unit=train_unit,
                        aggregate=aggregate, manifest=manifest_of, result_cls=QuickstartResult, tasks=task_set)
run, run_unit, report, load_result, data_manifest, data_splits = EXPERIMENT.module_api()
