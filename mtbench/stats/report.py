"""``compare(...)``: models side by side with CIs, tests against a reference model, and the
published numbers next to ours.

Two inputs:

* ``{model name: Predictions table}`` - each model's predictions on the *same* cases (joined on
  ``sample_id``; mismatched case sets are refused). AUC gets a DeLong CI and DeLong's paired
  test against the reference; every other metric a (vectorised, stratified) bootstrap CI and a
  paired bootstrap test of the difference.
* a long results table (``model, task, metric, value`` and optionally ``ci_low, ci_high`` and a
  pairing key such as ``fold`` or ``seed``). With ``key`` the values are summarised per model
  (mean, t-interval over the keys) and each model is tested against the reference with a
  paired test joined on the key (:func:`mtbench.stats.paired.compare_paired`).

p-values are corrected across the models compared with the reference (Holm by default) and
shown as marks: ``*`` p < 0.05, ``**`` p < 0.01, ``***`` p < 0.001 (adjusted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mtbench.metrics import task_metrics
from mtbench.predictions import ID_COLUMN, task_arrays, tasks_from_attrs
from mtbench.stats.bootstrap import _interval, _metric_distribution, resample_indices
from mtbench.stats.paired import compare_paired
from mtbench.stats.ranking import correct_pvalues
from mtbench.stats.roc import delong_auc, delong_test
from mtbench.references import load_reference  # noqa: F401  (re-exported: one loader for published numbers)
from mtbench.tasks import Task, as_task_dict

__all__ = ["Comparison", "compare", "load_reference", "significance_mark", "predictions_from_scores"]

def significance_mark(p: float, alpha: float = 0.05) -> str:
    """``***`` / ``**`` / ``*`` for p below 0.001 / 0.01 / ``alpha``; empty otherwise."""
    if p is None or not np.isfinite(p):
        return ""
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    return "*" if p < alpha else ""


@dataclass
class Comparison:
    """The tidy comparison table and its Markdown/LaTeX renderings."""

    table: pd.DataFrame
    reference: str | None
    correction: str
    notes: list[str] = field(default_factory=list)

    def _cells(self, digits: int) -> pd.DataFrame:
        t = self.table.copy()

        def fmt(r):
            if not np.isfinite(r.value):
                return "n/a"
            s = f"{r.value:.{digits}f}"
            if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
                s += f" [{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"
            return s + (r.mark if r.mark not in ("ref", "") else "")

        t["cell"] = t.apply(fmt, axis=1)
        if "published" in t.columns:
            def pub(r):
                if not np.isfinite(r.published):
                    return ""
                s = f"{r.published:.{digits}f}"
                lo, hi = r.get("published_ci_low", np.nan), r.get("published_ci_high", np.nan)
                if np.isfinite(lo) and np.isfinite(hi):
                    s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
                return s
            t["pub_cell"] = t.apply(pub, axis=1)
        return t

    def wide(self, digits: int = 3) -> pd.DataFrame:
        """One row per (task, model), one column per metric (and ``<metric> (published)``)."""
        t = self._cells(digits)
        out = t.pivot_table(index=["task", "model"], columns="metric", values="cell", aggfunc="first", sort=False)
        cols = []
        for m in t["metric"].unique():
            cols.append(m)
            if "pub_cell" in t.columns and (t.loc[t.metric == m, "pub_cell"] != "").any():
                out[f"{m} (published)"] = t.pivot_table(index=["task", "model"], columns="metric", values="pub_cell",
                                                        aggfunc="first", sort=False)[m]
                cols.append(f"{m} (published)")
        out = out[cols].fillna("")
        out.columns.name = None
        return out

    def _footer(self) -> str:
        ref = f"each model vs {self.reference!r}" if self.reference else "no reference model"
        return (f"Values with {int(100 * self._ci())}% CIs; significance marks: {ref}, p adjusted ({self.correction}): "
                "* < 0.05, ** < 0.01, *** < 0.001.")

    def _ci(self) -> float:
        return float(self.table["ci"].iloc[0]) if "ci" in self.table.columns and len(self.table) else 0.95

    def to_markdown(self, digits: int = 3) -> str:
        """A GitHub-flavoured Markdown table (no extra dependency)."""
        w = self.wide(digits).reset_index()
        header = "| " + " | ".join(map(str, w.columns)) + " |"
        sep = "|" + "|".join("---" for _ in w.columns) + "|"
        body = ["| " + " | ".join(str(v) for v in row) + " |" for row in w.itertuples(index=False)]
        return "\n".join([header, sep, *body, "", self._footer()])

    def to_latex(self, digits: int = 3, caption: str | None = None, label: str | None = None) -> str:
        """A booktabs LaTeX table."""
        w = self.wide(digits).reset_index()

        def esc(s):
            s = str(s)
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
                s = s.replace(a, b)
            return re.sub(r"\*+", lambda m: "$^{" + m.group(0) + "}$", s)

        lines = [r"\begin{table}[t]", r"\centering"]
        if caption:
            lines.append(rf"\caption{{{esc(caption)}}}")
        if label:
            lines.append(rf"\label{{{label}}}")
        lines += [r"\begin{tabular}{" + "l" * 2 + "c" * (w.shape[1] - 2) + "}", r"\toprule",
                  " & ".join(esc(c) for c in w.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(v) for v in row) + r" \\" for row in w.itertuples(index=False)]
        lines += [r"\bottomrule", r"\end{tabular}", rf"\\[2pt]{{\footnotesize {esc(self._footer())}}}", r"\end{table}"]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:  # pragma: no cover - notebook display
        return self.to_markdown()


# ------------------------------------------------------------------------------ compare
def _attach_published(table: pd.DataFrame, published) -> pd.DataFrame:
    if published is None:
        return table
    pub = load_reference(published) if isinstance(published, (str, Path)) else published.copy()
    on = [c for c in ("model", "task", "metric") if c in pub.columns and c in table.columns]
    if "model" not in on or "value" not in pub.columns:
        raise ValueError(f"published needs columns 'model' and 'value' (and optionally task, metric); has {list(pub.columns)}.")
    keep = on + [c for c in ("value", "ci_low", "ci_high", "source") if c in pub.columns]
    pub = pub[keep].rename(columns={"value": "published", "ci_low": "published_ci_low", "ci_high": "published_ci_high",
                                    "source": "published_source"})
    if pub.duplicated(on).any():
        raise ValueError(f"published has duplicated rows for {on}.")
    out = table.merge(pub, on=on, how="left")
    for c in ("published", "published_ci_low", "published_ci_high"):
        if c not in out.columns:
            out[c] = np.nan
    return out


def _finish(rows: list[dict], reference, correction, alpha, published, notes) -> Comparison:
    t = pd.DataFrame(rows)
    t["p_adjusted"] = np.nan
    for _, idx in t.groupby(["task", "metric"], sort=False).groups.items():
        sub = t.loc[idx]
        has = sub["p_value"].notna()
        if has.any():
            t.loc[sub.index[has], "p_adjusted"] = correct_pvalues(sub.loc[has, "p_value"].to_numpy(), correction)
    t["significant"] = t["p_adjusted"] < alpha
    t["mark"] = [("ref" if m == reference else significance_mark(p, alpha)) for m, p in zip(t["model"], t["p_adjusted"])]
    return Comparison(_attach_published(t, published), reference, correction, notes)


def _compare_predictions(preds: Mapping[str, pd.DataFrame], reference, tasks, metrics, ci, n_boot, seed, stratify):
    names = list(preds)
    first = preds[names[0]]
    tasks = as_task_dict(tasks) if tasks is not None else tasks_from_attrs(first)
    rows = []
    for tname, task in tasks.items():
        arrays = {}
        for m in names:
            df = preds[m]
            if ID_COLUMN not in df.columns:
                raise KeyError(f"Predictions of {m!r} have no {ID_COLUMN!r} column; cases are matched by it.")
            if df[ID_COLUMN].duplicated().any():
                raise ValueError(f"Predictions of {m!r} have duplicated {ID_COLUMN}s.")
            lab = df[df[task.target_columns()].notna().all(axis=1)].set_index(ID_COLUMN).sort_index()
            arrays[m] = lab
        ids0 = arrays[names[0]].index
        for m in names[1:]:
            diff = ids0.symmetric_difference(arrays[m].index)
            if len(diff):
                raise ValueError(f"Models {names[0]!r} and {m!r} were scored on different {tname!r} cases "
                                 f"({len(diff)} unmatched, e.g. {diff[:5].tolist()}); compare them on the same cases.")
        ta = {m: task_arrays(arrays[m].loc[ids0].reset_index(), task) for m in names}
        y_ref = ta[names[0]].y
        for m in names[1:]:
            if not np.array_equal(ta[m].y, y_ref):
                raise ValueError(f"Targets of task {tname!r} differ between {names[0]!r} and {m!r} for the same cases.")
        n = len(y_ref)
        rng = np.random.default_rng(seed)
        strata = y_ref if (stratify and task.is_classification) else None
        index = resample_indices(rng, n, n_boot, None, strata)
        for metric in list(metrics.get(tname) if isinstance(metrics, Mapping) else metrics or task.metrics):
            dists = {}
            for m in names:
                a = ta[m]
                if metric == "auc" and task.kind == "binary":
                    r = delong_auc(a.y, a.prob, ci)
                    value, lo, hi, how = r.auc, r.ci_low, r.ci_high, "DeLong"
                else:
                    value = task_metrics(a, task, [metric])[metric]
                    dists[m] = _metric_distribution(a, task, metric, index, False)
                    lo, hi = _interval(value, dists[m], ci, "percentile")
                    how = "bootstrap"
                p, test = np.nan, ""
                if reference is not None and m != reference:
                    b = ta[reference]
                    if metric == "auc" and task.kind == "binary":
                        p, test = delong_test(a.y, a.prob, b.prob).p_value, "DeLong paired"
                    else:
                        if reference not in dists:
                            dists[reference] = _metric_distribution(b, task, metric, index, False)
                        d = dists[m] - dists[reference]
                        d = d[np.isfinite(d)]
                        p = float(min(1.0, max(2 * min(np.mean(d <= 0), np.mean(d >= 0)), 1 / max(len(d), 1)))) if len(d) else np.nan
                        test = "paired bootstrap"
                rows.append({"model": m, "task": tname, "metric": metric, "value": float(value), "ci_low": float(lo),
                             "ci_high": float(hi), "ci": ci, "ci_method": how, "n": n, "test": test, "p_value": p})
    return rows


def _compare_results(results: pd.DataFrame, reference, key, test, ci, metrics, test_kwargs):
    need = {"model", "metric", "value"}
    if not need <= set(results.columns):
        raise KeyError(f"results needs columns {sorted(need)}; has {list(results.columns)}.")
    df = results.copy()
    if "task" not in df.columns:
        df["task"] = ""
    if metrics is not None:
        df = df[df["metric"].isin(list(metrics))]
    rows = []
    for (tname, metric), part in df.groupby(["task", "metric"], sort=False):
        for m, sub in part.groupby("model", sort=False):
            if key is None:
                if len(sub) != 1:
                    raise ValueError(f"{len(sub)} rows for model {m!r}, {tname}/{metric}; pass key= to summarise over them.")
                r = sub.iloc[0]
                value, lo, hi = float(r.value), float(r.get("ci_low", np.nan)), float(r.get("ci_high", np.nan))
                how, n = ("given" if np.isfinite(lo) else ""), int(r.get("n", 1)) if "n" in sub.columns else 1
            else:
                v = sub["value"].to_numpy(float)
                value, n = float(v.mean()), len(v)
                if n > 1:
                    q = stats.t.ppf(0.5 + ci / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)
                    lo, hi = value - q, value + q
                else:
                    lo = hi = np.nan
                how = f"t over {n} {key if isinstance(key, str) else '/'.join(key)}"
            p, tname_ = np.nan, ""
            if reference is not None and key is not None and m != reference:
                res = compare_paired(part, m, reference, key, test=test, **dict(test_kwargs or {}))
                p = getattr(res, "p_value", np.nan)
                tname_ = getattr(res, "test", test)
            rows.append({"model": m, "task": tname, "metric": metric, "value": value, "ci_low": lo, "ci_high": hi, "ci": ci,
                         "ci_method": how, "n": n, "test": tname_, "p_value": p})
    return rows


def compare(
    source: Mapping[str, pd.DataFrame] | pd.DataFrame,
    reference: str | None = None,
    metrics: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    tasks: Sequence[Task] | Mapping[str, Task] | None = None,
    published: pd.DataFrame | str | Path | None = None,
    ci: float = 0.95,
    n_boot: int = 2000,
    correction: str = "holm",
    alpha: float = 0.05,
    key: str | Sequence[str] | None = None,
    test: str = "wilcoxon",
    test_kwargs: Mapping | None = None,
    stratify: bool = True,
    seed: int = 0,
) -> Comparison:
    """Compare models: a tidy table with CIs, tests against ``reference``, and published numbers.

    Parameters
    ----------
    source:
        ``{model: Predictions table}`` (same cases, matched by ``sample_id``) or a long results
        table with ``model, metric, value`` (``task``, ``ci_low``, ``ci_high`` and the ``key``
        columns optional).
    reference:
        The model every other model is tested against (``None``: no tests).
    metrics:
        Metric names (or ``{task: names}``); default each task's own metrics.
    published:
        Published numbers (``model, [task,] [metric,] value[, ci_low, ci_high, source]``), a CSV
        path, or the name of a table in ``mtbench/references``; shown beside ours.
    key, test, test_kwargs:
        For a results table with several rows per model (folds, seeds): the pairing key and the
        paired test (``"wilcoxon"``, ``"ttest"``, ``"nadeau_bengio"``); see
        :func:`mtbench.stats.paired.compare_paired`.

    The returned :class:`Comparison` has ``.table`` (columns ``model, task, metric, value,
    ci_low, ci_high, ci, ci_method, n, test, p_value, p_adjusted, significant, mark`` and the
    ``published*`` columns), ``.wide()``, ``.to_markdown()`` and ``.to_latex()``.
    """
    notes: list[str] = []
    if isinstance(source, Mapping):
        if len(source) < 1:
            raise ValueError("compare needs at least one model.")
        if reference is not None and reference not in source:
            raise KeyError(f"reference {reference!r} is not among the models {list(source)}.")
        rows = _compare_predictions(source, reference, tasks, metrics, ci, n_boot, seed, stratify)
    elif isinstance(source, pd.DataFrame):
        if reference is not None and reference not in set(source["model"]):
            raise KeyError(f"reference {reference!r} is not among the models {sorted(set(source['model']))}.")
        rows = _compare_results(source, reference, key, test, ci, metrics, test_kwargs)
        if reference is not None and key is None:
            notes.append("No pairing key given: no tests (pass key='fold' or 'seed' to test paired results).")
    else:
        raise TypeError(f"source must be a dict of Predictions tables or a results DataFrame, got {type(source).__name__}.")
    return _finish(rows, reference, correction, alpha, published, notes)


def predictions_from_scores(
    frame: pd.DataFrame, target: str, scores: Sequence[str], task: str | None = None, id_column: str | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, pd.DataFrame]:
    """Turn score columns of an ordinary table into one binary Predictions table per score.

    For scores that are not model outputs (biomarkers, clinical grades): ``target`` must be 0/1;
    ``<task>.prob`` holds the raw score (only its order matters for AUC) and ``<task>.pred`` is
    ``score >= threshold`` (default: the median score). ``sample_id`` comes from ``id_column``
    or the row position.
    """
    task = task or target
    y = frame[target]
    if not set(pd.unique(y.dropna())) <= {0, 1, True, False}:
        raise ValueError(f"{target!r} must be coded 0/1; found {sorted(pd.unique(y.dropna()).tolist())[:10]}.")
    ids = frame[id_column].astype(str).to_numpy() if id_column else np.array([f"case{i:05d}" for i in range(len(frame))])
    t = Task(task, "binary")
    out = {}
    for s in scores:
        thr = (thresholds or {}).get(s, float(frame[s].median()))
        df = pd.DataFrame({ID_COLUMN: ids, f"{task}.target": y.to_numpy(float), f"{task}.prob": frame[s].to_numpy(float),
                           f"{task}.pred": (frame[s].to_numpy(float) >= thr).astype(int)})
        df.attrs["tasks"] = [t.to_dict()]
        out[s] = df
    return out
