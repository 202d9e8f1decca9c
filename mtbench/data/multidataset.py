"""Several data sets, each labelled for its own task(s), served as one.

Ruffini et al. (2024) train one network on AIforCOVID (prognosis labels only) and BrixIA (severity
labels only). :class:`MultiDatasetConcat` concatenates :class:`~mtbench.data.MultiTaskDataset`
objects: every sample carries targets for the *union* of the tasks, with ``mask[task]`` false for
the tasks its data set does not label (a placeholder target then), and ``meta["dataset"]`` naming
its source. The masked :class:`~mtbench.mtl.MultiTaskLoss` then trains each head only on the
samples that carry its label (the paper's indicator function).

:func:`batch_dataset_ratio` reports how many samples of each data set every batch of a loader
holds, without reading any image (it replays the loader's batch sampler).
"""

from __future__ import annotations

import warnings

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from mtbench.data.datasets import MultiTaskDataset
from mtbench.data.report import Manifest, Report
from mtbench.tasks import Task


def placeholder_target(task: Task) -> torch.Tensor:
    """The target a sample gets for a task it has no label for (never used by the masked loss)."""
    if task.kind in ("binary", "multiclass", "ordinal"):
        return torch.tensor(0, dtype=torch.long)
    if task.kind == "regression" and task.num_targets == 1:
        return torch.tensor(0.0)
    if task.kind == "regression":
        return torch.zeros(task.num_targets)
    raise NotImplementedError(f"No placeholder target for {task.kind} task {task.name!r}.")


class MultiDatasetConcat(Dataset):
    """Concatenation of named :class:`MultiTaskDataset` objects with per-sample task masks.

    Parameters
    ----------
    datasets:
        ``{name: dataset}``, in the order samples are indexed. A task served by two data sets
        must be defined identically in both.
    """

    def __init__(self, datasets: Mapping[str, MultiTaskDataset]):
        if not datasets:
            raise ValueError("MultiDatasetConcat needs at least one data set.")
        self.datasets = dict(datasets)
        self.names = list(self.datasets)
        self.tasks: dict[str, Task] = {}
        for dname, ds in self.datasets.items():
            for tname, task in ds.tasks.items():
                if tname in self.tasks and self.tasks[tname] != task:
                    raise ValueError(f"Task {tname!r} is defined differently in data set {dname!r}: {task} vs {self.tasks[tname]}.")
                self.tasks.setdefault(tname, task)
        self._placeholders = {t: placeholder_target(task) for t, task in self.tasks.items()}
        self.meta_columns = []
        for ds in self.datasets.values():
            self.meta_columns += [c for c in ds.meta_columns if c not in self.meta_columns and c != "dataset"]
        self._offsets = np.cumsum([0] + [len(d) for d in self.datasets.values()]).tolist()

    def __len__(self) -> int:
        return self._offsets[-1]

    def locate(self, i: int) -> tuple[str, int]:
        """``(data set name, index within it)`` of global index ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        k = bisect_right(self._offsets, i) - 1
        return self.names[k], i - self._offsets[k]

    @property
    def dataset_index(self) -> np.ndarray:
        """Data set name of every sample, in index order."""
        return np.concatenate([np.full(len(d), n, dtype=object) for n, d in self.datasets.items()])

    def __getitem__(self, i: int) -> dict[str, Any]:
        name, j = self.locate(int(i))
        sample = self.datasets[name][j]
        targets, mask = {}, {}
        for t in self.tasks:
            if t in sample["targets"]:
                targets[t], mask[t] = sample["targets"][t], sample["mask"][t]
            else:
                targets[t], mask[t] = self._placeholders[t].clone(), torch.tensor(False)
        meta = {"sample_id": sample["meta"]["sample_id"], "dataset": name}
        for c in self.meta_columns:
            meta[c] = sample["meta"].get(c, "")
        return {"image": sample["image"], "targets": targets, "mask": mask, "meta": meta}

    def label_counts(self) -> pd.DataFrame:
        """Labelled samples per data set and task."""
        parts = [ds.label_counts().assign(dataset=n) for n, ds in self.datasets.items()]
        return pd.concat(parts, ignore_index=True)[["dataset", "task", "kind", "labelled", "missing", *(
            ["positives"] if any("positives" in p for p in parts) else [])]]


def batch_dataset_ratio(loader: DataLoader) -> pd.DataFrame:
    """Samples of each data set in every batch of ``loader`` (one row per batch, plus ``fraction.*``).

    Replays the loader's batch sampler (so, for a shuffling loader, the order of its *next* epoch
    when its generator is re-seeded the same way); no image is read.
    """
    ds = loader.dataset
    if not isinstance(ds, MultiDatasetConcat):
        raise TypeError("batch_dataset_ratio needs a loader over a MultiDatasetConcat.")
    names = ds.dataset_index
    rows = []
    for b, idx in enumerate(loader.batch_sampler):
        counts = pd.Series(names[np.asarray(idx)]).value_counts()
        row = {"batch": b, "size": len(idx), **{n: int(counts.get(n, 0)) for n in ds.names}}
        rows.append(row)
    out = pd.DataFrame(rows)
    for n in ds.names:
        out[f"fraction.{n}"] = out[n] / out["size"]
    return out


def summarise_ratio(ratios: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max share of each data set per batch, from :func:`batch_dataset_ratio`."""
    cols = [c for c in ratios.columns if c.startswith("fraction.")]
    s = ratios[cols].agg(["mean", "min", "max"]).T
    s.index = [c.split(".", 1)[1] for c in s.index]
    return s.rename_axis("dataset")


