"""Known-answer worlds (mtbench.data.worlds): the ceilings follow from the generative models."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mtbench.data import make_head_ct_phantom, make_synthetic_cxr
from mtbench.data.worlds import SMOKE_PHANTOM, cxr_known_answer, phantom_known_answer


def test_cxr_ceiling_matches_generated_labels_and_moves_with_noise():
    ka = cxr_known_answer(n_mc=50_000)
    # the generator's own labels, ranked by the visible severity, reach the stated ceiling
    t = make_synthetic_cxr(n_patients=3000, size=32, seed=4).table
    assert roc_auc_score(t["prognosis"], t["severity"]) == pytest.approx(ka["bayes_auc"]["prognosis"], abs=0.02)
    assert abs(ka["unrelated_auc"] - 0.5) < 0.01 and 0 < ka["related_strength"] < 1
    # hidden noise and label noise lower the ceiling; no hidden noise raises it
    assert cxr_known_answer(n_mc=50_000, prognosis_noise=5)["bayes_auc"]["prognosis"] < ka["bayes_auc"]["prognosis"] - 0.1
    assert cxr_known_answer(n_mc=50_000, label_noise=0.2)["bayes_auc"]["prognosis"] < ka["bayes_auc"]["prognosis"] - 0.1
    assert cxr_known_answer(n_mc=50_000, prognosis_noise=0)["bayes_auc"]["prognosis"] > ka["bayes_auc"]["prognosis"]


def test_phantom_ceilings_and_relations():
    default = phantom_known_answer(n_mc=4000, inner=16)
    smoke = phantom_known_answer(n_mc=4000, inner=16, calcification_prevalence=0.4, **SMOKE_PHANTOM)
    for task in ("prognosis", "gcs_bin", "growth"):
        assert 0.6 < default["bayes_auc"][task] <= smoke["bayes_auc"][task] <= 1.0
    assert default["bayes_auc"]["prognosis"] <= default["clinical_auc_prognosis"] + 0.01  # GCS adds information
    assert smoke["bayes_qwk"]["gcs_ord"] > default["bayes_qwk"]["gcs_ord"]
    assert abs(smoke["relation"]["calcification"] - 0.5) < 0.04  # the unrelated task
    assert smoke["relation"]["gcs_ord"] > 0.65 and smoke["relation"]["hematoma_ml"] > 0.65  # related ones
    # the stated ceiling agrees with the generator: prognosis ranked by the tabular p_poor (which
    # also knows GCS) cannot be much below the clinical ceiling
    t = make_head_ct_phantom(n_patients=300, shape=(16, 32, 32), seed=3, **SMOKE_PHANTOM).table
    assert roc_auc_score(t["prognosis"], t["p_poor"]) == pytest.approx(smoke["clinical_auc_prognosis"], abs=0.06)


def test_phantom_calcification_is_visible_independent_and_off_by_default():
    base = make_head_ct_phantom(n_patients=12, shape=(16, 32, 32), seed=2)
    on = make_head_ct_phantom(n_patients=12, shape=(16, 32, 32), seed=2, calcification_prevalence=0.5)
    assert (base.table["calcification"] == 0).all() and 0 < on.table["calcification"].sum() < 12
    # every other label is unchanged; volumes differ only where a calcification was drawn
    cols = [c for c in base.table.columns if c != "calcification"]
    assert base.table[cols].equals(on.table[cols])
    changed = (on.volumes != base.volumes).reshape(12, -1).any(axis=1)
    assert (changed == on.table["calcification"].astype(bool).to_numpy()).all()
    calc = on.table["calcification"].astype(bool).to_numpy()
    diff = (on.volumes - base.volumes)[calc]
    assert (diff > 150).reshape(len(diff), -1).sum(axis=1).min() > 0  # brighter than the brain it replaced
    assert (on.brain_masks[calc] & ((on.volumes - base.volumes)[calc] > 150)).any()  # inside the brain
    with pytest.raises(ValueError, match="calcification_prevalence"):
        make_head_ct_phantom(n_patients=2, shape=(16, 32, 32), calcification_prevalence=1.5)
