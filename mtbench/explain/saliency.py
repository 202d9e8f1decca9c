"""Saliency maps per task head, for 2D and 3D models.

* CAM methods come from pytorch-grad-cam (``grad-cam`` on PyPI). ``gradcam`` works for 2D and 3D
  inputs; the other methods listed in :data:`CAM_METHODS` are offered for 2D models only, because
  several of them assume images (OpenCV resizing, ``[H, W]`` masks, 2D test-time augmentation).
* Guided backpropagation (Springenberg et al. 2015) and guided Grad-CAM (Selvaraju et al. 2017)
  are implemented here for any number of spatial dimensions and whole batches: the library's own
  guided backprop is 2D, single-sample, and swaps the model's ReLU modules.

Every map is returned at the input's resolution, in ``[0, 1]``, normalised **per image**
(see :data:`NORMALIZATION`): 1 is the most salient pixel/voxel of that image for that head. Two
maps normalised per image cannot be compared in absolute terms (a head that barely reacts to
the image still gets a bright map); compare *where*, not *how much*.

The model is left as it was: hooks are removed, parameter gradients, ``requires_grad`` flags and
every module's training mode are restored (see :func:`preserved_state`). Explaining always runs
the model in eval mode (batch-norm statistics are not updated, dropout is off).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from mtbench.explain.targets import HeadTarget, TaskHead, head_targets
from mtbench.tasks import Task, as_task_dict

NORMALIZATION = {
    "cam": "per image min-max (pytorch-grad-cam scale_cam_image): ReLU of the class-activation map, "
    "minus its minimum, divided by its maximum; upsampled to the input size",
    "gradient": "per image: |input gradient| (maximum over channels), divided by its 99.5th percentile, clipped to [0, 1]",
    "guided_gradcam": "per image: guided-backprop map x Grad-CAM map, divided by its 99.5th percentile, clipped to [0, 1]",
    "cam_abs": "per image: |class-activation map| (Grad-CAM without the ReLU, mtbench.explain.cam) divided by its maximum; "
    "upsampled to the input size",
}


def _cam_classes() -> dict[str, Any]:
    import pytorch_grad_cam as pgc

    return {
        "gradcam": pgc.GradCAM,
        "hirescam": pgc.HiResCAM,
        "gradcam++": pgc.GradCAMPlusPlus,
        "xgradcam": pgc.XGradCAM,
        "layercam": pgc.LayerCAM,
        "eigencam": pgc.EigenCAM,
        "eigengradcam": pgc.EigenGradCAM,
        "gradcamelementwise": pgc.GradCAMElementWise,
        "scorecam": pgc.ScoreCAM,
        "ablationcam": pgc.AblationCAM,
        "randomcam": pgc.RandomCAM,
    }


#: Library CAM methods and the spatial dimensions they are offered for (3D: tested to work).
CAM_METHODS: dict[str, tuple[int, ...]] = {
    "gradcam": (2, 3),
    "hirescam": (2, 3),
    "gradcam++": (2, 3),
    "xgradcam": (2, 3),
    "layercam": (2, 3),
    "eigencam": (2, 3),
    "eigengradcam": (2, 3),
    "gradcamelementwise": (2, 3),
    "scorecam": (2,),
    "ablationcam": (2,),
    "randomcam": (2, 3),
}
#: Methods implemented natively in mtbench (any spatial dimension, batched).
NATIVE_METHODS: dict[str, tuple[int, ...]] = {"guided_backprop": (2, 3), "guided_gradcam": (2, 3)}


def list_methods(spatial_dims: int | None = None) -> list[str]:
    """Saliency methods :func:`explain` accepts (for 2D or 3D inputs when ``spatial_dims`` is given)."""
    allm = {**CAM_METHODS, **NATIVE_METHODS}
    return [m for m, dims in allm.items() if spatial_dims is None or spatial_dims in dims]


@dataclass
class Saliency:
    """Saliency maps of one task head for a batch.

    ``maps`` ``float32 [B, *spatial]`` in ``[0, 1]`` at the input resolution; ``targets`` one label
    per sample saying which scalar was explained; ``scores`` that scalar's value per sample;
    ``normalization`` how maps were scaled (per image: not comparable across images or heads).
    """

    maps: np.ndarray
    task: str
    method: str
    targets: list[str]
    scores: np.ndarray
    normalization: str
    layer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.maps)

    @property
    def zero_maps(self) -> np.ndarray:
        """``bool [B]``: maps that are all zero (no evidence at all; flag them, never average them)."""
        return ~(self.maps.reshape(len(self.maps), -1) > 0).any(axis=1)


# ------------------------------------------------------------------ model state guard
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def hook_count(model: nn.Module) -> int:
    """Number of module hooks on ``model`` and its submodules (for checking that none are left)."""
    return sum(len(getattr(m, a, {}) or {}) for m in model.modules() for a in _HOOK_DICTS)





@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block that may touch ``model``, then put back what saliency methods change.

    Restored on exit, also after an error: every module's training mode, every parameter's
    ``.grad`` and ``requires_grad``, every module's children (a method that swaps a layer, as
    pytorch-grad-cam's AblationCAM does, and fails half-way leaves it swapped), hooks (hooks
    added inside the block are removed) and buffers (batch-norm running statistics). Anything that had to be repaired is reported by a warning.
    """
    modules = list(model.modules())
    modes = [(m, m.training) for m in modules]
    children = [(m, dict(m._modules)) for m in modules]
    hook_keys = [(m, {a: set(getattr(m, a, {}) or {}) for a in _HOOK_DICTS}) for m in modules]
    params = list(model.parameters())
    grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
    req = [p.requires_grad for p in params]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield model
    finally:
        repaired = []
        for m, kids in children:
            if dict(m._modules) != kids or any(m._modules[k] is not v for k, v in kids.items()):
                repaired.append(f"children of {type(m).__name__}")
                m._modules.clear()
                m._modules.update(kids)
        for m, keys in hook_keys:
            for attr, before in keys.items():
                d = getattr(m, attr, None)
                if d is None:
                    continue
                for k in [k for k in d if k not in before]:
                    del d[k]
                    repaired.append(f"{attr} on {type(m).__name__}")
        for m, mode in modes:
            m.training = mode
        for p, g, r in zip(params, grads, req):
            p.grad = g
            p.requires_grad_(r)
        with torch.no_grad():
            for b, saved in buffers:
                if not torch.equal(b, saved):
                    repaired.append("buffers (e.g. batch-norm statistics)")
                    b.copy_(saved)
        if repaired:
            warnings.warn(f"Saliency left the model changed; restored: {sorted(set(repaired))}.", RuntimeWarning, stacklevel=3)


