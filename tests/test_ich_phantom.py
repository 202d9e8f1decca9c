"""The synthetic head-CT phantom: geometry, HU values, the generative model, the Head-CT ICH layout."""

import time

import numpy as np
import pytest
from scipy import stats

from mtbench.data.phantom import HeadCTPhantomConfig, gcs_ordinal, make_head_ct_phantom
from mtbench.data.sources.ich_ct import load_manifest, report_text


@pytest.fixture(scope="module")
def phantom():
    return make_head_ct_phantom(n_patients=64, shape=(32, 64, 64), seed=0)


def test_shapes_and_speed():
    t0 = time.perf_counter()
    ph = make_head_ct_phantom(n_patients=64, shape=(32, 64, 64), seed=0)
    elapsed = time.perf_counter() - t0
    assert ph.volumes.shape == (64, 32, 64, 64) and ph.volumes.dtype == np.float32
    assert ph.hematoma_masks.shape == ph.volumes.shape and ph.hematoma_masks.dtype == bool
    assert elapsed < 30  # "a few seconds" unloaded; generous for a shared 2-core CI machine


def test_hu_values_by_tissue(phantom):
    v, hem, brain = phantom.volumes, phantom.hematoma_masks, phantom.brain_masks
    assert np.median(v[:, 0, 0, 0]) < -900  # air in the corner
    assert v.max() > 700  # skull
    assert 55 < float(np.median(v[hem])) < 85  # clot
    assert 20 < float(np.median(v[brain & ~hem])) < 40  # parenchyma


def test_measured_volume_matches_mask_and_target(phantom):
    t = phantom.table
    voxel_ml = np.prod(phantom.spacing) / 1000
    np.testing.assert_allclose(t["hematoma_ml"], phantom.hematoma_masks.reshape(64, -1).sum(1) * voxel_ml, atol=1e-3)
    ratio = t["hematoma_ml"] / t["hematoma_ml_target"]
    assert ratio.median() == pytest.approx(1.0, abs=0.05)


def test_labels_follow_the_papers_definitions(phantom):
    t = phantom.table
    assert (t["gcs_bin"] == (t["gcs"] <= 8)).all()
    assert (t["age_80"] == (t["age"] >= 80)).all()
    np.testing.assert_array_equal(gcs_ordinal([3, 8, 9, 12, 13, 15]), [2, 2, 1, 1, 0, 0])
    assert (t["gcs_ord"] == gcs_ordinal(t["gcs"])).all()
    assert t["gcs"].between(3, 15).all()


def test_generative_model_directions_and_prevalences():
    ph = make_head_ct_phantom(n_patients=400, shape=(16, 32, 32), seed=1, growth_prevalence=0.2)
    t = ph.table
    assert stats.spearmanr(t["hematoma_ml"], t["gcs"]).statistic < -0.3  # bigger bleed, lower GCS
    assert t["p_poor"].mean() == pytest.approx(162 / 261, abs=0.05)
    assert t["prognosis"].mean() == pytest.approx(162 / 261, abs=0.08)
    assert t["p_growth"].mean() == pytest.approx(0.2, abs=1e-3)
    assert stats.spearmanr(t["heterogeneity"], t["p_growth"]).statistic > 0.5
    assert stats.spearmanr(t["age"], t["p_poor"]).statistic > 0


def test_reproducible_and_validated():
    a = make_head_ct_phantom(n_patients=3, shape=(16, 32, 32), seed=5)
    b = make_head_ct_phantom(HeadCTPhantomConfig(n_patients=3, shape=(16, 32, 32), seed=5))
    np.testing.assert_array_equal(a.volumes, b.volumes)
    with pytest.raises(ValueError, match="location_probs"):
        HeadCTPhantomConfig(location_probs=(0.5, 0.5, 0.5))


def test_images_use_the_papers_window(phantom):
    x = phantom.images()
    assert x.shape == (64, 1, 32, 64, 64)
    assert x.min() >= 0 and x.max() <= 1
    assert (x[:, 0][phantom.volumes > 500] == 0).all()  # bone -> 0, not 1


def test_head_ct_ich_layout_round_trip(tmp_path):
    ph = make_head_ct_phantom(n_patients=6, shape=(16, 32, 32), seed=2)
    root = ph.to_nifti(tmp_path)
    m, report = load_manifest(root)
    assert len(m) == 6 and set(m["folder"]) <= {"GOOD_PROGNOSIS", "POOR_PROGNOSIS"}
    merged = m.merge(ph.table, on="patient_id", suffixes=("", "_truth"))
    assert (merged["prognosis"] == merged["prognosis_truth"]).all()
    assert (merged["gcs_ord"] == merged["gcs_ord_truth"]).all()
    assert "published: 261 (good 99, poor 162)" in report_text(report)
