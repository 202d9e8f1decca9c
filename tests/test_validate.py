"""mtbench.data.validate: each check finds what it should (and nothing on clean input), and
`mtbench data check` runs on the real mini sets."""

import numpy as np
import pandas as pd
import pytest

from mtbench.cli import main
from mtbench.data.cards import load_card
from mtbench.data.splits import LeakageError
from mtbench.data.validate import (
    DataValidationError,
    FoldError,
    Problem,
    Report,
    check_counts,
    check_dicom_folder,
    check_duplicate_images,
    check_files,
    check_folds,
    check_ids,
    check_labels,
    check_nifti,
    check_splits,
    check_views,
)

from _mtb_files import truncate, write_dicom, write_nifti


def test_problem_and_report_structure():
    with pytest.raises(ValueError, match="severity"):
        Problem("fatal", "x", "y")
    r = Report("demo")
    r.error("unknown-label", "value 7", file="a.csv", row=3, column="y")
    r.warning("missing-label", "2 rows")
    assert not r.ok and len(r.errors) == 1 and len(r.warnings) == 1
    assert str(r.errors[0]) == "ERROR [unknown-label] a.csv, row 3, column y: value 7"
    assert r.codes() == {"unknown-label": 1, "missing-label": 1}
    assert list(r.to_frame()["code"]) == ["unknown-label", "missing-label"]
    with pytest.raises(DataValidationError, match="a.csv, row 3, column y: value 7") as exc:
        r.raise_if_errors()
    assert exc.value.report is r


def test_labels_unknown_missing_and_clean():
    tasks = load_card("asah").tasks
    good = pd.DataFrame({"sample_id": ["a", "b"], "poor_outcome": [0, 1], "gos6": [5, 1], "wfns": [1, 5],
                         "s100b": [0.1, 0.2], "ndka": [3.0, 9.0]})
    assert check_labels(good, tasks, Report()).problems == []
    bad = good.assign(poor_outcome=[2, np.nan], wfns=["x", 1]).drop(columns=["ndka"])
    r = check_labels(bad, tasks, Report(), source="t.csv")
    assert [(p.code, p.column) for p in r.errors] == [
        ("unknown-label", "poor_outcome"), ("unknown-label", "wfns"), ("missing-column", "ndka")]
    assert r.errors[0].row == "0 (a)" and "value 2 not in [0.0, 1.0]" in r.errors[0].message
    assert [p.column for p in r.by_code("missing-label")] == ["poor_outcome"]


def test_ids_and_duplicate_images(tmp_path):
    for name, val in (("a.png", 1), ("b.png", 1), ("c.png", 2)):
        from PIL import Image

        Image.fromarray(np.full((8, 8), val, np.uint8)).save(tmp_path / name)
    m = pd.DataFrame({"sample_id": ["a", "b", "c", "c"], "patient_id": ["p1", "p2", "p3", "p3"],
                      "path": [str(tmp_path / f) for f in ("a.png", "b.png", "c.png", "c.png")]})
    r = check_ids(m, Report())
    assert [p.code for p in r.errors] == ["duplicate-id"] and "'c' appears 2 times" in r.errors[0].message
    r = check_duplicate_images(m, Report())
    assert [p.severity for p in r.by_code("duplicate-image")] == ["error", "warning"]  # p1 vs p2; p3 twice
    assert "different patients ['p1', 'p2']" in r.errors[0].message


def test_files_missing_and_unreadable(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "ok.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "cut.png")
    truncate(tmp_path / "cut.png", 0.3)
    write_dicom(tmp_path / "cut.dcm", np.zeros((32, 32)))
    truncate(tmp_path / "cut.dcm", 0.6)
    m = pd.DataFrame({"sample_id": list("abcd"),
                      "path": [str(tmp_path / f) for f in ("ok.png", "cut.png", "cut.dcm", "gone.png")]})
    r = check_files(m, Report())
    assert r.counts == {"files_missing": 1, "files_unreadable": 2}
    assert [p.file.rsplit("/", 1)[-1] for p in r.by_code("unreadable-file")] == ["cut.png", "cut.dcm"]


def test_leakage_is_refused():
    t = pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "split": ["train", "test", "test"]})
    with pytest.raises(LeakageError, match=r"'p1' in 'train' and 'test'"):
        check_splits(t)
    r = check_splits(t, Report())
    assert [p.code for p in r.errors] == ["patient-leakage"]
    assert check_splits(t.assign(patient_id=["p1", "p2", "p3"]), Report()).problems == []


def test_fold_without_positive_is_refused_naming_the_fold():
    t = pd.DataFrame({"fold": [0, 0, 1, 1, 2, 2], "y": [0, 1, 0, 0, 1, 1]})
    with pytest.raises(FoldError, match=r"fold 1 has no positive case of 'y'"):
        check_folds(t, "fold", ["y"])
    r = check_folds(t, "fold", ["y"], Report())
    assert [(p.code, p.row) for p in r.errors] == [("fold-without-positive", "1"), ("fold-without-negative", "2")]
    assert check_folds(t, "fold", ["y"], Report(), require_negative=False).codes() == {"fold-without-positive": 1}


