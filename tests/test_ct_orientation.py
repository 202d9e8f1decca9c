"""One canonical orientation for every CT reader, checked on DICOM series written with pydicom.

Each fixture stores the same truth volume ``T`` (canonical ``[d, h, w]`` = (S, P, L), known
spacing and origin) in a different acquisition geometry; every reader must give ``T`` back with the
hand-computed RAS+ affine. Geometry follows DICOM PS3.3 C.7.6.2.1.1 (ImagePositionPatient is the
centre of the first transmitted pixel; ImageOrientationPatient = row then column direction
cosines, LPS); NIfTI's world frame is RAS (LPS with x and y negated).
"""

import nibabel as nib
import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from mtbench.data.io import (
    CANONICAL_AXCODES,
    DicomSeriesError,
    canonical_affine,
    read_dicom_series,
    read_nifti,
    read_volume,
    write_nifti,
)
from _mtb_files import write_ct_series

D, H, W = 5, 36, 40  # in-plane >= 32: OpenJPEG's default 6 resolution levels
DZ, DY, DX = 2.5, 0.8, 0.6
O_LPS = np.array([-30.0, -40.0, 10.0])  # LPS position of T[0, 0, 0]: the most right, anterior, inferior voxel
T = np.random.default_rng(0).integers(0, 2000, (D, H, W)).astype(np.float32)  # stored values
HU = T - 1024
# hand-computed truth: d -> +S (dz), h -> -A (dy), w -> -R (dx); origin LPS (-30, -40, 10) = RAS (30, 40, 10)
AFFINE = np.array([[0, 0, -DX, 30.0], [0, -DY, 0, 40.0], [DZ, 0, 0, 10.0], [0, 0, 0, 1]])


def _series(folder, slices, iop, ipps, pixel_spacing, **kw):
    return write_ct_series(folder, slices, iop, ipps, pixel_spacing, **kw)


def _axial(folder, **kw):
    ipps = [O_LPS + [0, 0, k * DZ] for k in range(D)]
    return _series(folder, list(T), (1, 0, 0, 0, 1, 0), ipps, (DY, DX), **kw)


def test_canonical_affine_is_the_hand_computed_one():
    np.testing.assert_allclose(canonical_affine((DZ, DY, DX), (30, 40, 10)), AFFINE)
    assert nib.aff2axcodes(AFFINE) == CANONICAL_AXCODES == ("S", "P", "L")


@pytest.mark.parametrize("codec", [None, RLELossless, JPEG2000Lossless])
def test_axial_lps_read_exactly_with_affine(tmp_path, codec):
    vol = read_dicom_series(_axial(tmp_path / "s", transfer_syntax=codec))
    np.testing.assert_array_equal(vol.array, HU)
    np.testing.assert_allclose(vol.affine, AFFINE, atol=1e-6)
    assert vol.spacing == pytest.approx((DZ, DY, DX))
    assert vol.meta["gantry_tilt_deg"] == 0 and not vol.meta["tilt_corrected"]


def test_flipped_rows_give_the_same_canonical_volume(tmp_path):
    # rows run posterior->anterior: the stored image is T upside down, its first pixel the most posterior
    slices = [T[k][::-1] for k in range(D)]
    ipps = [O_LPS + [0, (H - 1) * DY, k * DZ] for k in range(D)]
    vol = read_dicom_series(_series(tmp_path, slices, (1, 0, 0, 0, -1, 0), ipps, (DY, DX)))
    np.testing.assert_array_equal(vol.array, HU)
    np.testing.assert_allclose(vol.affine, AFFINE, atol=1e-6)


def test_reversed_slice_order_gives_the_same_volume(tmp_path):
    # slices listed superior->inferior with the normal pointing down (columns flipped too)
    slices = [T[k][:, ::-1] for k in range(D)]
    ipps = [O_LPS + [(W - 1) * DX, 0, k * DZ] for k in range(D)]
    vol = read_dicom_series(_series(tmp_path, slices, (-1, 0, 0, 0, 1, 0), ipps, (DY, DX)))
    np.testing.assert_array_equal(vol.array, HU)
    np.testing.assert_allclose(vol.affine, AFFINE, atol=1e-6)
    z = vol.meta["positions"]
    assert len(vol.files) == D and vol.meta["files_along_d"] and z == sorted(z, reverse=True)


def test_sagittal_acquisition_is_permuted_to_axial(tmp_path):
    # sagittal slices: rows run anterior->posterior, columns... image rows go inferior (down the head)
    slices = [T[::-1, :, j] for j in range(W)]  # [rows = S->I, cols = A->P]
    ipps = [O_LPS + [j * DX, 0, (D - 1) * DZ] for j in range(W)]
    vol = read_dicom_series(_series(tmp_path, slices, (0, 1, 0, 0, 0, -1), ipps, (DZ, DY)))
    np.testing.assert_array_equal(vol.array, HU)
    np.testing.assert_allclose(vol.affine, AFFINE, atol=1e-6)
    assert not vol.meta["files_along_d"]


def test_oblique_keeps_its_exact_affine_on_the_closest_axes(tmp_path):
    a = np.radians(20)
    row, col = np.array([np.cos(a), np.sin(a), 0]), np.array([-np.sin(a), np.cos(a), 0])
    ipps = [O_LPS + [0, 0, k * DZ] for k in range(D)]
    vol = read_dicom_series(_series(tmp_path, list(T), (*row, *col), ipps, (DY, DX)))
    np.testing.assert_array_equal(vol.array, HU)
    expected = np.eye(4)
    expected[:3, 0] = [0, 0, DZ]
    expected[:3, 1] = [-col[0] * DY, -col[1] * DY, 0]  # LPS -> RAS negates x and y
    expected[:3, 2] = [-row[0] * DX, -row[1] * DX, 0]
    expected[:3, 3] = [30, 40, 10]
    np.testing.assert_allclose(vol.affine, expected, atol=1e-6)


