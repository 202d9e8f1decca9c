"""Experiments: each paper (and the quickstart) as configuration plus one ``run`` function.

Every experiment module defines ``NAME``, ``DESCRIPTION``, ``default_config(profile)`` and
``run(config, run_dir, progress)``. Experiments that can be resumed unit by unit and spread over a
cluster also define ``units(config)``, ``run_unit(config, unit, unit_dir, progress)`` and
``report(run_dir)`` (see :mod:`mtbench.runs`). Register new ones in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = {
    "quickstart": "mtbench.experiments.quickstart",
    "ruffini2024": "mtbench.experiments.ruffini2024",
    "ruffini2024_backbones": "mtbench.experiments.ruffini2024_backbones",
    "when_mtl_helps": "mtbench.experiments.when_mtl_helps",
    "cobo2024": "mtbench.experiments.cobo2024",
    "gong2023": "mtbench.experiments.gong2023",
    "hirano2021": "mtbench.experiments.hirano2021",
}


def list_experiments() -> dict[str, str]:
    """``{name: description}`` of the registered experiments."""
    return {name: get_experiment(name).DESCRIPTION for name in _MODULES}


def get_experiment(name: str) -> ModuleType:
    try:
        return importlib.import_module(_MODULES[name])
    except KeyError:
        raise ValueError(f"Unknown experiment {name!r}; available: {sorted(_MODULES)}") from None
