"""Exploration: does a small 3D model learn the phantom (SMOKE_PHANTOM world) on a 2-core CPU?

Trains one multi-task model (prognosis + gcs_ord + gcs_bin + age_80 + hematoma volume) like the
Cobo/Gong experiments, picks each binary threshold on validation (Youden) and prints test AUC,
balanced accuracy, QWK, volume Pearson r and seconds. Usage:
``python benchmarks/explore_phantom_smoke.py '{"n": 200, "shape": [16, 32, 32], "epochs": 20}'``
"""
import json, sys, time, warnings
import numpy as np, torch
from mtbench.data import MultiTaskDataset, make_head_ct_phantom
from mtbench.data.worlds import SMOKE_PHANTOM
from mtbench.experiments.cobo2024 import make_tasks
from mtbench.metrics import compute_metrics
from mtbench.models import create_model
from mtbench.mtl import MultiTaskLoss
from mtbench.tasks import Task
from mtbench.thresholds import apply_thresholds, fit_thresholds
from mtbench.train import TrainConfig, fit, make_loader, predict, seed_everything

a = {"n": 200, "shape": [16, 32, 32], "epochs": 20, "lr": 3e-3, "bs": 16, "feat": 8, "growth": 8, "blocks": [2, 2, 2],
     "world": "smoke", "tasks": ["prognosis", "gcs_ord", "gcs_bin", "age_80", "volume"], "seed": 0, "backbone": "densenet121_native"}
a.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
torch.set_num_threads(2)
t0 = time.time()
ph = make_head_ct_phantom(n_patients=a["n"], shape=tuple(a["shape"]), seed=a["seed"], **(SMOKE_PHANTOM if a["world"] == "smoke" else {}))
x = ph.images()
tab = ph.table.copy()
tab["volume"] = np.log1p(tab["hematoma_ml"]); tab["volume"] = (tab["volume"] - tab["volume"].mean()) / tab["volume"].std()
print(f"data {time.time()-t0:.1f}s x{x.shape}", flush=True)
T = {**make_tasks(), "volume": Task("volume", "regression", metrics=("pearson_r", "mae"))}
tasks = [T[k] for k in a["tasks"]]
rng = np.random.default_rng(0); idx = rng.permutation(len(tab)); n = len(tab)
parts = {"train": idx[: int(.6 * n)], "val": idx[int(.6 * n): int(.75 * n)], "test": idx[int(.75 * n):]}
L = {s: make_loader(MultiTaskDataset(tab.iloc[i].reset_index(drop=True), tasks, x[i]), batch_size=a["bs"], shuffle=s == "train", seed=0) for s, i in parts.items()}
seed_everything(a["seed"])
kw = {"init_features": a["feat"], "growth_rate": a["growth"], "block_config": a["blocks"]} if a["backbone"].startswith("densenet") else a.get("bkw", {})
m = create_model(a["backbone"], tasks, spatial_dims=3, in_chans=x.shape[1], backbone_kwargs=kw)
t1 = time.time()
res = fit(m, L["train"], L["val"], tasks, MultiTaskLoss(tasks), TrainConfig(epochs=a["epochs"], lr=a["lr"], monitor="loss", progress=False, seed=0))
tt = time.time() - t1
pv, pt = predict(res.model, L["val"], tasks), predict(res.model, L["test"], tasks)
with warnings.catch_warnings(record=True):
    pt = apply_thresholds(pt, tasks, fit_thresholds(pv, tasks))
met = compute_metrics(pt, tasks)
want = met[met.metric.isin(["auc", "balanced_accuracy", "qwk", "pearson_r"])]
print(want.pivot(index="task", columns="metric", values="value").round(3))
print(f"train {tt:.0f}s best_epoch {res.best_epoch} args {a}", flush=True)
torch.save(res.model.state_dict(), "/tmp/worlds_phantom_model.pt")
