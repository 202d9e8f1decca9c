"""One pretrained-weights rule for every backbone (mtbench.models._builder.load_pretrained)."""

import pytest
import torch

from mtbench.models import create_backbone


def test_video_resnet_refuses_an_unrelated_checkpoint(tmp_path):
    """Issue 14 item 2: video.py loaded a local file with strict=False unchecked, so any file 'loaded'."""
    other = tmp_path / "convnet.pth"
    torch.save(create_backbone("convnet", spatial_dims=3, in_chans=1).state_dict(), other)
    with pytest.raises(RuntimeError, match="do not fit 'r3d_18'"):
        create_backbone("r3d_18", spatial_dims=3, in_chans=1, pretrained=other)


def test_video_resnet_loads_its_own_weights_and_adapts_the_stem(tmp_path):
    torch.manual_seed(0)
    from torchvision.models.video import r3d_18

    ref = r3d_18(weights=None)
    path = tmp_path / "r3d_18.pth"
    torch.save(ref.state_dict(), path)  # with the 400-class fc, which the backbone drops
    bb = create_backbone("r3d_18", spatial_dims=3, in_chans=1, pretrained=path)
    assert torch.equal(bb.model.layer4[1].conv2[0].weight, ref.layer4[1].conv2[0].weight)
    assert torch.allclose(bb.model.stem[0].weight, ref.stem[0].weight.sum(1, keepdim=True))  # RGB summed to grey


@pytest.mark.parametrize("name,dims", [("convnet", 2), ("perez_del_barrio_cnn", 3), ("densenet121_native", 3)])
def test_every_native_backbone_shares_the_rules(tmp_path, name, dims):
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.nope.weight": torch.zeros(1), "stages.nope.weight": torch.zeros(1)}, wrong)
    with pytest.raises(RuntimeError, match=f"do not fit '{name}'"):
        create_backbone(name, spatial_dims=dims, in_chans=1, pretrained=wrong)
    with pytest.raises(RuntimeError, match=r"Pass a local file instead: create_backbone\("):
        create_backbone(name, spatial_dims=dims, in_chans=1, pretrained=True)  # none published: say how
