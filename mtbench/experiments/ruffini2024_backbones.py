"""The backbone sweep of Ruffini et al. (2024) as configuration of :mod:`mtbench.experiments.ruffini2024`.

Full profile: the 18 backbones of the paper (:data:`~mtbench.experiments.ruffini2024_protocol.PAPER_BACKBONES`)
x 5-fold CV (set ``protocol.name = "loco"`` for leave-one-center-out), ImageNet weights, the
paper's hyper-parameters, on AIforCOVID + BrixIA. Smoke profile: three small backbones
(:data:`~mtbench.experiments.ruffini2024.SMALL_BACKBONES`) x 2 folds on the 120 real X-rays of the
COVID-19 image data collection at 64 x 64 pixels, random initialisation, 4 optimiser steps per arm.
"""

from __future__ import annotations

from typing import Any

from mtbench.experiments import ruffini2024
from mtbench.experiments.ruffini2024_protocol import PAPER_BACKBONES
from mtbench.experiments.ruffini2024 import EXPERIMENT, RuffiniResult, data_manifest, data_splits, report, run, run_unit, units  # noqa: F401  (the same experiment)
from mtbench.profiles import by_profile, current_profile

NAME = "ruffini2024_backbones"
DESCRIPTION = "Ruffini et al. 2024 backbone sweep: 18 CNNs x (5-fold CV | leave-one-center-out), STL/FT/MDMT"


def default_config(profile: str | None = None) -> dict[str, Any]:
    """:func:`ruffini2024.default_config` with the backbone list and real-data source of the sweep."""
    p = profile or current_profile()
    cfg = ruffini2024.default_config(p)
    cfg["experiment"] = NAME
    cfg["data"]["source"] = by_profile("cohen", "aiforcovid_brixia", p)
    cfg["data"]["size"] = by_profile(64, 256, p)
    cfg["model"]["backbones"] = by_profile(list(ruffini2024.SMALL_BACKBONES), list(PAPER_BACKBONES), p)
    cfg["model"]["in_chans"] = 3
    cfg["model"]["backbone_kwargs"] = {}
    cfg["train"]["epochs"] = by_profile(4, 300, p)
    # Smoke: the same small step budget for every arm (three ImageNet-size backbones x 2 folds x 4 arms on a CPU).
    cfg["train"]["steps"] = by_profile(4, None, p)
    return cfg
