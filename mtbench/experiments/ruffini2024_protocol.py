"""The original protocol of Ruffini et al. (2024): what the authors' code does, as data and small functions.

:mod:`mtbench.experiments.ruffini2024` holds the experiment (configuration, tasks, data, model assembly,
training units, report); this module holds the pieces that reproduce the original code's choices,
which that configuration and training use:

- :data:`PAPER_BACKBONES`, :data:`PRETRAINED_TAGS`: the paper's 18 backbones and which ImageNet
  weights ``pretrained=True`` means for each;
- :data:`ORIGINAL_AUGMENT`, :data:`PLATEAU_FACTORS`: the original training augmentation and
  ReduceLROnPlateau factors per arm; :func:`plateau_factor` reads the setting for one arm;
- :func:`reference_head`: each task's head and loss per arm (``loss.mode = "reference"``);
- :func:`init_arm`: FT's copied backbone and MDMT's beta-averaged one;
- :func:`severity_fold`: the severity test fold paired with a prognosis fold (loCo6);
- :func:`arm_transform`: the per-arm augmentation and normalisation.

It imports nothing from :mod:`~mtbench.experiments.ruffini2024` (no import cycle).
"""

from __future__ import annotations

from typing import Any, Mapping

from mtbench.data.multidataset import TwoDatasets
from mtbench.models import MultiTaskModel
from mtbench.models.merging import beta_average

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

#: The original code's training augmentation (each step with p = 0.5), for mtbench.data.cxr.augmentation.
ORIGINAL_AUGMENT = {"p": 0.5, "shift": 0.1, "zoom": [0.9, 1.1], "hflip": True, "rotate_deg": 10,
                    "elastic": {"alpha": [20, 40], "sigma": 7}}
#: ReduceLROnPlateau factor per arm in the original configs (FT: no original code; a tau1 run, so 0.75).
PLATEAU_FACTORS = {"stl_prognosis": 0.75, "stl_severity": 0.65, "ft": 0.75, "mdmt": 0.65}


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
