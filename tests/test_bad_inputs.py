"""Bad input, tried: each adapter and public entry point gets a broken input and must answer with a
clear message (matched here), not a deep traceback. One test per bad input (``bad(name)`` names it).

The count: :func:`test_count_bad_inputs_refused` runs this file in a child pytest and counts the
distinct names of the tests that *passed* there, i.e. whose bad input was tried and refused as
expected; it does not depend on the order the tests run in here.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from mtbench import Task, create_model
from mtbench.cli import main
from mtbench.data.cxr import read_image
from mtbench.data.sources import aiforcovid, asah, brixia, cohen_covid
from mtbench.data.validate import FoldError, validate_dataset
from mtbench.mtl import MultiTaskLoss

from _mtb_files import truncate, write_dicom, write_nifti

TASKS = [Task("prognosis", "binary"), Task("severity", "regression"), Task("gcs", "ordinal", num_classes=3)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("convnet", TASKS, in_chans=1)


@pytest.fixture
def cohen_copy(shared_data, tmp_path):
    """Metadata and annotations of the real mini set with two of its images (fast to check)."""
    src = shared_data / "cohen-covid-mini"
    root = tmp_path / "cohen"
    (root / "covid-chestxray-dataset" / "images").mkdir(parents=True)
    (root / "Brixia-score-COVID-19" / "data").mkdir(parents=True)
    shutil.copy(src / "Brixia-score-COVID-19/data/public-annotations.csv", root / "Brixia-score-COVID-19/data/")
    meta = src / "covid-chestxray-dataset/metadata.csv"
    shutil.copy(meta, root / "covid-chestxray-dataset/")
    for name in sorted(p.name for p in (src / "covid-chestxray-dataset/images").iterdir())[:2]:
        shutil.copy(src / "covid-chestxray-dataset/images" / name, root / "covid-chestxray-dataset/images/")
    return root


# Names of the bad inputs the running test tries; written to $MTBENCH_BAD_INPUTS_LOG (set by the
# count test for its child run) only when the test passed, i.e. every input it names was refused.
_LOG = os.environ.get("MTBENCH_BAD_INPUTS_LOG")
_TRIED: list[str] = []


def bad(name):
    _TRIED.append(name)
    return name


@pytest.fixture(autouse=True)
def _record_refusals(request):
    _TRIED.clear()
    yield
    rep = getattr(request.node, "rep_call", None)
    if _LOG and rep is not None and rep.passed:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.writelines(f"{name}\n" for name in _TRIED)


# ------------------------------------------------------------------------------------- adapters
def test_cohen_empty_folder(tmp_path):
    bad("cohen_covid: empty folder")
    with pytest.raises(FileNotFoundError, match=r"Cohen et al. metadata not found: .*metadata.csv"):
        cohen_covid.load_manifest(tmp_path)


def test_cohen_missing_root(tmp_path):
    bad("cohen_covid: folder does not exist")
    with pytest.raises(FileNotFoundError, match="Cohen et al. data folder not found"):
        cohen_covid.load_manifest(tmp_path / "nope")


def test_cohen_wrong_csv_columns(cohen_copy):
    bad("cohen_covid: metadata.csv without the survival/view columns")
    meta = cohen_copy / "covid-chestxray-dataset/metadata.csv"
    pd.read_csv(meta, encoding="latin-1").drop(columns=["survival", "view"]).to_csv(meta, index=False)
    with pytest.raises(ValueError, match=r"metadata.csv: columns \['survival', 'view'\] are missing"):
        cohen_covid.load_manifest(cohen_copy)


def test_cohen_brixia_zone_out_of_range(cohen_copy):
    bad("cohen_covid: BrixIA zone score 7")
    ann = cohen_copy / "Brixia-score-COVID-19/data/public-annotations.csv"
    t = pd.read_csv(ann, encoding="utf-8-sig")
    t.loc[3, "S-B"] = 7
    t.to_csv(ann, index=False)
    with pytest.raises(ValueError, match=r"public-annotations.csv, row 5, column S-B: zone score 7 not in 0-3"):
        cohen_covid.load_manifest(cohen_copy)


def test_cohen_truncated_image_is_reported(cohen_copy):
    bad("cohen_covid: truncated JPEG/PNG")
    img = sorted((cohen_copy / "covid-chestxray-dataset/images").iterdir())[0]
    truncate(img, 0.3)
    rep = validate_dataset("cohen_covid", cohen_copy)
    assert [p.file for p in rep.by_code("unreadable-file")] == [str(img)]
    assert rep.counts["images"] == 2 and not rep.ok
    with pytest.raises(ValueError, match=f"Could not read image {img}"):
        read_image(img)


def test_cohen_partial_clone_counts_differ_from_card(cohen_copy):
    bad("cohen_covid: images missing from a partial clone")
    m, report = cohen_covid.load_manifest(cohen_copy)
    assert len(m) == 2 and report.counts["missing_files"] == 564
    assert len(report.by_code("missing-file")) == 564  # every skip listed


def test_brixia_metadata_wrong_columns(tmp_path):
    bad("brixia: metadata without BrixiaScore")
    pd.DataFrame({"Filename": ["a.dcm"], "Score": ["001233"]}).to_csv(tmp_path / "metadata_global_v2.csv", index=False)
    with pytest.raises(ValueError, match=r"no column 'BrixiaScore'"):
        brixia.load_manifest(tmp_path)


def test_brixia_bad_zone_string(tmp_path):
    bad("brixia: zone string '0A1233'")
    pd.DataFrame({"Filename": ["a.dcm", "b.dcm"], "BrixiaScore": ["001233", "0A1233"]}).to_csv(
        tmp_path / "metadata_global_v2.csv", index=False)
    with pytest.raises(ValueError, match=r"metadata_global_v2.csv, row 1: zone string '0A1233': expected 1-6 digits 0-3"):
        brixia.load_manifest(tmp_path)


def test_brixia_truncated_dicom(tmp_path):
    bad("brixia: truncated DICOM")
    (tmp_path / "dicom_clean").mkdir()
    pd.DataFrame({"Filename": ["a.dcm"], "Subject": ["s"], "BrixiaScore": ["001233"]}).to_csv(
        tmp_path / "metadata_global_v2.csv", index=False)
    truncate(write_dicom(tmp_path / "dicom_clean/a.dcm", np.full((32, 32), 7)), 0.6)
    rep = validate_dataset("brixia", tmp_path)
    assert rep.codes().get("unreadable-file") == 1 and "a.dcm" in rep.errors[0].file
    with pytest.raises(ValueError, match=r"Could not read DICOM pixel data from .*a.dcm"):
        read_image(tmp_path / "dicom_clean/a.dcm")


def test_aiforcovid_unknown_label(tmp_path):
    bad("aiforcovid: prognosis 'MAYBE'")
    pd.DataFrame({"ImageFile": ["a", "b"], "Hospital": ["A", "A"], "Prognosis": ["MILD", "MAYBE"]}).to_excel(
        tmp_path / "c.xlsx", index=False)
    with pytest.raises(ValueError, match=r"c.xlsx, row 3, column Prognosis: prognosis 'MAYBE' is not MILD/SEVERE"):
        aiforcovid.load_manifest(tmp_path, require_image=False)


def test_aiforcovid_nan_label_is_reported(tmp_path):
    bad("aiforcovid: NaN prognosis")
    pd.DataFrame({"ImageFile": ["a", "b"], "Hospital": ["A", "A"], "Prognosis": ["MILD", None]}).to_excel(
        tmp_path / "c.xlsx", index=False)
    m, report = aiforcovid.load_manifest(tmp_path, require_image=False)
    p = report.by_code("missing-label")
    assert m["prognosis"].isna().sum() == 1 and len(p) == 1 and (p[0].row, p[0].column) == (3, "Prognosis")


def test_aiforcovid_wrong_columns(tmp_path):
    bad("aiforcovid: xlsx without Hospital")
    pd.DataFrame({"ImageFile": ["a"], "Prognosis": ["MILD"]}).to_excel(tmp_path / "c.xlsx", index=False)
    with pytest.raises(ValueError, match=r"c.xlsx: columns \['Hospital'\] are missing"):
        aiforcovid.load_manifest(tmp_path)


def test_aiforcovid_empty_folder(tmp_path):
    bad("aiforcovid: empty folder")
    with pytest.raises(FileNotFoundError, match="No clinical \\*.xlsx file in"):
        aiforcovid.load_manifest(tmp_path)


def _afc_split_setup(tmp_path, test_lines):
    pd.DataFrame({"ImageFile": ["P_0", "P_1", "P_2"], "Hospital": ["A"] * 3, "Prognosis": ["MILD", "SEVERE", "MILD"]}).to_excel(
        tmp_path / "c.xlsx", index=False)
    m = aiforcovid.load_manifest(tmp_path, require_image=False)
    sd = tmp_path / "splits" / "0"
    sd.mkdir(parents=True)
    (sd / "train.txt").write_text("P_1 SEVERE A\n")
    (sd / "val.txt").write_text("")
    (sd / "test.txt").write_text(test_lines)
    return m, aiforcovid.read_fold_splits(tmp_path / "splits")


def test_aiforcovid_mismatched_split_ids(tmp_path):
    bad("aiforcovid: split file names an image the clinical file lacks")
    m, splits = _afc_split_setup(tmp_path, "P_0 MILD A\nP_9 SEVERE A\n")
    with pytest.raises(ValueError, match=r"Fold '0': 1 split images are not in the manifest, e.g. \['P_9'\]"):
        aiforcovid.attach_splits(m, splits, "0")


def test_aiforcovid_fold_without_positive(tmp_path):
    bad("aiforcovid: test split of a fold without a SEVERE case")
    m, splits = _afc_split_setup(tmp_path, "P_0 MILD A\nP_2 MILD A\n")
    with pytest.raises(FoldError, match=r"fold '0' \(test split\) has no positive case of 'prognosis'"):
        aiforcovid.attach_splits(m, splits, "0")


def test_asah_wrong_columns(tmp_path):
    bad("asah: CSV without outcome column")
    pd.DataFrame({"gos6": [5], "result": ["Good"]}).to_csv(tmp_path / "asah.csv", index=False)
    with pytest.raises(ValueError, match=r"asah.csv: column\(s\) \['outcome', 'gender', 'age', 'wfns', 's100b', 'ndka'\] are missing"):
        asah.load_manifest(tmp_path)


def test_asah_unknown_label(shared_data, tmp_path):
    bad("asah: outcome 'Maybe'")
    t = pd.read_csv(shared_data / "asah/asah.csv")
    t.loc[10, "outcome"] = "Maybe"
    t.to_csv(tmp_path / "asah.csv", index=False)
    with pytest.raises(ValueError, match=r"asah.csv, row 12, column outcome: 'Maybe' is not Good/Poor"):
        asah.load_manifest(tmp_path)


def test_asah_wrong_dtype(shared_data, tmp_path):
    bad("asah: age 'forty'")
    t = pd.read_csv(shared_data / "asah/asah.csv").astype({"age": object})
    t.loc[0, "age"] = "forty"
    t.to_csv(tmp_path / "asah.csv", index=False)
    with pytest.raises(ValueError, match=r"row 2, column age: 'forty' is not a number"):
        asah.load_manifest(tmp_path)


def test_asah_empty_file(tmp_path):
    bad("asah: empty file")
    (tmp_path / "asah.csv").write_text("")
    with pytest.raises(ValueError, match="the file is empty"):
        asah.load_manifest(tmp_path)


def test_asah_empty_folder_via_cli(tmp_path, capsys):
    bad("mtbench data check asah on an empty folder")
    assert main(["data", "check", "asah", "--root", str(tmp_path), "--quiet"]) == 1
    assert "ERROR load-failed" in capsys.readouterr().out


def test_cli_wrong_columns_is_a_report_not_a_traceback(tmp_path, capsys):
    bad("mtbench data check brixia with wrong CSV columns")
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "metadata_global_v2.csv", index=False)
    assert main(["data", "check", "brixia", "--root", str(tmp_path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "ERROR load-failed" in out and "no column 'Filename'" in out


# ------------------------------------------------------------------------------- volumes
def test_truncated_nifti(tmp_path):
    bad("NIfTI: truncated .nii.gz")
    from mtbench.data.validate import Report, check_nifti

    p = truncate(write_nifti(tmp_path / "v.nii.gz", shape=(32, 32, 16)), 0.5)
    rep = check_nifti(p, Report())
    assert rep.codes() == {"unreadable-file": 1} and "cannot be read" in rep.errors[0].message


def test_dicom_folder_two_series(tmp_path):
    bad("DICOM: folder mixing two series")
    from mtbench.data.validate import Report, check_dicom_folder

    for i in range(2):
        write_dicom(tmp_path / f"a{i}.dcm", np.zeros((4, 4)), series_uid="1.1")
    write_dicom(tmp_path / "b.dcm", np.zeros((4, 4)), series_uid="1.2")
    rep = check_dicom_folder(tmp_path, Report())
    assert "2 series in one folder" in rep.errors[0].message


# ------------------------------------------------------------------------------ models / losses
@pytest.mark.parametrize(
    "name, x, exc, match",
    [
        ("model: 3-channel input to an in_chans=1 model", torch.zeros(2, 3, 32, 32), ValueError, r"built for in_chans=1 channels, got 3"),
        ("model: uint8 image batch", torch.zeros(2, 1, 32, 32, dtype=torch.uint8), TypeError, r"floating-point image batch, got dtype torch.uint8"),
        ("model: NumPy array instead of a tensor", np.zeros((2, 1, 32, 32), np.float32), TypeError, r"expects a torch.Tensor image batch, got ndarray"),
        ("model: missing batch dimension", torch.zeros(1, 32, 32), ValueError, r"2D model expects input \[B, C, H, W\], got shape \(1, 32, 32\)"),
        ("model: 3D volume to a 2D model", torch.zeros(2, 1, 8, 32, 32), ValueError, r"2D model expects input \[B, C, H, W\]"),
    ],
)
def test_model_bad_inputs(model, name, x, exc, match):
    bad(name)
    with pytest.raises(exc, match=match):
        model(x)


@pytest.fixture
def batch(model):
    out = model(torch.zeros(4, 1, 32, 32))
    tgt = {"prognosis": torch.tensor([0, 1, 0, 1]), "severity": torch.zeros(4), "gcs": torch.tensor([0, 1, 2, 1])}
    return out, tgt


@pytest.mark.parametrize(
    "name, change, exc, match",
    [
        ("loss: binary target 2", {"prognosis": torch.tensor([0, 2, 0, 1])}, ValueError, r"'prognosis' \(binary\) takes classes 0..1, got target 2"),
        ("loss: ordinal target 5", {"gcs": torch.tensor([0, 5, 0, 1])}, ValueError, r"'gcs' \(ordinal\) takes classes 0..2, got target 5"),
        ("loss: fractional ordinal target", {"gcs": torch.tensor([0.0, 1.5, 0, 1])}, ValueError, r"takes classes 0..2, got target 1.5"),
        ("loss: NaN regression target under mask", {"severity": torch.tensor([0.0, float("nan"), 0, 1])}, ValueError, r"'severity': a labelled sample has a NaN/inf target"),
        ("loss: NaN binary target under mask", {"prognosis": torch.tensor([0.0, float("nan"), 0, 1])}, ValueError, r"'prognosis': a labelled sample has a NaN target"),
        ("loss: regression target of wrong shape", {"severity": torch.zeros(4, 3)}, ValueError, r"1 regression target\(s\) per sample expected, got 3"),
        ("loss: batch-size mismatch", {"prognosis": torch.tensor([0, 1])}, ValueError, r"4 outputs but 2 targets"),
        ("loss: NumPy target", {"prognosis": np.array([0, 1, 0, 1])}, TypeError, r"must be torch.Tensors, got Tensor and ndarray"),
    ],
)
def test_loss_bad_targets(batch, name, change, exc, match):
    bad(name)
    out, tgt = batch
    with pytest.raises(exc, match=match):
        MultiTaskLoss(TASKS)(out, {**tgt, **change})


def test_loss_nan_target_is_fine_when_masked(batch):
    out, tgt = batch
    tgt = {**tgt, "severity": torch.tensor([0.0, float("nan"), 0, 1])}
    res = MultiTaskLoss(TASKS)(out, tgt, {"severity": torch.tensor([True, False, True, True])})
    assert torch.isfinite(res.total) and res.counts["severity"] == 3


def test_loss_wrong_output_width(batch):
    bad("loss: binary head with 3 outputs")
    out, tgt = batch
    with pytest.raises(ValueError, match=r"'prognosis' \(binary\) needs 1 output\(s\) per sample, the model gave 3"):
        MultiTaskLoss(TASKS)({**out, "prognosis": torch.zeros(4, 3)}, tgt)


def test_loss_missing_target_and_bad_mask(batch):
    bad("loss: missing task target")
    bad("loss: mask of the wrong length")
    out, tgt = batch
    with pytest.raises(KeyError, match=r"No target for task 'severity'"):
        MultiTaskLoss(TASKS)(out, {k: v for k, v in tgt.items() if k != "severity"})
    with pytest.raises(ValueError, match=r"'prognosis': mask has 2 entries for a batch of 4"):
        MultiTaskLoss(TASKS)(out, tgt, {"prognosis": torch.tensor([True, False])})


def test_task_names_not_tasks():
    bad("create_model / MultiTaskLoss: task names instead of Task objects")
    with pytest.raises(TypeError, match="Expected Task objects, got str: 'prognosis'"):
        create_model("convnet", ["prognosis"])
    with pytest.raises(TypeError, match="Expected Task objects, got str"):
        MultiTaskLoss(["prognosis"])


def test_count_bad_inputs_refused(shared_data, tmp_path):
    """The note's count: distinct bad inputs tried and refused, from a full child run of this file."""
    if _LOG:
        pytest.skip("the child run does not count itself")
    log = tmp_path / "refused.txt"
    env = {**os.environ, "MTBENCH_BAD_INPUTS_LOG": str(log), "MTBENCH_DATA_ROOT": str(shared_data)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not count_bad_inputs"],
                         capture_output=True, text=True, env=env, cwd=os.path.dirname(__file__), timeout=600)
    refused = set(log.read_text(encoding="utf-8").splitlines()) if log.is_file() else set()
    assert out.returncode == 0, out.stdout[-3000:]
    assert len(refused) >= 35, sorted(refused)
    print(f"\n{len(refused)} distinct bad inputs tried and refused")
