"""Grad-CAM with a choice of what happens to negative evidence, for 2D and 3D models.

Grad-CAM (Selvaraju et al. 2017) is ``ReLU(sum_k w_k A_k)`` with ``w_k`` the spatial mean of the
target's gradient with respect to channel ``k`` of the layer's activations ``A``. The ReLU keeps
only evidence *for* the target. A randomly initialised head has an arbitrary sign, so its class
activation map is often negative everywhere, and the ReLU followed by min-max scaling returns an
all-zero map: a randomised-model control that is identically zero cannot be "beaten" or fail to
be beaten, it is empty. ``rectify="abs"`` keeps the magnitude ``|sum_k w_k A_k|`` instead (where
the layer's evidence is strongest, whichever its sign), which is non-zero for any model whose
activations and gradients are; the sanity checks use it for the trained *and* the randomised
model alike, so the comparison is like for like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RECTIFY = ("relu", "abs")


def grad_cam(head: nn.Module, layer: nn.Module, images: torch.Tensor, targets, rectify: str = "relu") -> "np.ndarray":
    """Grad-CAM maps ``float32 [B, *spatial]`` in ``[0, 1]`` (per-image max scaling; min-max for ``relu``).

    ``head`` returns one tensor per batch (a :class:`~mtbench.explain.targets.TaskHead`),
    ``targets`` one callable per sample turning that sample's output into the explained scalar.
    """
    if rectify not in RECTIFY:
        raise ValueError(f"rectify must be one of {RECTIFY}, got {rectify!r}.")
    store: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        with torch.enable_grad():
            out = head(images)
            act = store["a"]
            score = torch.stack([t(out[i]) for i, t in enumerate(targets)]).sum()
            (grad,) = torch.autograd.grad(score, act)
    finally:
        handle.remove()
    dims = tuple(range(2, act.ndim))
    cam = (grad.mean(dim=dims, keepdim=True) * act).sum(dim=1, keepdim=True).detach()
    cam = cam.clamp(min=0) if rectify == "relu" else cam.abs()
    mode = "bilinear" if cam.ndim == 4 else "trilinear"
    cam = F.interpolate(cam.float(), size=tuple(images.shape[2:]), mode=mode, align_corners=False)[:, 0]
    flat = cam.flatten(1)
    lo = flat.min(dim=1).values if rectify == "relu" else torch.zeros(len(flat), device=flat.device)
    span = flat.max(dim=1).values - lo
    shape = (-1,) + (1,) * (cam.ndim - 1)
    cam = torch.where(span.view(shape) > 0, (cam - lo.view(shape)) / span.clamp_min(1e-12).view(shape), torch.zeros_like(cam))
    return cam.cpu().numpy().astype("float32")
