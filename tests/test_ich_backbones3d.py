"""3D backbones: native DenseNet (= MONAI DenseNet121), Pérez del Barrio CNN, video ResNets, 2D->3D inflation."""

import pytest
import timm
import torch

from mtbench import Task, create_backbone, create_model, list_backbones
from mtbench.models import create_inflated
from mtbench.models.video import adapt_input_weight

# Parameters of monai.networks.nets.DenseNet121(spatial_dims=3, in_channels=1) without its classifier
# (model.features), measured with MONAI 1.6.1.
MONAI_DENSENET121_3D_FEATURE_PARAMS = 11_242_624


def _tiny_input(d=32, hw=32, c=1):
    torch.manual_seed(0)
    return torch.randn(2, c, d, hw, hw)


@pytest.mark.parametrize(
    "name,kwargs,nf",
    [
        ("densenet121_native", {"init_features": 8, "growth_rate": 4, "block_config": (1, 1, 1, 1)}, 8),
        ("perez_del_barrio_cnn", {"padding": "same"}, 128),
        ("inflated_resnet18", {}, 512),
    ],
)
def test_backbone_contract(name, kwargs, nf):
    b = create_backbone(name, spatial_dims=3, in_chans=1, **kwargs)
    x = _tiny_input()
    f = b(x)
    assert f.shape == (2, nf) and b.num_features == nf
    maps = b.forward_maps(x)
    assert [m.shape[1] for m in maps] == b.feature_channels
    assert isinstance(b.default_cam_layer, torch.nn.Module)


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_video_resnets_in_chans(name):
    b = create_backbone(name, spatial_dims=3, in_chans=2)
    x = torch.randn(1, 2, 4, 32, 32)
    assert b(x).shape == (1, 512)
    assert b.model.stem[0].in_channels == 2
    assert [m.shape[1] for m in b.forward_maps(x)] == b.feature_channels


def test_video_resnet_stem_from_checkpoint_sums_rgb(tmp_path):
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    ref = r3d_18(weights=None)
    path = tmp_path / "r3d.pth"
    torch.save(ref.state_dict(), path)
    b = create_backbone("r3d_18", spatial_dims=3, in_chans=1, pretrained=str(path))
    torch.testing.assert_close(b.model.stem[0].weight, ref.stem[0].weight.sum(1, keepdim=True))
    torch.testing.assert_close(b.model.layer4[0].conv1[0].weight, ref.layer4[0].conv1[0].weight)
    w = torch.randn(4, 3, 1, 1, 1)
    assert adapt_input_weight(w, 5).shape == (4, 5, 1, 1, 1)


def test_native_densenet121_matches_monai_architecture():
    b = create_backbone("densenet121_native", spatial_dims=3, in_chans=1)
    assert sum(p.numel() for p in b.parameters()) == MONAI_DENSENET121_3D_FEATURE_PARAMS
    assert b.num_features == 1024 and b.feature_channels == [64, 256, 512, 1024, 1024]
    names = [n for n, _ in b.named_modules()]
    assert "features.denseblock4.denselayer16.layers.conv2" in names and "features.norm5" in names


@pytest.mark.parametrize("spatial_dims", [3, 2])
def test_native_densenet_equals_monai_outputs_small(spatial_dims):
    """Same weights, same input -> bit-identical features to MONAI's DenseNet (a small configuration
    of the same code path as DenseNet-121, so it runs in every CI; monai is in the test extra)."""
    from monai.networks.nets import DenseNet as MonaiDenseNet

    from mtbench.models.densenet3d import DenseNet

    cfg = dict(init_features=8, growth_rate=4, block_config=(2, 3, 2, 2), bn_size=2)
    torch.manual_seed(0)
    m = MonaiDenseNet(spatial_dims=spatial_dims, in_channels=1, out_channels=2, **cfg)
    with torch.no_grad():  # non-trivial BN statistics, so the test sees them
        for mod in m.modules():
            if isinstance(mod, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    m.eval()
    b = DenseNet(spatial_dims=spatial_dims, in_chans=1, **cfg).eval()
    b.load_monai_state_dict(m.state_dict())
    x = torch.randn(2, 1, *([32] * spatial_dims))
    with torch.no_grad():
        ref = m.class_layers.flatten(m.class_layers.pool(m.class_layers.relu(m.features(x))))
        torch.testing.assert_close(b(x), ref, rtol=0, atol=0)


@pytest.mark.slow
def test_native_densenet_equals_monai_outputs():
    from monai.networks.nets import DenseNet121

    torch.manual_seed(0)
    m = DenseNet121(spatial_dims=3, in_channels=1, out_channels=2).eval()
    b = create_backbone("densenet121_native", spatial_dims=3, in_chans=1).eval()
    b.load_monai_state_dict(m.state_dict())
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        ref = m.class_layers.flatten(m.class_layers.pool(m.class_layers.relu(m.features(x))))
        torch.testing.assert_close(b(x), ref, rtol=0, atol=0)


def _golden(m2, m3, depth):
    """Max |3D features on a depth-constant volume - 2D features on one slice| / max |2D features|."""
    img = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        f2 = m2(img)
        f3 = m3(img[:, :, None].expand(-1, -1, depth, -1, -1).contiguous())
    return float((f3 - f2).abs().max() / f2.abs().max())


def _perturb_bn(model):
    for mod in model.modules():  # non-trivial BN statistics, so the test sees them
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)