# --------------------------------------------------------------------------- helpers
def _resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> tuple[nn.Module, str]:
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer:
                return m, name
        raise ValueError("target_layer is not a submodule of the model.")
    if layer is None:
        backbone = getattr(model, "backbone", None)
        if backbone is None or not hasattr(backbone, "default_cam_layer_name"):
            raise ValueError("The model has no backbone.default_cam_layer; pass target_layer= (a module or dotted name).")
        name = "backbone." + backbone.default_cam_layer_name
        return backbone.default_cam_layer, name
    try:
        return model.get_submodule(layer), layer
    except AttributeError as err:
        raise ValueError(f"The model has no submodule {layer!r}: {err}") from err


def _percentile_normalise(maps: np.ndarray, q: float = 99.5) -> np.ndarray:
    out = np.empty_like(maps, dtype=np.float32)
    for i, m in enumerate(maps):
        hi = np.percentile(m, q)
        if not np.isfinite(hi) or hi <= 0:
            hi = float(m.max()) if m.max() > 0 else 1.0
        out[i] = np.clip(m / hi, 0.0, 1.0)
    return out


def _spatial_dims(images: torch.Tensor) -> int:
    if images.ndim not in (4, 5):
        raise ValueError(f"images must be [B, C, H, W] or [B, C, D, H, W], got shape {tuple(images.shape)}.")
    return images.ndim - 2


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ------------------------------------------------------------------- native methods
class _GuidedReLU(torch.autograd.Function):
    """Identity on a ReLU's (non-negative) output; backward passes only positive gradients where it is > 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0).to(grad.dtype)


def _guided_hook(module, inputs, output):
    return _GuidedReLU.apply(output)


def guided_backprop_maps(head: TaskHead, images: torch.Tensor, targets: Sequence[Callable]) -> np.ndarray:
    """Raw guided-backpropagation gradients ``[B, C, *spatial]`` for any spatial dimension.

    Every ``nn.ReLU`` gets a temporary forward hook whose output passes gradients backwards only
    where both the ReLU's output and the incoming gradient are positive (Springenberg et al. 2015);
    the hooks are removed before returning. Functional ReLUs (``F.relu``) and other activations are
    left as they are (then the result is a plain gradient through those).
    """
    relus = [m for m in head.modules() if isinstance(m, nn.ReLU)]
    handles = [m.register_forward_hook(_guided_hook) for m in relus]
    try:
        x = images.detach().clone().requires_grad_(True)
        out = head(x)
        score = torch.stack([t(out[i]) for i, t in enumerate(targets)]).sum()
        (grad,) = torch.autograd.grad(score, x)
    finally:
        for h in handles:
            h.remove()
    return grad.detach().cpu().numpy()


def _gradient_map(grad: np.ndarray) -> np.ndarray:
    return np.abs(grad).max(axis=1)


# ------------------------------------------------------------------------ the API
def _library_cam(method: str, head: TaskHead, layer: nn.Module, images: torch.Tensor, targets) -> np.ndarray:
    cls = _cam_classes()[method]
    cam = cls(model=head, target_layers=[layer])
    try:
        maps = cam(input_tensor=images, targets=list(targets))
    finally:
        cam.activations_and_grads.release()
    return np.asarray(maps, dtype=np.float32)


def explain(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    task: Task,
    method: str = "gradcam",
    target: Any = None,
    score: str | None = None,
    sign: float = 1.0,
    target_layer: str | nn.Module | None = None,
    rectify: str = "relu",
) -> Saliency:
    """Saliency maps of one task head of ``model`` for a batch of images or volumes.

    Parameters
    ----------
    model:
        A :class:`~mtbench.models.MultiTaskModel` (or any module returning ``{task: output}``).
    images:
        ``[B, C, H, W]`` or ``[B, C, D, H, W]``.
    task:
        The :class:`~mtbench.tasks.Task` whose head is explained (its kind decides the target).
    method:
        One of :func:`list_methods` (``gradcam`` by default).
    target, score, sign:
        What is explained, per sample (see :mod:`mtbench.explain.targets`): an int for every
        sample, one value per sample, ``None`` for the predicted class, or callables.
    target_layer:
        CAM layer (module or dotted name); default ``model.backbone.default_cam_layer``.
    rectify:
        ``gradcam`` / ``guided_gradcam`` only: ``"relu"`` (the published Grad-CAM) or ``"abs"``
        (magnitude of the class-activation map, see :mod:`mtbench.explain.cam`; what the
        randomisation controls use, because ReLU zeroes a randomised head's map).

    A ``UserWarning`` names the samples whose map is all zero (see :attr:`Saliency.zero_maps`).

    Returns
    -------
    Saliency
        ``maps`` ``[B, *spatial]`` in ``[0, 1]`` at the input resolution.
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    dims = _spatial_dims(x)
    allm = {**CAM_METHODS, **NATIVE_METHODS}
    if method not in allm:
        raise ValueError(f"Unknown saliency method {method!r}; choose from {list(allm)}.")
    if dims not in allm[method]:
        raise ValueError(
            f"Method {method!r} is offered for {allm[method]}D inputs, not {dims}D. "
            f"{dims}D methods: {list_methods(dims)}."
        )
    x = x.to(_model_device(model))
    head = TaskHead(model, task)
    with preserved_state(model):
        model.eval()
        with torch.no_grad():
            outputs = head(x)
        targets = head_targets(task, outputs, target, score=score, sign=sign)
        with torch.no_grad():
            scores = torch.stack([t(outputs[i]) for i, t in enumerate(targets)]).float().cpu().numpy()
        layer_name = None
        if method in CAM_METHODS or method == "guided_gradcam":
            layer, layer_name = _resolve_layer(model, target_layer)
            if rectify != "relu" and method in ("gradcam", "guided_gradcam"):
                from mtbench.explain.cam import grad_cam

                cam = grad_cam(head, layer, x, targets, rectify=rectify)
            else:
                cam = _library_cam("gradcam" if method == "guided_gradcam" else method, head, layer, x, targets)
        if method in CAM_METHODS:
            maps, norm = cam, NORMALIZATION["cam" if rectify == "relu" else "cam_abs"]
        else:
            grad = _gradient_map(guided_backprop_maps(head, x, targets))
            if method == "guided_backprop":
                maps, norm = _percentile_normalise(grad), NORMALIZATION["gradient"]
            else:
                maps, norm = _percentile_normalise(grad * cam), NORMALIZATION["guided_gradcam"]
    if maps.shape != (x.shape[0], *x.shape[2:]):
        raise RuntimeError(f"{method} returned maps of shape {maps.shape}, expected {(x.shape[0], *x.shape[2:])}.")
    labels = [t.describe(task) if isinstance(t, HeadTarget) else repr(t) for t in targets]
    zero = ~(maps.reshape(len(maps), -1) > 0).any(axis=1)
    if zero.any():
        warnings.warn(f"{method} map of head {task.name!r} is all zero for {int(zero.sum())} of {len(zero)} samples "
                      f"{np.flatnonzero(zero)[:10].tolist()}: no positive evidence at that layer (try rectify='abs').", stacklevel=2)
    return Saliency(
        maps=np.clip(np.nan_to_num(maps.astype(np.float32)), 0.0, 1.0),
        task=task.name,
        method=method,
        targets=labels,
        scores=scores,
        normalization=norm,
        layer=layer_name,
    )


def explain_heads(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    tasks: Sequence[Task] | Mapping[str, Task],
    method: str = "gradcam",
    targets: Mapping[str, Any] | None = None,
    **kwargs,
) -> dict[str, Saliency]:
    """:func:`explain` for several heads on the same images: ``{task: Saliency}``.

    ``targets`` optionally maps a task name to its ``target`` argument; ``kwargs`` go to every call.
    """
    targets = dict(targets or {})
    return {
        name: explain(model, images, task, method=method, target=targets.get(name), **kwargs)
        for name, task in as_task_dict(tasks).items()
    }


def input_gradient(model: nn.Module, images: torch.Tensor, task: Task, target: Any = None) -> np.ndarray:
    """Plain input gradients ``[B, C, *spatial]`` of a head's target (vanilla saliency, for reference)."""
    x = torch.as_tensor(images, dtype=torch.float32).to(_model_device(model))
    head = TaskHead(model, task)
    with preserved_state(model):
        model.eval()
        x = x.detach().clone().requires_grad_(True)
        out = head(x)
        tg = head_targets(task, out, target)
        (grad,) = torch.autograd.grad(torch.stack([t(out[i]) for i, t in enumerate(tg)]).sum(), x)
    return grad.detach().cpu().numpy()
