"""Cobo et al. (2024): multi-task 3D CT prognosis of intracranial hemorrhage (prognosis + GCS + age).

Reference: M. Cobo, A. Pérez del Barrio, P. Menéndez Fernández-Miranda, P. Sanz Bellón,
L. Lloret Iglesias, W. Silva. "Multi-task Learning Approach for Intracranial Hemorrhage
Prognosis", MLMI @ MICCAI 2024 (arXiv:2408.08784).

The ablation, as configuration (:func:`default_config`):

=====================  ========================  ==================================
arm                    backbone                  tasks
=====================  ========================  ==================================
baseline               Pérez del Barrio 3D CNN   prognosis
baseline_densenet      DenseNet-121 (3D)         prognosis
mt_bin_age             DenseNet-121 (3D)         prognosis + age >= 80
mt_bin_gcs             DenseNet-121 (3D)         prognosis + GCS <= 8
mt_bin_gcs_bin_age     DenseNet-121 (3D)         prognosis + GCS <= 8 + age >= 80
mt_ord_gcs             DenseNet-121 (3D)         prognosis + GCS (3 ordinal classes)
mt_ord_gcs_bin_age     DenseNet-121 (3D)         prognosis + ordinal GCS + age >= 80
=====================  ========================  ==================================

Protocol: stratified (by prognosis), patient-grouped ``n_splits``-fold CV; 10% of the patients of
each training split held out (grouped, stratified, leakage-checked) for validation; random oversampling of the minority prognosis class in training;
AdamW; fixed loss weights 0.4 (prognosis) / 0.3 / 0.3; early stopping and model selection on the
validation balanced accuracy of prognosis. Test predictions of all folds are pooled (every
patient predicted once, by the model that did not see it) and scored with percentile bootstrap
95% CIs whose resample size is the test-set size (``bootstrap.sample_size: null``) or the original
code's fixed 100. Splits are saved as ``splits.csv`` in the run folder.

Smoke profile: the head-CT phantom (:mod:`mtbench.data.phantom`) in the ``SMOKE_PHANTOM_AGE``
known-answer world, 16x32x32, two folds, four of the seven arms (:data:`SMOKE_ARMS`), a narrow
DenseNet (same family, fewer layers and channels); epochs selected on the validation loss and binary decisions
at the validation-chosen (Youden) threshold, the paper's balanced-accuracy selection and 0.5
threshold being switches (``train.monitor``, ``eval.threshold``). Full profile: the real data
(:mod:`mtbench.data.sources.ich_ct`), input 1x40x301x301, the paper's DenseNet-121.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from mtbench.data import MultiTaskDataset, assign_folds
from mtbench.data.report import Manifest, Report
from mtbench.data.sampling import random_oversample
from mtbench.data.transforms import CTPreprocess
from mtbench.experiments.base import Experiment, UnitResult, cell_text
from mtbench.metrics import ignore_degenerate_input_warnings
from mtbench.profiles import by_profile, current_profile, runs_root
from mtbench.tasks import Task

NAME = "cobo2024"
DESCRIPTION = "Cobo et al. 2024: 3D CT ICH prognosis with GCS and age as auxiliary tasks (7-arm ablation, k-fold CV)"

BINARY_METRICS = ("auc", "accuracy", "balanced_accuracy", "specificity", "npv", "precision", "sensitivity", "f1")
ORDINAL_METRICS = ("qwk", "accuracy", "balanced_accuracy", "mae")


def make_tasks(prognosis_pos_weight: float | None = None) -> dict[str, Task]:
    """The four task definitions (``sensitivity`` is the recall of the positive class)."""
    kw = {} if prognosis_pos_weight is None else {"pos_weight": float(prognosis_pos_weight)}
    return {
        "prognosis": Task("prognosis", "binary", class_names=("good", "poor"), loss_kwargs=kw,
                          metrics=BINARY_METRICS, primary_metric="balanced_accuracy", description="poor outcome"),
        "gcs_bin": Task("gcs_bin", "binary", class_names=("GCS>8", "GCS<=8"), metrics=BINARY_METRICS,
                        description="Glasgow Coma Scale <= 8"),
        "gcs_ord": Task("gcs_ord", "ordinal", num_classes=3, class_names=("13-15", "9-12", "3-8"), metrics=ORDINAL_METRICS,
                        description="GCS in three ordered classes (cumulative logits)"),
        "age_80": Task("age_80", "binary", class_names=("<80", ">=80"), metrics=BINARY_METRICS, description="age >= 80"),
    }


#: The arms of the smoke profile: the CNN and DenseNet single-task baselines, prognosis + binary
#: GCS, and prognosis + ordinal GCS + age (every auxiliary head kind). Seven 3D models twice (two
#: folds) did not fit the smoke notebook's one-minute CPU budget at sizes where prognosis is learned.
SMOKE_ARMS = ("baseline", "baseline_densenet", "mt_bin_gcs", "mt_ord_gcs_bin_age")


def paper_arms(dense: str = "densenet121_native") -> dict[str, dict[str, Any]]:
    """The paper's seven arms (backbone, tasks, loss weights), ``dense`` the DenseNet backbone name."""
    w3 = {"prognosis": 0.4}
    return {
        "baseline": {"backbone": "perez_del_barrio_cnn", "tasks": ["prognosis"], "weights": {"prognosis": 1.0}},
        "baseline_densenet": {"backbone": dense, "tasks": ["prognosis"], "weights": {"prognosis": 1.0}},
        "mt_bin_age": {"backbone": dense, "tasks": ["prognosis", "age_80"], "weights": {**w3, "age_80": 0.3}},
        "mt_bin_gcs": {"backbone": dense, "tasks": ["prognosis", "gcs_bin"], "weights": {**w3, "gcs_bin": 0.3}},
        "mt_bin_gcs_bin_age": {"backbone": dense, "tasks": ["prognosis", "gcs_bin", "age_80"],
                               "weights": {**w3, "gcs_bin": 0.3, "age_80": 0.3}},
        "mt_ord_gcs": {"backbone": dense, "tasks": ["prognosis", "gcs_ord"], "weights": {**w3, "gcs_ord": 0.3}},
        "mt_ord_gcs_bin_age": {"backbone": dense, "tasks": ["prognosis", "gcs_ord", "age_80"],
                               "weights": {**w3, "gcs_ord": 0.3, "age_80": 0.3}},
    }


