"""Ruffini et al. (2024): multi-dataset multi-task learning for COVID-19 prognosis from chest X-rays.

F. Ruffini et al., "Multi-Dataset Multi-Task Learning for COVID-19 Prognosis", MICCAI 2024
(arXiv:2405.13771). One CNN sees X-rays from two data sets, each labelled for one task: a
*prognosis* set (AIforCOVID: mild vs severe) and a *severity* set (BrixIA: Brixia score). Each task
has its own head; the loss has an indicator so every sample trains only the task it has a label
for (here: the task masks of :class:`~mtbench.data.multidataset.MultiDatasetConcat` and the
masked :class:`~mtbench.mtl.MultiTaskLoss`).

Arms (their dependencies are part of the configuration, resolved in order by :func:`arm_order`):

``stl_prognosis``  prognosis head only, prognosis data only;
``stl_severity``   severity head(s) only, severity data only;
``ft``             backbone of ``stl_severity``, new prognosis head, fine-tuned on prognosis data;
``mdmt``           backbone = beta-average (beta = 0.5) of the two STL backbones, fresh heads (as the
                   original code; ``init.heads = "copy"`` copies the STL heads), trained on both data sets.

Severity structures (``severity.structure``): ``global`` (score 0-18 binned <=4, 5-9, 10-14, >=15:
one 4-class head), ``lung`` (per-lung 4-class heads), ``regression`` (six zone scores).

Loss modes (``loss.mode``): ``masked_mean`` (smoke default; each task averaged over the samples
carrying its label; prognosis a one-logit BCE, classes CE, every head ``model.head``) and
``reference`` (full default: the heads and losses of the original code, :func:`reference_head`;
masked entries still count in the batch mean).

Protocols: ``cv`` (patient-grouped stratified k-fold, 5 in the paper) and ``loco`` (leave one
center out). Metrics: accuracy, weighted F1, weighted G-mean and AUC for prognosis, per fold and
pooled over folds (with bootstrap CIs); severity metrics per structure.

Data sources (``data.source``): ``synthetic`` (generated X-rays split into a prognosis-only and a
severity-only half), ``cohen`` (the real COVID-19 image data collection with BrixIA annotations:
the images with a prognosis label form the prognosis set, those with Brixia scores the severity
set; folds are assigned once by patient over the whole collection, so an image in both sets is
always on the same side), ``aiforcovid_brixia`` (the paper's data; needs both data sets on disk).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping

import torch

from mtbench.data import MultiTaskDataset
from mtbench.data.multidataset import MultiDatasetConcat, TwoDatasets, batch_dataset_ratio, load_two_datasets, train_val_split
from mtbench.data.sources.brixia import ZONE_COLUMNS
from mtbench.experiments.base import Experiment, UnitResult
from mtbench.experiments.ruffini2024_results import (  # noqa: F401  (part of this experiment's interface)
    ARM_TO_PAPER, PROGNOSIS_METRICS, ArmResult, RuffiniResult, arm_dependencies, arm_order, compare_with_paper, plot_arms,
    plot_loss_curves, pooled_result,
)
from mtbench.metrics import compute_metrics, ignore_degenerate_input_warnings
from mtbench.models import MultiTaskModel, create_backbone, create_head
from mtbench.models.merging import beta_average
from mtbench.mtl import MultiTaskLoss
from mtbench.profiles import by_profile, current_profile
from mtbench.tasks import Task
from mtbench.thresholds import predict_thresholded
from mtbench.train import TrainConfig, fit, make_loader, seed_everything
from mtbench.train.device import torch_threads

NAME = "ruffini2024"
DESCRIPTION = "Ruffini et al. 2024: STL vs FT vs multi-dataset multi-task (MDMT) COVID-19 prognosis from CXR, indicator-masked loss"

#: The 18 backbones of the paper, by its (torchvision) names; all resolve through create_backbone.
PAPER_BACKBONES = (
    "densenet121", "densenet161", "densenet169", "densenet201",
    "efficientnet_b0", "efficientnet_b1_pruned", "efficientnet_es", "efficientnet_es_pruned", "efficientnet_lite0",
    "googlenet", "mobilenet_v2",
    "resnet18", "resnet34", "resnet50", "resnet101", "wide_resnet50_2",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
)
#: Which pretrained weights each name means with ``pretrained=True`` (torchvision's ImageNet
#: weights where timm carries them as ``.tv_in1k``; timm's own for the EfficientNet family, which
#: torchvision lacks; torchvision itself for the registered torchvision backbones).
PRETRAINED_TAGS = {
    **{n: f"{n}.tv_in1k" for n in ("densenet121", "densenet161", "densenet169", "densenet201",
                                   "resnet18", "resnet34", "resnet50", "resnet101", "wide_resnet50_2")},
    "efficientnet_b0": "efficientnet_b0.ra_in1k",
    "efficientnet_b1_pruned": "efficientnet_b1_pruned.in1k",
    "efficientnet_es": "efficientnet_es.ra_in1k",
    "efficientnet_es_pruned": "efficientnet_es_pruned.in1k",
    "efficientnet_lite0": "efficientnet_lite0.ra_in1k",
    "googlenet": "googlenet", "mobilenet_v2": "mobilenet_v2",
    "shufflenet_v2_x0_5": "shufflenet_v2_x0_5", "shufflenet_v2_x1_0": "shufflenet_v2_x1_0",
}
SMALL_BACKBONES = ("resnet18", "mobilenet_v2", "shufflenet_v2_x0_5")
STRUCTURES = ("global", "lung", "regression")
LOSS_MODES = ("masked_mean", "reference")

#: The original code's training augmentation (each step with p = 0.5), for mtbench.data.cxr.augmentation.
ORIGINAL_AUGMENT = {"p": 0.5, "shift": 0.1, "zoom": [0.9, 1.1], "hflip": True, "rotate_deg": 10,
                    "elastic": {"alpha": [20, 40], "sigma": 7}}
#: ReduceLROnPlateau factor per arm in the original configs (FT: no original code; a tau1 run, so 0.75).
PLATEAU_FACTORS = {"stl_prognosis": 0.75, "stl_severity": 0.65, "ft": 0.75, "mdmt": 0.65}

DEFAULT_ARMS = {
    "stl_prognosis": {"datasets": ["prognosis"], "tasks": ["prognosis"]},
    "stl_severity": {"datasets": ["severity"], "tasks": ["severity"]},
    "ft": {"datasets": ["prognosis"], "tasks": ["prognosis"], "init": {"backbone_from": "stl_severity"}},
    "mdmt": {
        "datasets": ["prognosis", "severity"],
        "tasks": ["prognosis", "severity"],
        "init": {"beta_average": ["stl_prognosis", "stl_severity"], "beta": 0.5, "heads": "fresh"},
    },
}


# ------------------------------------------------------------------------------ config
def _arms(profile: str) -> dict[str, Any]:
    """:data:`DEFAULT_ARMS`; the full profile keeps MDMT's fresh batch-norm statistics, as the original."""
    arms = copy.deepcopy(DEFAULT_ARMS)
    arms["mdmt"]["init"]["buffers"] = by_profile("average", "fresh", profile)
    return arms


