"""Data cards: every card parses, every registered adapter has a card, and each card's label schema
and expected counts agree with what its adapter produces (on the real mini data or generated files)."""

import importlib

import numpy as np
import pandas as pd
import pytest

from mtbench.data.cards import find_card, list_cards, load_card, parse_card
from mtbench.data.sources import _SOURCES, get_source

from _mtb_files import write_cq500_set, write_dicom as _write_dicom, write_ich_set, write_messy_table, write_rsna_set

EXPECTED_CARDS = {
    "ich_ct", "aiforcovid", "brixia", "cohen_covid", "cq500", "rsna_ich", "physionet_ct_ich", "asah",
    "synthetic_cxr", "head_ct_phantom",
}
CARDS = list_cards()
WITH_ADAPTER = [n for n in CARDS if load_card(n).adapter is not None]


def test_every_dataset_has_a_card():
    assert EXPECTED_CARDS <= set(CARDS), sorted(EXPECTED_CARDS - set(CARDS))


@pytest.mark.parametrize("name", CARDS)
def test_card_front_matter_is_complete(name):
    card = load_card(name)
    assert card.meta["modality"] in ("CXR", "CT", "tabular", "any")
    assert card.tasks, "a card names at least one task"
    for t in card.tasks:
        if t["kind"] in ("binary", "multiclass", "ordinal"):
            assert "values" in t, f"{name}: classification task {t['name']!r} needs its values"
    for section in ("Provenance", "pitfalls"):
        assert section.lower() in card.body.lower(), f"{name}: body lacks a {section!r} section"
    assert isinstance(card.meta["expected_counts"], dict)
    for variant, counts in card.meta["expected_counts"].items():
        assert isinstance(counts, dict), (name, variant)


def test_cards_without_adapter_say_so():
    assert set(CARDS) - set(WITH_ADAPTER) == {"physionet_ct_ich", "head_ct_phantom"}
    for name in ("physionet_ct_ich",):
        card = load_card(name)
        assert card.adapter is None
        assert "no adapter yet" in (card.path.read_text()).lower()


def test_registered_sources_have_cards():
    """Vice versa: every adapter in _SOURCES is named by exactly one card."""
    for name in _SOURCES:
        card = find_card(adapter=name)
        assert card is not None, f"source {name!r} has no data card naming it (adapter: {name})"
        assert get_source(name).NAME == name


@pytest.mark.parametrize("name", WITH_ADAPTER)
def test_card_adapter_is_registered(name):
    card = load_card(name)
    assert card.adapter in _SOURCES, f"{name}: the card names adapter {card.adapter!r}, which is not registered"
    assert get_source(card.adapter).NAME == card.adapter


