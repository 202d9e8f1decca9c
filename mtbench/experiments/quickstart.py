"""Quickstart: single-task vs multi-task on synthetic chest X-rays when prognosis labels are few.

The question: with only a few prognosis labels, does also learning the (cheaper, plentiful)
severity score help the prognosis head? On the synthetic generator prognosis depends on severity
(see :mod:`mtbench.data.synthetic`), so it should, and this experiment measures whether it does.

Arms (same backbone, data, seed and budget):

``single_task``  prognosis head only, trained on the images that have a prognosis label;
``multi_task``   prognosis + severity heads, trained on all images; each image trains the heads
                 it has labels for (masked loss).

Everything is in :func:`default_config`; :func:`run` executes it and writes a run folder.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from mtbench.data import MultiTaskDataset, make_synthetic_cxr, split_table, subsample_labels, train_val_test_split
from mtbench.models import create_model
from mtbench.mtl import MultiTaskLoss
from mtbench.profiles import by_profile, current_profile
from mtbench.tasks import Task
from mtbench.train import TrainConfig, fit, make_loader, predict, seed_everything

NAME = "quickstart"
DESCRIPTION = "single-task vs multi-task (prognosis + severity) on synthetic chest X-rays with scarce prognosis labels"


def default_config(profile: str | None = None) -> dict[str, Any]:
    """The experiment's settings for a profile (``smoke``: a 2-core CPU in about a minute)."""
    p = profile or current_profile()
    return {
        "experiment": NAME,
        "profile": p,
        "data": {
            "n_patients": by_profile(700, 3000, p),
            "size": by_profile(96, 128, p),
            "test_fraction": by_profile(0.3, 0.3, p),
            "val_fraction": 0.15,
            # Label scarcity: how many training images keep their prognosis label.
            "n_prognosis_labels": by_profile(60, 150, p),
            "seed": 0,
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
        },
        "arms": {
            "single_task": ["prognosis"],
            "multi_task": ["prognosis", "severity"],
        },
        "seeds": by_profile([0, 1], [0, 1, 2, 3, 4], p),
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


@dataclass
class QuickstartResult:
    """Everything :func:`run` produced; ``results`` is the comparison table with CIs."""

    results: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    histories: dict[str, pd.DataFrame]
    best_epochs: dict[str, int]
    splits: pd.DataFrame
    config: dict[str, Any]
    run_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def table(self, metrics=("auc", "balanced_accuracy", "f1")) -> pd.DataFrame:
        """Prognosis metrics as ``value [ci_low, ci_high]`` strings, one row per arm (and seed)."""
        sub = self.results[(self.results["task"] == "prognosis") & self.results["metric"].isin(metrics)].copy()
        sub["cell"] = sub.apply(lambda r: f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]", axis=1)
        return sub.pivot_table(index=["model", "seed"], columns="metric", values="cell", aggfunc="first")[list(metrics)]


def prepare_data(cfg: Mapping[str, Any]):
    """Generate the images, split by patient and hide all but ``n_prognosis_labels`` training labels."""
    d = cfg["data"]
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


def data_manifest(cfg: Mapping[str, Any]) -> pd.DataFrame:
    """The label table the run uses (fingerprinted into the run folder)."""
    return prepare_data(cfg)[1]


def units(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Independent pieces of the experiment: one per arm and seed."""
    return [{"arm": arm, "seed": seed} for seed in cfg["seeds"] for arm in cfg["arms"]]


@dataclass
class UnitResult:
    predictions: pd.DataFrame
    history: pd.DataFrame
    best_epoch: int
    metrics: pd.DataFrame  # bootstrap CIs on the test set


def train_unit(
    cfg: Mapping[str, Any], unit: Mapping[str, Any], prepared=None, checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> UnitResult:
    """Train one arm with one seed and score it on the test split."""
    from mtbench.stats import bootstrap_metrics

    arm, seed = unit["arm"], int(unit["seed"])
    data, table = prepared if prepared is not None else prepare_data(cfg)
    task_names = cfg["arms"][arm]
    tasks = [TASKS[n] for n in task_names]
    tcfg = dict(cfg["train"])
    batch_size = tcfg.pop("batch_size")
    num_workers = tcfg.pop("num_workers", 0)
    train_rows = table["split"] == "train"
    if task_names == ["prognosis"]:
        # A single-task model only sees the images that carry its label.
        train_rows &= table["prognosis"].notna()
    loaders = {}
    for s in ("train", "val", "test"):
        part = table[(table["split"] == s) & (train_rows if s == "train" else True)]
        ds = MultiTaskDataset(part, tasks, data.images[part.index.to_numpy()])
        loaders[s] = make_loader(ds, batch_size=batch_size, shuffle=(s == "train"), seed=seed, num_workers=num_workers)
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
    train_cfg = TrainConfig(**tcfg, seed=seed, progress=progress,
                            checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None)
    res = fit(model, loaders["train"], loaders["val"], tasks, loss, train_cfg)
    preds = predict(res.model, loaders["test"], tasks)
    preds.insert(1, "model", arm)
    preds.insert(2, "seed", seed)
    boot = bootstrap_metrics(preds, tasks, n_boot=cfg["bootstrap"]["n_boot"], ci=cfg["bootstrap"]["ci"], seed=seed)
    boot.insert(0, "model", arm)
    boot.insert(1, "seed", seed)
    return UnitResult(preds, res.history.assign(model=arm, seed=seed), res.best_epoch, boot)


def run_unit(cfg: Mapping[str, Any], unit: Mapping[str, Any], unit_dir: Path, progress: bool = True) -> None:
    """Train one unit into its folder (checkpoints there too, so a killed unit resumes)."""
    from mtbench.predictions import save_predictions
    from mtbench.train.distributed import is_main_process

    r = train_unit(cfg, unit, checkpoint_dir=unit_dir, progress=progress)
    if is_main_process():
        save_predictions(r.predictions, unit_dir / "predictions.csv")
        r.history.assign(best_epoch=r.best_epoch).to_csv(unit_dir / "history.csv", index=False)
        r.metrics.to_csv(unit_dir / "metrics.csv", index=False)


def run(config: Mapping[str, Any] | None = None, run_dir: str | Path | None = None, progress: bool = True) -> QuickstartResult:
    """Run every arm and seed in memory (the notebook's way); write a run folder if ``run_dir`` is given."""
    cfg = copy.deepcopy(dict(config or default_config()))
    t0 = time.perf_counter()
    prepared = prepare_data(cfg)
    timings = {"data_s": time.perf_counter() - t0}
    results, predictions, histories, best_epochs = [], {}, {}, {}
    for unit in units(cfg):
        key = f"{unit['arm']}/seed{unit['seed']}"
        t_unit = time.perf_counter()
        r = train_unit(cfg, unit, prepared, progress=progress)
        results.append(r.metrics)
        predictions[key], histories[key], best_epochs[key] = r.predictions, r.history, r.best_epoch
        timings[f"{key}_s"] = time.perf_counter() - t_unit
    timings["total_s"] = time.perf_counter() - t0
    out = QuickstartResult(
        pd.concat(results, ignore_index=True), predictions, histories, best_epochs,
        prepared[1][["sample_id", "patient_id", "split"]], cfg, timings=timings,
    )
    if run_dir is not None:
        write_outputs(out, Path(run_dir))
    return out


def load_result(run_dir: str | Path) -> QuickstartResult:
    """Rebuild a :class:`QuickstartResult` from the finished units of a run folder."""
    from mtbench.predictions import load_predictions
    from mtbench.runs import finished_units, load_run_config

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    results, predictions, histories, best_epochs = [], {}, {}, {}
    for unit, udir in finished_units(run_dir, units(cfg)):
        key = f"{unit['arm']}/seed{unit['seed']}"
        results.append(pd.read_csv(udir / "metrics.csv"))
        predictions[key] = load_predictions(udir / "predictions.csv")
        hist = pd.read_csv(udir / "history.csv")
        best_epochs[key] = int(hist["best_epoch"].iloc[0])
        histories[key] = hist.drop(columns="best_epoch")
    if not results:
        raise FileNotFoundError(f"No finished unit in {run_dir}.")
    splits = pd.read_csv(run_dir / "splits.csv") if (run_dir / "splits.csv").is_file() else pd.DataFrame()
    return QuickstartResult(pd.concat(results, ignore_index=True), predictions, histories, best_epochs, splits, cfg, run_dir)


def report(run_dir: str | Path) -> str:
    """Aggregate the finished units of a run folder: results.csv, figures, and the table as text."""
    run_dir = Path(run_dir)
    result = load_result(run_dir)
    if not (run_dir / "splits.csv").is_file():
        _, table = prepare_data(result.config)
        result.splits = table[["sample_id", "patient_id", "split"]]
    write_outputs(result, run_dir, per_unit=False)
    return result.table().to_string()


def write_outputs(result: QuickstartResult, run_dir: Path, per_unit: bool = True) -> None:
    """Tables, predictions, histories and figures into a run folder."""
    import matplotlib.pyplot as plt

    from mtbench.plots import plot_learning_curves, plot_metric_comparison
    from mtbench.predictions import save_predictions
    from mtbench.runs import write_run_info

    run_dir.mkdir(parents=True, exist_ok=True)
    if per_unit:
        write_run_info(run_dir, result.config, {"timings": result.timings})
        for key, preds in result.predictions.items():
            arm, seed = key.split("/")
            udir = run_dir / "units" / f"arm={arm}" / f"seed={seed.removeprefix('seed')}"
            save_predictions(preds, udir / "predictions.csv")
            result.histories[key].assign(best_epoch=result.best_epochs[key]).to_csv(udir / "history.csv", index=False)
    result.splits.to_csv(run_dir / "splits.csv", index=False)
    result.results.to_csv(run_dir / "results.csv", index=False)
    fig = plot_learning_curves(
        result.histories, ("train_loss.prognosis", "val_loss.prognosis", "val.prognosis.auc"), best_epochs=result.best_epochs
    )
    fig.savefig(run_dir / "learning_curves.png", dpi=110)
    plt.close(fig)
    first = result.results[result.results["seed"] == result.results["seed"].min()]
    fig = plot_metric_comparison(first, ["auc", "balanced_accuracy", "f1"], "prognosis")
    fig.savefig(run_dir / "comparison.png", dpi=110)
    plt.close(fig)