def default_config(profile: str | None = None) -> dict[str, Any]:
    """Settings for a profile. ``full``: the paper's protocol and hyper-parameters on its data."""
    p = profile or current_profile()
    return {
        "experiment": NAME,
        "profile": p,
        "data": {
            "source": by_profile("synthetic", "aiforcovid_brixia", p),
            "synthetic": {"n_patients": 600, "seed": 0},  # 300 per data set: ~120 training images per fold
            "cohen_root": None,  # default <data_root>/cohen-covid-mini
            "aiforcovid_root": None,  # default <data_root>/aiforcovid
            "aiforcovid_split_dir": None,  # the paper's split files <dir>/<fold>/{train,val,test}.txt, if given
            "brixia_root": None,  # default <data_root>/brixia
            "brixia_fix_zone_strings": True,
            # Crop to the lung-mask bounding box (masks in <root>/masks), as the original: 5% border
            # (2.5% a side), squared with image content, percentiles of the whole image clipped first.
            "use_lung_masks": by_profile(False, True, p),
            "bbox_margin": 0.025,
            "bbox_square": True,
            "clip_before_crop": True,
            "size": by_profile(64, 256, p),
            # "as_original": what the original code does per arm (arm_transform); "imagenet" for every
            # arm is what its README states; "minmax" scales each image to [0, 1].
            "normalisation": by_profile("minmax", "as_original", p),
            # Training-time augmentation (mtbench.data.cxr.augmentation): the original's five steps.
            "augment": by_profile(None, copy.deepcopy(ORIGINAL_AUGMENT), p),
            "clip": [2.0, 98.0],
            # The original splits 3/1/1: one of the four non-test folds validates (0.25).
            "val_fraction": by_profile(0.2, 0.25, p),
        },
        # loco_brixia_fold: under leave-one-centre-out, every centre is paired with this one BrixIA fold
        # (the original's loCo6 uses fold 0 throughout); null rotates BrixIA's folds with the centres.
        "protocol": {"name": "cv", "n_folds": by_profile(2, 5, p), "folds": None, "seed": 0,
                     "loco_brixia_fold": by_profile(None, 0, p)},
        "model": {
            "backbones": by_profile(["convnet"], list(PAPER_BACKBONES), p),
            "backbone_kwargs": by_profile({"convnet": {"channels": [8, 16, 32, 64]}}, {}, p),
            "pretrained": by_profile(False, True, p),
            "head": "H1",
            "head_dropout": 0.5,
            "in_chans": by_profile(1, 3, p),
        },
        "severity": {"structure": "global"},
        "loss": {"mode": by_profile("masked_mean", "reference", p)},
        "train": {
            "epochs": by_profile(12, 300, p),
            "batch_size": by_profile(32, 128, p),
            "lr": 1e-3,
            "weight_decay": 1e-5,
            "optimizer": "adam",
            "scheduler": "plateau",
            # ReduceLROnPlateau as the original code: factor per arm (0.65 MDMT and STL tau2, 0.75 STL
            # tau1; FT, which the original has no code for, trains on tau1 and takes 0.75), patience 15,
            # floor 1e-8, stepped on the total validation loss. A number sets one factor for every arm.
            "plateau_factor": by_profile(0.75, dict(PLATEAU_FACTORS), p),
            "plateau_patience": by_profile(3, 15, p),
            "plateau_min_lr": by_profile(0.0, 1e-8, p),
            "scheduler_monitor": by_profile(None, "loss", p),
            "patience": by_profile(None, 65, p),
            # Selection and patience start after the warm-up (the original: 40 epochs).
            "warmup_epochs": by_profile(0, 40, p),
            "monitor_prognosis": "loss.prognosis",
            # Optimiser steps per arm (None: ``epochs`` each). Smoke: one budget for all arms, so
            # MDMT (two data sets per epoch) does not get more steps than STL (one).
            "steps": by_profile(60, None, p),
        },
        # Decision threshold of the binary prognosis head, chosen on validation (mtbench.thresholds);
        # "fixed" is the original code's 0.5 (argmax of the softmax).
        "eval": {"threshold": "youden"},
        "arms": _arms(p),
        "seed": 0,
        # CPU threads for torch during the run (None: leave as is). One thread is much faster than
        # two for these small models on a shared 2-core machine (no oversubscription).
        "num_threads": by_profile(1, None, p),
        "bootstrap": {"n_boot": by_profile(200, 2000, p), "ci": 0.95},
        # The summary over backbones: "pooled" (the authors': metrics of the per-image predictions
        # pooled over folds) or "fold_mean" (the mean of the per-fold metrics), mtbench.aggregation.
        "report": {"aggregation": "pooled"},
    }


