"""The synthetic chest X-ray generator as a data source (no files: images are made in memory)."""

from __future__ import annotations

import pandas as pd

from mtbench.data.synthetic import make_synthetic_cxr

NAME = "synthetic_cxr"
DESCRIPTION = "synthetic chest X-rays: six-zone Brixia-style severity and a severity-dependent prognosis (built in)"


def load_manifest(root=None, **options) -> pd.DataFrame:
    """The label table of a generated set (``options`` are :class:`SyntheticCXRConfig` fields)."""
    return make_synthetic_cxr(**options).table
