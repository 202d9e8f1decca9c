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


def class_balanced_sampler(labels, num_samples: int | None = None, seed: int = 0, replacement: bool = True):
    """A ``torch.utils.data.WeightedRandomSampler`` that draws every class equally often on average.

    Each row is drawn with probability proportional to ``1 / (count of its class)``, so in
    expectation each class makes up ``1 / n_classes`` of every epoch (the usual remedy for rare
    positives; unlike :func:`random_oversample` the epoch length stays ``num_samples``, default
    the number of rows). Rows whose label is NaN get the mean weight of the labelled rows (they still
    train the other tasks). Pass it as ``make_loader(..., sampler=...)``; its generator is seeded,
    and :func:`mtbench.train.fit` re-seeds it with the training seed.

    >>> s = class_balanced_sampler([0] * 90 + [1] * 10, seed=0)
    >>> round(float(s.weights[90] / s.weights[0]), 1)  # a positive is 9x as likely as a negative
    9.0
    """
    y = np.asarray(labels, dtype=float)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"labels must be a non-empty 1D sequence, got shape {y.shape}.")
    present = ~np.isnan(y)
    if not present.any():
        raise ValueError("class_balanced_sampler: every label is NaN; nothing to balance.")
    classes, inverse, counts = np.unique(y[present], return_inverse=True, return_counts=True)
    w = np.empty(len(y), dtype=float)
    w[present] = 1.0 / counts[inverse]
    w[~present] = w[present].mean()
    return _weighted_sampler(w, num_samples, seed, replacement)


def labelled_share_sampler(labels, share: float, num_samples: int | None = None, seed: int = 0):
    """A ``WeightedRandomSampler`` (with replacement) in which rows with a label (not NaN) make up
    ``share`` of the draws in expectation, however few they are.

    With 10 main-task labels among 300 training images, a plain shuffle puts a main-task label in
    only a third of the batches of 32; ``share=0.5`` makes half of every batch labelled. Unlabelled
    rows share the rest equally (they still train the other tasks). ``num_samples`` defaults to
    the number of rows, so an epoch keeps its length.

    >>> s = labelled_share_sampler([1.0, 0.0] + [float("nan")] * 8, share=0.5)
    >>> round(float(s.weights[:2].sum() / s.weights.sum()), 2)
    0.5
    """
    y = np.asarray(labels, dtype=float)
    if not 0.0 < share < 1.0:
        raise ValueError(f"share is a fraction in (0, 1), got {share}.")
    present = ~np.isnan(y)
    if not present.any() or present.all():
        raise ValueError(f"labelled_share_sampler needs both labelled and unlabelled rows; got {int(present.sum())} of {len(y)} labelled.")
    w = np.where(present, share / present.sum(), (1.0 - share) / (~present).sum())
    return _weighted_sampler(w, num_samples, seed, replacement=True)


def _weighted_sampler(weights: np.ndarray, num_samples: int | None, seed: int, replacement: bool):
    """A seeded ``WeightedRandomSampler`` over ``weights`` (``num_samples`` default: one per row)."""
    import torch
    from torch.utils.data import WeightedRandomSampler

    g = torch.Generator()
    g.manual_seed(int(seed))
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples or len(weights),
                                 replacement=replacement, generator=g)
