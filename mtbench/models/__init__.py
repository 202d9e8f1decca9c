"""Models: the backbone registry and factory, task heads (MLP, U-Net decoder), the multi-task model."""

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
from mtbench.models.heads import HEADS, MLPHead, create_head, list_heads, register_head
from mtbench.models.decoder import UNetDecoder
from mtbench.models import densenet3d as _densenet3d  # noqa: F401  (registers "densenet121_native", ...)
from mtbench.models import inflate as _inflate  # noqa: F401  (registers "inflated_resnet18", ...)
from mtbench.models import video as _video  # noqa: F401  (registers "r3d_18", ..., "perez_del_barrio_cnn")
from mtbench.models.densenet3d import DenseNet
from mtbench.models.inflate import InflatedBackbone, create_inflated, inflate_module
from mtbench.models.video import PerezDelBarrioCNN, VideoResNetBackbone
from mtbench.models.multitask import MultiTaskModel, create_model

__all__ = [
    "Backbone",
    "ConvNet",
    "DenseNet",
    "InflatedBackbone",
    "PerezDelBarrioCNN",
    "VideoResNetBackbone",
    "create_inflated",
    "inflate_module",
    "MLPHead",
    "UNetDecoder",
    "MultiTaskModel",
    "TimmBackbone",
    "backbone_info",
    "create_backbone",
    "HEADS",
    "create_head",
    "list_heads",
    "register_head",
    "create_model",
    "list_backbones",
    "load_state_dict_file",
    "register_backbone",
]
