"""Predictions tables refuse duplicated sample ids (issue 14: they were saved and counted twice)."""

import numpy as np
import pandas as pd
import pytest

from mtbench.metrics import compute_metrics
from mtbench.predictions import save_predictions, validate_predictions
from mtbench.tasks import Task

T = Task("y", "binary")


def _table(ids, dataset=None, y=(0, 1, 1)):
    df = pd.DataFrame({"sample_id": ids, "y.target": list(y), "y.prob": [0.2, 0.8, 0.6], "y.pred": [0, 1, 1]})
    if dataset is not None:
        df["dataset"] = dataset
    return df


def test_duplicated_ids_are_refused_on_save_and_in_metrics(tmp_path):
    df = _table(["a", "b", "b"])
    with pytest.raises(ValueError, match=r"duplicated sample_id .*\['b'\]"):
        save_predictions(df, tmp_path / "p.csv", [T])
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(ValueError, match="labelled twice for task 'y'"):
        compute_metrics(df, [T])


def test_same_image_in_two_data_sets_is_fine_unless_one_task_sees_it_twice():
    # multi-dataset tables: an image in both sets has one row per set, each labelled for its own tasks
    df = _table(["a", "b", "b"], dataset=["p", "p", "s"], y=(0, 1, np.nan))
    validate_predictions(df, [T])
    assert compute_metrics(df, [T]).set_index("metric").loc["accuracy", "n"] == 2
    with pytest.raises(ValueError, match="labelled twice for task 'y'"):
        validate_predictions(_table(["a", "b", "b"], dataset=["p", "p", "s"]), [T])