# ------------------------------------------------------------------------------- tasks
def reference_head(spec: Mapping[str, Any], task: str) -> tuple[str, str]:
    """``(head, loss)`` of ``task`` in an arm as the original code builds it (``loss.mode = "reference"``).

    A prognosis-only arm (STL tau1; FT, which has no original code, is built the same way) is the
    original's single-task model: Dropout + Linear(F, 2), softmax and BCE. An arm with both tasks
    (MDMT) has the H1 MLP with MSE on the two raw logits. Brixia class heads (global, per lung) are
    ReLU + Dropout + Linear(F, 4) with cross-entropy, as in both the single- and multi-task models;
    the zone regression head is the H1 MLP with MSE.
    """
    if task == "prognosis":
        return ("dropout_linear", "softmax_bce") if list(spec["tasks"]) == ["prognosis"] else ("H1", "onehot_mse")
    return ("H1", "mse") if task == "zones" else ("relu_dropout_linear", "ce")


def make_tasks(structure: str = "global", loss_mode: str = "masked_mean") -> dict[str, list[Task]]:
    """``{"prognosis": [Task], "severity": [Task, ...]}`` for a severity structure and loss mode."""
    if structure not in STRUCTURES:
        raise ValueError(f"Unknown severity structure {structure!r}; choose from {STRUCTURES}.")
    if loss_mode not in LOSS_MODES:
        raise ValueError(f"Unknown loss mode {loss_mode!r}; choose from {LOSS_MODES}.")
    ref = loss_mode == "reference"
    cls_metrics = ("accuracy", "f1_weighted", "gmean_weighted", "auc")
    if ref:
        prognosis = Task("prognosis", "multiclass", num_classes=2, class_names=("mild", "severe"), loss="onehot_mse",
                         metrics=PROGNOSIS_METRICS, description="mild vs severe; two logits (original code: MSE in MDMT, softmax BCE alone)")
    else:
        prognosis = Task("prognosis", "binary", class_names=("mild", "severe"), metrics=PROGNOSIS_METRICS,
                         description="mild vs severe")
    four = dict(kind="multiclass", num_classes=4, loss="ce", metrics=cls_metrics + ("qwk",))
    if structure == "global":
        severity = [Task("severity", class_names=("<=4", "5-9", "10-14", ">=15"), description="Brixia global score, binned", **four)]
    elif structure == "lung":
        severity = [Task("severity_right", description="right-lung score (A+B+C), binned", **four),
                    Task("severity_left", description="left-lung score (D+E+F), binned", **four)]
    else:
        severity = [Task("zones", "regression", num_targets=6, metrics=("mae", "rmse", "pearson_r"),
                         description="six Brixia zone scores A-F (0-3)")]
    return {"prognosis": [prognosis], "severity": severity}


