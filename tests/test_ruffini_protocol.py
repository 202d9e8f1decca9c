"""Ruffini et al. 2024: full-profile defaults that follow the original code (issue 15)."""

from mtbench.experiments.ruffini2024 import default_config


def test_val_fraction_follows_original_3_1_1_split():
    # The original splits train/val/test 3/1/1: one of the four non-test folds validates.
    assert default_config("full")["data"]["val_fraction"] == 0.25
    assert default_config("smoke")["data"]["val_fraction"] == 0.2  # smoke profile unchanged
