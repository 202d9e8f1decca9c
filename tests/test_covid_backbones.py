"""Every backbone of Ruffini et al. (2024), by the paper's name, builds through create_backbone and runs."""

import pytest
import torch

from mtbench.experiments.ruffini2024_protocol import PAPER_BACKBONES, PRETRAINED_TAGS
from mtbench.models import create_backbone


def test_eighteen_names():
    assert len(PAPER_BACKBONES) == len(set(PAPER_BACKBONES)) == 18
    assert set(PRETRAINED_TAGS) == set(PAPER_BACKBONES)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # far faster than 2 oversubscribed threads for these tiny inputs
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", PAPER_BACKBONES)
def test_backbone_builds_and_runs(name, one_thread):
    bb = create_backbone(name, in_chans=3).eval()
    with torch.no_grad():
        out = bb(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, bb.num_features)
    assert isinstance(bb.default_cam_layer, torch.nn.Module)


def test_torchvision_backbone_one_channel():
    bb = create_backbone("shufflenet_v2_x0_5", in_chans=1).eval()
    with torch.no_grad():
        assert bb(torch.randn(1, 1, 32, 32)).shape == (1, 1024)