def test_parse_card_errors_name_the_problem():
    with pytest.raises(ValueError, match="front-matter"):
        parse_card("no front matter")
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['title'"):
        parse_card("---\nname: x\n---\nbody")
    with pytest.raises(FileNotFoundError, match="No data card 'nope'"):
        load_card("nope")


# ------------------------------------------------------------------ adapters on real / generated data
def _brixia(tmp_path, shared_data):
    root = tmp_path / "bx"
    (root / "dicom_clean").mkdir(parents=True)
    pd.DataFrame({"Filename": ["a.dcm", "b.dcm"], "Subject": ["s1", "s2"], "Manufacturer": ["X", "Y"],
                  "BrixiaScore": ["001233", "123321"], "BrixiaScoreGlobal": [9, 12]}).to_csv(
        root / "metadata_global_v2.csv", index=False)
    for f in ("a.dcm", "b.dcm"):
        _write_dicom(root / "dicom_clean" / f, np.full((8, 8), 100))
    return get_source("brixia").load_manifest(root)


def _aiforcovid(tmp_path, shared_data):
    root = tmp_path / "afc"
    (root / "imgs").mkdir(parents=True)
    for i in range(2):
        _write_dicom(root / "imgs" / f"P_{i}.dcm", np.full((8, 8), 10 * i))
    pd.DataFrame({"ImageFile": ["P_0", "P_1"], "Hospital": ["A", "B"], "Prognosis": ["MILD", "SEVERE"]}).to_excel(
        root / "AIforCOVID.xlsx", index=False)
    return get_source("aiforcovid").load_manifest(root)


BUILDERS = {
    "cohen_covid": lambda tmp, data: get_source("cohen_covid").load_manifest(data / "cohen-covid-mini"),
    "asah": lambda tmp, data: get_source("asah").load_manifest(data / "asah"),
    "synthetic_cxr": lambda tmp, data: get_source("synthetic_cxr").load_manifest(n_patients=8, size=32),
    "brixia": _brixia,
    "aiforcovid": _aiforcovid,
    "ich_ct": lambda tmp, data: get_source("ich_ct").load_manifest(write_ich_set(tmp / "ich")),
    "cq500": lambda tmp, data: get_source("cq500").load_manifest(write_cq500_set(tmp / "cq500")),
    "table": lambda tmp, data: get_source("table").load_manifest(write_messy_table(tmp / "own"), tasks="outcome:binary"),
    "rsna_ich": lambda tmp, data: get_source("rsna_ich").load_manifest(write_rsna_set(tmp / "rsna"), studies_dir=tmp / "st"),
}


@pytest.mark.parametrize("name", WITH_ADAPTER)
def test_card_label_schema_matches_the_adapter(name, tmp_path, shared_data):
    card = load_card(name)
    assert card.adapter in _SOURCES, f"{name}: the card names adapter {card.adapter!r}, which is not registered"
    assert card.adapter in BUILDERS, f"add a generated-input builder for {card.adapter!r} to this test"
    manifest, report = BUILDERS[card.adapter](tmp_path, shared_data)
    missing = [c for c in card.label_columns if c not in manifest.columns]
    assert not missing, f"card {name!r} names label columns the adapter does not produce: {missing}"
    for t in card.tasks:
        if "values" in t:
            cols = t.get("columns") or [t.get("column", t["name"])]
            for c in cols:
                present = set(pd.to_numeric(manifest[c], errors="coerce").dropna())
                assert present <= {float(v) for v in t["values"]}, (name, c, present)
    if report.counts:  # every count the card expects is a count the adapter reports
        for variant, counts in card.meta["expected_counts"].items():
            unknown = set(counts) - set(report.counts)
            assert not unknown, f"card {name!r} ({variant}) expects counts the adapter does not report: {unknown}"


def test_cohen_adapter_compares_counts_with_card(shared_data):
    m, report = get_source("cohen_covid").load_manifest(shared_data / "cohen-covid-mini")
    assert report.counts["card_differences"] == {}  # the mini set is what its card says
    card = load_card("cohen_covid")
    assert card.expected_counts("cohen-covid-mini")["images"] == len(m) == 120


def test_cohen_adapter_reports_differences_from_card(shared_data, tmp_path, monkeypatch):
    text = load_card("cohen_covid").path.read_text().replace("images: 120,", "images: 121,")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "cohen_covid.md").write_text(text)
    monkeypatch.setenv("MTBENCH_CARDS_DIR", str(cards))
    report = get_source("cohen_covid").load_manifest(shared_data / "cohen-covid-mini").report
    assert report.counts["card_differences"] == {"images": (120, 121)}
    msgs = [p.message for p in report.by_code("count-mismatch")]
    assert msgs == ["images: found 120, the card 'cohen_covid' (cohen-covid-mini) says 121 (-1)"]


def test_phantom_generator_matches_its_card():
    card = load_card("head_ct_phantom")
    module, _, func = card.meta["generator"].rpartition(".")
    mod = importlib.import_module(module)
    ph = getattr(mod, func)(n_patients=4, shape=(16, 16, 16))
    assert set(card.label_columns) <= set(ph.table.columns)


def test_synthetic_generator_matches_its_card():
    card = load_card("synthetic_cxr")
    module, _, func = card.meta["generator"].rpartition(".")
    table = getattr(importlib.import_module(module), func)(n_patients=6, size=32).table
    assert set(card.label_columns) <= set(table.columns)
