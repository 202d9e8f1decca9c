"""Validation-chosen thresholds (mtbench.thresholds) and sentences from numbers (mtbench.verdict)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from mtbench.metrics import compute_metrics
from mtbench.tasks import Task
from mtbench.thresholds import apply_threshold, apply_thresholds, choose_threshold, fit_thresholds, warn_small_classes
from mtbench.verdict import ceiling_verdict, degenerate_flags, difference_verdict, flags_sentence, threshold_verdict, zero_map_flags

T = Task("prognosis", "binary")
Y = np.array([0, 0, 0, 1, 1, 1])
S = np.array([0.1, 0.4, 0.6, 0.5, 0.8, 0.9])


def test_choose_threshold_hand_computed():
    # candidate thresholds and (sens, spec): 0.9 (1/3, 1), 0.8 (2/3, 1), 0.6 (2/3, 2/3), 0.5 (1, 2/3), 0.4 (1, 1/3), 0.1 (1, 0)
    # Youden J: 1/3, 2/3, 1/3, 2/3, 1/3, 0 -> tie 0.8 / 0.5: the higher threshold, 0.8
    assert choose_threshold(Y, S, "youden") == 0.8
    # distance^2 to (0, 1): 0.8 -> (1/3)^2 = 0.111; 0.5 -> (1/3)^2 = 0.111; tie -> 0.8
    assert choose_threshold(Y, S, "closest_topleft") == 0.8
    assert choose_threshold(Y, S + 0.0, "fixed", fixed=0.3) == 0.3
    # closest-top-left differs from Youden: (sens, spec) 0.7 -> (0.5, 1.0) d=0.25, 0.3 -> (1, 0.5) d=0.25, 0.2 -> (1, 0.6) d=0.16
    y2 = np.r_[np.zeros(5), np.ones(2)]
    s2 = np.array([0.1, 0.15, 0.25, 0.35, 0.9, 0.2, 0.7])
    # at 0.2: sens 1, spec 2/5 -> J 0.4, d 0.36; at 0.7: sens 1/2, spec 4/5 -> J 0.3, d 0.29
    assert choose_threshold(y2, s2, "youden") == 0.2
    assert choose_threshold(y2, s2, "closest_topleft") == 0.7
    with pytest.raises(ValueError, match="method"):
        choose_threshold(Y, S, "otsu")


def test_one_class_falls_back_with_a_warning_and_nan_ignored():
    with pytest.warns(UserWarning, match="one class"):
        assert choose_threshold([1, 1, np.nan], [0.2, 0.3, 0.9]) == 0.5
    assert choose_threshold(np.r_[Y, np.nan], np.r_[S, 0.99]) == 0.8


def test_threshold_stored_and_used_by_thresholded_metrics():
    df = pd.DataFrame({"sample_id": list("abcdef"), "prognosis.target": Y, "prognosis.prob": S, "prognosis.pred": 1})
    before = compute_metrics(df, [T]).set_index("metric")["value"]
    assert before["balanced_accuracy"] == 0.5  # everybody positive
    out = apply_threshold(df, T, 0.8)
    assert out["prognosis.threshold"].tolist() == [0.8] * 6 and out["prognosis.pred"].tolist() == [0, 0, 0, 0, 1, 1]
    m = compute_metrics(out, [T]).set_index("metric")["value"]
    # TP 2, FN 1, TN 3, FP 0: sens 2/3, spec 1, balanced accuracy 5/6, F1 = 2*2/(2*2+0+1) = 0.8
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == 1.0
    assert m["balanced_accuracy"] == pytest.approx(5 / 6) and m["f1"] == pytest.approx(0.8)
    assert m["auc"] == before["auc"]  # ranking metrics do not move
    assert df["prognosis.pred"].eq(1).all()  # input untouched
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        thr = fit_thresholds(df, [T])
    assert thr == {"prognosis": 0.8} and any("fewer than 5" in str(x.message) for x in w)
    assert apply_thresholds(df, [T], thr)["prognosis.pred"].sum() == 2
    with pytest.raises(ValueError, match="binary"):
        apply_threshold(df, Task("s", "regression"), 0.5)


def test_warn_small_classes():
    with pytest.warns(UserWarning, match="fewer than 5"):
        assert warn_small_classes([0] * 10 + [1] * 4) == {0: 10, 1: 4}
    with pytest.warns(UserWarning, match="second class"):
        warn_small_classes([1] * 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_small_classes([0] * 5 + [1] * 5 + [np.nan]) == {0: 5, 1: 5}


def test_difference_verdicts():
    assert difference_verdict(0.043, 0.012, 0.071, "gain") == "gain: +0.043 [0.012, 0.071]: the interval excludes 0, so the difference is positive."
    assert "negative" in difference_verdict(-0.05, -0.09, -0.01)
    assert "includes 0: no evidence" in difference_verdict(0.0, -0.1, 0.1)
    assert "no interval" in difference_verdict(0.1, np.nan, np.nan)
    assert threshold_verdict(0.812, 0.8, "AUC") == "AUC 0.812 >= 0.800: met."
    assert threshold_verdict(0.79, 0.8, "AUC").endswith("NOT met.")
    assert threshold_verdict(3.0, 5.0, "MAE", higher_is_better=False) == "MAE 3.000 <= 5.000: met."
    assert "50% of the possible gain" in ceiling_verdict(0.7, 0.9)


def test_degenerate_flags():
    df = pd.DataFrame({"sample_id": list("abcd"), "prognosis.target": [0, 1, 0, 1], "prognosis.prob": [0.6] * 4,
                       "prognosis.pred": [1] * 4, "v.target": [1.0, 2, 3, 4], "v.pred": [2.0, 2, 2, 2]})
    flags = degenerate_flags(df, [T, Task("v", "regression")])
    assert len(flags) == 3 and "one-class" in flags[0] and "constant scores" in flags[1] and "constant regression" in flags[2]
    df["prognosis.prob"] = [0.1, 0.9, 0.2, 0.8]
    df["prognosis.pred"] = [0, 1, 0, 1]
    assert degenerate_flags(df, [T]) == [] and flags_sentence([]) == "No degenerate model."
    maps = np.zeros((3, 2, 2))
    maps[1, 0, 0] = 0.5
    assert zero_map_flags(maps, "gradcam") == ["gradcam: 2 of 3 maps are all zero (samples [0, 2])."]


def test_predict_thresholded_uses_the_validation_threshold_on_test():
    """The threshold is chosen on validation predictions and applied, unchanged, to the test split."""
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    from mtbench.data import MultiTaskDataset
    from mtbench.tasks import Task
    from mtbench.thresholds import predict_thresholded
    from mtbench.train import make_loader

    class MeanLogit(nn.Module):  # logit = mean pixel value: the score is known exactly
        def forward(self, x):
            return {"prognosis": x.flatten(1).mean(1, keepdim=True)}

    task = Task("prognosis", "binary")

    def loader(logits, labels):
        table = pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(labels))], "patient_id": range(len(labels)),
                              "prognosis": labels})
        images = np.ones((len(labels), 1, 4, 4), np.float32) * np.asarray(logits, np.float32)[:, None, None, None]
        return make_loader(MultiTaskDataset(table, [task], images), batch_size=4)

    # validation: positives have logits >= 2, negatives <= 1 -> Youden's threshold is sigmoid(2)
    val = loader([-1, 0, 1, 2, 3, 4], [0, 0, 0, 1, 1, 1])
    test = loader([0.5, 1.5, 2.5], [0, 1, 1])
    out = predict_thresholded(MeanLogit(), val, test, [task])
    thr = float(torch.sigmoid(torch.tensor(2.0)))
    assert np.allclose(out["prognosis.threshold"], thr, atol=1e-6)
    assert out["prognosis.pred"].tolist() == [0, 0, 1]  # 1.5 is above 0.5 but below the chosen threshold
    fixed = predict_thresholded(MeanLogit(), val, test, [task], method="fixed")
    assert fixed["prognosis.pred"].tolist() == [1, 1, 1] and np.allclose(fixed["prognosis.threshold"], 0.5)
