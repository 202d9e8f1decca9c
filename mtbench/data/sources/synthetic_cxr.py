"""The synthetic chest X-ray generator as a data source (no files: images are made in memory)."""

from __future__ import annotations

from mtbench.data.report import Manifest, Report
from mtbench.data.synthetic import make_synthetic_cxr

NAME = "synthetic_cxr"
DESCRIPTION = "synthetic chest X-rays: six-zone Brixia-style severity and a severity-dependent prognosis (built in)"


def load_manifest(root=None, **options) -> Manifest:
    """The label table of a generated set (``options`` are :class:`SyntheticCXRConfig` fields), with
    an empty report (nothing is read, so nothing is skipped)."""
    return Manifest(make_synthetic_cxr(**options).table, Report(dataset=NAME))
