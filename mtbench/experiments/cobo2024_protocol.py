"""Cobo et al. (2024): the pieces of the original code's protocol that :mod:`mtbench.experiments.cobo2024`
switches on in its full profile (issue 15).

Each function reproduces one step of ``Trustworthy-AI-UU-NKI/MultitaskLearning_ICH_Prognosis``
(``TrainImageModels/train_*.py`` @ 9f1ee396ad18) and is selected by a configuration key:

========================  ===========================================  ============================
function                  original code                                configuration
========================  ===========================================  ============================
:func:`original_splits`   ``StratifiedKFold(10, shuffle, random_state  ``cv.splitter = "original"``,
                          =1)`` then ``train_test_split(test_size=0.1,  ``cv.seed = 1``
                          random_state=1, stratify)`` per fold
(none: arms)               single-task GCS / age models with           :func:`single_task_arms`
                          ``BCEWithLogitsLoss(pos_weight=neg/pos)``,   (opt-in arms),
                          selected on their own validation balanced    ``single_task_pos_weight =
                          accuracy                                     "neg_over_pos"``
(augmentation)            MONAI ``RandRotated`` (+-pi/36 each axis,     :func:`augmentation`,
                          p 0.5), ``Zoomd(1.1, prob=0.5)`` (MONAI      ``augment.rotate_deg``,
                          ignores this ``prob``: always zoomed),        ``zoom``, ``noise_std``, ...
                          ``RandGaussianNoised`` (std 0.01, p 0.5)
(reporting)               metrics per fold, mean +- SD over the 10      :func:`fold_mean`,
                          folds                                        ``report.aggregation =
                                                                       "fold_mean"``
========================  ===========================================  ============================

This module never imports :mod:`~mtbench.experiments.cobo2024` (no import cycle).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtbench.data import assign_folds
from mtbench.data.transforms import ComposeDict, DictTransform, RandFlipd


def original_splits(table: pd.DataFrame, n_splits: int = 10, val_fraction: float = 0.1, seed: int = 1) -> pd.DataFrame:
    """The original code's folds: ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)`` over the
    patients, stratified by prognosis; in each fold ``train_test_split(test_size=val_fraction,
    random_state=seed, stratify=prognosis)`` of the training patients gives the validation set.

    The original splits its list of volumes, one per patient, in the order of the clinical table;
    the folds here are the same given the same row order. Patients with several rows are split as
    one unit (their rows must agree on the prognosis). Returns the long table of
    :func:`mtbench.experiments.cobo2024.make_splits` (``fold, sample_id, patient_id, prognosis, split``).
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    per_patient = table.groupby("patient_id", sort=False)["prognosis"]
    mixed = per_patient.nunique()
    if (mixed > 1).any():
        raise ValueError(f"Patients whose rows disagree on the prognosis: {mixed.index[mixed > 1].tolist()[:6]}.")
    patients = per_patient.first()
    if patients.isna().any():
        raise ValueError(f"Patients without a prognosis cannot be stratified: {patients.index[patients.isna()].tolist()[:6]}.")
    ids, y = patients.index.to_numpy(), patients.to_numpy()
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rows = []
    for k, (train_idx, test_idx) in enumerate(skf.split(ids, y)):
        split = {p: "test" for p in ids[test_idx]}
        train_ids = ids[train_idx]
        if val_fraction > 0:
            train_ids, val_ids = train_test_split(train_ids, test_size=val_fraction, random_state=seed, stratify=y[train_idx])
            split.update({p: "val" for p in val_ids})
        split.update({p: "train" for p in train_ids})
        rows += _fold_rows(table, table["patient_id"].map(split), k)
    return pd.concat(rows, ignore_index=True)


def _fold_rows(table: pd.DataFrame, split: pd.Series, fold: int) -> list[pd.DataFrame]:
    """One fold's rows of the long split table, after refusing patient leakage between its splits."""
    from mtbench.data.splits import check_no_leakage

    check_no_leakage({s: table[split == s] for s in ("train", "val", "test")}, "patient_id")
    return [pd.DataFrame({"fold": fold, "sample_id": part["sample_id"].to_numpy(), "patient_id": part["patient_id"].to_numpy(),
                          "prognosis": part["prognosis"].to_numpy(), "split": name})
            for name in ("train", "val", "test") for part in [table[split == name]]]