def test_gantry_tilt_corrected_point_marker_at_its_world_position(tmp_path):
    n, size, dz, dy, tilt = 12, 40, 2.0, 1.0, np.radians(10)
    row, col = np.array([1.0, 0, 0]), np.array([0, np.cos(tilt), np.sin(tilt)])  # rows tilted towards S
    vol = np.zeros((n, size, size), np.float32)
    k0, i0, j0 = 5, 30, 20
    vol[k0 - 1 : k0 + 2, i0 - 1 : i0 + 2, j0 - 1 : j0 + 2] = 1000  # a 3-voxel cube marker centred on (k0, i0, j0)
    ipps = [O_LPS + [0, 0, k * dz] for k in range(n)]  # the table moves along z: the step is not the normal
    folder = _series(tmp_path, list(vol + 1024), (*row, *col), ipps, (dy, 1.0))
    marker_lps = O_LPS + k0 * np.array([0, 0, dz]) + i0 * dy * col + j0 * 1.0 * row
    marker_ras = marker_lps * [-1, -1, 1]

    with pytest.raises(DicomSeriesError, match=r"gantry tilt of 10\.00 deg.*correct_tilt=True"):
        read_dicom_series(folder, correct_tilt=False)
    out = read_dicom_series(folder)
    assert out.meta["gantry_tilt_deg"] == pytest.approx(10, abs=0.01) and out.meta["tilt_corrected"]
    cols = out.affine[:3, :3]
    np.testing.assert_allclose(cols.T @ cols, np.diag(np.diag(cols.T @ cols)), atol=1e-9)  # orthogonal grid
    assert nib.aff2axcodes(out.affine) == CANONICAL_AXCODES
    w = np.clip(out.array, 0, None)  # background 0 HU, outside the slab -1024: the weights are the marker
    idx = np.array(np.nonzero(w)).T
    centroid = (idx * w[w > 0][:, None]).sum(0) / w.sum()
    found = out.affine @ np.r_[centroid, 1]
    np.testing.assert_allclose(found[:3], marker_ras, atol=0.3)
    # the uncorrected (orthogonal, untilted) geometry would have put it 30 * sin(10 deg) = 5.2 mm off
    naive = O_LPS + [j0, i0 * dy, k0 * dz]
    assert np.linalg.norm(found[:3] - naive * [-1, -1, 1]) > 2


def test_padding_value_and_below_air_become_air(tmp_path):
    stored = T.astype(np.int16)  # signed storage, intercept -1024
    stored[:, :2, :] = -2000  # outside the field of view: -3024 HU if taken at face value
    stored[0, 3, 3] = -76  # -1100 HU: below air without being the padding value
    ipps = [O_LPS + [0, 0, k * DZ] for k in range(D)]
    folder = _series(
        tmp_path, list(stored), (1, 0, 0, 0, 1, 0), ipps, (DY, DX), signed=True,
        tags={"PixelPaddingValue": -2000, "RescaleIntercept": -1024},
    )
    vol = read_dicom_series(folder)
    assert vol.array.min() == -1024
    assert (vol.array[:, :2, :] == -1024).all() and vol.array[0, 3, 3] == -1024
    np.testing.assert_array_equal(vol.array[1:, 2:], HU[1:, 2:])
    assert vol.meta["padding_fraction"] == pytest.approx((2 * W * D + 1) / T.size)
    raw = read_dicom_series(folder, pad_hu=None)
    assert raw.array.min() == -2000 - 1024


def test_round_trip_dicom_nifti_and_other_tools_see_the_right_orientation(tmp_path):
    a = np.radians(15)
    row, col = np.array([np.cos(a), np.sin(a), 0]), np.array([-np.sin(a), np.cos(a), 0])
    ipps = [O_LPS + [0, 0, k * DZ] for k in range(D)]
    dcm = read_dicom_series(_series(tmp_path / "s", list(T), (*row, *col), ipps, (DY, DX)))
    path = write_nifti(dcm, tmp_path / "x.nii.gz")
    img = nib.load(path)
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    # the marker voxel [1, 2, 3] sits at the same world position for nibabel as for us
    i, j, k = (np.linalg.inv(img.affine) @ dcm.affine @ [1, 2, 3, 1])[:3].round().astype(int)
    assert img.get_fdata()[i, j, k] == pytest.approx(dcm.array[1, 2, 3])
    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, dcm.array)
    np.testing.assert_allclose(back.affine, dcm.affine, atol=1e-4)
    assert back.spacing == pytest.approx(dcm.spacing)


def test_nifti_in_any_stored_orientation_matches_the_dicom_read(tmp_path):
    dcm = read_dicom_series(_axial(tmp_path / "s"))
    ras = np.transpose(HU, (2, 1, 0))[::-1, ::-1, :]  # (i, j, k) = (R, A, S)
    ras_aff = np.diag([DX, DY, DZ, 1.0])
    ras_aff[:3, 3] = [30 - (W - 1) * DX, 40 - (H - 1) * DY, 10]
    for name, data, aff in (
        ("ras", ras, ras_aff),
        ("las", ras[::-1], ras_aff @ np.array([[-1, 0, 0, W - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])),
    ):
        nib.save(nib.Nifti1Image(np.ascontiguousarray(data), aff), str(tmp_path / f"{name}.nii.gz"))
        vol = read_volume(tmp_path / f"{name}.nii.gz")
        np.testing.assert_array_equal(vol.array, dcm.array)
        np.testing.assert_allclose(vol.affine, dcm.affine, atol=1e-4)
