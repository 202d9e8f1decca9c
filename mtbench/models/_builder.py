"""One loader for pretrained weights, used by every backbone factory (timm's ``_builder`` in spirit).

The rule, the same for every backbone:

* ``pretrained=False`` / ``None``: random initialisation; the network is never touched.
* ``pretrained="path/to/weights.pth"`` (``.pt``, ``.bin``, ``.safetensors``): a local state dict,
  loaded **strictly**: every key of the model must be filled and no unknown key may remain (after
  ``filter_fn``), so an unrelated checkpoint fails instead of "loading" (issue 14).
* ``pretrained=True``: the published weights from the library's own cache or hub (torchvision's
  ``weights=``, timm's hub), given by the factory as ``download``; without a network it fails with
  :func:`download_error`'s text, which says how to pass a file instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

StateDict = Mapping[str, torch.Tensor]


def check_weights_file(pretrained: str | os.PathLike) -> Path:
    """Return ``pretrained`` as an existing file path, or fail saying how to pass one."""
    if not isinstance(pretrained, (str, os.PathLike)):
        raise TypeError(
            f"pretrained must be False, True or a path to a weights file, got {type(pretrained).__name__}."
        )
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Pretrained weights file not found: {str(path)!r}. Pass the path of a local state-dict file "
            "(.pth, .pt, .bin or .safetensors), pretrained=False for random initialisation, or "
            "pretrained=True to use timm's cache/hub (needs a network connection)."
        )
    return path


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``state_dict``/``model`` keys unwrapped)."""
    path = check_weights_file(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not contain a state dict (found {type(obj).__name__}).")
    return obj


def download_error(name: str, err: Exception | None = None) -> RuntimeError:
    """The one error for ``pretrained=True`` that cannot be served (no network, or no published weights)."""
    why = f" ({type(err).__name__}: {err})" if err is not None else " (none are published)"
    return RuntimeError(
        f"Could not get pretrained weights for {name!r}{why}. Pass a local file instead: "
        f"create_backbone({name!r}, pretrained='/path/to/{name}.safetensors') (a .pth/.pt/.bin/.safetensors state dict), "
        "or pretrained=False for random initialisation."
    )


def load_pretrained(
    model: nn.Module,
    source,
    strict: bool = True,
    filter_fn: Callable[[StateDict], StateDict] | None = None,
    adapt_stem: Callable[[nn.Module], None] | None = None,
    *,
    name: str | None = None,
    download: Callable[[], StateDict] | None = None,
) -> nn.Module:
    """Load weights from ``source`` (False, True or a file path) into ``model`` and return it.

    ``filter_fn`` maps the checkpoint to the model's keys (drop a classifier, rename a library's
    prefixes); ``adapt_stem(model)`` runs after loading (e.g. rebuild a 3-channel first convolution
    for ``in_chans``); ``download()`` returns the published state dict for ``source=True``.
    ``strict=True`` refuses missing or unexpected keys after filtering, and every shape mismatch.
    """
    name = name or type(model).__name__
    if source is True:
        if download is None:
            raise download_error(name)
        try:
            state = download()
        except Exception as err:  # network errors come in many types (URLError, OSError, HF hub errors)
            raise download_error(name, err) from err
    elif source:
        state = load_state_dict_file(source)
    else:
        state = None
    if state is not None:
        where = source if source is not True else "the published weights"
        state = dict(filter_fn(state) if filter_fn is not None else state)
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches are raised even with strict=False
            raise RuntimeError(f"Weights {where} do not fit {name!r}: {err}") from err
        if strict and (missing or unexpected):
            raise RuntimeError(
                f"Weights {where} do not fit {name!r}: {len(missing)} missing keys {list(missing)[:5]}, "
                f"{len(unexpected)} unexpected keys {list(unexpected)[:5]}. Pass a checkpoint of this architecture."
            )
    if adapt_stem is not None:
        adapt_stem(model)
    return model
