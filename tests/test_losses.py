"""The masked multi-task loss: missing labels contribute nothing, to the loss or the gradient."""

import pytest
import torch
import torch.nn.functional as F

from mtbench import MultiTaskLoss, Task
from mtbench.mtl import create_weighting, list_weightings, task_loss

TASKS = [Task("prognosis", "binary"), Task("severity", "regression")]


def _batch():
    torch.manual_seed(0)
    outputs = {
        "prognosis": torch.randn(6, 1, requires_grad=True),
        "severity": torch.randn(6, 1, requires_grad=True),
    }
    targets = {"prognosis": torch.tensor([1, 0, 1, 0, 1, 1]), "severity": torch.randn(6)}
    masks = {
        "prognosis": torch.tensor([True, True, False, False, True, False]),
        "severity": torch.tensor([False, True, True, True, True, True]),
    }
    return outputs, targets, masks


def test_missing_labels_get_exactly_zero_gradient():
    outputs, targets, masks = _batch()
    res = MultiTaskLoss(TASKS)(outputs, targets, masks)
    res.total.backward()
    g_p = outputs["prognosis"].grad[:, 0]
    g_s = outputs["severity"].grad[:, 0]
    assert torch.all(g_p[~masks["prognosis"]] == 0)
    assert torch.all(g_p[masks["prognosis"]] != 0)
    assert torch.all(g_s[~masks["severity"]] == 0)


def test_missing_label_values_cannot_leak_in():
    """Garbage (even NaN) in a masked target changes nothing."""
    outputs, targets, masks = _batch()
    base = MultiTaskLoss(TASKS)(outputs, targets, masks).total
    targets["severity"] = targets["severity"].clone()
    targets["severity"][0] = float("nan")  # masked out
    targets["prognosis"] = targets["prognosis"].clone()
    targets["prognosis"][2] = 1 - targets["prognosis"][2]  # masked out
    again = MultiTaskLoss(TASKS)(outputs, targets, masks).total
    assert torch.isfinite(again) and torch.equal(base, again)


def test_masked_mean_equals_loss_on_labelled_subset_by_hand():
    outputs, targets, masks = _batch()
    res = MultiTaskLoss(TASKS, reduction="masked_mean")(outputs, targets, masks)
    m = masks["prognosis"]
    expected = F.binary_cross_entropy_with_logits(outputs["prognosis"][m, 0], targets["prognosis"][m].float())
    assert torch.allclose(res.per_task["prognosis"], expected)
    ms = masks["severity"]
    expected_s = F.mse_loss(outputs["severity"][ms, 0], targets["severity"][ms])
    assert torch.allclose(res.per_task["severity"], expected_s)
    assert torch.allclose(res.total, expected + expected_s)
    assert res.counts == {"prognosis": 3, "severity": 5}


def test_batch_mean_divides_by_batch_size():
    outputs, targets, masks = _batch()
    mm = MultiTaskLoss(TASKS, reduction="masked_mean")(outputs, targets, masks)
    bm = MultiTaskLoss(TASKS, reduction="batch_mean")(outputs, targets, masks)
    assert torch.allclose(bm.per_task["prognosis"], mm.per_task["prognosis"] * 3 / 6)
    assert torch.allclose(bm.per_task["severity"], mm.per_task["severity"] * 5 / 6)


def test_absent_task_contributes_no_term_and_others_unchanged():
    outputs, targets, masks = _batch()
    loss = MultiTaskLoss(TASKS, weighting="fixed", weights={"prognosis": 0.4, "severity": 0.6})
    masks_none = dict(masks, prognosis=torch.zeros(6, dtype=torch.bool))
    res = loss(outputs, targets, masks_none)
    assert "prognosis" not in res.per_task and res.counts["prognosis"] == 0
    assert torch.allclose(res.total, 0.6 * res.per_task["severity"])
    res.total.backward()
    g = outputs["prognosis"].grad
    assert g is None or torch.all(g == 0)
    assert outputs["severity"].grad is not None


def test_fixed_weights_combine_and_validate():
    outputs, targets, masks = _batch()
    res = MultiTaskLoss(TASKS, weighting="fixed", weights={"prognosis": 0.4, "severity": 0.6})(outputs, targets, masks)
    assert torch.allclose(res.total, 0.4 * res.per_task["prognosis"] + 0.6 * res.per_task["severity"])
    assert res.weights == {"prognosis": 0.4, "severity": 0.6}
    with pytest.raises(ValueError, match="missing"):
        create_weighting("fixed", ["prognosis", "severity"], weights={"prognosis": 1.0})
    with pytest.raises(ValueError, match="Unknown weighting"):
        create_weighting("nope", ["a"])
    assert {"equal", "fixed"} <= set(list_weightings())


def test_no_label_at_all_is_a_clear_error():
    outputs, targets, _ = _batch()
    masks = {k: torch.zeros(6, dtype=torch.bool) for k in outputs}
    with pytest.raises(ValueError, match="No sample in this batch has a label"):
        MultiTaskLoss(TASKS)(outputs, targets, masks)


def test_mismatched_batch_and_missing_output_fail_clearly():
    outputs, targets, masks = _batch()
    with pytest.raises(KeyError, match="no output for task 'severity'"):
        MultiTaskLoss(TASKS)({"prognosis": outputs["prognosis"]}, targets, masks)
    with pytest.raises(ValueError, match="6 outputs but 5 targets"):
        MultiTaskLoss(TASKS)(outputs, dict(targets, severity=targets["severity"][:5]), masks)


def test_ordinal_and_pos_weight_losses():
    ordinal = Task("gcs", "ordinal", num_classes=3)
    logits = torch.tensor([[10.0, -10.0]])  # confident "class 1" = bits 10
    assert task_loss(ordinal, logits, torch.tensor([1])).item() < 1e-3
    assert task_loss(ordinal, logits, torch.tensor([2])).item() > 1.0
    plain = Task("p", "binary")
    weighted = Task("p", "binary", loss_kwargs={"pos_weight": 3.0})
    out, y = torch.tensor([[0.3]]), torch.tensor([1])
    assert torch.allclose(task_loss(weighted, out, y), 3 * task_loss(plain, out, y))
