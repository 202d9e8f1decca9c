"""Data adapters of the COVID-19 CXR experiment: Cohen et al. + BrixIA (real mini set), AIforCOVID and
BrixIA (small generated DICOM / xlsx / CSV files)."""

import numpy as np
import pandas as pd
import pytest

from _mtb_files import DIGITAL_XRAY, write_dicom as _write_dicom

from mtbench.data.sources import aiforcovid, brixia, cohen_covid, get_source, list_datasets


def write_dicom(path, array, photometric="MONOCHROME2"):
    """A minimal valid uncompressed DICOM radiograph."""
    return _write_dicom(path, array, photometric=photometric, modality="DX", sop_class=DIGITAL_XRAY)


def test_sources_are_registered():
    names = list_datasets()
    for n in ("cohen_covid", "aiforcovid", "brixia"):
        assert n in names
        assert get_source(n).NAME == n


# --------------------------------------------------------------------- Cohen et al. (real)
def test_cohen_mini_counts_match_the_data_readme(shared_data):
    m, report = cohen_covid.load_manifest(shared_data / "cohen-covid-mini")
    r = report.counts
    # Numbers stated in ../shared/data/README.md for this subset.
    assert len(m) == 120 and m["sample_id"].is_unique
    assert r["patients"] == m["patient_id"].nunique() == 76
    assert (m["prognosis"] == 1).sum() == 39
    assert (m["prognosis"] == 0).sum() == 39
    assert m["prognosis"].isna().sum() == 42
    assert m["brixia_global"].notna().sum() == 88
    assert r["metadata_rows"] == 751
    assert len(r["duplicated_filenames"]) == 5
    # the collection's frontal X-ray rows whose files are absent are counted, not silently dropped
    assert r["missing_files"] > 0 and r["missing_files"] + 120 == 751 - r["not_xray"] - r["not_frontal"] - r["duplicate_rows_dropped"]
    assert m["view"].str.match(r"^(PA|AP)").all()
    assert m["path"].map(lambda p: __import__("os").path.isfile(p)).all()


def test_cohen_duplicated_files_merge_patient_groups(shared_data):
    m, report = cohen_covid.load_manifest(shared_data / "cohen-covid-mini")
    merged = m[m["sample_id"] == "000001-24.jpg"]
    assert len(merged) == 1
    assert merged["patient_id"].iloc[0] == "285+339"
    assert set(report.counts["merged_patient_groups"]) == {"285+339", "287+340"}


def test_cohen_brixia_zones_are_strings_and_sum(shared_data):
    m = cohen_covid.load_manifest(shared_data / "cohen-covid-mini").table
    bx = m[m["brixia_global"].notna()]
    assert bx["brixia_zones"].str.len().eq(6).all()
    zones = bx[[f"zone_{z}" for z in "ABCDEF"]].to_numpy()
    assert np.array_equal(zones.sum(axis=1), bx["brixia_global"].to_numpy())
    assert np.array_equal(zones[:, :3].sum(axis=1), bx["brixia_right"].to_numpy())
    row = m[m["sample_id"] == "16654_4_1.jpg"].iloc[0]  # first lines of public-annotations.csv: 3,3,3,3,3,2 -> 17
    assert row["brixia_zones"] == "333332" and row["brixia_global"] == 17 and row["brixia_left"] == 8


def test_cohen_prognosis_rule():
    meta = pd.DataFrame(
        {
            "survival": ["N", "Y", "Y", "Y", None, "Y"],
            "went_icu": [None, "Y", "N", "N", None, None],
            "intubated": [None, "N", "Y", "N", None, "N"],
        }
    )
    # died -> severe; ICU -> severe; intubated -> severe; neither -> mild; unknown -> NaN; ICU unknown -> NaN
    assert cohen_covid.prognosis_from_outcomes(meta).tolist()[:4] == [1.0, 1.0, 1.0, 0.0]
    assert cohen_covid.prognosis_from_outcomes(meta).iloc[4:].isna().all()


