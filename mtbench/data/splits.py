"""Patient-grouped, stratified splits, and the leakage check every split goes through."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, GroupKFold


class LeakageError(ValueError):
    """A patient (or other group) appears in two splits that must be disjoint."""


def check_no_leakage(splits: dict[str, pd.DataFrame], group_column: str = "patient_id") -> None:
    """Refuse any group present in two of the named splits, naming the groups and splits."""
    seen: dict[str, str] = {}
    problems = []
    for split_name, df in splits.items():
        if group_column not in df.columns:
            raise KeyError(f"Split {split_name!r} has no column {group_column!r}.")
        for g in pd.unique(df[group_column].dropna()):
            if g in seen and seen[g] != split_name:
                problems.append(f"{g!r} in {seen[g]!r} and {split_name!r}")
            seen.setdefault(g, split_name)
    if problems:
        raise LeakageError(
            f"{len(problems)} {group_column} value(s) appear in more than one split: {problems[:5]}"
            + (" ..." if len(problems) > 5 else "")
        )


def assign_folds(
    table: pd.DataFrame,
    n_splits: int,
    group_column: str = "patient_id",
    stratify_column: str | None = None,
    seed: int = 0,
) -> pd.Series:
    """Fold index (0..n_splits-1) for each row, patients never split across folds.

    With ``stratify_column`` the folds keep its class proportions as far as the groups allow
    (scikit-learn's ``StratifiedGroupKFold``); rows whose stratum is NaN are stratified as their
    own class.
    """
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}.")
    if group_column not in table.columns:
        raise KeyError(f"No group column {group_column!r} in the table (columns: {list(table.columns)}).")
    groups = table[group_column].astype(str).to_numpy()
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise ValueError(f"{n_groups} groups ({group_column}) cannot fill {n_splits} folds.")
    folds = np.full(len(table), -1, dtype=int)
    if stratify_column is None:
        # GroupKFold is deterministic; shuffle the group labels to make the seed matter.
        rng = np.random.default_rng(seed)
        uniq = np.unique(groups)
        perm = dict(zip(uniq, rng.permutation(len(uniq))))
        codes = np.array([perm[g] for g in groups])
        splitter = GroupKFold(n_splits=n_splits)
        split_iter = splitter.split(np.zeros(len(table)), groups=codes)
    else:
        y = table[stratify_column].astype(str).fillna("nan").to_numpy()
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        split_iter = splitter.split(np.zeros(len(table)), y, groups)
    for k, (_, test_idx) in enumerate(split_iter):
        folds[test_idx] = k
    return pd.Series(folds, index=table.index, name="fold")


def train_val_test_split(
    table: pd.DataFrame,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    group_column: str = "patient_id",
    stratify_column: str | None = None,
    seed: int = 0,
) -> pd.Series:
    """Label each row ``train``, ``val`` or ``test`` by patient groups (approximate fractions)."""
    if not (0 < test_fraction < 1 and 0 <= val_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to less than 1.")
    n_test = max(2, round(1 / test_fraction))
    folds = assign_folds(table, n_test, group_column, stratify_column, seed)
    split = pd.Series("train", index=table.index, name="split")
    split[folds == 0] = "test"
    if val_fraction > 0:
        rest = table[folds != 0]
        n_val = max(2, round((1 - test_fraction) / val_fraction))
        vfolds = assign_folds(rest, n_val, group_column, stratify_column, seed + 1)
        split[vfolds.index[vfolds == 0]] = "val"
    check_no_leakage({s: table[split == s] for s in ("train", "val", "test")}, group_column)
    return split


def subsample_labels(
    table: pd.DataFrame, column: str, keep: int | float, seed: int = 0, stratify: bool = True
) -> pd.DataFrame:
    """A copy of ``table`` where only ``keep`` rows (a count, or a fraction) keep ``column``'s label.

    The rest are set to NaN: the images stay (other tasks can use them), the label goes. This is how
    the notebooks simulate label scarcity for one task.
    """
    out = table.copy()
    labelled = out.index[out[column].notna()]
    n_keep = int(round(keep * len(labelled))) if isinstance(keep, float) and keep <= 1 else int(keep)
    if n_keep > len(labelled):
        raise ValueError(f"Cannot keep {n_keep} labels of {column!r}: only {len(labelled)} are present.")
    rng = np.random.default_rng(seed)
    if stratify:
        classes = out.loc[labelled, column]
        chosen: list = []
        for _, idx in classes.groupby(classes).groups.items():
            share = int(round(n_keep * len(idx) / len(labelled)))
            chosen += list(rng.choice(np.asarray(idx), size=min(share, len(idx)), replace=False))
    else:
        chosen = list(rng.choice(np.asarray(labelled), size=n_keep, replace=False))
    out[column] = out[column].astype(float)
    out.loc[out.index.difference(chosen), column] = np.nan
    return out


def split_table(table: pd.DataFrame, split: pd.Series, names: Sequence[str] = ("train", "val", "test")):
    """``{name: rows}`` for each split name."""
    return {n: table[split == n].reset_index(drop=True) for n in names}


def read_split_lines(path: str | Path, header_words: Sequence[str] = ("img", "image", "imagefile", "filename")) -> pd.DataFrame:
    """The ``img label [center]`` split files of Ruffini et al. (2024), raw.

    Whitespace-, comma- or semicolon-separated; a first line starting with one of ``header_words``
    is a header. Returns ``img, label, center, line`` as text (``center`` None where absent); the
    adapters interpret the labels. Errors name the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Split file not found: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        parts = [p for p in re.split(r"[\s,;]+", line.strip()) if p]
        if not parts:
            continue
        if lineno == 1 and parts[0].lower() in header_words:
            continue
        if len(parts) < 2:
            raise ValueError(f"{path}, line {lineno}: expected 'img label [center]', got {line!r}.")
        rows.append({"img": parts[0], "label": parts[1], "center": parts[2] if len(parts) > 2 else None, "line": lineno})
    return pd.DataFrame(rows, columns=["img", "label", "center", "line"])
