"""Small generated files for the data-validation tests (DICOM, NIfTI, ICH layout)."""

import numpy as np
import pandas as pd


CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
DIGITAL_XRAY = "1.2.840.10008.5.1.4.1.1.1.1"


def write_dicom(
    path, array, series_uid=None, photometric="MONOCHROME2", modality="CT", sop_class=CT_IMAGE,
    tags=None, transfer_syntax=None, signed=False,
):
    """A minimal valid DICOM image; ``series_uid`` sets SeriesInstanceUID, ``tags`` any other attributes
    (e.g. ``ImagePositionPatient``), ``transfer_syntax`` compresses it (RLE, JPEG 2000: what pydicom can
    encode), ``signed`` stores int16 (``PixelRepresentation`` 1)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.Rows, ds.Columns = array.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = np.asarray(array).astype(np.int16 if signed else np.uint16).tobytes()
    for k, v in (tags or {}).items():
        setattr(ds, k, v)
    if transfer_syntax is not None:
        ds.compress(transfer_syntax)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_ct_series(folder, slices, iop=(1, 0, 0, 0, 1, 0), ipps=None, pixel_spacing=(1.0, 1.0), tags=None,
                    seed=1, **kw):
    """A CT series of stored-value ``slices`` (intercept -1024) under shuffled file names ``IMG0000``...

    ``ipps`` default: axial slices 2.5 mm apart. ``InstanceNumber`` runs backwards, so neither
    file names nor instance numbers give the order: only the positions do. ``kw`` go to :func:`write_dicom`.
    """
    from pathlib import Path

    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ipps = [(0.0, 0.0, 2.5 * k) for k in range(len(slices))] if ipps is None else ipps
    uid = generate_uid()
    order = np.random.default_rng(seed).permutation(len(slices))
    for n, k in enumerate(order):
        t = {
            "ImageOrientationPatient": [float(v) for v in iop],
            "ImagePositionPatient": [float(v) for v in ipps[k]],
            "PixelSpacing": [float(v) for v in pixel_spacing],
            "RescaleIntercept": -1024,
            "RescaleSlope": 1,
            "InstanceNumber": int(len(slices) - k),
            **(tags or {}),
        }
        write_dicom(folder / f"IMG{n:04d}", slices[k], series_uid=uid, tags=t, **kw)
    return folder


def write_nifti(path, shape=(8, 8, 4), spacing=(0.5, 0.5, 5.0), affine=None, seed=0):
    import nibabel as nib

    aff = np.diag([*spacing, 1.0]) if affine is None else np.asarray(affine, float)
    data = np.random.default_rng(seed).integers(-1000, 1000, shape).astype(np.int16)
    if abs(np.linalg.det(aff[:3, :3])) > 1e-9:
        img = nib.Nifti1Image(data, aff)
    else:  # a singular affine cannot be a qform: store it as the sform only (what broken converters do)
        img = nib.Nifti1Image(data, None)
        img.header.set_qform(None, code=0)
        img.header.set_sform(aff, code=1)
    img.header.set_zooms(tuple(spacing)[: len(shape)])
    nib.save(img, str(path))
    return path


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep)])
    return path


def write_ich_set(root, n_good=2, n_poor=2):
    """A tiny ICH set in the published layout (NIfTI volumes + clinical CSV)."""
    rows = []
    for folder, label, n in (("GOOD_PROGNOSIS", 0, n_good), ("POOR_PROGNOSIS", 1, n_poor)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pid = f"{folder[0]}{i:03d}"
            write_nifti(root / folder / f"{pid}_brain.nii.gz", seed=10 * label + i)
            rows.append({"Patient": pid, "Label (poor_prognosis)": label, "Age": 70 + 5 * i, "GCS": 15 - 4 * i})
    pd.DataFrame(rows).to_csv(root / "clinical.csv", index=False)
    return root