# ------------------------------------------------------------------ two data sets, one per task family
@dataclass
class TwoDatasets:
    """The prognosis set and the severity set: tables (with ``fold``) and aligned image arrays;
    ``report``, a summary of both; ``reports``, the loaders' :class:`Report` of each set."""

    prognosis: pd.DataFrame
    severity: pd.DataFrame
    images: dict[str, np.ndarray]
    report: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)

    def manifests(self) -> dict[str, Manifest]:
        """``{"prognosis": Manifest, "severity": Manifest}``: each table with its loader's report."""
        return {name: Manifest(getattr(self, name), self.reports.get(name) or Report()) for name in ("prognosis", "severity")}


def protocol_folds(table: pd.DataFrame, protocol: Mapping[str, Any], stratify: str | None) -> pd.Series:
    """Each row's test fold: patient-grouped (stratified) CV folds, or the row's centre for ``loco``."""
    from mtbench.data.splits import assign_folds

    if protocol["name"] == "cv":
        strat = None
        if stratify is not None:
            strat = "__strat"
            table = table.assign(__strat=table[stratify].astype("string").fillna("none"))
        return assign_folds(table, int(protocol["n_folds"]), "patient_id", strat, int(protocol.get("seed", 0))).astype(str)
    if protocol["name"] == "loco":
        return table["center"].astype(str)
    raise ValueError(f"Unknown protocol {protocol['name']!r}; use 'cv' or 'loco'.")


def train_val_split(table: pd.DataFrame, test_fold: str, val_fraction: float, seed: int, stratify: str | None = None):
    """``(train, val)``: a patient-grouped split of the rows of ``table`` outside ``test_fold``
    (``val_fraction`` of the patients to validation, stratified on ``stratify`` when it is complete)."""
    from mtbench.data.splits import assign_folds

    rest = table[table["fold"] != test_fold]
    n_val = max(2, int(round(1 / val_fraction)))
    strat = None
    if stratify is not None and rest[stratify].notna().all() and rest[stratify].nunique() > 1:
        strat = stratify
    vf = assign_folds(rest, n_val, "patient_id", strat, seed)
    return rest[vf != 0], rest[vf == 0]


#: Lung-box settings of ``data`` passed on to :class:`~mtbench.data.cxr.CXRPreprocess`.
LUNG_BOX_KEYS = ("bbox_margin", "bbox_square", "clip_before_crop")


