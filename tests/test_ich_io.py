"""Reading real DICOM series and NIfTI files (the test files shipped in pydicom's and nibabel's wheels)."""

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from mtbench.data.io import DicomSeriesError, read_dicom_file, read_dicom_series, read_nifti, read_volume, write_nifti

DICOMDIR = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"
CT5N = DICOMDIR / "98892001" / "CT5N"  # 5 axial CT slices, file names in *descending* z order


def test_series_ordered_by_position_along_normal_not_file_name():
    vol = read_dicom_series(CT5N)
    assert vol.shape == (5, 16, 16)
    z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in vol.files]
    assert z == sorted(z)  # normal (0, 0, 1): increasing z
    by_name = sorted(p.name for p in CT5N.iterdir())
    assert [Path(f).name for f in vol.files] == by_name[::-1]
    assert vol.spacing == pytest.approx((2.5, 0.488281, 0.488281))
    for k, f in enumerate(vol.files):  # each slice equals its own file, in HU
        ds = pydicom.dcmread(f)
        np.testing.assert_array_equal(vol.array[k], ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert vol.affine[:3, 0] == pytest.approx([0, 0, 2.5])


def test_rescale_applied_to_ct_small():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    vol = read_dicom_file(path)
    assert float(ds.RescaleIntercept) == -1024
    np.testing.assert_array_equal(vol.array[0], ds.pixel_array.astype(np.float32) - 1024)
    assert vol.meta["modality"] == "CT"


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_lossless_compressed_transfer_syntaxes_decode_exactly(name):
    ref = read_dicom_file(get_testdata_file("MR_small.dcm")).array
    vol = read_dicom_file(get_testdata_file(name))
    np.testing.assert_array_equal(vol.array, ref)


def test_lossy_jpeg2000_ct_and_jpeg_extended_decode():
    ct = read_dicom_file(get_testdata_file("693_J2KI.dcm"))  # real CT slice, JPEG 2000, rescale -1024
    assert ct.shape == (1, 512, 512) and ct.array.min() < -900 and ct.array.max() > 500
    assert "JPEG 2000" in ct.meta["transfer_syntaxes"][0]
    nm = read_dicom_file(get_testdata_file("JPGExtended.dcm"))  # decoded by pylibjpeg-libjpeg
    assert nm.shape == (1, 1024, 256)


def test_missing_slices_refused_naming_files():
    with pytest.raises(DicomSeriesError, match=r"Missing slices.*17106.*17136"):
        read_dicom_series(DICOMDIR / "77654033" / "CT2")
    vol = read_dicom_series(DICOMDIR / "77654033" / "CT2", allow_gaps=True)
    assert vol.shape[0] == 4


def test_inconsistent_orientation_refused_naming_file():
    with pytest.raises(DicomSeriesError, match=r"ImageOrientationPatient.*6924"):
        read_dicom_series(DICOMDIR / "98892001" / "CT2N")


def test_mixed_series_refused_and_selectable(tmp_path):
    with pytest.raises(DicomSeriesError, match="mixes 3 series"):
        read_dicom_series(DICOMDIR / "98892003" / "MR2")
    for f in CT5N.iterdir():
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "other.dcm")
    (tmp_path / "README.txt").write_text("not dicom")
    with pytest.raises(DicomSeriesError, match=r"mixes 2 series.*other\.dcm"):
        read_dicom_series(tmp_path)
    uid = str(pydicom.dcmread(next(CT5N.iterdir())).SeriesInstanceUID)
    vol = read_dicom_series(tmp_path, series_uid=uid)
    assert vol.shape == (5, 16, 16)
    assert any(s.endswith("README.txt") for s in vol.meta["skipped"])


def test_duplicate_positions_refused_naming_both(tmp_path):
    for f in CT5N.iterdir():
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(CT5N / "2693", tmp_path / "2693_copy")
    with pytest.raises(DicomSeriesError, match=r"Duplicated slice positions.*2693"):
        read_dicom_series(tmp_path)


def test_nifti_reoriented_to_canonical():
    import nibabel as nib
    from nibabel.testing import data_path

    path = Path(data_path) / "anatomical.nii"  # stored LAS
    raw = nib.load(path)
    assert "".join(nib.aff2axcodes(raw.affine)) == "LAS"
    vol = read_nifti(path)
    # canonical (d, h, w) = (S, P, L): d = k (S), h = j reversed (A -> P), w = i (already L)
    expected = np.transpose(raw.get_fdata(), (2, 1, 0))[:, ::-1, :]
    np.testing.assert_allclose(vol.array, expected, rtol=1e-6)
    assert vol.meta["axcodes"] == "LAS" and nib.aff2axcodes(vol.affine) == ("S", "P", "L")
    assert vol.spacing == pytest.approx((2.0, 2.0, 2.0))
    with pytest.raises(ValueError, match="3D image"):
        read_nifti(Path(data_path) / "example4d.nii.gz")


def test_nifti_round_trip_and_read_volume_dispatch(tmp_path):
    arr = np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32)
    path = write_nifti(arr, tmp_path / "x.nii.gz", spacing=(5.0, 0.5, 0.7))
    vol = read_volume(path)
    np.testing.assert_allclose(vol.array, arr, rtol=1e-6)
    assert vol.spacing == pytest.approx((5.0, 0.5, 0.7))
    assert read_volume(CT5N).shape == (5, 16, 16)
    with pytest.raises(FileNotFoundError):
        read_volume(tmp_path / "missing.nii")
