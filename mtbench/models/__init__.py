"""Models: the backbone registry and factory, task heads, the multi-task model."""

from mtbench.models.backbones import (
    Backbone,
    TimmBackbone,
    backbone_info,
    create_backbone,
    list_backbones,
    load_state_dict_file,
    register_backbone,
)
from mtbench.models import convnet as _convnet  # noqa: F401  (registers "convnet")
from mtbench.models import torchvision_backbones as _tv  # noqa: F401  (googlenet, shufflenet_v2_*, mobilenet_v2)
from mtbench.models.convnet import ConvNet
from mtbench.models.heads import MLPHead, create_head
from mtbench.models.multitask import MultiTaskModel, create_model

__all__ = [
    "Backbone",
    "ConvNet",
    "MLPHead",
    "MultiTaskModel",
    "TimmBackbone",
    "backbone_info",
    "create_backbone",
    "create_head",
    "create_model",
    "list_backbones",
    "load_state_dict_file",
    "register_backbone",
]
