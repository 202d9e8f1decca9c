"""Source adapters: one module per public data set, each returning a Manifest.

A Manifest is a pandas DataFrame with one row per image: ``sample_id`` (unique), ``patient_id``
(what splits group by), the path or key of the image, and one column per label (NaN where the
label is missing). Every source module defines ``NAME``, ``DESCRIPTION`` and
``load_manifest(root=None, **options) -> DataFrame``; register it in ``_SOURCES``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SOURCES: dict[str, str] = {
    "synthetic_cxr": "mtbench.data.sources.synthetic_cxr",
    "cohen_covid": "mtbench.data.sources.cohen_covid",
    "aiforcovid": "mtbench.data.sources.aiforcovid",
    "brixia": "mtbench.data.sources.brixia",
    "asah": "mtbench.data.sources.asah",
    "ich_ct": "mtbench.data.sources.ich_ct",
    "cq500": "mtbench.data.sources.cq500",
    "rsna_ich": "mtbench.data.sources.rsna_ich",
    "table": "mtbench.data.sources.table",
}


def list_datasets() -> dict[str, str]:
    """``{name: description}`` of every data set mtbench can read."""
    return {name: get_source(name).DESCRIPTION for name in _SOURCES}


def get_source(name: str) -> ModuleType:
    try:
        return importlib.import_module(_SOURCES[name])
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; available: {sorted(_SOURCES)}") from None