def label_columns(structure: str) -> dict[str, Any]:
    """Manifest columns holding each task's label."""
    return {
        "prognosis": "prognosis",
        "severity": "brixia_global_class",
        "severity_right": "brixia_right_class",
        "severity_left": "brixia_left_class",
        "zones": list(ZONE_COLUMNS),
    }


# -------------------------------------------------------------------------------- data
def prepare_data(cfg: Mapping[str, Any], progress: bool = True) -> TwoDatasets:
    """The two data sets named by ``cfg["data"]["source"]``, with protocol folds
    (:func:`mtbench.data.multidataset.load_two_datasets`)."""
    d = dict(cfg["data"])
    if d["normalisation"] == "as_original":  # per arm at load time (arm_transform); none when preprocessing
        d["normalisation"] = "none"
    return load_two_datasets(d, cfg["protocol"], int(cfg["model"]["in_chans"]), progress=progress)


# -------------------------------------------------------------------------------- arms
def build_model(backbone: str, tasks: list[Task], cfg: Mapping[str, Any], arm: str | None = None) -> MultiTaskModel:
    """Backbone by name (pretrained tags from :data:`PRETRAINED_TAGS` when ``pretrained`` is true) + heads:
    ``model.head`` for every task, or with ``loss.mode = "reference"`` and an ``arm`` the original's
    head of each task in that arm (:func:`reference_head`)."""
    m = cfg["model"]
    pretrained = m.get("pretrained", False)
    name = PRETRAINED_TAGS.get(backbone, backbone) if pretrained is True else backbone
    kwargs = dict((m.get("backbone_kwargs") or {}).get(backbone, {}))
    bb = create_backbone(name, in_chans=int(m["in_chans"]), pretrained=pretrained, **kwargs)
    ref = cfg["loss"]["mode"] == "reference" and arm is not None
    heads = {t.name: create_head(reference_head(cfg["arms"][arm], t.name)[0] if ref else m["head"], bb.num_features,
                                 t.num_outputs, dropout=float(m["head_dropout"])) for t in tasks}
    return MultiTaskModel(bb, heads)


