"""Sampling helpers for imbalanced training sets."""

from __future__ import annotations

import numpy as np


def random_oversample(labels, seed: int = 0) -> np.ndarray:
    """Row indices that balance the classes by random oversampling (with replacement).

    Every row appears at least once; rows of each smaller class are drawn again at random until
    every class has as many rows as the largest one (the imbalanced-learn ``RandomOverSampler``
    rule, as Cobo et al. 2024 used for prognosis). Rows whose label is NaN are kept once and not
    counted. The result is shuffled.

    >>> idx = random_oversample([0, 0, 0, 1], seed=0)
    >>> sorted(np.bincount(np.asarray([0, 0, 0, 1])[idx]).tolist())
    [3, 3]
    """
    y = np.asarray(labels, dtype=float)
    rng = np.random.default_rng(seed)
    present = ~np.isnan(y)
    classes, counts = np.unique(y[present], return_counts=True)
    out = [np.arange(len(y))]
    if len(classes) > 1:
        target = counts.max()
        for c, n in zip(classes, counts):
            if n < target:
                pool = np.flatnonzero(present & (y == c))
                out.append(rng.choice(pool, size=target - n, replace=True))
    idx = np.concatenate(out)
    return idx[rng.permutation(len(idx))]
