"""Exploration: does the 3D Grad-CAM of the model trained by explore_phantom_smoke.py put its mass in the hematoma?

Re-creates the same phantom and model (same JSON argument), loads /tmp/worlds_phantom_model.pt and
prints, per head, the mean fraction of map mass inside the hematoma over chance (mask share),
trained vs randomised (rectify="abs" for both; "relu" for the trained model too).
"""
import json, sys, warnings
import numpy as np, torch
from mtbench.data import make_head_ct_phantom
from mtbench.data.worlds import SMOKE_PHANTOM
from mtbench.experiments.cobo2024 import make_tasks
from mtbench.explain import measured_check, summarize_localization
from mtbench.models import create_model
from mtbench.tasks import Task

a = {"n": 200, "shape": [16, 32, 32], "feat": 8, "growth": 8, "blocks": [2, 2, 2], "world": "smoke",
     "tasks": ["prognosis", "gcs_ord", "gcs_bin", "age_80", "volume"], "seed": 0, "backbone": "densenet121_native"}
a.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
torch.set_num_threads(2)
ph = make_head_ct_phantom(n_patients=a["n"], shape=tuple(a["shape"]), seed=a["seed"], **(SMOKE_PHANTOM if a["world"] == "smoke" else {}))
x = ph.images()
T = {**make_tasks(), "volume": Task("volume", "regression", metrics=("pearson_r", "mae"))}
tasks = [T[k] for k in a["tasks"]]
kw = {"init_features": a["feat"], "growth_rate": a["growth"], "block_config": a["blocks"]}
m = create_model(a["backbone"], tasks, spatial_dims=3, in_chans=x.shape[1], backbone_kwargs=kw)
m.load_state_dict(torch.load("/tmp/worlds_phantom_model.pt"))
test = np.random.default_rng(0).permutation(len(x))[int(.75 * len(x)):]
for name, rect, layer in [("volume", "abs", "backbone.features.denseblock2"), ("volume", "relu", "backbone.features.denseblock2"),
                          ("volume", "relu", "backbone.features.denseblock1"), ("prognosis", "relu", "backbone.features.denseblock2")]:
    if True:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            s, _ = measured_check(m, x[test], ph.hematoma_masks[test], T[name], target=1 if name == "prognosis" else None, rectify=rect, target_layer=layer)
        sm = summarize_localization(s, "model")
        sm["ratio"] = sm["mass_inside"] / sm["chance"]
        print(name, rect, layer, sm[["model", "n", "zero_maps", "mass_inside", "chance", "ratio", "hit_rate"]].round(3).to_string(index=False), flush=True)