def make_splits(table: pd.DataFrame, n_splits: int, val_fraction: float, seed: int = 0) -> pd.DataFrame:
    """Long table ``fold, sample_id, patient_id, prognosis, split`` (train/val/test) for every fold.

    Folds are patient-grouped and stratified by prognosis; within each fold's training part about
    ``val_fraction`` of the *patients* is held out for validation (one fold of a patient-grouped,
    stratified ``round(1 / val_fraction)``-fold split), and every fold goes through
    :func:`mtbench.data.splits.check_no_leakage`.
    """
    folds = assign_folds(table, n_splits, group_column="patient_id", stratify_column="prognosis", seed=seed)
    rows = []
    for k in range(n_splits):
        split = pd.Series("test", index=table.index)
        rest = table[folds != k]
        split[rest.index] = "train"
        if val_fraction > 0:
            # a class must have a patient in every validation fold (small smoke tables: fewer folds)
            n_val = max(2, min(round(1 / val_fraction), int(rest["prognosis"].value_counts().min())))
            vfolds = assign_folds(rest, n_val, group_column="patient_id", stratify_column="prognosis", seed=seed + 1 + k)
            split[vfolds.index[vfolds == 0]] = "val"
        rows += _fold_rows(table, split, k)
    return pd.concat(rows, ignore_index=True)


def splits_for(table: pd.DataFrame, cv) -> pd.DataFrame:
    """The splits a ``cv`` config asks for: ``splitter`` ``"original"`` (:func:`original_splits`) or
    ``"grouped"`` (default, :func:`make_splits`)."""
    splitter = cv.get("splitter", "grouped")
    if splitter not in ("grouped", "original"):
        raise ValueError(f"cv.splitter must be 'grouped' or 'original', got {splitter!r}.")
    fn = original_splits if splitter == "original" else make_splits
    return fn(table, cv["n_splits"], cv["val_fraction"], cv["seed"])


def single_task_arms(dense: str = "densenet121_native") -> dict[str, dict]:
    """The original code's single-task DenseNet baselines for the auxiliary targets (``train_PredictOnly*``):
    binary GCS, ordinal GCS and binary age; not part of the paper's seven-arm ablation, so opt-in:
    ``cfg["arms"].update(single_task_arms())``."""
    return {f"st_{t}": {"backbone": dense, "tasks": [t], "weights": {t: 1.0}} for t in ("gcs_bin", "gcs_ord", "age_80")}


def neg_over_pos(labels, task) -> float | list[float]:
    """``pos_weight`` = negatives / positives of the (training) labels: one number for a binary
    task, one per cumulative bit ``y > k`` for an ordinal one (the original's per-bit weights)."""
    y = np.asarray(labels, dtype=float)
    y = y[~np.isnan(y)]
    ks = [0] if task.kind == "binary" else list(range(int(task.num_classes) - 1))
    out = []
    for k in ks:
        # bit y > k: positives above k, negatives *at* k (the original counts (0,0) vs (1,*) for the
        # first bit and (1,0) vs (1,1) for the second, so class 0 is no negative of the second bit)
        pos, neg = int((y > k).sum()), int((y == k).sum())
        if pos == 0:
            raise ValueError(f"Task {task.name!r}: no positive training label for bit y > {k}; pos_weight undefined.")
        out.append(neg / pos)
    return out[0] if task.kind == "binary" else out


def single_task_setup(tasks, train_table: pd.DataFrame, rule: str | None, monitor: str):
    """``(tasks, monitor)`` for one arm: an arm whose only task is not prognosis gets
    ``pos_weight`` by ``rule`` (``"neg_over_pos"``: :func:`neg_over_pos` on ``train_table``, the
    oversampled training rows; ``None``: unweighted) and is selected on its own task's metric
    (``"prognosis.<metric>"`` becomes ``"<task>.<metric>"``), as the original's single-task scripts."""
    from dataclasses import replace

    if len(tasks) != 1 or tasks[0].name == "prognosis":
        return tasks, monitor
    t = tasks[0]
    if rule not in (None, "neg_over_pos"):
        raise ValueError(f"single_task_pos_weight must be None or 'neg_over_pos', got {rule!r}.")
    if rule == "neg_over_pos":
        t = replace(t, loss_kwargs={**t.loss_kwargs, "pos_weight": neg_over_pos(train_table[t.name], t)})
    if monitor.startswith("prognosis."):
        monitor = t.name + monitor[len("prognosis"):]
    return [t], monitor