def default_config(profile: str | None = None) -> dict[str, Any]:
    """Settings for a profile.

    ``smoke``: the head-CT phantom in the :data:`~mtbench.data.worlds.SMOKE_PHANTOM_AGE` world (200
    patients at 16x32x32), two folds, narrow networks, epochs selected on the validation loss,
    four of the seven arms (:data:`SMOKE_ARMS`; :func:`paper_arms` gives all seven). ``full``: the real data and the paper's
    protocol (DenseNet-121, selection on validation balanced accuracy).
    """
    from mtbench.data.worlds import SMOKE_PHANTOM_AGE

    p = profile or current_profile()
    dense = "densenet121_native"
    return {
        "experiment": NAME,
        "profile": p,
        "data": {
            "source": by_profile("phantom", "ich_ct", p),
            # smoke: a known-answer world whose targets a small model can reach (docs/worlds.md)
            "phantom": by_profile({**SMOKE_PHANTOM_AGE, "n_patients": 300, "shape": [32, 64, 64], "seed": 0},
                                  {"n_patients": 64, "shape": [32, 64, 64], "seed": 0}, p),
            "root": None,
            "clinical": None,
            "preprocess": {
                "windows": ["cobo"],
                "shape": by_profile([16, 32, 32], [40, 301, 301], p),
                "spacing": None,
                "depth": None,
                # smoke: strip the skull at 32x64x64 before the resize, or its partial volume
                # (~300 blood-like voxels) swamps the ~30-voxel hematoma (docs/worlds.md); full: an option
                "skull_strip": by_profile(True, False, p),
            },
            # preprocessed volumes are cached here (keyed by file + settings); None disables the cache
            "cache_dir": by_profile(None, str(runs_root() / "cache" / "ich_ct"), p),
        },
        # validation: whole patients; 15% in smoke so each class has a handful of validation patients
        "cv": {"n_splits": by_profile(2, 10, p), "val_fraction": by_profile(0.15, 0.1, p), "seed": 0, "folds": None},
        "oversample": True,
        "prognosis_pos_weight": None,
        "model": {
            "backbone_kwargs": by_profile(
                {dense: {"init_features": 8, "growth_rate": 8, "block_config": [2, 2, 2]},
                 "perez_del_barrio_cnn": {"padding": "same"}},
                {},
                p,
            ),
            "head_hidden": [],
            "head_dropout": 0.0,
        },
        # smoke: a documented subset of the ablation (SMOKE_ARMS) so that it fits a 2-core CPU budget
        "arms": by_profile({k: v for k, v in paper_arms(dense).items() if k in SMOKE_ARMS}, paper_arms(dense), p),
        "train": {
            "epochs": by_profile(20, 100, p),
            "batch_size": by_profile(16, 4, p),
            "lr": by_profile(3e-3, 1e-3, p),  # full: the original code's AdamW lr; smoke: faster for 20 epochs
            "weight_decay": by_profile(1e-2, 1e-4, p),  # full: the original's 1e-4
            "optimizer": "adamw",
            # balanced accuracy over ~15 validation patients rarely improves after epoch 1 (issue 13):
            # smoke selects on the validation loss; the paper's criterion stays the full profile's
            "monitor": by_profile("loss", "prognosis.balanced_accuracy", p),
            "patience": by_profile(None, 20, p),
        },
        # binary decisions: threshold chosen on validation ("youden"); "fixed" = the paper's 0.5
        "eval": {"threshold": "youden"},
        "bootstrap": {"n_boot": by_profile(100, 1000, p), "ci": 0.95, "sample_size": None, "stratify": False},
    }


