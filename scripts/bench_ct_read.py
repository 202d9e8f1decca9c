"""Time mtbench's canonical DICOM read against a plain pydicom read of the same compressed series.

Writes a synthetic 240-slice 512x512 RLE Lossless CT series (pydicom cannot encode JPEG Lossless,
which decodes through the same pylibjpeg plugin family), then times, in one process and
alternating, (a) plain pydicom: dcmread every file, decode, stack in file order, and (b)
:func:`mtbench.data.io.read_dicom_series`: header pass, position sort, decode, rescale, padding,
tilt check, canonical reorientation. Prints the median of ``--repeats`` runs and the ratio.

    python scripts/bench_ct_read.py --slices 240 --repeats 3 [--tilt 10]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=240)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tilt", type=float, default=0.0, help="gantry tilt in degrees (0: none)")
    args = ap.parse_args()
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import pydicom
    from pydicom.uid import RLELossless

    from mtbench.data.io import read_dicom_series
    from tests._mtb_files import write_ct_series

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: args.size, : args.size]
    head = ((yy - args.size / 2) ** 2 + (xx - args.size / 2) ** 2 < (0.4 * args.size) ** 2).astype(np.uint16)
    t = np.radians(args.tilt)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        slices = [head * (1000 + rng.integers(0, 80, head.shape, dtype=np.uint16)) for _ in range(args.slices)]
        folder = write_ct_series(Path(tmp) / "s", slices, iop=(1, 0, 0, 0, np.cos(t), np.sin(t)),
                                 ipps=[(0.0, 0.0, 0.625 * k) for k in range(args.slices)], pixel_spacing=(0.45, 0.45),
                                 transfer_syntax=RLELossless)
        print(f"wrote {args.slices} RLE slices of {args.size}^2 in {time.perf_counter() - t0:.1f} s")
        files = sorted(folder.iterdir())

        def plain():
            return np.stack([pydicom.dcmread(f).pixel_array for f in files])

        def ours():
            return read_dicom_series(folder).array

        times = {"plain pydicom": [], "read_dicom_series": []}
        for _ in range(args.repeats):
            for name, fn in (("plain pydicom", plain), ("read_dicom_series", ours)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        for k, v in times.items():
            print(f"{k:>18}: median {med[k]:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in v)})")
        print(f"ratio read_dicom_series / plain pydicom: {med['read_dicom_series'] / med['plain pydicom']:.2f}")


if __name__ == "__main__":
    main()
