import numpy as np
import pandas as pd
import pytest
import torch

from mtbench import Task
from mtbench.data import (
    LeakageError,
    MultiTaskDataset,
    assign_folds,
    check_no_leakage,
    make_synthetic_cxr,
    subsample_labels,
    train_val_test_split,
)


def test_synthetic_cxr_generative_model_holds():
    d = make_synthetic_cxr(n_patients=40, size=64, seed=3)
    t = d.table
    assert d.images.shape == (40, 1, 64, 64) and d.images.dtype == np.float32
    assert d.images.min() >= 0 and d.images.max() <= 1
    zones = t[[f"zone_{z}" for z in "ABCDEF"]].to_numpy()
    assert np.array_equal(zones.sum(axis=1), t["severity"].to_numpy())
    assert set(np.unique(zones)) <= {0, 1, 2, 3}
    # Opacities are drawn only inside the lungs, and only in patients with a non-zero score.
    assert not (d.opacity_mask & ~d.lung_mask).any()
    assert not d.opacity_mask[t["severity"].to_numpy() == 0].any()


def test_synthetic_cxr_is_seeded_and_severity_is_visible():
    a = make_synthetic_cxr(n_patients=120, size=64, seed=1)
    b = make_synthetic_cxr(n_patients=120, size=64, seed=1)
    assert np.array_equal(a.images, b.images) and a.table.equals(b.table)
    # Mean lung brightness rises with the score (the label is a function of the image).
    lung_mean = np.array([a.images[i, 0][a.lung_mask[i]].mean() for i in range(len(a))])
    r = np.corrcoef(lung_mean, a.table["severity"])[0, 1]
    assert r > 0.8
    # Prognosis depends on severity.
    assert a.table.groupby("prognosis")["severity"].mean().diff().iloc[-1] > 2


def test_images_per_patient_share_labels():
    d = make_synthetic_cxr(n_patients=5, images_per_patient=3, size=48)
    assert len(d) == 15 and d.table["patient_id"].nunique() == 5
    assert (d.table.groupby("patient_id")["severity"].nunique() == 1).all()


def _table():
    return pd.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d"],
            "patient_id": ["p1", "p1", "p2", "p3"],
            "prognosis": [1, np.nan, 0, 1],
            "severity": [0.5, 1.5, np.nan, 2.0],
        }
    )


TASKS = [Task("prognosis", "binary"), Task("severity", "regression")]


def test_dataset_sample_contract_and_masks():
    ds = MultiTaskDataset(_table(), TASKS, np.zeros((4, 1, 8, 8), np.float32))
    s = ds[1]
    assert s["image"].shape == (1, 8, 8)
    assert s["mask"]["prognosis"].item() is False and s["mask"]["severity"].item() is True
    assert s["targets"]["prognosis"].dtype == torch.long and s["targets"]["severity"].item() == 1.5
    assert s["meta"] == {"sample_id": "b", "patient_id": "p1"}
    counts = ds.label_counts().set_index("task")
    assert counts.loc["prognosis", "labelled"] == 3 and counts.loc["prognosis", "positives"] == 2
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    assert batch["mask"]["severity"].tolist() == [True, True, False, True]


def test_dataset_refuses_bad_labels_naming_column_and_rows():
    t = _table()
    t.loc[2, "prognosis"] = 2
    with pytest.raises(ValueError, match=r"column 'prognosis' has values \[2.0\] at rows \[2\]"):
        MultiTaskDataset(t, TASKS, np.zeros((4, 1, 8, 8)))
    t = _table()
    t["severity"] = t["severity"].astype(object)
    t.loc[0, "severity"] = "high"
    with pytest.raises(ValueError, match="non-numeric labels at rows \\[0\\]"):
        MultiTaskDataset(t, TASKS, np.zeros((4, 1, 8, 8)))
    with pytest.raises(KeyError, match="label column 'prognosis'"):
        MultiTaskDataset(_table().drop(columns="prognosis"), TASKS, np.zeros((4, 1, 8, 8)))
    dup = _table()
    dup.loc[1, "sample_id"] = "a"
    with pytest.raises(ValueError, match="Duplicated ids"):
        MultiTaskDataset(dup, TASKS, np.zeros((4, 1, 8, 8)))
    with pytest.raises(ValueError, match="3 images for 4"):
        MultiTaskDataset(_table(), TASKS, np.zeros((3, 1, 8, 8)))


def test_folds_group_patients_and_stratify():
    d = make_synthetic_cxr(n_patients=60, images_per_patient=2, size=32)
    folds = assign_folds(d.table, 5, stratify_column="prognosis", seed=0)
    assert (d.table.assign(fold=folds).groupby("patient_id")["fold"].nunique() == 1).all()
    assert set(folds) == set(range(5))
    split = train_val_test_split(d.table, stratify_column="prognosis")
    assert set(split) == {"train", "val", "test"}
    assert (d.table.assign(s=split).groupby("patient_id")["s"].nunique() == 1).all()


def test_leakage_is_refused():
    t = _table()
    with pytest.raises(LeakageError, match="'p1' in 'train' and 'test'"):
        check_no_leakage({"train": t.iloc[:1], "test": t.iloc[1:]})


def test_subsample_labels_keeps_images_drops_labels():
    d = make_synthetic_cxr(n_patients=100, size=32)
    out = subsample_labels(d.table, "prognosis", 20, seed=0)
    assert len(out) == 100 and out["prognosis"].notna().sum() == 20
    assert out["severity"].equals(d.table["severity"])
    with pytest.raises(ValueError, match="only 100"):
        subsample_labels(d.table, "prognosis", 101)