def test_counts_views():
    r = check_counts({"n": 260, "good": 99}, {"n": 261, "good": 99, "poor": 162}, Report(), label="card 'ich_ct'")
    assert [p.message for p in r.problems] == [
        "n: found 260, the card 'ich_ct' says 261 (-1)",
        "the card 'ich_ct' expects poor=162, the adapter did not count 'poor'"]
    m = pd.DataFrame({"sample_id": list("abcd"), "view": ["PA", "AP Supine", "L", None]})
    r = check_views(m, Report())
    assert [p.row for p in r.errors] == ["2 (c)", "3 (d)"] and r.counts["non_frontal"] == 2


def test_dicom_folder_mixing_series(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    for i in range(3):
        write_dicom(one / f"{i}.dcm", np.zeros((4, 4)), series_uid="1.2.3")
    assert check_dicom_folder(one, Report()).problems == []
    write_dicom(one / "scout.dcm", np.zeros((4, 4)), series_uid="1.2.4")
    r = check_dicom_folder(one, Report())
    assert [p.code for p in r.errors] == ["mixed-series"]
    assert "2 series in one folder: 1.2.3: 3 files" in r.errors[0].message and "1.2.4: 1 files" in r.errors[0].message
    (tmp_path / "empty").mkdir()
    assert check_dicom_folder(tmp_path / "empty", Report()).codes() == {"empty-folder": 1}


def test_nifti_spacing_orientation_truncation(tmp_path):
    assert check_nifti(write_nifti(tmp_path / "ok.nii.gz"), Report()).problems == []
    r = check_nifti(write_nifti(tmp_path / "thick.nii.gz", spacing=(0.5, 0.5, 80.0)), Report())
    assert r.codes() == {"implausible-spacing": 1} and "[0.5, 0.5, 80.0]" in r.errors[0].message
    flat = np.diag([0.5, 0.5, 0.0, 1.0])
    r = check_nifti(write_nifti(tmp_path / "flat.nii.gz", spacing=(0.5, 0.5, 1.0), affine=flat), Report())
    assert "implausible-orientation" in r.codes()
    cut = truncate(write_nifti(tmp_path / "cut.nii", shape=(32, 32, 16)), 0.5)
    assert check_nifti(cut, Report()).codes() == {"unreadable-file": 1}


def test_cli_data_check_real_mini_sets(shared_data, capsys):
    assert main(["data", "check", "asah", "--data-root", str(shared_data), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("asah: 0 error(s), 0 warning(s)") and "rows=113, good=72, poor=41" in out
    assert main(["data", "check", "cohen_covid", "--data-root", str(shared_data), "--quiet", "--max-per-code", "1"]) == 0
    out = capsys.readouterr().out
    assert "cohen_covid: 0 error(s)" in out and "images=120" in out and "missing-file (446)" in out
    assert "files_unreadable=0" in out and "duplicate_images=0" in out


def test_cli_data_check_broken_asah_and_splits(shared_data, tmp_path, capsys):
    src = pd.read_csv(shared_data / "asah" / "asah.csv")
    root = tmp_path / "asah"
    root.mkdir()
    src.assign(outcome=src["outcome"].where(src.index != 4, None)).to_csv(root / "asah.csv", index=False)
    splits = tmp_path / "splits.csv"
    ids = [f"asah-{i + 1:03d}" for i in range(len(src))]
    pd.DataFrame({"sample_id": ids + ["asah-001", "asah-999"], "split": ["train"] * len(src) + ["test", "test"]}).to_csv(
        splits, index=False)
    assert main(["data", "check", "asah", "--root", str(root), "--splits", str(splits), "--quiet",
                 "--csv", str(tmp_path / "p.csv")]) == 1
    out = capsys.readouterr().out
    assert "ERROR patient-leakage" in out and "'asah-001' in 'train' and 'test'" in out
    assert "ERROR unknown-id" in out and "'asah-999'" in out
    assert "count-mismatch" in out and "poor: found 40, the card 'asah' (published) says 41 (-1)" in out
    assert set(pd.read_csv(tmp_path / "p.csv")["code"]) >= {"patient-leakage", "unknown-id", "missing-label"}
    assert main(["data", "check", "nope", "--quiet"]) == 2


def test_report_has_no_imports_back_and_cards_do_not_import_validate():
    """Issue 17: cards.py and validate.py imported each other because Report lived in validate."""
    import ast
    from pathlib import Path

    import mtbench.data.cards as cards
    import mtbench.data.report as report

    def imports(mod):
        tree = ast.parse(Path(mod.__file__).read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert not {m for m in imports(report) if m.startswith("mtbench")}
    assert "mtbench.data.validate" not in imports(cards)
    from mtbench.data.validate import Report

    assert Report is report.Report  # the old import path still works
