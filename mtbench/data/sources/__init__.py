"""Source adapters: one module per public data set, each returning a
:class:`~mtbench.data.report.Manifest` ``(table, report)``.

``table`` is a pandas DataFrame with one row per image: ``sample_id`` (unique), ``patient_id``
(what splits group by), the path or key of the image, and one column per label (NaN where the
label is missing); ``report`` is the :class:`~mtbench.data.report.Report` of what the adapter
counted (``report.counts``) and skipped (``report.problems``). Every source module defines
``NAME``, ``DESCRIPTION`` and ``load_manifest(root=None, **options) -> Manifest``; register it in
:data:`SOURCES` (lazily, by module path, so listing data sets imports no adapter until one is used).
"""

from __future__ import annotations

from pathlib import Path
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
    return SOURCES.lookup(name)
_SOURCES = SOURCES  # the name tests/test_data_cards.py reads


def dataset_folder(root, default_folder: str, name: str, how_to_get: str) -> Path:
    """``root`` (or ``<data root>/<default_folder>``) as a Path; a missing folder raises
    ``FileNotFoundError`` naming it and saying how to get the data (``how_to_get``)."""
    if root is None:
        from mtbench.profiles import data_root

        root = data_root() / default_folder
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{name} folder not found: {str(root)!r}. {how_to_get}")
    return root