def test_cohen_grayscale_from_rgb_and_rgba(shared_data):
    from PIL import Image

    from mtbench.data.cxr import read_image

    m = cohen_covid.load_manifest(shared_data / "cohen-covid-mini").table
    modes = {}
    for p in m["path"]:
        with Image.open(p) as im:
            modes.setdefault(im.mode, p)
    assert {"RGB", "RGBA"} & set(modes), modes
    for p in modes.values():
        arr = read_image(p)
        assert arr.ndim == 2 and arr.dtype == np.float32


# --------------------------------------------------------------------- AIforCOVID (generated)
@pytest.fixture
def afc_root(tmp_path):
    root = tmp_path / "afc"
    (root / "imgs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, (hosp, prog) in enumerate([("A", "MILD"), ("A", "SEVERE"), ("B", "MILD"), ("B", "SEVERE"), ("C", "MILD")]):
        name = f"P_{i}"
        if i != 4:  # the last one's DICOM is missing on purpose
            write_dicom(root / "imgs" / f"{name}.dcm", rng.integers(0, 4095, (24, 20)), "MONOCHROME1" if i == 0 else "MONOCHROME2")
        rows.append({"ImageFile": name, "Hospital": hosp, "Prognosis": prog, "Age": 60 + i})
    pd.DataFrame(rows).to_excel(root / "AIforCOVID.xlsx", index=False)
    return root


def test_aiforcovid_manifest_counts_missing_dicom(afc_root):
    m, report = aiforcovid.load_manifest(afc_root)
    r = report.counts
    assert r["rows"] == 5 and r["missing_files"] == 1 and r["missing_examples"] == ["P_4"]
    assert len(m) == 4
    assert m["prognosis"].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert m["center"].tolist() == ["A", "A", "B", "B"]
    assert "clinical.Age" in m.columns


def test_aiforcovid_dicom_read_and_monochrome1_inverted(afc_root):
    import pydicom

    from mtbench.data.cxr import read_image

    path = afc_root / "imgs" / "P_0.dcm"
    raw = pydicom.dcmread(path).pixel_array.astype(np.float32)
    img = read_image(path)
    assert np.allclose(img, raw.max() + raw.min() - raw)  # MONOCHROME1 -> air dark
    raw2 = pydicom.dcmread(afc_root / "imgs" / "P_1.dcm").pixel_array.astype(np.float32)
    assert np.allclose(read_image(afc_root / "imgs" / "P_1.dcm"), raw2)


def test_aiforcovid_bad_prognosis_names_file_and_row(tmp_path):
    pd.DataFrame({"ImageFile": ["a"], "Hospital": ["A"], "Prognosis": ["MAYBE"]}).to_excel(tmp_path / "x.xlsx", index=False)
    with pytest.raises(ValueError, match=r"x.xlsx, row 2, column Prognosis"):
        aiforcovid.load_manifest(tmp_path, require_image=False)


def test_aiforcovid_fold_split_files(afc_root, tmp_path):
    sd = tmp_path / "splits"
    lines = {
        "0": {"train": ["P_0 MILD A", "P_1 SEVERE A"], "val": ["P_2 MILD B"], "test": ["P_3 SEVERE B"]},
        "1": {"train": ["img label center", "P_2 0 B", "P_3 1 B"], "val": ["P_1 1 A"], "test": ["P_0 0 A"]},
    }
    for fold, parts in lines.items():
        (sd / fold).mkdir(parents=True)
        for split, ls in parts.items():
            (sd / fold / f"{split}.txt").write_text("\n".join(ls) + "\n")
    table = aiforcovid.read_fold_splits(sd)
    assert len(table) == 8 and set(table["fold"]) == {"0", "1"}
    assert table.loc[(table["fold"] == "1") & (table["img"] == "P_0"), "split"].item() == "test"
    m = aiforcovid.load_manifest(afc_root)
    f0, rep = aiforcovid.attach_splits(m, table, "0")
    assert dict(zip(f0["sample_id"], f0["split"])) == {"P_0": "train", "P_1": "train", "P_2": "val", "P_3": "test"}
    assert rep.counts["not_in_split_files"] == 0 and rep.counts["missing_files"] == 1  # the adapter's counts kept
    # a manifest image the fold's split files leave out is counted and named, not dropped silently (issue 14 item 8)
    with pytest.warns(UserWarning, match=r"1 of 4 manifest images .*P_2"):
        f0, rep = aiforcovid.attach_splits(m, table[~((table["fold"] == "0") & (table["img"] == "P_2"))], "0")
    assert len(f0) == 3 and rep.counts["not_in_split_files"] == 1
    (sd / "1" / "val.txt").write_text("P_2 0 B\n")  # P_2 now in train and val of fold 1
    with pytest.raises(ValueError, match="P_2"):
        aiforcovid.read_fold_splits(sd)


# ------------------------------------------------------------------------- BrixIA (generated)
def test_zone_string_repair_and_original_reading():
    assert brixia.repair_zone_string("001233", 9) == ("001233", False)
    assert brixia.repair_zone_string(1233, 9) == ("001233", True)  # read as a number: zeros lost
    assert brixia.repair_zone_string("1233.0") == ("001233", True)
    # the original reading shifts the zones left: A gets what was C's score
    assert brixia.zones_original(1233) == (1, 2, 3, 3, 0, 0)
    assert brixia.zones_from_string("001233") == (0, 0, 1, 2, 3, 3)
    with pytest.raises(ValueError, match="global score"):
        brixia.repair_zone_string("1233", 10)
    with pytest.raises(ValueError):
        brixia.repair_zone_string("004233")  # 4 is not a zone score


def test_brixia_metadata_fix_switch(tmp_path):
    root = tmp_path / "bx"
    (root / "dicom_clean").mkdir(parents=True)
    meta = pd.DataFrame(
        {
            "Filename": ["a.dcm", "b.dcm", "c.dcm"],
            "Subject": ["s1", "s2", "s2"],
            "Manufacturer": ["X", "Y", "Y"],
            "PhotometricInterpretation": ["MONOCHROME1", "MONOCHROME2", "MONOCHROME2"],
            "ConsensusTestset": [0, 0, 1],
            "BrixiaScore": ["001233", "123321", "000012"],
            "BrixiaScoreGlobal": [9, 12, 3],
        }
    )
    # Written as numbers, as a spreadsheet round trip or the paper's split files do: leading zeros lost.
    meta.assign(BrixiaScore=meta["BrixiaScore"].astype(int)).to_csv(root / "metadata_global_v2.csv", sep=";", index=False)
    for f in ("a.dcm", "b.dcm"):
        write_dicom(root / "dicom_clean" / f, np.full((8, 8), 100))
    fixed, report = brixia.load_manifest(root)
    assert report.counts["zone_strings_short"] == 2
    assert report.counts["missing_files"] == 1 and len(fixed) == 2
    assert fixed["brixia_zones"].tolist() == ["001233", "123321"]
    assert fixed.loc[0, ["zone_A", "zone_B", "zone_C"]].tolist() == [0, 0, 1]
    assert fixed["brixia_right"].tolist() == [1, 6] and fixed["brixia_left"].tolist() == [8, 6]
    assert fixed["brixia_global_class"].tolist() == [1, 2]  # 9 -> 5-9, 12 -> 10-14
    orig = brixia.load_manifest(root, fix_zone_strings=False, require_image=False).table
    assert orig["brixia_zones"].tolist()[0] == "123300"
    assert orig["brixia_global"].tolist() == [9, 12, 3]  # the global score survives
    assert orig.loc[0, "brixia_right"] == 6 != fixed.loc[0, "brixia_right"]  # the lung labels do not


def test_brixia_split_file_zone_labels(tmp_path):
    f = tmp_path / "train.txt"
    f.write_text("img label center\nx1.dcm 1233 0\nx2.dcm 310000 0\n")
    t, report = brixia.read_split_file(f)
    assert report.counts["zone_strings_short"] == 1
    assert t["brixia_zones"].tolist() == ["001233", "310000"]
    assert brixia.read_split_file(f, fix_zone_strings=False).table["brixia_zones"].tolist()[0] == "123300"


def test_global_binning_edges():
    # <=4, 5-9, 10-14, >=15 (Ruffini et al. 2024)
    assert brixia.bin_scores([0, 4, 5, 9, 10, 14, 15, 18], brixia.GLOBAL_EDGES).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert np.isnan(brixia.bin_scores([np.nan], brixia.GLOBAL_EDGES)[0])
