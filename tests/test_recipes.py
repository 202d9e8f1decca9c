"""The extension recipes of docs/architecture.md, each as a tiny working example."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mtbench import MultiTaskLoss, Task, create_model
from mtbench.data import MultiTaskDataset
from mtbench.data.report import Manifest, Report
from mtbench.data.validate import check_ids, check_labels
from mtbench.models import Backbone, create_backbone, register_backbone
from mtbench.models.backbones import BACKBONES
from mtbench.mtl import Weighting, register_weighting
from mtbench.mtl.weighting import WEIGHTINGS
from mtbench.train import fit, make_loader

TASKS = [Task("prognosis", "binary"), Task("severity", "regression")]


def test_recipe_add_a_backbone():
    class TinyNet(Backbone):
        def __init__(self, in_chans=1):
            super().__init__()
            self.conv = nn.Conv2d(in_chans, 4, 3, padding=1)
            self.num_features, self.spatial_dims, self.in_chans = 4, 2, in_chans
            self.default_cam_layer_name = "conv"

        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    @register_backbone("recipe_tinynet", spatial_dims=(2,), description="recipe example")
    def tinynet(spatial_dims=2, in_chans=1, pretrained=False, **kwargs):
        from mtbench.models._builder import load_pretrained

        return load_pretrained(TinyNet(in_chans), pretrained, name="recipe_tinynet")

    try:
        model = create_model("recipe_tinynet", TASKS, in_chans=1)
        out = model(torch.zeros(2, 1, 8, 8))
        assert out["prognosis"].shape == (2, 1) and out["severity"].shape == (2, 1)
        assert create_backbone("recipe_tinynet", in_chans=1).name == "recipe_tinynet"
    finally:
        BACKBONES.unregister("recipe_tinynet")


def test_recipe_add_a_weighting():
    @register_weighting("recipe_half")
    class Half(Weighting):
        """Every present task weight 0.5."""

        def combine(self, losses, features):
            return self._weighted_sum(losses, {t: 0.5 for t in losses})

    try:
        loss = MultiTaskLoss(TASKS, weighting="recipe_half")
        outputs = {"prognosis": torch.zeros(4, 1), "severity": torch.ones(4, 1)}
        targets = {"prognosis": torch.ones(4), "severity": torch.zeros(4)}
        masks = {t: torch.ones(4, dtype=torch.bool) for t in targets}
        res = loss(outputs, targets, masks)
        assert res.weights == {"prognosis": 0.5, "severity": 0.5}
        assert float(res.total) == pytest.approx(0.5 * (float(res.per_task["prognosis"]) + float(res.per_task["severity"])))
    finally:
        WEIGHTINGS.unregister("recipe_half")


def test_recipe_add_a_data_set():
    # 1. An adapter: read the files, return a Manifest: the table (one row per image) and a Report of
    #    what it counted and skipped.
    def load_manifest(root=None) -> Manifest:
        report = Report(dataset="recipe")
        rows = [{"sample_id": f"s{i}", "patient_id": f"p{i // 2}", "prognosis": i % 2, "severity": float(i)}
                for i in range(8)]
        report.warning("skipped-row", "row 9: no image file", row="9")
        return Manifest(pd.DataFrame(rows), report)

    table, report = load_manifest()
    # 2. The validation checks a data card would ask for.
    check_ids(table, report)
    check_labels(table, [{"name": "prognosis", "kind": "binary", "values": [0, 1]}], report)
    assert report.ok and len(report.problems) == 1
    # 3. A MultiTaskDataset over it, and training.
    images = np.random.default_rng(0).random((8, 1, 32, 32), dtype=np.float32)
    ds = MultiTaskDataset(table, TASKS, images)
    model = create_model("convnet", TASKS, in_chans=1, backbone_kwargs={"channels": (4, 8)})
    res = fit(model, make_loader(ds, batch_size=4), None, TASKS, epochs=1, progress=False)
    assert len(res.history) == 1


def test_optimisers_and_schedulers_are_registered_by_name():
    from mtbench.train import TrainConfig
    from mtbench.train.optim import OPTIMIZERS, make_optimizer, register_optimizer

    with pytest.raises(ValueError, match="Unknown optimizer 'rmsprop'"):
        TrainConfig(optimizer="rmsprop")

    @register_optimizer("rmsprop")
    def rmsprop(params, cfg):
        return torch.optim.RMSprop(params, lr=cfg.lr)

    try:
        opt = make_optimizer([nn.Parameter(torch.zeros(1))], TrainConfig(optimizer="rmsprop", lr=0.1))
        assert isinstance(opt, torch.optim.RMSprop)
        with pytest.raises(KeyError, match="already registered"):
            register_optimizer("adamw")(rmsprop)
    finally:
        OPTIMIZERS.unregister("rmsprop")
