"""Experiments: each paper (and the quickstart) as configuration plus one ``run`` function.

Every experiment module defines ``NAME``, ``DESCRIPTION``, ``default_config(profile)`` and
``run(config, run_dir, progress)``. Register new ones in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = {
    "quickstart": "mtbench.experiments.quickstart",
    "cobo2024": "mtbench.experiments.cobo2024",
}


def list_experiments() -> dict[str, str]:
    """``{name: description}`` of the registered experiments."""
    return {name: get_experiment(name).DESCRIPTION for name in _MODULES}


def get_experiment(name: str) -> ModuleType:
    try:
        return importlib.import_module(_MODULES[name])
    except KeyError:
        raise ValueError(f"Unknown experiment {name!r}; available: {sorted(_MODULES)}") from None