# --------------------------------------------------------------------------- data
def load_data(cfg: Mapping[str, Any]):
    """``(manifest, images)``: the label table with its adapter's report (a
    :class:`~mtbench.data.report.Manifest`) and either an image array ``[N, C, D, H, W]`` or a loader."""
    d = cfg["data"]
    pre = CTPreprocess(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d["preprocess"].items()})
    if d["source"] == "phantom":
        from mtbench.data.phantom import make_head_ct_phantom

        ph = make_head_ct_phantom(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d["phantom"].items()})
        return Manifest(ph.table.copy(), Report()), ph.images(pre)
    if d["source"] == "ich_ct":
        from mtbench.data.cache import VolumeLoader
        from mtbench.data.sources.ich_ct import load_manifest, report_text

        manifest = load_manifest(d.get("root"), clinical=d.get("clinical"))
        print(report_text(manifest))
        return manifest, VolumeLoader(pre, d.get("cache_dir"))
    raise ValueError(f"Unknown data source {d['source']!r}; use 'phantom' or 'ich_ct'.")


def make_splits(table: pd.DataFrame, n_splits: int, val_fraction: float, seed: int = 0) -> pd.DataFrame:
    """Long table ``fold, sample_id, patient_id, prognosis, split`` (train/val/test) for every fold.

    Folds are patient-grouped and stratified by prognosis; within each fold's training part about
    ``val_fraction`` of the *patients* is held out for validation (one fold of a patient-grouped,
    stratified ``round(1 / val_fraction)``-fold split), and every fold goes through
    :func:`mtbench.data.splits.check_no_leakage`.
    """
    from mtbench.data.splits import check_no_leakage

    folds = assign_folds(table, n_splits, group_column="patient_id", stratify_column="prognosis", seed=seed)
    rows = []
    for k in range(n_splits):
        split = pd.Series("test", index=table.index)
        rest = table[folds != k]
        split[rest.index] = "train"
        if val_fraction > 0:
            # a class must have a patient in every validation fold (small smoke tables: fewer folds)
            n_val = max(2, min(round(1 / val_fraction), int(rest["prognosis"].value_counts().min())))
            vfolds = assign_folds(rest, n_val, group_column="patient_id", stratify_column="prognosis", seed=seed + 1 + k)
            split[vfolds.index[vfolds == 0]] = "val"
        check_no_leakage({s: table[split == s] for s in ("train", "val", "test")}, "patient_id")
        for name in ("train", "val", "test"):
            part = table[split == name]
            rows.append(pd.DataFrame({"fold": k, "sample_id": part["sample_id"].to_numpy(),
                                      "patient_id": part["patient_id"].to_numpy(),
                                      "prognosis": part["prognosis"].to_numpy(), "split": name}))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------- result