# Golden tolerance: relative 1e-4 (float32; the 3D convolutions sum the same terms in another order).
GOLDEN_RTOL = 1e-4


@pytest.mark.parametrize("mode,padding", [("i3d", "replicate"), ("centre", "zeros")])
def test_inflation_golden_resnet_from_2d_checkpoint(tmp_path, mode, padding):
    """On a volume constant along depth, the inflated ResNet's features equal the 2D model's on one slice."""
    torch.manual_seed(0)
    m2 = timm.create_model("resnet18", num_classes=0, in_chans=1).eval()
    _perturb_bn(m2)
    path = tmp_path / "resnet18.pth"
    torch.save(m2.state_dict(), path)  # a 2D checkpoint
    b = create_backbone("inflated_resnet18", spatial_dims=3, in_chans=1, pretrained=str(path), mode=mode, depth_padding=padding).eval()
    assert _golden(m2, b, depth=8) <= GOLDEN_RTOL


@pytest.mark.parametrize("mode,padding", [("i3d", "replicate"), ("centre", "zeros")])
def test_inflation_golden_densenet_family(mode, padding):
    """The same for timm's DenseNet class (BatchNormAct, dense concatenation, avg-pool transitions),
    on a narrow configuration to stay fast; the full densenet121 is in the slow test below."""
    from timm.models.densenet import DenseNet as TimmDenseNet

    from mtbench.models.inflate import inflate_module

    torch.manual_seed(0)
    m2 = TimmDenseNet(growth_rate=8, block_config=(1, 2, 2, 1), bn_size=2, in_chans=1, num_classes=0).eval()
    _perturb_bn(m2)
    assert _golden(m2, inflate_module(m2, mode, padding).eval(), depth=32) <= GOLDEN_RTOL


@pytest.mark.slow
def test_inflation_golden_densenet121_from_2d_checkpoint(tmp_path):
    torch.manual_seed(0)
    m2 = timm.create_model("densenet121", num_classes=0, in_chans=1).eval()
    _perturb_bn(m2)
    path = tmp_path / "densenet121.pth"
    torch.save(m2.state_dict(), path)
    b = create_backbone("inflated_densenet121", spatial_dims=3, in_chans=1, pretrained=str(path), mode="i3d", depth_padding="replicate").eval()
    assert _golden(m2, b, depth=32) <= GOLDEN_RTOL


def test_inflation_i3d_with_zero_depth_padding_differs_at_the_edges():
    """Why ``depth_padding="replicate"`` exists: with zeros the edge slices see fewer taps."""
    torch.manual_seed(0)
    m2 = timm.create_model("resnet18", num_classes=0, in_chans=1).eval()
    b = create_inflated("resnet18", in_chans=1, mode="i3d").eval()
    from mtbench.models.inflate import inflate_module

    b.model = inflate_module(m2, "i3d", "zeros")
    assert b.model.conv1.weight.shape == (64, 1, 7, 7, 7) and b.model.conv1.padding == (3, 3, 3)
    torch.testing.assert_close(b.model.conv1.weight.sum(2), m2.conv1.weight)  # repeat-and-divide
    img = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        f2, f3 = m2(img), b(img[:, :, None].expand(-1, -1, 8, -1, -1).contiguous())
    assert (f3 - f2).abs().max() > 1e-3 * f2.abs().max()


def test_unsupported_names_list_supported():
    with pytest.raises(ValueError, match="inflated_resnet18"):
        create_inflated("vit_base_patch16_224")
    with pytest.raises(ValueError, match="families"):
        create_inflated("seresnet50")
    with pytest.raises(ValueError, match="attention"):
        create_inflated("resnetrs50")
    with pytest.raises(ValueError, match="BlurPool2d"):
        create_inflated("resnetblur18")
    with pytest.raises(ValueError, match="densenet121_native"):
        create_backbone("densenet12l_native", spatial_dims=3)
    with pytest.raises(ValueError, match="i3d"):
        create_inflated("resnet18", mode="inflate-me")
    assert {"densenet121_native", "perez_del_barrio_cnn", "r3d_18", "inflated_densenet121"} <= set(list_backbones(3, include_timm=False))


def test_binary_and_ordinal_heads_with_pos_weight():
    from mtbench.mtl import MultiTaskLoss

    tasks = [Task("prognosis", "binary", loss_kwargs={"pos_weight": 2.0}), Task("gcs_ord", "ordinal", num_classes=3)]
    model = create_model("perez_del_barrio_cnn", tasks, spatial_dims=3, in_chans=1, backbone_kwargs={"padding": "same"})
    out = model(_tiny_input(d=16, hw=16))
    assert out["prognosis"].shape == (2, 1) and out["gcs_ord"].shape == (2, 2)
    loss = MultiTaskLoss(tasks, weighting="fixed", weights={"prognosis": 0.4, "gcs_ord": 0.3})
    res = loss(out, {"prognosis": torch.tensor([1, 0]), "gcs_ord": torch.tensor([2, 0])})
    assert torch.isfinite(res.total)
    dec = tasks[1].decode(torch.tensor([[5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]]))
    assert dec["pred"].tolist() == [2, 1, 0]  # number of thresholds passed
