"""Exploration: does the quickstart smoke setting learn, with a validation-chosen threshold?

Trains each arm x seed like ``quickstart.train_unit`` but also predicts the validation split,
chooses Youden's threshold there and applies it to the test split. Prints AUC, balanced accuracy
and seconds per unit. Usage: ``python benchmarks/explore_quickstart_smoke.py '{"train": {"epochs": 12}}'``
(a JSON dict merged into ``quickstart.default_config("smoke")``).
"""
import json, sys, time, warnings
import numpy as np
from mtbench.experiments import quickstart as q
from mtbench.data import MultiTaskDataset
from mtbench.metrics import compute_metrics
from mtbench.models import create_model
from mtbench.mtl import MultiTaskLoss
from mtbench.thresholds import apply_thresholds, fit_thresholds
from mtbench.train import TrainConfig, fit, predict, make_loader, seed_everything
import torch

def merge(a, b):
    for k, v in b.items():
        a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) else v
    return a

cfg = merge(q.default_config("smoke"), json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
torch.set_num_threads(2)
t0 = time.time(); data, table = q.prepare_data(cfg); print(f"data {time.time()-t0:.1f}s", flush=True)
rows = []
for seed in cfg["seeds"]:
    for arm, names in cfg["arms"].items():
        t0 = time.time()
        tasks = [q.TASKS[n] for n in names]
        tc = dict(cfg["train"]); bs = tc.pop("batch_size"); tc.pop("num_workers", None)
        tc.update(cfg.get("arm_train", {}).get(arm, {}))  # e.g. equal optimisation steps per arm
        tr = table["split"] == "train"
        if names == ["prognosis"]:
            tr &= table["prognosis"].notna()
        L = {}
        for s in ("train", "val", "test"):
            part = table[(table["split"] == s) & (tr if s == "train" else True)]
            L[s] = make_loader(MultiTaskDataset(part, tasks, data.images[part.index.to_numpy()]), batch_size=bs, shuffle=s == "train", seed=seed)
        seed_everything(seed)
        m = create_model(cfg["model"]["backbone"], tasks, in_chans=1, head_hidden=cfg["model"]["head_hidden"],
                         head_dropout=cfg["model"]["head_dropout"], backbone_kwargs=cfg["model"].get("backbone_kwargs"))
        res = fit(m, L["train"], L["val"], tasks, MultiTaskLoss(tasks, **cfg["loss"]), TrainConfig(**tc, seed=seed, progress=False))
        pv, pt = predict(res.model, L["val"], tasks), predict(res.model, L["test"], tasks)
        with warnings.catch_warnings(record=True):
            thr = fit_thresholds(pv, tasks[:1])
        pt = apply_thresholds(pt, tasks, thr)
        met = compute_metrics(pt, tasks[:1]).set_index("metric")["value"]
        r = dict(arm=arm, seed=seed, auc=met["auc"], bacc=met["balanced_accuracy"], thr=thr["prognosis"],
                 best_epoch=res.best_epoch, sec=time.time() - t0)
        rows.append(r); print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
import pandas as pd
df = pd.DataFrame(rows); print(df.groupby("arm")[["auc", "bacc", "sec"]].mean().round(3))
w = df.pivot(index="seed", columns="arm", values="auc")
if {"multi_task", "single_task"} <= set(w.columns):
    d = w["multi_task"] - w["single_task"]; print("MTL-STL AUC per seed", d.round(3).tolist(), "mean", round(d.mean(), 3))
