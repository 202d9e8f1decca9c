import os
import subprocess
import sys

import pytest
import torch

from mtbench.models import MLPHead, create_backbone, create_model, list_backbones
from mtbench.tasks import Task


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv3_small_050", "test_efficientnet"])
def test_timm_backbone_exposes_features_and_cam_layer(name):
    bb = create_backbone(name, in_chans=1)
    x = torch.randn(2, 1, 64, 64)
    feats = bb(x)
    assert feats.shape == (2, bb.num_features)
    assert isinstance(bb.default_cam_layer, torch.nn.Module)
    maps = bb.forward_maps(x)
    assert [m.shape[1] for m in maps] == bb.feature_channels


@pytest.mark.parametrize("dims, shape", [(2, (2, 1, 32, 32)), (3, (2, 1, 16, 32, 32))])
def test_convnet_2d_and_3d(dims, shape):
    bb = create_backbone("convnet", spatial_dims=dims, in_chans=1, channels=(8, 16))
    assert bb(torch.randn(*shape)).shape == (2, 16)
    assert bb.default_cam_layer is bb.stages[-1]
    assert len(bb.forward_maps(torch.randn(*shape))) == 2


def test_pretrained_missing_file_fails_clearly(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="Pretrained weights file not found") as err:
        create_backbone("resnet18", pretrained=missing)
    assert "nope.pth" in str(err.value) and "pretrained=False" in str(err.value)


def test_pretrained_local_file_is_loaded(tmp_path):
    import timm

    src = timm.create_model("resnet18", num_classes=0)
    path = tmp_path / "resnet18.pth"
    torch.save(src.state_dict(), path)
    bb = create_backbone("resnet18", in_chans=3, pretrained=path)
    assert torch.equal(bb.model.conv1.weight, src.conv1.weight)
    assert torch.equal(bb.model.layer4[1].bn2.running_var, src.layer4[1].bn2.running_var)
    # A 1-channel model from a 3-channel file: timm adapts the stem (sum over RGB).
    gray = create_backbone("resnet18", in_chans=1, pretrained=path)
    assert torch.allclose(gray.model.conv1.weight, src.conv1.weight.sum(dim=1, keepdim=True))


def test_convnet_state_dict_file_roundtrip(tmp_path):
    a = create_backbone("convnet", in_chans=1)
    path = tmp_path / "convnet.pt"
    torch.save({"state_dict": a.state_dict()}, path)
    b = create_backbone("convnet", in_chans=1, pretrained=path)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_pretrained_true_offline_says_how_to_pass_a_file():
    code = (
        "from mtbench.models import create_backbone\n"
        "try:\n    create_backbone('resnet18', pretrained=True)\n"
        "except RuntimeError as e:\n    print('MSG', e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TORCH_HOME="/nonexistent-mtbench", HF_HOME="/tmp/mtbench-empty-hf")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "MSG" in out.stdout, out.stderr
    assert "pretrained='/path/to/resnet18.safetensors'" in out.stdout


def test_unknown_backbone_lists_suggestions():
    with pytest.raises(ValueError, match="Did you mean"):
        create_backbone("resnet-18")
    with pytest.raises(ValueError, match="Unknown 3D backbone"):
        create_backbone("resnet18", spatial_dims=3)
    with pytest.raises(ValueError, match="spatial_dims"):
        create_backbone("convnet", spatial_dims=4)


def test_list_backbones_filters():
    assert "convnet" in list_backbones(spatial_dims=3)
    assert "resnet18" in list_backbones(spatial_dims=2, pattern="resnet1*")
    assert "resnet18" not in list_backbones(spatial_dims=3)


def test_multitask_model_outputs_one_entry_per_task():
    tasks = [Task("p", "binary"), Task("g", "ordinal", num_classes=3), Task("z", "regression", num_targets=6)]
    model = create_model("convnet", tasks, in_chans=1, head_hidden=(16,), head_dropout=0.1)
    out, feats = model(torch.randn(3, 1, 32, 32), return_features=True)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"p": (3, 1), "g": (3, 2), "z": (3, 6)}
    assert feats.shape == (3, model.backbone.num_features)


def test_mlp_head_options():
    head = MLPHead(10, 3, hidden=(8, 4), dropout=0.5, init="xavier_uniform", bias_init=0.01)
    assert all(torch.all(m.bias == 0.01) for m in head.modules() if isinstance(m, torch.nn.Linear))
    with pytest.raises(ValueError, match="activation"):
        MLPHead(10, 3, activation="nope")


def test_feature_channels_come_from_the_subclass_or_are_refused():
    from mtbench.models.backbones import Backbone

    class Pooled(Backbone):  # a backbone with pooled features only
        name = "pooled_only"

    with pytest.raises(NotImplementedError, match="'pooled_only' does not expose multi-scale feature maps"):
        Pooled().feature_channels
    bb = create_backbone("convnet", spatial_dims=2, in_chans=1, channels=(8, 16))
    assert bb.feature_channels == [8, 16] and bb.feature_channels is not bb.feature_channels  # a copy each time
