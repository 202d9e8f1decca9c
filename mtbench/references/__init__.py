"""Published numbers of the reproduced papers, as data files (CSV/YAML) with their source.

``load_reference("ruffini2024")`` reads ``ruffini2024.csv`` (``#`` lines are the citation).
``published_numbers()`` is the one long table of every published figure known (Ruffini's headline
and significance tables, the Pérez del Barrio 2023 figures behind Cobo's Baseline [17], Cobo's
Table 2 marked not transcribed), one row per number, with its source.
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


PUBLISHED_COLUMNS = ("paper", "source", "table", "protocol", "model", "metric", "value", "ci_low", "ci_high", "note")


def published_numbers(paper: str | None = None, table: str | None = None) -> pd.DataFrame:
    """Every published figure known, from ``published_numbers.csv``, optionally one paper's / table's.

    Columns :data:`PUBLISHED_COLUMNS`. ``value`` is kept as text (significance rows hold stars such as
    ``"***"`` or ``"n.s."``; a not-transcribed row is empty with a ``note``); :func:`pd.to_numeric`
    it for the numeric tables. A ``source`` of ``"same"`` is resolved to the row above's source.
    """
    df = load_reference("published_numbers").astype({"value": "string"})
    df["source"] = df["source"].mask(df["source"].eq("same")).ffill()
    for col, want in (("paper", paper), ("table", table)):
        if want is not None:
            if want not in set(df[col]):
                raise KeyError(f"published_numbers.csv has no {col} {want!r}; it has {sorted(set(df[col]))}")
            df = df[df[col] == want]
    return df.reset_index(drop=True)
