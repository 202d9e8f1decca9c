"""HU windows, resampling, depth pad/crop, skull strip, the preprocessing pipeline and its disk cache."""

import os

import numpy as np
import pytest

from mtbench.data.cache import VolumeCache, VolumeLoader, cache_key
from mtbench.data.io import write_nifti
from mtbench.data.phantom import make_head_ct_phantom
from mtbench.data.transforms import (
    CTPreprocess,
    multi_window,
    named_window,
    pad_or_crop_depth,
    resample_to_spacing,
    resize_to_shape,
    skull_strip,
    window,
    window_zero_outside,
)


def test_cobo_window_sets_out_of_range_to_zero():
    hu = np.array([-1000, 0, 14.9, 15, 57.5, 100, 100.1, 1000], np.float32)
    # (HU - 15) / 85, outside [0, 1] -> 0 (Cobo et al. 2024)
    np.testing.assert_allclose(window_zero_outside(hu), [0, 0, 0, 0, 0.5, 1.0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(named_window(hu, "cobo"), window_zero_outside(hu))


def test_ordinary_window_clips():
    hu = np.array([-1000, 0, 40, 80, 1000], np.float32)
    np.testing.assert_allclose(window(hu, 40, 80), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(named_window(hu, (40, 80)), window(hu, 40, 80))
    with pytest.raises(ValueError, match="Unknown window"):
        named_window(hu, "lung-ish")


def test_multi_window_channels():
    hu = np.linspace(-1000, 2000, 60, dtype=np.float32).reshape(3, 4, 5)
    out = multi_window(hu, ("brain", "subdural", "bone"))
    assert out.shape == (3, 3, 4, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[2], window(hu, 600, 2800))


def test_resample_and_resize():
    arr = np.random.default_rng(0).normal(size=(10, 20, 20)).astype(np.float32)
    out, sp = resample_to_spacing(arr, (5.0, 0.5, 0.5), (2.5, 1.0, 1.0))
    assert out.shape == (20, 10, 10) and sp == pytest.approx((2.5, 1.0, 1.0))
    const = np.full((6, 8, 8), 42.0, np.float32)
    np.testing.assert_allclose(resize_to_shape(const, (3, 16, 5)), 42.0, rtol=1e-6)
    assert resize_to_shape(np.zeros((2, 6, 8, 8)), (3, 4, 4)).shape == (2, 3, 4, 4)


def test_pad_or_crop_depth():
    arr = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((5, 2, 2), np.float32)
    padded = pad_or_crop_depth(arr, 8)
    assert padded.shape == (8, 2, 2)
    assert padded[0, 0, 0] == -1024 and padded[1, 0, 0] == 0 and padded[-1, 0, 0] == -1024
    cropped = pad_or_crop_depth(arr, 3)
    np.testing.assert_array_equal(cropped[:, 0, 0], [1, 2, 3])
    np.testing.assert_array_equal(pad_or_crop_depth(arr, 3, where="end")[:, 0, 0], [0, 1, 2])


def test_skull_strip_recovers_phantom_brain():
    ph = make_head_ct_phantom(n_patients=2, shape=(32, 64, 64), seed=3)
    stripped, mask = skull_strip(ph.volumes[0])
    truth = ph.brain_masks[0]
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.85
    assert stripped[mask].min() > -100 and (stripped[~mask] == -1024).all()
    assert not (mask & (ph.volumes[0] > 500)).any()  # no bone kept


def test_preprocess_pipeline_and_settings():
    ph = make_head_ct_phantom(n_patients=1, shape=(32, 64, 64), seed=1)
    pre = CTPreprocess(windows=("brain", "subdural", "bone"), shape=(16, 32, 32), depth=20)
    out = pre(ph.volumes[0], ph.spacing)
    assert out.shape == (3, 20, 32, 32) and out.dtype == np.float32
    assert pre.to_dict()["windows"] == ["brain", "subdural", "bone"]
    raw = CTPreprocess(windows=(), spacing=(10.0, 6.875, 6.875))(ph.volumes[0], ph.spacing)
    assert raw.shape == (1, 16, 32, 32)
    with pytest.raises(ValueError, match="spacing"):
        CTPreprocess(spacing=(1.0, 1.0, 1.0))(ph.volumes[0])


def test_cache_hits_and_keys(tmp_path):
    ph = make_head_ct_phantom(n_patients=1, shape=(16, 32, 32), seed=2)
    src = write_nifti(ph.volumes[0], tmp_path / "a.nii.gz", ph.spacing)
    loader = VolumeLoader(CTPreprocess(shape=(8, 16, 16)), tmp_path / "cache")
    a = loader.load(src)
    b = loader.load(src)
    np.testing.assert_array_equal(a, b)
    assert (loader.cache.hits, loader.cache.misses) == (1, 1)
    other = VolumeLoader(CTPreprocess(shape=(8, 16, 16), windows=("brain",)), tmp_path / "cache")
    other.load(src)
    assert other.cache.misses == 1 and len(other.cache) == 2  # new settings, new entry
    k1 = cache_key(src, {"x": 1})
    st = os.stat(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # an edited source file
    assert cache_key(src, {"x": 1}) != k1
    assert VolumeCache(tmp_path / "cache").clear() == 2
    with pytest.raises(KeyError, match="path"):
        loader({"file": str(src)})
