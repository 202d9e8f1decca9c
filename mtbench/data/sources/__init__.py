"""Source adapters: one module per public data set, each returning a Manifest.

A Manifest is a pandas DataFrame with one row per image: ``sample_id`` (unique), ``patient_id``
(what splits group by), the path or key of the image, and one column per label (NaN where the
label is missing). Every source module defines ``NAME``, ``DESCRIPTION`` and
``load_manifest(root=None, **options) -> DataFrame``; register it in :data:`SOURCES` (lazily, by
module path, so listing data sets imports no adapter until one is used).
"""

from __future__ import annotations

from types import ModuleType

from mtbench.registry import Registry

SOURCES = Registry("dataset")
for _name in ("synthetic_cxr", "cohen_covid", "aiforcovid", "brixia", "asah", "ich_ct", "cq500", "rsna_ich", "table"):
    SOURCES.register(_name, f"mtbench.data.sources.{_name}")


def list_datasets() -> dict[str, str]:
    """``{name: description}`` of every data set mtbench can read."""
    return {name: get_source(name).DESCRIPTION for name in SOURCES}


def get_source(name: str) -> ModuleType:
    """The adapter module of data set ``name`` (an unknown name raises with the close ones)."""
    try:
        return SOURCES.get(name)
    except KeyError as err:
        raise ValueError(str(err)) from None
_SOURCES = SOURCES  # the name tests/test_data_cards.py reads
