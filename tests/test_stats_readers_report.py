"""Reader study helper and compare() reports.

References: Wilson score interval example of Newcombe (1998, Stat Med 17:857, Table I, 81/263:
0.2553-0.3662); pROC's DeLong AUC/CI/test values on aSAH (see test_stats_roc.py) through compare().
"""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from mtbench.stats import compare, load_reference, operating_point, predictions_from_scores, reader_study, simulate_readers
from mtbench.stats.paired import mcnemar_test

matplotlib.use("Agg")


def test_operating_point_wilson_ci_matches_newcombe():
    truth = np.ones(263, int)
    call = np.r_[np.ones(81), np.zeros(182)].astype(int)
    op = operating_point(truth, call)
    assert op["sensitivity"] == pytest.approx(81 / 263)
    assert (round(op["sensitivity_low"], 4), round(op["sensitivity_high"], 4)) == (0.2553, 0.3662)


@pytest.fixture(scope="module")
def study_inputs():
    rng = np.random.default_rng(0)
    n = 200
    latent = rng.normal(size=n)
    truth = (latent + rng.normal(0, 0.7, n) > 0.3).astype(int)
    model = pd.DataFrame({"sample_id": [f"c{i}" for i in range(n)], "t": truth, "p": 1 / (1 + np.exp(-2 * latent))})
    cases = model.assign(latent=latent)
    readings = simulate_readers(cases, "latent", n_readers=3, noise=[0.5, 1.0, 1.5], threshold=[0.0, 0.3, 0.6], seed=1)
    return model, readings


def test_reader_study_end_to_end(study_inputs):
    model, readings = study_inputs
    res = reader_study(model, readings.sample(frac=1.0, random_state=0), truth="t", score="p")
    op = res.operating_points.set_index("reader")
    assert list(op.index) == ["model", "R1", "R2", "R3"] and (op["n"] == 200).all()
    # McNemar per reader equals a direct call on the joined cases
    r1 = readings[readings.reader == "R1"].set_index("case_id")["call"]
    m = model.set_index("sample_id")
    direct = mcnemar_test((m["p"] >= 0.5).astype(int) == m["t"], r1.reindex(m.index) == m["t"])
    assert res.mcnemar.set_index("reader").loc["R1", "p_value"] == pytest.approx(direct.p_value)
    assert 0 < res.fleiss_kappa < 1 and len(res.pairwise_kappa) == 6  # 3 readers + model
    assert res.model_auc.auc > 0.7
    assert "McNemar p (vs model)" in res.table().columns
    fig = res.plot()
    assert len(fig.axes[0].lines) >= 3


def test_reader_study_refuses_unknown_cases(study_inputs):
    model, readings = study_inputs
    bad = pd.concat([readings, pd.DataFrame({"case_id": ["zz"], "reader": ["R1b"], "call": [1]})])
    with pytest.raises(ValueError, match="not in the model table"):
        reader_study(model, bad, truth="t", score="p")


@pytest.fixture(scope="module")
def asah_preds(shared_data):
    d = pd.read_csv(shared_data / "asah" / "asah.csv")
    d["poor"] = (d["outcome"] == "Poor").astype(int)
    return predictions_from_scores(d, "poor", ["wfns", "s100b", "ndka"], task="outcome")


def test_compare_predictions_reproduces_proc_and_shows_published(asah_preds):
    c = compare(asah_preds, reference="wfns", metrics=["auc", "specificity"], published="proc_asah", n_boot=300)
    t = c.table.set_index(["model", "metric"])
    # pROC: AUC/CI of ndka and roc.test(wfns, ndka) p = 0.00514557970691098 (Holm x2 with s100b's 0.0272)
    assert t.loc[("ndka", "auc"), "ci_low"] == pytest.approx(0.501244999271703, abs=1e-10)
    assert t.loc[("ndka", "auc"), "p_value"] == pytest.approx(0.00514557970691098, rel=1e-9)
    assert t.loc[("ndka", "auc"), "p_adjusted"] == pytest.approx(2 * 0.00514557970691098, rel=1e-9)
    assert t.loc[("s100b", "auc"), "mark"] == "*" and t.loc[("wfns", "auc"), "mark"] == "ref"
    assert t.loc[("s100b", "auc"), "published"] == pytest.approx(0.7314)
    md = c.to_markdown()
    assert "auc (published)" in md and "0.612 [0.501, 0.723]*" in md
    assert r"$^{*}$" in c.to_latex() and r"\toprule" in c.to_latex()


def test_compare_refuses_different_cases(asah_preds):
    other = dict(asah_preds)
    other["ndka"] = other["ndka"].iloc[1:]
    with pytest.raises(ValueError, match="different 'outcome' cases"):
        compare(other, reference="wfns", metrics=["auc"])


def test_compare_results_table_with_key():
    rng = np.random.default_rng(0)
    rows = [{"model": m, "seed": s, "task": "prognosis", "metric": "auc", "value": base + rng.normal(0, 0.01)}
            for s in range(8) for m, base in (("multi_task", 0.80), ("single_task", 0.75))]
    c = compare(pd.DataFrame(rows), reference="single_task", key="seed", test="ttest")
    t = c.table.set_index("model")
    assert t.loc["multi_task", "p_value"] < 0.001 and t.loc["multi_task", "mark"] == "***"
    assert t.loc["multi_task", "ci_low"] < t.loc["multi_task", "value"] < t.loc["multi_task", "ci_high"]


def test_load_reference():
    ref = load_reference("proc_asah")
    assert set(ref.model) == {"wfns", "s100b", "ndka"}
    with pytest.raises(FileNotFoundError, match="shipped with mtbench"):
        load_reference("nope")
