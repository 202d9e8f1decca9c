"""Statistics on Predictions tables: bootstrap confidence intervals (more in later modules)."""

from mtbench.stats.bootstrap import bootstrap_metrics

__all__ = ["bootstrap_metrics"]
