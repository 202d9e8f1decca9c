"""Experiments: each paper (and the quickstart) as configuration plus the few functions only it needs.

Every experiment module defines ``NAME``, ``DESCRIPTION``, ``default_config(profile)``, ``units``,
``run_unit``, ``report``, ``data_manifest`` and ``run`` (in memory, for notebooks); most get all but
the first three from :class:`mtbench.experiments.base.Experiment`. Add one to :data:`EXPERIMENTS`
(lazy: listing experiments imports none of them); see docs/architecture.md for the recipe.
"""

from __future__ import annotations

from types import ModuleType

from mtbench.registry import Registry

EXPERIMENTS = Registry("experiment")
for _name in ("quickstart", "ruffini2024", "ruffini2024_backbones", "when_mtl_helps", "cobo2024", "gong2023", "hirano2021"):
    EXPERIMENTS.register(_name, f"mtbench.experiments.{_name}")


def list_experiments() -> dict[str, str]:
    """``{name: description}`` of the registered experiments."""
    return {name: get_experiment(name).DESCRIPTION for name in EXPERIMENTS}


def get_experiment(name: str) -> ModuleType:
    """The experiment module registered as ``name`` (an unknown name raises with the close ones)."""
    return EXPERIMENTS.lookup(name)