def init_arm(model: MultiTaskModel, init: Mapping[str, Any], trained: Mapping[str, MultiTaskModel]) -> MultiTaskModel:
    """An arm's starting weights: ``backbone_from`` copies a trained backbone (FT); ``beta_average``
    sets the backbone to ``beta * first + (1 - beta) * second`` (MDMT). As in the original code the
    heads start fresh (the STL models' heads do not match MDMT's); ``heads: "copy"`` copies each
    head from the first source model that has it. ``buffers``: ``"average"`` averages the batch-norm
    statistics too; ``"fresh"`` (the original, which averages ``named_parameters`` only) keeps those
    of the newly built (pretrained) backbone."""
    if "backbone_from" in init:
        model.backbone.load_state_dict(trained[init["backbone_from"]].backbone.state_dict())
    if "beta_average" in init:
        a, b = (trained[x] for x in init["beta_average"])
        beta, buffers = float(init.get("beta", 0.5)), init.get("buffers", "average")
        if buffers == "average":
            model.backbone.load_state_dict(beta_average(a.backbone.state_dict(), b.backbone.state_dict(), beta))
        elif buffers == "fresh":  # the original averages parameters only; batch-norm statistics stay the new model's
            avg = beta_average(dict(a.backbone.named_parameters()), dict(b.backbone.named_parameters()), beta)
            model.backbone.load_state_dict(avg, strict=False)
        else:
            raise ValueError(f"init.buffers must be 'average' or 'fresh', got {buffers!r}.")
        if init.get("heads", "fresh") == "copy":
            for name, head in model.heads.items():
                src = next((m for m in (a, b) if name in m.heads), None)
                if src is not None:
                    head.load_state_dict(src.heads[name].state_dict())
        elif init.get("heads", "fresh") != "fresh":
            raise ValueError(f"init.heads must be 'fresh' or 'copy', got {init['heads']!r}.")
    return model


# --------------------------------------------------------------------------------- run
def severity_fold(cfg: Mapping[str, Any], fold: str, data: TwoDatasets) -> str:
    """The severity set's test fold paired with the prognosis test fold ``fold``.

    The same fold, except under ``loco`` with ``protocol.loco_brixia_fold = k``: then every centre is
    paired with the k-th severity fold (sorted names), as the original's loCo6 pairs the six
    AIforCOVID centres with BrixIA fold 0. Refused where the two sets share patients (a patient in a
    held-out centre could then train through its severity label).
    """
    k = cfg["protocol"].get("loco_brixia_fold")
    if cfg["protocol"]["name"] != "loco" or k is None:
        return fold
    shared = set(data.prognosis["patient_id"]) & set(data.severity["patient_id"])
    if shared:
        raise ValueError(f"protocol.loco_brixia_fold = {k} pairs every centre with one severity fold, but {len(shared)} "
                         f"patients (e.g. {sorted(map(str, shared))[0]!r}) are in both data sets; set it to null.")
    folds = sorted(data.severity["fold"].astype(str).unique())
    if not 0 <= int(k) < len(folds):
        raise ValueError(f"protocol.loco_brixia_fold = {k}: the severity set has folds {folds} (0..{len(folds) - 1}).")
    return folds[int(k)]


