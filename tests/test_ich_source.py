"""The Head-CT ICH source adapter (Pérez del Barrio et al. layout), on files written in that layout."""

import pandas as pd
import pytest

from mtbench.data.sources import get_source, list_datasets
from mtbench.data.sources.ich_ct import load_manifest, report_text


def _make(root, rows, files):
    for folder, pid in files:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{pid}_brain.nii.gz").write_bytes(b"")
    (root / "GOOD_PROGNOSIS").mkdir(exist_ok=True)
    (root / "POOR_PROGNOSIS").mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=["Patient", "Label (poor_prognosis)", "Age", "GCS", "Other"]).to_csv(root / "clinical.csv", index=False)


def test_labels_as_the_paper(tmp_path):
    rows = [[1, 0, 79, 15, "x"], [2, 1, 80, 8, "y"], [3, 1, 90, 9, "z"], [4, 0, 40, 12, ""], [5, 1, 60, 13, ""]]
    files = [("GOOD_PROGNOSIS", 1), ("POOR_PROGNOSIS", 2), ("POOR_PROGNOSIS", 3), ("GOOD_PROGNOSIS", 4), ("POOR_PROGNOSIS", 5)]
    _make(tmp_path, rows, files)
    m = load_manifest(tmp_path).set_index("patient_id")
    assert m.loc[["1", "2", "3", "4", "5"], "age_80"].tolist() == [0, 1, 1, 0, 0]
    assert m.loc[["1", "2", "3", "4", "5"], "gcs_bin"].tolist() == [0, 1, 0, 0, 0]
    assert m.loc[["1", "2", "3", "4", "5"], "gcs_ord"].tolist() == [0, 2, 1, 1, 0]
    assert m.loc[["1", "2", "3"], "prognosis"].tolist() == [0, 1, 1]
    assert m.attrs["report"]["good"] == 2 and m.attrs["report"]["poor"] == 3


def test_reports_missing_rows_and_images(tmp_path):
    rows = [[1, 0, 50, 15, ""], [9, 1, 70, 7, ""]]
    files = [("GOOD_PROGNOSIS", 1), ("POOR_PROGNOSIS", 2)]
    _make(tmp_path, rows, files)
    (tmp_path / "POOR_PROGNOSIS" / "notes.txt").write_text("x")
    m = load_manifest(tmp_path)
    assert len(m) == 2 and m.set_index("patient_id").loc["2", ["age", "gcs"]].isna().all()
    text = report_text(m)
    assert "found: 2 (good 1, poor 1)" in text and "difference: -259" in text
    assert "1 clinical row(s) without an image" in text and "'9'" in text
    assert "1 image(s) without a clinical row" in text and "notes.txt" in text
    with pytest.raises(ValueError, match="no row"):
        load_manifest(tmp_path, require_clinical=True)


def test_refuses_contradictions(tmp_path):
    _make(tmp_path, [[1, 1, 50, 15, ""]], [("GOOD_PROGNOSIS", 1)])
    with pytest.raises(ValueError, match="contradicts"):
        load_manifest(tmp_path)
    _make(tmp_path, [[1, 0, 50, 1, ""]], [("GOOD_PROGNOSIS", 1)])
    with pytest.raises(ValueError, match="GCS outside"):
        load_manifest(tmp_path)


def test_refuses_bad_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="DIGITAL.CSIC"):
        load_manifest(tmp_path / "nope")
    (tmp_path / "GOOD_PROGNOSIS").mkdir()
    with pytest.raises(FileNotFoundError, match="POOR_PROGNOSIS"):
        load_manifest(tmp_path)
    (tmp_path / "POOR_PROGNOSIS").mkdir()
    pd.DataFrame({"Patient": [1], "Age": [3]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(KeyError, match="Label"):
        load_manifest(tmp_path)


def test_registered():
    assert "ich_ct" in list_datasets()
    assert get_source("ich_ct").NAME == "ich_ct"
