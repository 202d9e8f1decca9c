"""The multi-task model: one shared backbone, one head per task."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from mtbench.models.backbones import Backbone, Pretrained, create_backbone
from mtbench.models.heads import MLPHead, create_head
from mtbench.tasks import Task, as_task_dict


class MultiTaskModel(nn.Module):
    """``backbone -> features -> {task: head(features)}``.

    Heads with ``needs_maps = True`` (the segmentation decoder, :class:`~mtbench.models.decoder.UNetDecoder`)
    are called as ``head(maps, input_spatial_size)`` on the backbone's multi-scale maps; the encoder
    then runs once (``backbone.forward_with_maps``) and the other heads get the pooled features.

    ``forward(x)`` returns ``{task_name: output}``; ``forward(x, return_features=True)`` returns
    ``(outputs, features)`` (the shared representation, for gradient-based weightings and probes).
    A single-task model is simply a ``MultiTaskModel`` with one head.
    """

    def __init__(self, backbone: Backbone, heads: Mapping[str, nn.Module]):
        super().__init__()
        if not heads:
            raise ValueError("MultiTaskModel needs at least one head.")
        self.backbone = backbone
        self.heads = nn.ModuleDict(dict(heads))

    @property
    def task_names(self) -> list[str]:
        return list(self.heads.keys())

    def _check_input(self, x) -> None:
        """Refuse inputs the backbone would fail on deep inside, with a message saying what to pass."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"MultiTaskModel expects a torch.Tensor image batch, got {type(x).__name__} "
                            "(convert with torch.as_tensor(x, dtype=torch.float32)).")
        if not torch.is_floating_point(x):
            raise TypeError(f"MultiTaskModel expects a floating-point image batch, got dtype {x.dtype} "
                            "(convert with x.float() and scale intensities as in training).")
        sd = getattr(self.backbone, "spatial_dims", None)
        if sd is not None and x.ndim != sd + 2:
            layout = "[B, C, D, H, W]" if sd == 3 else "[B, C, H, W]"
            raise ValueError(f"This {sd}D model expects input {layout}, got shape {tuple(x.shape)}.")
        c = getattr(self.backbone, "in_chans", None)
        if isinstance(c, int) and x.ndim >= 2 and x.shape[1] != c:
            raise ValueError(f"The backbone was built for in_chans={c} channels, got {x.shape[1]} "
                             f"(input shape {tuple(x.shape)}); build it with in_chans={x.shape[1]} or convert the images.")

    @property
    def dense_heads(self) -> list[str]:
        """Heads that read the multi-scale maps (segmentation decoders), not the pooled features."""
        return [n for n, h in self.heads.items() if getattr(h, "needs_maps", False)]

    def forward(self, x: torch.Tensor, return_features: bool = False):
        self._check_input(x)
        dense = self.dense_heads
        if not dense:
            features = self.backbone(x)
            outputs = {name: head(features) for name, head in self.heads.items()}
            return (outputs, features) if return_features else outputs
        # The encoder runs once: the maps feed the decoders, their pooling the other heads.
        features, maps = self.backbone.forward_with_maps(x)
        size = tuple(x.shape[2:])
        outputs = {
            name: head(maps, size) if name in dense else head(features) for name, head in self.heads.items()
        }
        return (outputs, features) if return_features else outputs


def create_model(
    backbone: str | Backbone,
    tasks: Sequence[Task] | Mapping[str, Task],
    spatial_dims: int = 2,
    in_chans: int = 1,
    pretrained: Pretrained = False,
    head_hidden: Sequence[int] = (),
    head_dropout: float = 0.0,
    backbone_kwargs: Mapping | None = None,
    head_kwargs: Mapping | None = None,
    decoder_kwargs: Mapping | None = None,
    head: str | None = None,
) -> MultiTaskModel:
    """Build a :class:`MultiTaskModel` with an :class:`MLPHead` sized for each task, and a
    :class:`~mtbench.models.decoder.UNetDecoder` (options ``decoder_kwargs``) for each segmentation task.

    ``head`` names a registered head (:func:`~mtbench.models.heads.list_heads`: ``"mlp"``,
    ``"linear"``, Ruffini et al.'s ``"H1"`` / ``"H2"``, or one added with ``register_head``) built
    for every non-segmentation task with ``head_kwargs``; ``None`` keeps the ``MLPHead`` of
    ``head_hidden`` / ``head_dropout``.

    >>> from mtbench import Task, create_model
    >>> model = create_model("convnet", [Task("prognosis", "binary"), Task("severity", "regression")])
    """
    tasks = as_task_dict(tasks)
    if isinstance(backbone, str):
        backbone = create_backbone(
            backbone, spatial_dims=spatial_dims, in_chans=in_chans, pretrained=pretrained, **dict(backbone_kwargs or {})
        )
    heads = {}
    for name, task in tasks.items():
        if task.kind == "segmentation":
            from mtbench.models.decoder import UNetDecoder

            try:
                chans = backbone.feature_channels
            except NotImplementedError as err:
                raise ValueError(f"Task {name!r} is a segmentation task, which needs a backbone exposing "
                                 f"multi-scale maps: {err}") from None
            heads[name] = UNetDecoder(chans, spatial_dims=backbone.spatial_dims, out_channels=task.num_outputs,
                                      **dict(decoder_kwargs or {}))
            continue
        if head is not None:
            heads[name] = create_head(head, backbone.num_features, task.num_outputs, **dict(head_kwargs or {}))
            continue
        heads[name] = MLPHead(
            backbone.num_features, task.num_outputs, hidden=head_hidden, dropout=head_dropout, **dict(head_kwargs or {})
        )
    return MultiTaskModel(backbone, heads)
