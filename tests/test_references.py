"""The shipped published numbers (mtbench/references) against the team's shared transcription."""

from pathlib import Path

import pandas as pd
import pytest

from mtbench.references import PUBLISHED_COLUMNS, load_reference, published_numbers

# The team's transcription sits in shared/reference beside the checkout (as ../shared/data does).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "published-numbers.csv"


def _cell(v):
    """Numbers compared as numbers (0.760 == 0.76), missing as empty, the rest as text."""
    if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "":
        return ""
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def _key(df):
    rows = df[list(PUBLISHED_COLUMNS)].drop(columns="source").to_numpy(dtype=object)
    return sorted((tuple(map(_cell, r)) for r in rows), key=repr)


@pytest.mark.skipif(not SHARED.is_file(), reason="shared/reference is not beside this checkout")
def test_every_shared_row_is_shipped():
    shared = pd.read_csv(SHARED, dtype=str, keep_default_na=False)
    assert _key(published_numbers()) == _key(shared)


def test_published_numbers_contents():
    pdb = published_numbers("perezdelbarrio2023")
    img = pdb[pdb["model"].str.startswith("image_only")]
    # Pérez del Barrio et al. 2023 abstract: image-only model AUC 0.763 (0.622-0.902), Cobo's Baseline [17]
    assert img[["value", "ci_low", "ci_high"]].astype(float).iloc[0].tolist() == [0.763, 0.622, 0.902]
    sig = published_numbers("ruffini2024", "significance")
    assert len(sig) == 24 and set(sig["value"]) == {"*", "**", "***", "n.s."}
    assert not sig["source"].eq("same").any()
    cobo = published_numbers("cobo2024")
    assert cobo["value"].isna().all() and cobo["note"].str.contains("not transcribed").all()
    with pytest.raises(KeyError, match="paper"):
        published_numbers("nobody2020")


def test_ruffini_table_agrees_with_long_table():
    head = published_numbers("ruffini2024", "headline")
    long = {(r.protocol, r.model, r.metric): float(r.value) for r in head.itertuples()}
    short = {(r.protocol, r.arm, r.metric): r.value for r in load_reference("ruffini2024").itertuples()}
    assert long == short
