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
    m, report = load_manifest(tmp_path)
    m = m.set_index("patient_id")
    assert m.loc[["1", "2", "3", "4", "5"], "age_80"].tolist() == [0, 1, 1, 0, 0]
    assert m.loc[["1", "2", "3", "4", "5"], "gcs_bin"].tolist() == [0, 1, 0, 0, 0]
    assert m.loc[["1", "2", "3", "4", "5"], "gcs_ord"].tolist() == [0, 2, 1, 1, 0]
    assert m.loc[["1", "2", "3"], "prognosis"].tolist() == [0, 1, 1]
    assert report.counts["good"] == 2 and report.counts["poor"] == 3


def test_reports_missing_rows_and_images(tmp_path):
    rows = [[1, 0, 50, 15, ""], [9, 1, 70, 7, ""]]
    files = [("GOOD_PROGNOSIS", 1), ("POOR_PROGNOSIS", 2)]
    _make(tmp_path, rows, files)
    (tmp_path / "POOR_PROGNOSIS" / "notes.txt").write_text("x")
    manifest = load_manifest(tmp_path)
    m = manifest.table
    assert len(m) == 2 and m.set_index("patient_id").loc["2", ["age", "gcs"]].isna().all()
    text = report_text(manifest)
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


def _ich_dicom_layout(root):
    """GOOD_PROGNOSIS/P1/ a DICOM series (shuffled names); POOR_PROGNOSIS/P2.nii.gz (no _brain suffix),
    written from the same stored values so both patients must read identically."""
    import numpy as np

    from mtbench.data.io import read_dicom_series, write_nifti
    from _mtb_files import write_ct_series

    stored = np.random.default_rng(3).integers(900, 1100, (6, 32, 32)).astype(np.uint16)
    series = write_ct_series(root / "GOOD_PROGNOSIS" / "P1", list(stored), pixel_spacing=(0.5, 0.5))
    (root / "POOR_PROGNOSIS").mkdir(parents=True)
    write_nifti(read_dicom_series(series), root / "POOR_PROGNOSIS" / "P2.nii.gz")
    pd.DataFrame({"Patient": ["P1", "P2"], "Label (poor_prognosis)": [0, 1], "Age": [70, 85], "GCS": [14, 6]}).to_csv(
        root / "clinical.csv", index=False)
    return stored


def test_dicom_series_folders_and_plain_nifti_are_volumes_read_canonically(tmp_path):
    import numpy as np

    from mtbench.data.cache import VolumeLoader
    from mtbench.data.transforms import CTPreprocess

    stored = _ich_dicom_layout(tmp_path)
    m = load_manifest(tmp_path).table.set_index("patient_id")
    assert list(m.index) == ["P1", "P2"] and m.loc["P2", "gcs_bin"] == 1
    assert m.loc["P1", "path"].endswith("P1") and m.loc["P2", "path"].endswith("P2.nii.gz")
    loader = VolumeLoader(CTPreprocess(), cache_dir=tmp_path / "cache")
    a, b = loader(m.loc["P1"]), loader(m.loc["P2"])
    np.testing.assert_allclose(a, b, atol=1e-4)  # same canonical orientation whatever the file type
    loader(m.loc["P1"])
    assert loader.cache.misses == 2 and loader.cache.hits == 1


def test_loose_dicom_files_refused_and_zero_volumes_fail_the_check(tmp_path):
    from mtbench.data.validate import validate_dataset
    from _mtb_files import write_ct_series

    import numpy as np

    for f in ("GOOD_PROGNOSIS", "POOR_PROGNOSIS"):
        (tmp_path / f).mkdir()
    pd.DataFrame({"Patient": ["1"], "Label (poor_prognosis)": [0], "Age": [50], "GCS": [15]}).to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "GOOD_PROGNOSIS" / "scan.mha").write_text("x")
    with pytest.raises(ValueError, match=r"No CT volume found.*scan\.mha"):
        load_manifest(tmp_path)
    report = validate_dataset("ich_ct", root=tmp_path, read_files=False, hash_files=False)
    assert not report.ok and "No CT volume" in report.format()
    write_ct_series(tmp_path / "POOR_PROGNOSIS", [np.zeros((4, 4), np.uint16)] * 2)
    with pytest.raises(ValueError, match=r"2 DICOM file\(s\) lie loose.*IMG000"):
        load_manifest(tmp_path)
