"""Saliency per task head, for 2D and 3D models, and whether to trust it.

* :func:`explain` / :func:`explain_heads`: maps of one head / several heads of a multi-task model
  (Grad-CAM and friends through pytorch-grad-cam; native N-D guided backprop and guided Grad-CAM).
* :func:`cascading_randomization`: the Adebayo et al. (2018) model-randomisation sanity check.
* :func:`localization_scores` / :func:`measured_check`: how much saliency falls on a known lesion
  (fraction inside the mask, pointing game), trained model vs randomised model.
* :mod:`mtbench.explain.plots`: overlays, three-plane views, slice montages, one row per head.
"""

from mtbench.explain.targets import HeadTarget, TaskHead, head_targets
from mtbench.explain.saliency import (
    CAM_METHODS,
    NATIVE_METHODS,
    NORMALIZATION,
    Saliency,
    explain,
    explain_heads,
    guided_backprop_maps,
    input_gradient,
    list_methods,
    hook_count,
    preserved_state,
)
from mtbench.explain.checks import (
    RandomizationResult,
    cascading_randomization,
    localization_scores,
    localization_verdict,
    measured_check,
    randomization_layers,
    randomized_copy,
    reinitialize,
    spearman_per_sample,
    summarize_localization,
)
from mtbench.explain.demo import LesionVolumes, make_lesion_volumes

__all__ = [
    "CAM_METHODS",
    "LesionVolumes",
    "RandomizationResult",
    "cascading_randomization",
    "hook_count",
    "localization_scores",
    "localization_verdict",
    "make_lesion_volumes",
    "measured_check",
    "randomization_layers",
    "randomized_copy",
    "reinitialize",
    "spearman_per_sample",
    "summarize_localization",
    "HeadTarget",
    "NATIVE_METHODS",
    "NORMALIZATION",
    "Saliency",
    "TaskHead",
    "explain",
    "explain_heads",
    "guided_backprop_maps",
    "head_targets",
    "input_gradient",
    "list_methods",
    "preserved_state",
]
