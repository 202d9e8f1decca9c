import numpy as np
import pytest
import torch

from mtbench.tasks import Task, as_task_dict, ordinal_class_probs, ordinal_encode


def test_defaults_by_kind():
    assert Task("p", "binary").num_outputs == 1
    assert Task("c", "multiclass", num_classes=4).num_outputs == 4
    assert Task("g", "ordinal", num_classes=3).num_outputs == 2
    assert Task("z", "regression", num_targets=6).num_outputs == 6
    assert Task("p", "binary").loss == "bce"
    assert Task("g", "ordinal", num_classes=3).primary_metric == "qwk"


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"name": "bad.name", "kind": "binary"}, "not valid"),
        ({"name": "x", "kind": "nope"}, "unknown kind"),
        ({"name": "x", "kind": "multiclass"}, "num_classes >= 2"),
        ({"name": "x", "kind": "binary", "num_classes": 3}, "2 classes"),
        ({"name": "x", "kind": "binary", "num_targets": 2}, "only for regression"),
        ({"name": "x", "kind": "multiclass", "num_classes": 3, "class_names": ("a", "b")}, "class_names"),
    ],
)
def test_invalid_tasks_fail_clearly(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Task(**kwargs)


def test_ordinal_cumulative_encoding_matches_cobo_two_bit_scheme():
    # GCS three classes (<=8, 9-12, 13-15) -> 00, 10, 11
    bits = ordinal_encode(torch.tensor([0, 1, 2]), 3)
    assert bits.tolist() == [[0, 0], [1, 0], [1, 1]]


def test_ordinal_decode_counts_thresholds_and_probs_sum_to_one():
    t = Task("g", "ordinal", num_classes=3)
    logits = torch.tensor([[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0]])
    out = t.decode(logits)
    assert out["pred"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(out["prob"].sum(axis=1), 1.0, rtol=1e-6)
    assert out["prob"].argmax(axis=1).tolist() == [0, 1, 2]
    # Non-monotone cumulative probabilities are clipped, never negative.
    p = ordinal_class_probs(torch.tensor([[0.2, 0.9]]))
    assert (p >= 0).all() and torch.isclose(p.sum(), torch.tensor(1.0))


def test_binary_decode_uses_threshold():
    t = Task("p", "binary", threshold=0.7)
    out = t.decode(torch.tensor([[0.0], [2.0]]))  # sigmoid: 0.5, 0.88
    assert out["pred"].tolist() == [0, 1]


def test_columns_and_roundtrip():
    t = Task("zones", "regression", num_targets=2, loss="l1")
    assert t.target_columns() == ["zones.target.0", "zones.target.1"]
    assert t.pred_columns() == ["zones.pred.0", "zones.pred.1"]
    c = Task("sev", "multiclass", num_classes=3, class_names=("a", "b", "c"))
    assert c.prob_columns() == ["sev.prob.0", "sev.prob.1", "sev.prob.2"]
    for task in (t, c, Task("p", "binary", loss_kwargs={"pos_weight": 2.0})):
        assert Task.from_dict(task.to_dict()) == task


def test_as_task_dict_refuses_duplicates():
    with pytest.raises(ValueError, match="unique"):
        as_task_dict([Task("a", "binary"), Task("a", "regression")])
