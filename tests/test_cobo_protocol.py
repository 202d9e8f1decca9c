"""Cobo et al. 2024: full-profile defaults that follow the original code (issue 15)."""

from mtbench.experiments.cobo2024 import default_config


def test_optimiser_lr_and_weight_decay_follow_original():
    train = default_config("full")["train"]
    assert train["lr"] == 1e-3  # original AdamW lr
    assert train["weight_decay"] == 1e-4  # original AdamW weight decay
