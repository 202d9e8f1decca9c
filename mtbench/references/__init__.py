"""Published numbers of the reproduced papers, as data files (CSV/YAML) with their source.

``load_reference("ruffini2024")`` reads ``ruffini2024.csv`` (``#`` lines are the citation).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd


def list_references() -> list[str]:
    """Names of the reference tables shipped with mtbench."""
    return sorted(p.name.rsplit(".", 1)[0] for p in resources.files(__name__).iterdir() if p.name.endswith(".csv"))


def load_reference(name_or_path: str | Path) -> pd.DataFrame:
    """A published-numbers table: shipped with mtbench (by name, e.g. ``"ruffini2024"``) or any CSV path.

    Lines starting with ``#`` hold the citation and are skipped.
    """
    if Path(name_or_path).is_file():
        return pd.read_csv(name_or_path, comment="#")
    name = Path(name_or_path).name.removesuffix(".csv")
    path = resources.files(__name__) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"No reference table {str(name_or_path)!r}; shipped with mtbench: {list_references()}")
    with resources.as_file(path) as p:
        return pd.read_csv(p, comment="#")
