"""Gong et al. (2023), re-interpreted: hematoma volume (mL) and prognosis from one 3D CT encoder.

Reference: Gong K., Dai Q., Wang J., et al. "Unified ICH quantification and prognosis prediction
in NCCT images using a multi-task interpretable network", Frontiers in Neuroscience 17 (2023).

**A re-interpretation, not a reproduction.** The paper published no code and its data set is not
public; what it states, we keep, every unknown is an option of :func:`default_config`:

===========================  ==================================================  ===================
aspect                       here                                                in the paper
===========================  ==================================================  ===================
tasks                        volume regression (mL) + prognosis (binary)         same
schedule                     ``upstream_downstream``: a shared encoder trained   same idea; layers,
                             on both tasks, then the two heads fine-tuned with   epochs, freezing
                             the encoder frozen (``downstream``)                 details: not public
comparators                  ``joint`` (plain joint training), ``single_volume``  multi-task vs
                             and ``single_prognosis``                            single-task
volume target                ``volume.transform`` of mL (full ``log1p``), z-scored not stated
                             on the training split; scored back in mL
loss weights                 ``loss.weights`` (1 : 1)                            not stated
encoder                      ``model.backbone`` (smoke: small 3D ConvNet; full:  the keywords name
                             3D DenseNet-121)                                    ResNet; depth and
                                                                                 2D/3D not stated
explanations                 Grad-CAM per head (``mtbench.explain``)             Grad-CAM heatmaps
===========================  ==================================================  ===================

Ground-truth volumes are mask voxel counts times the voxel size (:func:`mtbench.volumes.mask_volume_ml`):
the phantom's masks in the smoke profile, the user's masks (``data.masks``) in the full profile.
Metrics: volume MAE (mL), RMSE, Pearson r, R^2 and Bland-Altman agreement; prognosis AUC, balanced
accuracy, sensitivity and specificity; percentile-bootstrap 95% CIs on the test split.

Units (``mtbench run gong2023``): one per arm and seed; ``upstream_downstream`` starts from the
``joint`` unit's best weights of the same seed (``after``), so its upstream stage *is* the joint
model and the comparison isolates the downstream fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from mtbench.experiments.base import Experiment, ExperimentResult, UnitResult, arm_seed_units, cell_text, tables_aggregate
from mtbench.metrics import ignore_degenerate_input_warnings
from mtbench.data.worlds import SMOKE_PHANTOM_ICH
from mtbench.experiments.ich_common import (ICHData, freeze_encoder, ich_manifest, load_ich_data, make_datasets, split_rows,
                                             train_augmentation)
from mtbench.profiles import by_profile, current_profile, runs_root
from mtbench.tasks import Task

NAME = "gong2023"
DESCRIPTION = "Gong et al. 2023 (re-interpretation): hematoma volume (mL) + prognosis, upstream/downstream vs joint vs single-task"

VOLUME_METRICS = ("mae", "rmse", "pearson_r", "r2")
PROGNOSIS_METRICS = ("auc", "balanced_accuracy", "sensitivity", "specificity")


def make_tasks() -> dict[str, Task]:
    return {
        "volume": Task("volume", "regression", metrics=VOLUME_METRICS, primary_metric="mae",
                       description="hematoma volume (trained on a transformed, z-scored scale; scored in mL)"),
        "prognosis": Task("prognosis", "binary", class_names=("good", "poor"), metrics=PROGNOSIS_METRICS,
                          description="poor outcome"),
    }


def default_config(profile: str | None = None) -> dict[str, Any]:
    """Settings for a profile (``smoke``: the phantom, a small 3D ConvNet on 16x32x32 volumes, a few
    epochs, so every arm trains on a 2-core CPU; ``full``: your CTs and masks, DenseNet-121)."""
    p = profile or current_profile()
    return {
        "experiment": NAME,
        "profile": p,
        "reinterpretation": True,
        "data": {
            "source": by_profile("phantom", "ich_ct", p),
            # smoke: the known-answer preset (prognosis ceiling 0.92 from the latents; docs/worlds.md),
            # drawn at the model's input size
            # drawn at twice the model's input size and resized (partial volume as in a real downsampled CT)
            "phantom": {"n_patients": 320, "shape": [32, 64, 64], "seed": 0, **SMOKE_PHANTOM_ICH},
            "root": None,
            "clinical": None,
            # full profile: your hematoma masks, one file per patient (NIfTI/DICOM), e.g. <dir>/<patient_id>_mask.nii.gz
            "masks": {"dir": None, "pattern": "{patient_id}_mask.nii.gz"},
            "preprocess": {"windows": ["cobo"], "shape": by_profile([16, 32, 32], [40, 256, 256], p),
                           "spacing": None, "depth": None, "skull_strip": by_profile(True, False, p)},
            "cache_dir": by_profile(None, str(runs_root() / "cache" / "ich_ct"), p),
        },
        # training-split augmentation: random flips along these spatial axes (0 = depth); [] for none
        "augment": {"flip_axes": by_profile([0, 1, 2], [], p)},
        "split": {"test_fraction": 0.3, "val_fraction": 0.15, "seed": 0},
        "volume": {"transform": by_profile("none", "log1p", p)},  # "log1p" or "none"; z-scored with training mean/SD either way
        "model": {
            "backbone": by_profile("convnet", "densenet121_native", p),
            "backbone_kwargs": by_profile({"channels": [8, 16, 32, 64]}, {}, p),
            "head_hidden": [],
            "head_dropout": 0.0,
        },
        "loss": {"weights": {"volume": 1.0, "prognosis": 1.0}},
        "arms": {
            "single_volume": {"tasks": ["volume"]},
            "single_prognosis": {"tasks": ["prognosis"]},
            "joint": {"tasks": ["volume", "prognosis"]},
            "upstream_downstream": {"tasks": ["volume", "prognosis"], "upstream": "joint"},
        },
        # the downstream stage of upstream_downstream: encoder frozen, heads (re)trained
        "downstream": {"reinit_heads": True, "head_hidden": [32], "head_dropout": 0.0,
                       "epochs": by_profile(10, 50, p), "lr": by_profile(3e-3, 1e-3, p)},
        "train": {
            "epochs": by_profile(20, 100, p),
            "batch_size": by_profile(16, 4, p),
            "lr": by_profile(3e-3, 1e-4, p),
            "weight_decay": 1e-4,
            "monitor": "loss",
            "scheduler": by_profile("cosine", None, p),
            "patience": by_profile(None, 15, p),
        },
        "seeds": by_profile([0], [0, 1, 2], p),
        # binary decisions: threshold chosen on validation ("youden", "closest_topleft") or the papers' 0.5 ("fixed")
        "eval": {"threshold": "youden"},
        "bootstrap": {"n_boot": by_profile(300, 2000, p), "ci": 0.95},
    }


# ------------------------------------------------------------------------- data
@dataclass
class Prepared:
    data: ICHData
    table: pd.DataFrame  # with split, volume_z
    stats: dict[str, float]


def seed_metric_table(results: pd.DataFrame, index: Sequence[str], order: Sequence[str], wanted: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """``value [ci_low, ci_high]`` per ``index`` group (e.g. arm, seed) for each ``(task, metric)``;
    groups in ``order`` of their first key."""
    rows = []
    for keys, part in results.groupby(list(index), sort=False):
        row = dict(zip(index, keys))
        for task, metric in wanted:
            hit = part[(part["task"] == task) & (part["metric"] == metric)]
            row[f"{task}.{metric}"] = "" if hit.empty else cell_text(hit["value"].iloc[0], hit["ci_low"].iloc[0], hit["ci_high"].iloc[0])
        rows.append(row)
    out = pd.DataFrame(rows).set_index(list(index))
    return out.loc[[a for a in order if a in out.index.get_level_values(0)]]


def _fwd(v, transform: str):
    v = np.asarray(v, dtype=float)
    if transform == "log1p":
        return np.log1p(v)
    if transform == "none":
        return v
    raise ValueError(f"volume.transform must be 'log1p' or 'none', got {transform!r}.")


def _inv(z, transform: str):
    z = np.asarray(z, dtype=float)
    return np.expm1(z) if transform == "log1p" else z


def prepare(cfg: Mapping[str, Any]) -> Prepared:
    """Load images/masks/volumes, split by patient (stratified by prognosis), standardise volumes."""
    data = load_ich_data(cfg)
    table = data.table.reset_index(drop=True).copy()
    table["split"] = split_rows(table, cfg["split"], "prognosis").to_numpy()
    tr = _fwd(table.loc[table["split"] == "train", "hematoma_ml"], cfg["volume"]["transform"])
    mu, sd = float(np.nanmean(tr)), float(np.nanstd(tr))
    table["volume"] = (_fwd(table["hematoma_ml"], cfg["volume"]["transform"]) - mu) / sd
    data.table = table
    return Prepared(data, table, {"mean": mu, "sd": sd})


def to_ml(preds: pd.DataFrame, prepared: Prepared, cfg: Mapping[str, Any]) -> pd.DataFrame:
    """Volume columns of a Predictions table back in mL (the target is the mask volume itself)."""
    if "volume.pred" not in preds.columns:
        return preds
    out = preds.copy()
    t = cfg["volume"]["transform"]
    out["volume.pred"] = _inv(out["volume.pred"] * prepared.stats["sd"] + prepared.stats["mean"], t)
    ml = dict(zip(prepared.table["sample_id"].astype(str), prepared.table["hematoma_ml"]))
    out["volume.target"] = [ml[s] for s in out["sample_id"].astype(str)]
    out.attrs = dict(preds.attrs)
    return out


# ------------------------------------------------------------------------- units
units = arm_seed_units  # one unit per arm and seed; an arm with ``upstream`` runs after that arm's unit


def _loaders(cfg, prepared: Prepared, tasks, seed: int):
    from mtbench.train import make_loader

    bs = cfg["train"]["batch_size"]
    ds = make_datasets(prepared.data, prepared.table["split"], tasks,
                       train_transform=train_augmentation(cfg.get("augment", {}).get("flip_axes")))
    return {s: make_loader(d, batch_size=bs, shuffle=(s == "train"), seed=seed) for s, d in ds.items()}


def _build(cfg, tasks, spatial_dims=3):
    from mtbench.models import create_model

    m = cfg["model"]
    in_chans = max(1, len(cfg["data"]["preprocess"]["windows"]))
    return create_model(m["backbone"], tasks, spatial_dims=spatial_dims, in_chans=in_chans, head_hidden=m["head_hidden"],
                        head_dropout=m["head_dropout"], backbone_kwargs=m.get("backbone_kwargs") or {})


def train_unit(cfg: Mapping[str, Any], unit: Mapping[str, Any], prepared: Prepared | None = None,
               checkpoint_dir: str | Path | None = None, progress: bool = True, upstream=None) -> UnitResult:
    """Train one arm with one seed and score it on the test split (volumes in mL); an arm with
    ``upstream`` fine-tunes new heads on that arm's frozen encoder (``upstream``: ``[its model]``)."""
    from mtbench.models.heads import MLPHead
    from mtbench.mtl import MultiTaskLoss
    from mtbench.stats import bootstrap_metrics
    from mtbench.thresholds import predict_thresholded
    from mtbench.train import TrainConfig, fit, seed_everything

    arm, seed = unit["arm"], int(unit["seed"])
    prepared = prepared or prepare(cfg)
    spec = cfg["arms"][arm]
    all_tasks = make_tasks()
    tasks = [all_tasks[n] for n in spec["tasks"]]
    loaders = _loaders(cfg, prepared, tasks, seed)
    tcfg = {k: v for k, v in cfg["train"].items() if k != "batch_size"}
    weights = {t.name: float(cfg["loss"]["weights"].get(t.name, 1.0)) for t in tasks}
    loss = MultiTaskLoss(tasks, weighting="fixed", weights=weights)
    ckpt = str(checkpoint_dir) if checkpoint_dir else None
    seed_everything(seed)
    if spec.get("upstream"):
        if not upstream:
            raise ValueError(f"Arm {arm!r} fine-tunes the heads of arm {spec['upstream']!r}: pass its model "
                             "(run() and run_unit() do this).")
        ds = cfg["downstream"]
        new_heads = {}
        if ds.get("reinit_heads", True):
            f = upstream[0].backbone.num_features
            new_heads = {t.name: MLPHead(f, t.num_outputs, hidden=ds.get("head_hidden", []), dropout=ds.get("head_dropout", 0.0))
                         for t in tasks}
        model = freeze_encoder(upstream[0], new_heads)
        tcfg = {**tcfg, "epochs": ds["epochs"], "lr": ds["lr"]}
        ckpt = str(Path(checkpoint_dir) / "downstream") if checkpoint_dir else None
    else:
        model = _build(cfg, tasks)
    res = fit(model, loaders["train"], loaders["val"], tasks, loss,
              TrainConfig(**tcfg, seed=seed, progress=progress, checkpoint_dir=ckpt))
    method = (cfg.get("eval") or {}).get("threshold", "youden")
    preds = to_ml(predict_thresholded(res.model, loaders["val"], loaders["test"], tasks, method=method), prepared, cfg)
    preds.insert(1, "arm", arm)
    preds.insert(2, "seed", seed)
    b = cfg["bootstrap"]
    with ignore_degenerate_input_warnings():
        boot = bootstrap_metrics(preds, tasks, n_boot=b["n_boot"], ci=b["ci"], seed=seed)
    boot.insert(0, "arm", arm)
    boot.insert(1, "seed", seed)
    return UnitResult(preds, res.history.assign(arm=arm, seed=seed, best_epoch=res.best_epoch), boot, res.model)


