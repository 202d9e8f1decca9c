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


CQ500_FINDINGS = ("ICH", "IPH", "IVH", "SDH", "EDH", "SAH", "Fracture", "CalvarialFracture", "MidlineShift", "MassEffect")


def write_cq500_set(root, n_slices=22, size=16):
    """Two CQ500 studies in the download layout: study 0 with a thin plain, a thick, a bone and a scout
    series; study 1 with only a bone series (no usable series); reads.csv for studies 0, 1 and 7."""
    from pathlib import Path

    root = Path(root)
    rng = np.random.default_rng(0)
    vol = rng.integers(900, 1100, (n_slices, size, size)).astype(np.uint16)
    s0 = root / "CQ500CT0 CQ500CT0" / "Unknown Study"
    for name, thick, n, desc in (("CT PLAIN THIN", 0.625, n_slices, "CT PLAIN THIN"), ("CT 5mm", 5.0, n_slices, "CT 5mm"),
                                 ("CT BONE", 0.625, n_slices, "CT BONE"), ("CT SCOUT", 0.5, 2, "SCOUT")):
        ipps = [(0.0, 0.0, thick * k) for k in range(n)]
        write_ct_series(s0 / name, list(vol[:n]), ipps=ipps, tags={"SliceThickness": thick, "SeriesDescription": desc})
    write_ct_series(root / "CQ500CT1 CQ500CT1" / "Unknown Study" / "CT BONE", list(vol),
                    tags={"SliceThickness": 0.625, "SeriesDescription": "CT BONE"})
    rows = []
    votes = {0: {"ICH": (1, 1, 0), "SDH": (1, 0, 0), "Fracture": (0, 1, 1)}, 1: {}, 7: {"ICH": (1, 1, 1)}}
    for n, v in votes.items():
        row = {"name": f"CQ500-CT-{n}", "Category": "B1"}
        for r in range(3):
            for f in CQ500_FINDINGS:
                row[f"R{r + 1}:{f}"] = v.get(f, (0, 0, 0))[r]
        rows.append(row)
    pd.DataFrame(rows).to_csv(root / "reads.csv", index=False)
    return root


RSNA_SUBTYPES = ("any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")


def write_rsna_set(root, size=16):
    """The RSNA 2019 Kaggle layout: two studies (3 and 2 slices, one flat folder of ID_<hex>.dcm) and
    stage_2_train.csv with 6 ID_<slice>_<subtype> rows per slice; one labelled slice has no file."""
    from pathlib import Path

    from pydicom.uid import generate_uid

    root = Path(root)
    (root / "stage_2_train").mkdir(parents=True, exist_ok=True)
    rows = []
    for s, (n, positives) in enumerate(((3, {1: ("any", "subdural")}), (2, {}))):
        study, series = generate_uid(), generate_uid()
        for k in range(n):
            sid = f"ID_{s:02d}{k:07x}"
            write_dicom(root / "stage_2_train" / f"{sid}.dcm", np.full((size, size), 1000 + k, np.uint16), series_uid=series,
                        tags={"StudyInstanceUID": study, "PatientID": f"ID_patient{s}", "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
                              "ImagePositionPatient": [0, 0, 5.0 * (n - k)], "PixelSpacing": [0.5, 0.5],
                              "RescaleIntercept": -1024, "RescaleSlope": 1})
            for t in RSNA_SUBTYPES:
                rows.append({"ID": f"{sid}_{t}", "Label": int(t in positives.get(k, ()))})
    for t in RSNA_SUBTYPES:
        rows.append({"ID": f"ID_ffffffff_{t}", "Label": 0})
    pd.DataFrame(rows).to_csv(root / "stage_2_train.csv", index=False)
    return root


def write_messy_table(root):
    """A real-world own-data table: stray spaces and capitals in column names, RGB/RGBA/grayscale PNGs
    of different sizes, a text-coded task, no patient column, one missing image."""
    from pathlib import Path

    from PIL import Image

    root = Path(root)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    specs = [("a.png", "RGB", (60, 40)), ("b.png", "RGBA", (30, 90)), ("c.png", "L", (50, 50)), ("d.png", "L", (128, 64))]
    for name, mode, (w, h) in specs:
        chans = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        arr = rng.integers(0, 255, (h, w, chans), dtype=np.uint8)
        Image.fromarray(arr[..., 0] if chans == 1 else arr, mode).save(root / "img" / name)
    pd.DataFrame({" Image ": ["img/a.png", "img/b.png", "img/c.png", "img/d.png", "img/missing.png"],
                  "Outcome ": [1, 0, 1, 0, 1], " Severity": ["mild", "severe", "mild", "moderate", "mild"],
                  "Centre": ["A", "A", "B", "B", "B"]}).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"
