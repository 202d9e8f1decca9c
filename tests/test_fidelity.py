"""Fidelity tables (mtbench.fidelity): each full-profile default equals the original paper's / code's value.

Rows whose default still differs carry a ``deviation`` in ``mtbench/references/protocols/<exp>.yaml``
and are strict xfails here: once the default is changed to the original, the xfail passes, the test
fails, and the ``deviation`` line must be removed from the YAML.
"""

from importlib import import_module

import pytest

from mtbench.fidelity import EXPERIMENTS, MISSING, fidelity_table, get_path, protocol_rows, row_status, to_markdown


def _cases():
    for exp in EXPERIMENTS:
        for row in protocol_rows(exp):
            if row.get("key") and "original" in row:
                marks = [pytest.mark.xfail(strict=True, reason=row["deviation"])] if row.get("deviation") else []
                yield pytest.param(exp, row, id=f"{exp}:{row['aspect']}", marks=marks)


@pytest.fixture(scope="module")
def full_configs():
    return {exp: import_module(f"mtbench.experiments.{exp}").default_config("full") for exp in EXPERIMENTS}


@pytest.mark.parametrize("experiment, row", list(_cases()))
def test_full_default_is_the_original(experiment, row, full_configs):
    value, differs = row_status(row, full_configs[experiment])
    assert differs is False, f"{row['key']} = {value!r}, original {row['original']!r}"


def test_rows_are_complete_and_keys_exist(full_configs):
    for exp in EXPERIMENTS:
        for row in protocol_rows(exp):
            # a key missing from the config must be a declared deviation (the setting is still to add)
            if row.get("key") and get_path(full_configs[exp], row["key"]) is MISSING:
                assert row.get("deviation"), f"{exp}: {row['key']} is not in default_config('full')"
            # a re-interpretation never credits its paper with a value it does not state
            if exp in ("gong2023", "hirano2021") and row["paper"].startswith("not stated"):
                assert "original" not in row


def test_table_flags_and_renders():
    cfg = {"train": {"lr": 1e-3}, "data": {"size": 128}}
    rows = [{"aspect": "lr", "paper": "1e-3", "key": "train.lr", "original": 0.001, "switch": "`train.lr`"},
            {"aspect": "size", "paper": "256", "key": "data.size", "original": 256, "switch": "`data.size`"},
            {"aspect": "aug", "paper": "flip", "key": "data.augment", "original": True, "switch": "x"},
            {"aspect": "text", "paper": "n/a", "key": None, "mtbench": "same", "switch": "--"}]
    assert [row_status(r, cfg)[1] for r in rows] == [False, True, True, None]
    assert row_status(rows[2], cfg)[0] is MISSING
    assert get_path({"a": {"b": [1]}}, "a.b") == [1] and get_path({"a": 1}, "a.b") is MISSING
    family = {"aspect": "encoder", "paper": "ResNet", "key": "m", "original": ["resnet", "r3d_"], "match": "contains", "switch": "x"}
    assert [row_status(family, {"m": m})[1] for m in ("inflated_resnet18", "r3d_18", "densenet121_native")] == [False, False, True]


def test_markdown_of_a_real_config(full_configs):
    table = fidelity_table("cobo2024", full_configs["cobo2024"])
    md = to_markdown(table)
    assert md.splitlines()[0] == "| aspect | paper / original code | mtbench default | switch |"
    assert len(md.splitlines()) == len(table) + 2
    assert table["differs"].any() and (table["differs"] == False).any()  # noqa: E712
    with pytest.raises(FileNotFoundError):
        protocol_rows("nobody2020")


def test_docs_hold_the_current_tables():
    """docs/covid.md and docs/ich.md carry the tables generated now (refresh: python -m mtbench.fidelity)."""
    from pathlib import Path

    from mtbench.fidelity import DOC_PAGES, doc_section

    root = Path(__file__).resolve().parents[1]
    for exp, page in DOC_PAGES.items():
        assert doc_section(exp) in (root / page).read_text(encoding="utf-8"), f"{page}: run python -m mtbench.fidelity"
