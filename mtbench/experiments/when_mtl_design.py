"""The design of the when-does-MTL-help benchmark (:mod:`mtbench.experiments.when_mtl_helps`): the
data generators it draws from, the grid of settings it varies and the paired statistics it reports.

A generator is a registered ``fn(data_config) -> BenchmarkData`` (``config["generator"]`` names
it): ``synthetic_cxr`` (2D) is built in; a 3D generator (e.g. a head-CT phantom) plugs in with
:func:`register_generator` and the same grid runs unchanged.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from mtbench.data import make_synthetic_cxr
from mtbench.metrics import ignore_degenerate_input_warnings
from mtbench.registry import Registry
from mtbench.tasks import Task

FACTORS = ("relatedness", "n_main_labels", "n_aux_labels", "label_noise")

# ----------------------------------------------------------------------------- generators


@dataclass
class BenchmarkData:
    """What a generator returns.

    ``images`` ``[N, C, ...]`` (2D or 3D); ``table`` one row per image with ``sample_id``,
    ``patient_id``, the main task's column and each auxiliary task's column; ``main`` the main
    :class:`Task` (binary); ``auxiliary`` ``{"related": Task, "unrelated": Task}`` (regression
    tasks are standardised with the training mean and SD by the experiment).
    """

    images: np.ndarray
    table: pd.DataFrame
    main: Task
    auxiliary: dict[str, Task]
    spatial_dims: int = 2


GENERATORS = Registry("generator")


def register_generator(name: str):
    """Decorator: make ``fn(data_config) -> BenchmarkData`` usable as ``config["generator"] = name``."""
    return GENERATORS.register(name)


def list_generators() -> list[str]:
    return GENERATORS.names()


@register_generator("synthetic_cxr")
def _synthetic_cxr(d: Mapping[str, Any]) -> BenchmarkData:
    """2D synthetic chest X-rays: related = Brixia-style severity, unrelated = heart size."""
    from dataclasses import fields

    from mtbench.data.synthetic import SyntheticCXRConfig

    # Every key of the data config that is a generator option goes to the generator (e.g. image_noise).
    options = {f.name: d[f.name] for f in fields(SyntheticCXRConfig) if f.name in d}
    data = make_synthetic_cxr(**{"heart_size_sd": 0.2, **options})
    table = data.table.copy()
    table["heart_size"] = np.log(table["heart_size"])  # symmetric around 0
    main = Task("prognosis", "binary", class_names=("mild", "severe"), description="severe outcome (synthetic)")
    aux = {
        "related": Task("severity", "regression", metrics=("mae", "pearson_r"), description="global severity 0-18 (standardised)"),
        "unrelated": Task("heart_size", "regression", metrics=("mae", "pearson_r"), description="log heart-size factor (standardised)"),
    }
    return BenchmarkData(data.images, table, main, aux, spatial_dims=2)


def settings(config: Mapping[str, Any], n_train: int | None = None) -> pd.DataFrame:
    """The grid: one row per setting (``relatedness, n_main_labels, n_aux_labels, label_noise``).

    The factors in ``config["cross"]`` are crossed with each other; every other factor is varied
    alone with the rest at the baseline. Duplicates are removed; ``is_baseline`` marks the baseline.
    ``n_aux_labels=None`` means every training image; given ``n_train`` it is written as that number.
    """
    base = dict(config["baseline"])
    unknown = set(base) ^ set(FACTORS)
    if unknown:
        raise ValueError(f"baseline must set exactly the factors {FACTORS}; got {sorted(base)}.")
    grid = {f: list(dict.fromkeys([base[f], *config["grid"].get(f, [])])) for f in FACTORS}
    cross = list(config.get("cross", []))
    rows = []
    for combo in itertools.product(*[grid[f] for f in cross]):
        rows.append({**base, **dict(zip(cross, combo))})
    for f in FACTORS:
        if f in cross:
            continue
        rows += [{**base, f: v} for v in grid[f]]
    unique: list[dict] = []
    for r in rows:
        if r not in unique:
            unique.append(r)
    df = pd.DataFrame(unique, columns=list(FACTORS))
    df["is_baseline"] = [r == base for r in unique]
    df.insert(0, "setting", [f"s{i:02d}" for i in range(len(df))])
    if n_train is not None:  # "all auxiliary labels" as a number, so it can be plotted
        df["n_aux_labels"] = df["n_aux_labels"].fillna(n_train).astype(int)
    return df


# ----------------------------------------------------------------------------- statistics


def paired_summary(treatment, control, ci: float = 0.95) -> dict[str, float]:
    """Paired comparison of per-seed values: mean difference, its t-interval and two paired tests.

    The one place that does the statistics (``scipy.stats.ttest_rel`` and ``wilcoxon``), so it can
    be swapped for ``mtbench.stats`` paired tests. With ``n < 2`` pairs, tests are NaN.
    """
    from scipy import stats

    a, b = np.asarray(treatment, float), np.asarray(control, float)
    d = a - b
    n = len(d)
    out = {"n": n, "mean_diff": float(d.mean()) if n else float("nan"), "sd_diff": float(d.std(ddof=1)) if n > 1 else float("nan"),
           "wins": int((d > 0).sum()), "ci_low": float("nan"), "ci_high": float("nan"),
           "p_ttest": float("nan"), "p_wilcoxon": float("nan")}
    if n >= 2:
        half = stats.t.ppf(0.5 + ci / 2, n - 1) * out["sd_diff"] / np.sqrt(n)
        out["ci_low"], out["ci_high"] = out["mean_diff"] - half, out["mean_diff"] + half
        with ignore_degenerate_input_warnings():
            out["p_ttest"] = float(stats.ttest_rel(a, b).pvalue)
            if np.any(d != 0):
                out["p_wilcoxon"] = float(stats.wilcoxon(a, b).pvalue)
    return out