def plateau_factor(setting: float | Mapping[str, float], arm: str) -> float:
    """The arm's ReduceLROnPlateau factor: ``train.plateau_factor`` is one number or ``{arm: factor}``."""
    if isinstance(setting, Mapping):
        if arm not in setting:
            raise ValueError(f"train.plateau_factor has no factor for arm {arm!r} (it has {sorted(setting)}); "
                             "give one per arm or a single number.")
        return float(setting[arm])
    return float(setting)


def _dataset(table, tasks, images, structure, transform=None):
    cols = label_columns(structure)
    return MultiTaskDataset(table, tasks, images, label_columns={t.name: cols[t.name] for t in tasks},
                            meta_columns=("patient_id", "center", "fold"), transform=transform)


def arm_transform(cfg: Mapping[str, Any], arm: str, part: str):
    """The per-image transform of an arm's ``part`` (train/val/test), or None.

    Training images get ``data.augment`` (:func:`mtbench.data.cxr.augmentation`). With
    ``data.normalisation = "as_original"`` the images were preprocessed without normalisation (the
    clipped intensities), and, as the original code's configs do (``Imagenet`` in the single-task
    prognosis config, the unmatched spelling ``ImageNet`` elsewhere), only a prognosis-only arm
    (STL tau1; FT, which has no original code, alike) gets the ImageNet mean / std, on every part.
    """
    from torchvision.transforms import v2

    from mtbench.data.cxr import IMAGENET_MEAN, IMAGENET_STD, augmentation

    steps = [augmentation(cfg["data"].get("augment"))] if part == "train" else []
    if cfg["data"]["normalisation"] == "as_original" and list(cfg["arms"][arm]["tasks"]) == ["prognosis"]:
        c = int(cfg["model"]["in_chans"])
        mean, std = (list(IMAGENET_MEAN), list(IMAGENET_STD)) if c == 3 else ([sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3])
        steps.append(v2.Normalize(mean, std))
    steps = [t for t in steps if t is not None]
    return None if not steps else steps[0] if len(steps) == 1 else v2.Compose(steps)


def _set_tasks(arm: str, dataset: str, tasks: list[Task], tasks_by_set: Mapping[str, list[Task]]) -> list[Task]:
    """The arm's tasks that ``dataset`` labels (an arm training on a set must use one of its tasks)."""
    names = {t.name for t in tasks_by_set[dataset]}
    own = [t for t in tasks if t.name in names]
    if not own:
        raise ValueError(f"Arm {arm!r} trains on data set {dataset!r} but has none of its tasks {[t.name for t in tasks_by_set[dataset]]}.")
    return own


def _fold_names(cfg: Mapping[str, Any], data: TwoDatasets | None = None) -> list[str]:
    """The protocol's test folds (for ``loco`` read from the data: the centres)."""
    if cfg["protocol"].get("folds"):
        return [str(f) for f in cfg["protocol"]["folds"]]
    if cfg["protocol"]["name"] == "cv":
        return [str(k) for k in range(int(cfg["protocol"]["n_folds"]))]
    data = data if data is not None else EXPERIMENT.prepared(cfg)
    return sorted(data.prognosis["fold"].astype(str).unique())


def _arm_tasks(cfg: Mapping[str, Any], arm: str) -> list[Task]:
    """The arm's tasks; with ``loss.mode = "reference"`` each carries the original's loss for that arm."""
    mode = cfg["loss"]["mode"]
    tasks = [t for group in cfg["arms"][arm]["tasks"] for t in make_tasks(cfg["severity"]["structure"], mode)[group]]
    if mode == "reference":
        tasks = [dataclasses.replace(t, loss=reference_head(cfg["arms"][arm], t.name)[1]) for t in tasks]
    return tasks