def fold_mean(fold_metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample SD over folds of each arm's per-fold metrics (how the paper reports them):
    columns ``arm, task, metric, mean, std, n_folds`` (folds where a metric is NaN are skipped)."""
    keys = [c for c in ("arm", "task", "metric") if c in fold_metrics.columns]
    return (fold_metrics.groupby(keys, sort=False)["value"]
            .agg(mean="mean", std="std", n_folds="count").reset_index())


def fold_mean_table(fold_metrics: pd.DataFrame, task: str, metrics, arms=None) -> pd.DataFrame:
    """``mean ± SD`` strings, one row per arm (in ``arms`` order) and one column per metric, for one task."""
    s = fold_mean(fold_metrics)
    s = s[(s["task"] == task) & s["metric"].isin(metrics)].copy()
    s["cell"] = [f"{m:.3f} ± {sd:.3f}" if sd == sd else (f"{m:.3f}" if m == m else "n/a") for m, sd in zip(s["mean"], s["std"])]
    out = s.pivot_table(index="arm", columns="metric", values="cell", aggfunc="first")
    order = [a for a in (arms or out.index) if a in out.index]
    return out.loc[order, [m for m in metrics if m in out.columns]]


class MonaiAugment(DictTransform):
    """MONAI dictionary transforms on a sample ``{"image": [C, *spatial], "mask": {task: ...}}``: the
    rotation and zoom move the image and every binary mask together (interpolated as the image, then
    thresholded at 0.5), the noise
    touches the image only. Each call reseeds the
    MONAI transforms from torch's RNG, which :func:`~mtbench.train.make_loader` seeds (per worker), so
    a seeded run augments the same way again."""

    def __init__(self, rotate_deg: float = 5.0, rotate_prob: float = 0.5, zoom: float = 1.1, zoom_prob: float = 1.0,
                 noise_std: float = 0.01, noise_prob: float = 0.5):
        self.settings = dict(rotate_deg=rotate_deg, rotate_prob=rotate_prob, zoom=zoom, zoom_prob=zoom_prob,
                             noise_std=noise_std, noise_prob=noise_prob)
        self._built: dict = {}

    def _compose(self, mask_keys: tuple):
        from monai.transforms import Compose, RandGaussianNoised, RandRotated, RandZoomd, Zoomd

        if mask_keys not in self._built:
            s, keys = self.settings, ["image", *mask_keys]
            r = float(np.deg2rad(s["rotate_deg"]))
            ts = []
            if s["rotate_deg"] and s["rotate_prob"] > 0:
                ts.append(RandRotated(keys, range_x=r, range_y=r, range_z=r, prob=s["rotate_prob"], mode="bilinear"))
            if s["zoom"] != 1 and s["zoom_prob"] > 0:
                ts.append(Zoomd(keys, zoom=s["zoom"]) if s["zoom_prob"] >= 1 else  # MONAI's default mode, "area"
                          RandZoomd(keys, prob=s["zoom_prob"], min_zoom=s["zoom"], max_zoom=s["zoom"]))
            if s["noise_std"] and s["noise_prob"] > 0:
                ts.append(RandGaussianNoised("image", prob=s["noise_prob"], mean=0.0, std=s["noise_std"]))
            self._built[mask_keys] = Compose(ts)
        return self._built[mask_keys]

    def __call__(self, sample: dict) -> dict:
        import torch

        masks = sample.get("mask", {}) or {}
        keys = tuple(f"mask.{k}" for k in masks)
        t = self._compose(keys)
        t.set_random_state(seed=int(torch.randint(0, 2**31 - 1, ())))
        flat = {"image": sample["image"], **{f"mask.{k}": v.float() for k, v in masks.items()}}
        out = t(flat)
        plain = {k: (v.as_tensor() if hasattr(v, "as_tensor") else torch.as_tensor(v)) for k, v in out.items()}
        res = {**sample, "image": plain["image"].to(sample["image"].dtype)}
        if masks:  # interpolated like the image (same grid, no half-voxel shift), binarised again
            res["mask"] = {k: (plain[f"mask.{k}"] > 0.5).to(v.dtype) for k, v in masks.items()}
        return res


def augmentation(aug):
    """The training-split augmentation an ``augment`` config asks for, or None: random flips along
    ``flip_axes`` (smoke) and/or :class:`MonaiAugment` when any of ``rotate_deg``, ``zoom``, ``noise_std`` is set."""
    aug = dict(aug or {})
    flips = aug.pop("flip_axes", None)
    parts = [RandFlipd(spatial_axes=tuple(flips), prob=0.5)] if flips else []
    if aug:
        parts.append(MonaiAugment(**aug))
    return None if not parts else parts[0] if len(parts) == 1 else ComposeDict(parts)
