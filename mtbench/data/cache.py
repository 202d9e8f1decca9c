"""A disk cache of preprocessed volumes, keyed by the source file and the transform settings.

Reading a compressed NIfTI/DICOM series and resampling it costs far more than reading a ``.npy``
file, and every epoch of every fold of every arm reads the same volumes. :class:`VolumeCache`
stores each preprocessed array once under a key made of

* the source's absolute path, size and modification time (so an edited file is re-read), and
* the preprocessing settings (:meth:`CTPreprocess.to_dict`) and a format version,

so changing any setting gives new entries instead of stale ones. :class:`VolumeLoader` is the
callable a :class:`~mtbench.data.MultiTaskDataset` takes as ``images``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from mtbench.data.io import Volume, read_volume
from mtbench.data.transforms import CTPreprocess

CACHE_VERSION = 2  # 2: every reader returns the canonical (S, P, L) orientation (NIfTI arrays changed)


def _source_fingerprint(source: str | os.PathLike) -> dict[str, Any]:
    p = Path(source).resolve()
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file())
        st = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
        return {"path": str(p), "files": hashlib.sha1(repr(st).encode()).hexdigest()}
    if not p.is_file():
        raise FileNotFoundError(f"Cannot cache {str(p)!r}: no such file or folder.")
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_key(source: str | os.PathLike, settings: Mapping[str, Any]) -> str:
    """Hex key of (source file identity, settings, cache version)."""
    payload = {"source": _source_fingerprint(source), "settings": dict(settings), "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


class VolumeCache:
    """Arrays on disk under ``root/<key[:2]>/<key>.npy``; counts ``hits`` and ``misses``.

    ``mmap=True`` (default) returns hits memory-mapped (copy-on-write, so writable without touching the
    file): a loader worker's batch is then stacked straight from the page cache into the shared memory
    that carries it to the main process, one copy instead of two, and workers share the page cache.
    """

    def __init__(self, root: str | os.PathLike, mmap: bool = True):
        self.root = Path(root).expanduser()
        self.mmap = mmap
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get_or_compute(
        self, source: str | os.PathLike, settings: Mapping[str, Any], compute: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """The cached array for ``(source, settings)``, computing and storing it on a miss."""
        path = self.path_for(cache_key(source, settings))
        if path.is_file():
            try:
                arr = np.load(path, allow_pickle=False, mmap_mode="c" if self.mmap else None)
                self.hits += 1
                return arr
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # a truncated file from an interrupted run: recompute
        arr = np.ascontiguousarray(compute(), dtype=np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, arr, allow_pickle=False)
        os.replace(tmp, path)  # atomic: concurrent workers never read half a file
        self.misses += 1
        return arr

    def clear(self) -> int:
        """Delete every cached array; returns how many were removed."""
        n = 0
        for f in self.root.rglob("*.npy"):
            f.unlink()
            n += 1
        return n

    def __len__(self) -> int:
        return sum(1 for _ in self.root.rglob("*.npy"))

    def __repr__(self) -> str:
        return f"VolumeCache({str(self.root)!r}, entries={len(self)}, hits={self.hits}, misses={self.misses})"


class VolumeLoader:
    """``loader(row) -> float32 [C, D, H, W]``: read ``row[path_column]``, preprocess, cache.

    Parameters
    ----------
    preprocess:
        A :class:`CTPreprocess` (its settings are part of the cache key).
    cache_dir:
        Folder of the :class:`VolumeCache`; ``None`` disables caching.
    path_column:
        The manifest column with the NIfTI file / DICOM folder.
    reader:
        ``reader(path) -> Volume``; default :func:`mtbench.data.io.read_volume`.
    """

    def __init__(
        self,
        preprocess: CTPreprocess,
        cache_dir: str | os.PathLike | None = None,
        path_column: str = "path",
        reader: Callable[[str], Volume] = read_volume,
    ):
        self.preprocess = preprocess
        self.cache = VolumeCache(cache_dir) if cache_dir is not None else None
        self.path_column = path_column
        self.reader = reader

    def load(self, source: str | os.PathLike) -> np.ndarray:
        def compute() -> np.ndarray:
            vol = self.reader(source)
            return self.preprocess(vol.array, vol.spacing)

        if self.cache is None:
            return compute()
        return self.cache.get_or_compute(source, {"preprocess": self.preprocess.to_dict()}, compute)

    def __call__(self, row) -> np.ndarray:
        try:
            source = row[self.path_column]
        except KeyError:
            raise KeyError(f"VolumeLoader: the row has no column {self.path_column!r}.") from None
        return self.load(source)