def load_two_datasets(d: Mapping[str, Any], protocol: Mapping[str, Any], in_chans: int, progress: bool = True) -> TwoDatasets:
    """A prognosis set and a severity (Brixia score) set of chest X-rays, with test folds.

    ``d["source"]``: ``"synthetic"`` (disjoint halves of the synthetic generator), ``"cohen"`` (the
    COVID-19 image data collection, split by which label a row has) or ``"aiforcovid_brixia"``
    (AIforCOVID + BrixIA, the paper's pair). ``protocol``: ``{"name": "cv", "n_folds", "seed"}``
    (patient-grouped folds) or ``{"name": "loco"}`` (one fold per centre). Images are preprocessed
    (``d["size"]``, ``d["clip"]``, ``d["normalisation"]``) to ``in_chans`` channels.
    """
    from mtbench.data.cxr import CXRPreprocess, preprocess_images
    from mtbench.data.sources.brixia import ZONE_COLUMNS, add_brixia_targets
    from mtbench.data.splits import assign_folds
    from mtbench.data.synthetic import make_synthetic_cxr

    source = d["source"]
    pre = CXRPreprocess(size=int(d["size"]), clip=tuple(d["clip"]) if d.get("clip") else None, channels=int(in_chans),
                        normalisation=d["normalisation"], **{k: d[k] for k in LUNG_BOX_KEYS if k in d})
    if source == "synthetic":
        s = d["synthetic"]
        syn = make_synthetic_cxr(n_patients=int(s["n_patients"]), size=int(d["size"]), seed=int(s["seed"]))
        table = add_brixia_targets(syn.table)
        table["center"] = "synthetic"
        imgs = syn.images
        if int(in_chans) == 3:
            imgs = np.repeat(imgs, 3, axis=1)
        half = np.arange(len(table)) % 2 == 0  # disjoint patients: even -> prognosis set, odd -> severity set
        prog = table[half].copy()
        sev = table[~half].copy()
        prog["fold"] = protocol_folds(prog, protocol, "prognosis").to_numpy()
        sev["fold"] = protocol_folds(sev, protocol, None).to_numpy()
        prog[[*ZONE_COLUMNS]] = np.nan
        sev["prognosis"] = np.nan
        images = {"prognosis": imgs[half], "severity": imgs[~half]}
        return TwoDatasets(prog.reset_index(drop=True), add_brixia_targets(sev).reset_index(drop=True), images,
                           {"source": "synthetic", "prognosis": len(prog), "severity": len(sev)})
    if source == "cohen":
        from mtbench.data.sources import cohen_covid

        manifest, cohen_report = cohen_covid.load_manifest(d.get("cohen_root"))
        manifest = add_brixia_targets(manifest)
        manifest["fold"] = protocol_folds(manifest, protocol, "prognosis").to_numpy()
        arr = preprocess_images(manifest, pre, progress=progress)
        has_p = manifest["prognosis"].notna().to_numpy()
        has_s = manifest["brixia_global"].notna().to_numpy()
        prog = manifest[has_p].copy()
        prog[[*ZONE_COLUMNS, "brixia_global_class", "brixia_right_class", "brixia_left_class"]] = np.nan
        sev = manifest[has_s].copy()
        sev["prognosis"] = np.nan
        report = {"source": "cohen", **cohen_report.counts, "prognosis_set": int(has_p.sum()),
                  "severity_set": int(has_s.sum()), "in_both_sets": int((has_p & has_s).sum())}
        return TwoDatasets(prog.reset_index(drop=True), sev.reset_index(drop=True),
                           {"prognosis": arr[has_p], "severity": arr[has_s]}, report,
                           {"prognosis": cohen_report, "severity": cohen_report})
    if source == "aiforcovid_brixia":
        from mtbench.data.sources import aiforcovid, brixia

        prog, prog_report = aiforcovid.load_manifest(d.get("aiforcovid_root"), mask_dir="masks" if d.get("use_lung_masks") else None)
        if d.get("aiforcovid_split_dir"):
            splits = aiforcovid.read_fold_splits(d["aiforcovid_split_dir"])
            test = splits[splits["split"] == "test"].drop_duplicates("img")
            before = prog
            prog = prog.merge(test[["img", "fold"]], left_on="sample_id", right_on="img", how="inner").drop(columns="img")
            dropped = sorted(set(before["sample_id"]) - set(prog["sample_id"]))
            prog_report = prog_report.with_counts(not_in_split_files=len(dropped))
            if dropped:  # the paper's split files leave these images out: count and say so, never silently
                warnings.warn(f"{len(dropped)} of {len(before)} AIforCOVID images are in no test fold of the split files in "
                              f"{d['aiforcovid_split_dir']} (e.g. {dropped[0]!r}): left out of the prognosis set.", stacklevel=2)
        else:
            prog["fold"] = protocol_folds(prog, protocol, "prognosis").to_numpy()
        sev, sev_report = brixia.load_manifest(d.get("brixia_root"), fix_zone_strings=bool(d.get("brixia_fix_zone_strings", True)),
                                   mask_dir="masks" if d.get("use_lung_masks") else None)
        sev["prognosis"] = np.nan
        n = prog["fold"].nunique()
        sev["fold"] = pd.Series(
            assign_folds(sev, n, "patient_id", None, int(protocol.get("seed", 0))).to_numpy()
        ).map(dict(enumerate(sorted(prog["fold"].unique())))).to_numpy()
        images = {"prognosis": preprocess_images(prog, pre, progress=progress), "severity": preprocess_images(sev, pre, progress=progress)}
        return TwoDatasets(prog, sev, images, {"source": source, "aiforcovid": prog_report.counts, "brixia": sev_report.counts},
                           {"prognosis": prog_report, "severity": sev_report})
    raise ValueError(f"Unknown data source {source!r}; use 'synthetic', 'cohen' or 'aiforcovid_brixia'.")
