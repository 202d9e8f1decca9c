"""Data: synthetic generators, the Dataset contract, patient-grouped splits."""

from mtbench.data.datasets import MultiTaskDataset
from mtbench.data.splits import (
    LeakageError,
    assign_folds,
    check_no_leakage,
    split_table,
    subsample_labels,
    train_val_test_split,
)
from mtbench.data.synthetic import SyntheticCXR, SyntheticCXRConfig, flip_labels, make_synthetic_cxr

__all__ = [
    "LeakageError",
    "MultiTaskDataset",
    "SyntheticCXR",
    "SyntheticCXRConfig",
    "assign_folds",
    "check_no_leakage",
    "flip_labels",
    "make_synthetic_cxr",
    "split_table",
    "subsample_labels",
    "train_val_test_split",
]