def _train_arm(
    cfg: Mapping[str, Any], data: TwoDatasets, backbone: str, fold: str, arm: str,
    trained: Mapping[str, MultiTaskModel], checkpoint_dir: str | Path | None = None, progress: bool = False,
) -> ArmResult:
    """Train one arm on one backbone and test fold; ``trained`` holds the arms it is initialised from."""
    structure, mode = cfg["severity"]["structure"], cfg["loss"]["mode"]
    tasks_by_set = make_tasks(structure, mode)
    spec = cfg["arms"][arm]
    tcfg = dict(cfg["train"])
    batch_size = int(tcfg.pop("batch_size"))
    num_workers = int(tcfg.pop("num_workers", 0))
    monitor_prog = tcfg.pop("monitor_prognosis")
    tcfg["plateau_factor"] = plateau_factor(tcfg.get("plateau_factor", 0.5), arm)
    seed = int(cfg["seed"])
    val_fraction = float(cfg["data"]["val_fraction"])
    tables = {"prognosis": data.prognosis, "severity": data.severity}
    split = {}
    for s, table in tables.items():
        f = fold if s == "prognosis" else severity_fold(cfg, fold, data)
        tr, va = train_val_split(table, f, val_fraction, seed, "prognosis" if s == "prognosis" else None)
        split[s] = {"train": tr, "val": va, "test": table[table["fold"] == f]}
    tasks = _arm_tasks(cfg, arm)
    loaders = {}
    for part in ("train", "val", "test"):
        transform = arm_transform(cfg, arm, part)
        sets = {s: _dataset(split[s][part], _set_tasks(arm, s, tasks, tasks_by_set),
                            data.images[s][split[s][part].index.to_numpy()], structure, transform)
                for s in spec["datasets"] if len(split[s][part])}
        if part == "test":
            # Score every arm on both test sets for the tasks it has heads for.
            names = {s: {t.name for t in tasks_by_set[s]} for s in tables}
            sets = {s: _dataset(split[s]["test"], [t for t in tasks if t.name in names[s]],
                                data.images[s][split[s]["test"].index.to_numpy()], structure, transform)
                    for s in tables if any(t.name in names[s] for t in tasks) and len(split[s]["test"])}
        loaders[part] = make_loader(MultiDatasetConcat(sets), batch_size=batch_size, shuffle=(part == "train"),
                                    seed=seed, num_workers=num_workers)
    ratio = batch_dataset_ratio(loaders["train"]) if len(spec["datasets"]) > 1 else None
    steps = tcfg.pop("steps", None)
    if steps:  # the same optimiser-step budget for every arm, whatever its number of training images
        tcfg["epochs"] = max(1, math.ceil(int(steps) / len(loaders["train"])))
    seed_everything(seed)
    model = build_model(backbone, tasks, cfg, arm)
    init_arm(model, spec.get("init") or {}, trained)
    loss = MultiTaskLoss(tasks, reduction="batch_mean" if mode == "reference" else "masked_mean")
    monitor = monitor_prog if any(t.name == "prognosis" for t in tasks) else "loss"
    res = fit(model, loaders["train"], loaders["val"], tasks, loss,
              TrainConfig(**tcfg, monitor=monitor, seed=seed, progress=progress,
                          checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None))
    res.history["step"] = res.history["epoch"] * len(loaders["train"])
    # Binary decisions use the threshold chosen on validation ("fixed": the papers' 0.5).
    preds = predict_thresholded(res.model, loaders["val"], loaders["test"], tasks,
                                method=(cfg.get("eval") or {}).get("threshold", "youden"))
    preds.insert(1, "arm", arm)
    preds.insert(2, "backbone", backbone)
    preds["fold"] = fold
    with ignore_degenerate_input_warnings():
        m = compute_metrics(preds, tasks)
    m = m.assign(backbone=backbone, arm=arm, fold=fold, best_epoch=res.best_epoch)
    return ArmResult(res.model, res.history, preds, m, res.best_epoch, ratio)


