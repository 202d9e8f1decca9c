"""Data throughput: steady-state samples/s with 0, 1, 2 loader workers, with and without the preprocessing cache,
for real 2D chest X-rays and 3D head-CT volumes, measured side by side in one run.

    python benchmarks/bench_data.py [--workers 0 1 2] [--epochs 2] [--volumes 24]

* 2D: the real X-rays of the COVID-19 image data collection (``MTBENCH_DATA_ROOT``/cohen-covid-mini),
  read (JPEG/PNG decode, grayscale) and preprocessed (percentile clip, resize, normalise) per sample,
  or read from the disk cache (:class:`mtbench.data.cache.VolumeCache`) of preprocessed arrays.
* 3D: head-CT phantom volumes written as ``.nii.gz`` in the real data set's layout, read through
  :class:`mtbench.data.cache.VolumeLoader` with and without its cache.

"cached" epochs are measured after one warming epoch has filled the cache. Ratios are relative to
the uncached, 0-worker loader.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from mtbench import Task
from mtbench.data import MultiTaskDataset
from mtbench.data.cache import VolumeCache, VolumeLoader
from mtbench.data.cxr import CXRPreprocess
from mtbench.train import make_loader

TASK = [Task("prognosis", "binary")]


class CachedCXR:
    """``loader(row)``: a preprocessed X-ray, from the disk cache when there."""

    def __init__(self, pre: CXRPreprocess, cache_dir: str | None):
        self.pre = pre
        self.cache = VolumeCache(cache_dir) if cache_dir else None

    def __call__(self, row):
        path = row["path"]
        if self.cache is None:
            return self.pre.load(path)
        return self.cache.get_or_compute(path, {"cxr": dataclasses.asdict(self.pre)}, lambda: self.pre.load(path))


def epoch_rate(dataset, workers: int, epochs: int, batch: int = 8, pin_memory: bool | None = None) -> float:
    """Steady-state samples/s: the loader (persistent workers, as :func:`fit` uses them) is built once and
    warmed by one untimed epoch, so worker start-up is not counted (it is paid once per fit, not per epoch)."""
    loader = make_loader(dataset, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=pin_memory)
    for _ in loader:
        pass
    n, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for b in loader:
            n += b["image"].shape[0]
    return n / (time.perf_counter() - t0)


def measure(name: str, make_dataset, workers, epochs: int) -> list[tuple[bool, int, float]]:
    """Rows ``(cached, workers, samples/s)`` for the uncached and cached loader and each worker count."""
    rows = []
    for cached in (False, True):
        with tempfile.TemporaryDirectory() as cache_dir:
            ds = make_dataset(cache_dir if cached else None)
            if cached:
                epoch_rate(ds, 0, 1)  # fill the cache
            for w in workers:
                rows.append((cached, w, epoch_rate(ds, w, epochs)))
    base = rows[0][2]
    print(f"\n{name}")
    print(f"{'cache':<8}{'workers':>8}{'samples/s':>12}{'ratio':>8}")
    for cached, w, rate in rows:
        print(f"{'on' if cached else 'off':<8}{w:>8}{rate:>12.1f}{rate / base:>8.2f}x")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--volumes", type=int, default=24)
    args = ap.parse_args()

    from mtbench.data.sources import cohen_covid

    manifest = cohen_covid.load_manifest().table
    manifest = manifest[manifest["prognosis"].notna()].reset_index(drop=True)
    pre2d = CXRPreprocess(size=224, channels=1, normalisation="minmax")
    measure(f"2D: {len(manifest)} real chest X-rays -> 1x224x224",
            lambda cache: MultiTaskDataset(manifest, TASK, CachedCXR(pre2d, cache)), args.workers, args.epochs)

    from mtbench.data.phantom import make_head_ct_phantom
    from mtbench.data.sources import ich_ct
    from mtbench.data.transforms import CTPreprocess

    with tempfile.TemporaryDirectory() as root:
        ph = make_head_ct_phantom(n_patients=args.volumes, shape=(40, 128, 128), seed=0)
        ph.to_nifti(root)
        table = ich_ct.load_manifest(root).table
        pre3d = CTPreprocess(windows=("cobo",), shape=(32, 96, 96))
        measure(f"3D: {len(table)} head-CT volumes (.nii.gz, 40x128x128) -> 1x32x96x96",
                lambda cache: MultiTaskDataset(table, TASK, VolumeLoader(pre3d, cache)), args.workers, args.epochs)


if __name__ == "__main__":
    main()
