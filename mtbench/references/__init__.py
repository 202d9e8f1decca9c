"""Published numbers of the reproduced papers, as data files (CSV/YAML) with their source.

``load_reference("ruffini2024")`` reads ``ruffini2024.csv`` (``#`` lines are the citation).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd


def list_references() -> list[str]:
    """Names of the reference tables shipped with mtbench."""
    return sorted(p.name.rsplit(".", 1)[0] for p in resources.files(__name__).iterdir() if p.name.endswith(".csv"))


def load_reference(name: str) -> pd.DataFrame:
    """A published-numbers table by name (``#`` comment lines hold the citation)."""
    path = resources.files(__name__) / f"{name}.csv"
    if not path.is_file():
        raise ValueError(f"No reference table {name!r}; available: {list_references()}")
    with resources.as_file(path) as p:
        return pd.read_csv(p, comment="#")