# ------------------------------------------------------------------- units (mtbench run/plan/report)
def units(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One unit per backbone x test fold x arm; FT and MDMT units run after their STL units."""
    from mtbench.runs import unit_key

    out = []
    for bb in cfg["model"]["backbones"]:
        for fold in _fold_names(cfg):
            for arm in arm_order(cfg["arms"]):
                unit = {"backbone": bb, "fold": fold, "arm": arm}
                deps = [unit_key({"backbone": bb, "fold": fold, "arm": d}) for d in arm_dependencies(cfg["arms"][arm])]
                if deps:
                    unit["after"] = deps
                out.append(unit)
    return out


def train_unit(cfg: Mapping[str, Any], unit: Mapping[str, Any], data: TwoDatasets, checkpoint_dir=None,
               progress: bool = True, upstream=None) -> UnitResult:
    """One backbone x fold x arm (:func:`_train_arm`); ``upstream``: the models of the arms it starts from."""
    bb, fold, arm = unit["backbone"], str(unit["fold"]), unit["arm"]
    trained = dict(zip(arm_dependencies(cfg["arms"][arm]), upstream or []))
    with torch_threads(cfg.get("num_threads")):
        r = _train_arm(cfg, data, bb, fold, arm, trained, checkpoint_dir=checkpoint_dir, progress=progress)
    r.predictions.attrs["tasks"] = [t.to_dict() for t in _arm_tasks(cfg, arm)]  # the arm's tasks, also where a set lacks one
    return UnitResult(r.predictions, r.history.assign(best_epoch=r.best_epoch), r.metrics, r.model,
                      {} if r.dataset_ratio is None else {"dataset_ratio": r.dataset_ratio})


def load_upstream(cfg: Mapping[str, Any], unit: Mapping[str, Any], unit_dir: Path) -> MultiTaskModel:
    """The best weights of a finished unit (an arm another arm starts from)."""
    best = Path(unit_dir) / "best.pt"
    if not best.is_file():
        raise FileNotFoundError(f"A unit needs the finished arm {unit['arm']!r} ({best} is missing).")
    model = build_model(unit["backbone"], _arm_tasks(cfg, unit["arm"]), cfg, unit["arm"])
    model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["model"])
    return model


def aggregate(result: RuffiniResult, run_dir: Path) -> str:
    """Pooled metrics with CIs, the table, our averages beside the paper's, the significance tests
    across backbones beside the paper's (``significance.csv``)."""
    result.metrics.to_csv(run_dir / "metrics.csv", index=False)
    result.table().to_csv(run_dir / "table.csv")
    comparison = result.compare_with_paper()
    comparison.to_csv(run_dir / "compare_with_paper.csv")
    sig = result.significance()
    sig.to_csv(run_dir / "significance.csv", index=False)
    return (result.table().to_string() + f"\n\nOur averages over backbones ({result.aggregation} over folds) beside the paper's "
            "(percent):\n" + comparison.round(1).to_string()
            + "\n\nOne-tailed tests across backbones (MDMT better), ours beside the paper's stars:\n"
            + sig.pivot_table(index=["comparison", "statistic"], columns="metric", values=["ours", "paper"], aggfunc="first").to_string())


EXPERIMENT = Experiment(NAME, default_config=default_config, prepare=prepare_data, units=units, train_unit=train_unit,
                        aggregate=aggregate, manifest=TwoDatasets.manifests,
                        result_cls=RuffiniResult, load_upstream=load_upstream, tasks=lambda cfg: make_tasks(cfg["severity"]["structure"], cfg["loss"]["mode"]))
run_unit, report, load_result = EXPERIMENT.run_unit, EXPERIMENT.report, EXPERIMENT.load
data_manifest, data_splits = EXPERIMENT.data_manifest, EXPERIMENT.data_splits


def run(config: Mapping[str, Any] | None = None, run_dir: str | Path | None = None, progress: bool = True) -> RuffiniResult:
    """Every backbone x fold x arm of the configuration in memory; the run folder as ``mtbench run`` writes it."""
    result = EXPERIMENT.run(config, run_dir, progress)
    result.data_report = result.prepared.report
    return result