def load_upstream(cfg, unit, unit_dir: Path):
    """The trained model of a finished unit (``best.pt`` in its folder): where a downstream arm starts."""
    import torch

    path = Path(unit_dir) / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"A downstream arm needs the finished {unit['arm']!r} unit's weights at {path}.")
    model = _build(cfg, [make_tasks()[n] for n in cfg["arms"][unit["arm"]]["tasks"]])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
    return model


# ------------------------------------------------------------------------ result
class Gong2023Result(ExperimentResult):
    """``results``: bootstrap CIs per arm, seed, task, metric; ``predictions`` per ``arm/seed`` (volumes in mL)."""

    def table(self) -> pd.DataFrame:
        """``value [ci_low, ci_high]`` per arm (and seed): volume MAE (mL), Pearson r; prognosis AUC, balanced accuracy."""
        want = [("volume", "mae"), ("volume", "pearson_r"), ("prognosis", "auc"), ("prognosis", "balanced_accuracy")]
        return seed_metric_table(self.results, ["arm", "seed"], list(self.config["arms"]), want)

    def agreement(self) -> pd.DataFrame:
        """Bland-Altman (predicted - true volume, mL) per arm and seed with a volume head."""
        from mtbench.stats import bland_altman

        rows = []
        for key, p in self.predictions.items():
            if "volume.pred" not in p.columns:
                continue
            ba = bland_altman(p["volume.target"], p["volume.pred"])
            rows.append({"model": key, "n": ba.n, "bias_ml": ba.bias, "bias_ci": ba.bias_ci, "loa_low_ml": ba.loa_low,
                         "loa_high_ml": ba.loa_high})
        return pd.DataFrame(rows)


aggregate = tables_aggregate("Gong et al. 2023 (re-interpretation), test split, bootstrap 95% CI; volume in mL:",
                             "bland_altman", "Bland-Altman (pred - true, mL):", Gong2023Result.agreement)
EXPERIMENT = Experiment(NAME, default_config=default_config, prepare=prepare, units=units, train_unit=train_unit,
                        aggregate=aggregate, result_cls=Gong2023Result, load_upstream=load_upstream, tasks=lambda cfg: make_tasks(),
                        manifest=ich_manifest)
run, run_unit, report, load_result, data_manifest, data_splits = EXPERIMENT.module_api()
