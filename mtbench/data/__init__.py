"""Data: readers, transforms, synthetic generators, the Dataset contract, patient-grouped splits."""

from mtbench.data.cache import VolumeCache, VolumeLoader
from mtbench.data.datasets import MultiTaskDataset
from mtbench.data.io import DicomSeriesError, Volume, read_dicom_file, read_dicom_series, read_nifti, read_volume
from mtbench.data.phantom import HeadCTPhantom, HeadCTPhantomConfig, make_head_ct_phantom
from mtbench.data.sampling import random_oversample
from mtbench.data.splits import (
    LeakageError,
    assign_folds,
    check_no_leakage,
    split_table,
    subsample_labels,
    train_val_test_split,
)
from mtbench.data.synthetic import SyntheticCXR, SyntheticCXRConfig, flip_labels, make_synthetic_cxr
from mtbench.data.transforms import CTPreprocess, multi_window, window, window_zero_outside

__all__ = [
    "CTPreprocess",
    "DicomSeriesError",
    "HeadCTPhantom",
    "HeadCTPhantomConfig",
    "Volume",
    "VolumeCache",
    "VolumeLoader",
    "make_head_ct_phantom",
    "multi_window",
    "random_oversample",
    "read_dicom_file",
    "read_dicom_series",
    "read_nifti",
    "read_volume",
    "window",
    "window_zero_outside",
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