@dataclass
class Cobo2024Result:
    """What :func:`run` returns. ``results``: pooled metrics with bootstrap CIs per arm and task;
    ``fold_metrics``: the same metrics per fold; ``predictions``: pooled test predictions per arm."""

    results: pd.DataFrame
    fold_metrics: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    histories: dict[str, pd.DataFrame]
    splits: pd.DataFrame
    config: dict[str, Any]
    run_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_units(cls, cfg, run_dir: Path, finished) -> "Cobo2024Result":
        """Pool the finished units' test predictions per arm (see :func:`pool`)."""
        preds_by_arm: dict[str, list[pd.DataFrame]] = {a: [] for a in cfg["arms"]}
        histories = {}
        for unit, r in finished:
            preds_by_arm[unit["arm"]].append(r.predictions)
            histories[f"{unit['arm']}/fold{unit['fold']}"] = r.history
        splits = pd.read_csv(run_dir / "splits.csv") if (run_dir / "splits.csv").is_file() else pd.DataFrame()
        out = pool(cfg, preds_by_arm, histories, splits)
        out.run_dir = run_dir
        return out

    def table(self, task: str = "prognosis", metrics=("auc", "balanced_accuracy", "accuracy", "specificity", "npv", "precision", "sensitivity", "f1")) -> pd.DataFrame:
        """``value [ci_low, ci_high]`` strings, one row per arm, for one task."""
        sub = self.results[(self.results["task"] == task) & self.results["metric"].isin(metrics)].copy()
        sub["cell"] = [cell_text(v, lo, hi) for v, lo, hi in zip(sub["value"], sub["ci_low"], sub["ci_high"])]
        out = sub.pivot_table(index="arm", columns="metric", values="cell", aggfunc="first")
        order = [a for a in self.config["arms"] if a in out.index]
        return out.loc[order, [m for m in metrics if m in out.columns]]

    def with_reference(self, task: str = "prognosis") -> pd.DataFrame:
        """Our pooled values beside the published ones (NaN where the paper's number is not in
        ``mtbench/references/cobo2024_results.csv``)."""
        ref = load_reference_results()
        ours = self.results[self.results["task"] == task][["arm", "task", "metric", "value", "ci_low", "ci_high"]]
        ref = ref.rename(columns={"value": "published", "ci_low": "published_ci_low", "ci_high": "published_ci_high"})
        return ours.merge(ref[["arm", "task", "metric", "published", "published_ci_low", "published_ci_high"]],
                          on=["arm", "task", "metric"], how="left")


def load_reference_results() -> pd.DataFrame:
    """The paper's numbers as shipped in ``mtbench/references/cobo2024_results.csv``."""
    from mtbench.references import load_reference

    return load_reference("cobo2024_results")


# --------------------------------------------------------------------------- run
def prepare(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Data, splits and tasks of a configuration."""
    (table, report), images = load_data(cfg)
    table = table.reset_index(drop=True)
    cv = cfg["cv"]
    return {
        "table": table,
        "report": report,
        "images": images,
        "splits": make_splits(table, cv["n_splits"], cv["val_fraction"], cv["seed"]),
        "pos": {sid: i for i, sid in enumerate(table["sample_id"])},
        "tasks": make_tasks(cfg.get("prognosis_pos_weight")),
    }


def train_unit(cfg: Mapping[str, Any], unit: Mapping[str, Any], prep: dict[str, Any], checkpoint_dir: str | Path | None = None,
               progress: bool = True, upstream=None) -> UnitResult:
    """Train one arm on one fold; its test predictions, history and per-fold metrics."""
    import torch
    from torch.utils.data import Subset

    from mtbench.models import create_model
    from mtbench.mtl import MultiTaskLoss
    from mtbench.thresholds import predict_thresholded
    from mtbench.train import TrainConfig, fit, make_loader, seed_everything

    from mtbench.metrics import compute_metrics

    arm, fold = unit["arm"], int(unit["fold"])
    table, images, splits, pos = prep["table"], prep["images"], prep["splits"], prep["pos"]
    in_chans = max(1, len(cfg["data"]["preprocess"]["windows"]))
    cv = cfg["cv"]
    tcfg = dict(cfg["train"])
    batch_size = tcfg.pop("batch_size")
    num_workers = tcfg.pop("num_workers", 0)

    def dataset(rows: np.ndarray, tasks):
        part = table.iloc[rows]
        imgs = images[rows] if isinstance(images, np.ndarray) else images
        return MultiTaskDataset(part, tasks, imgs, meta_columns=["patient_id"])

    spec = cfg["arms"][arm]
    fs = splits[splits["fold"] == fold]
    rows = {s: np.array([pos[i] for i in fs.loc[fs["split"] == s, "sample_id"]]) for s in ("train", "val", "test")}
    tasks = [prep["tasks"][n] for n in spec["tasks"]]
    train_ds = dataset(rows["train"], tasks)
    if cfg.get("oversample", True):
        idx = random_oversample(table.loc[rows["train"], "prognosis"].to_numpy(), seed=cv["seed"] + fold)
        train_ds = Subset(train_ds, idx.tolist())
    seed = cv["seed"] + fold
    loaders = {
        "train": make_loader(train_ds, batch_size=batch_size, shuffle=True, seed=seed, num_workers=num_workers),
        "val": make_loader(dataset(rows["val"], tasks), batch_size=batch_size) if len(rows["val"]) else None,
        "test": make_loader(dataset(rows["test"], tasks), batch_size=batch_size),
    }
    seed_everything(seed)
    model = create_model(
        spec["backbone"], tasks, spatial_dims=3, in_chans=in_chans,
        head_hidden=cfg["model"]["head_hidden"], head_dropout=cfg["model"]["head_dropout"],
        backbone_kwargs=cfg["model"]["backbone_kwargs"].get(spec["backbone"], {}),
    )
    loss = MultiTaskLoss(tasks, weighting="fixed", weights=spec["weights"])
    res = fit(model, loaders["train"], loaders["val"], tasks, loss,
              TrainConfig(**tcfg, seed=seed, progress=progress, checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None))
    # binary decisions at the threshold chosen on validation (Youden; "fixed" = the paper's 0.5)
    thr = cfg.get("eval", {}).get("threshold", "youden")
    p = predict_thresholded(res.model, loaders["val"], loaders["test"], tasks, method="fixed" if loaders["val"] is None else thr)
    p.insert(1, "fold", fold)
    history = res.history.assign(arm=arm, fold=fold, best_epoch=res.best_epoch)
    with ignore_degenerate_input_warnings():
        metrics = compute_metrics(p, tasks, by="fold").assign(arm=arm)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return UnitResult(p, history, metrics)


def pool(cfg: Mapping[str, Any], preds_by_arm: Mapping[str, list[pd.DataFrame]], histories, splits, timings=None) -> Cobo2024Result:
    """Pooled-over-folds metrics with bootstrap CIs, and per-fold metrics, per arm."""
    from mtbench.metrics import compute_metrics
    from mtbench.stats import bootstrap_metrics

    all_tasks = make_tasks(cfg.get("prognosis_pos_weight"))
    results, fold_metrics, predictions = [], [], {}
    b = cfg["bootstrap"]
    for arm, parts in preds_by_arm.items():
        if not parts:
            continue
        tasks = [all_tasks[n] for n in cfg["arms"][arm]["tasks"]]
        preds = pd.concat(parts, ignore_index=True)
        preds.attrs["tasks"] = [t.to_dict() for t in tasks]
        predictions[arm] = preds
        with ignore_degenerate_input_warnings():
            boot = bootstrap_metrics(preds, tasks, n_boot=b["n_boot"], ci=b["ci"], seed=cfg["cv"]["seed"],
                                     stratify=b.get("stratify", False), sample_size=b.get("sample_size"))
            fm = compute_metrics(preds, tasks, by="fold")
        boot.insert(0, "arm", arm)
        fm.insert(0, "arm", arm)
        results.append(boot)
        fold_metrics.append(fm)
    return Cobo2024Result(pd.concat(results, ignore_index=True), pd.concat(fold_metrics, ignore_index=True),
                          predictions, dict(histories), splits, dict(cfg), timings=dict(timings or {}))


def _folds(cfg: Mapping[str, Any]) -> list[int]:
    return [int(k) for k in (cfg["cv"].get("folds") or range(cfg["cv"]["n_splits"]))]


# ------------------------------------------------------------------- units (mtbench run/plan/report)
def units(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One unit per arm and fold (7 arms x 10 folds in the full profile)."""
    return [{"arm": arm, "fold": k} for k in _folds(cfg) for arm in cfg["arms"]]


def aggregate(result: Cobo2024Result, run_dir: Path) -> str:
    """``results.csv`` and ``fold_metrics.csv``; the prognosis table with CIs as text."""
    result.results.to_csv(run_dir / "results.csv", index=False)
    result.fold_metrics.to_csv(run_dir / "fold_metrics.csv", index=False)
    return "Prognosis (pooled test predictions, bootstrap 95% CI):\n" + result.table().to_string()


EXPERIMENT = Experiment(NAME, default_config=default_config, prepare=prepare, units=units, train_unit=train_unit,
                        aggregate=aggregate, manifest=lambda prep: Manifest(prep["table"], prep["report"]), splits=lambda prep: prep["splits"],
                        result_cls=Cobo2024Result)
run, run_unit, report, load_result, data_manifest, data_splits = EXPERIMENT.module_api()
