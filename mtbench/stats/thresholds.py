"""ROC "coords": every threshold with its sensitivity and specificity, and the best one.

Thresholds are placed as pROC (Robin et al. 2011) places them: ``-inf``, the midpoints between
consecutive distinct scores, ``+inf``, so a reported cut-off never sits on an observed score and
"score >= threshold means positive" (pROC's ``direction = "<"``) is unambiguous. (scikit-learn's
``roc_curve``, used by :func:`mtbench.stats.roc.roc_points`, returns observed scores instead.)

:func:`best_threshold` picks the threshold maximising Youden's ``J = sensitivity + specificity - 1``
or minimising the distance to the top-left corner ``(1 - sens)^2 + (1 - spec)^2`` (pROC's
``best.method = "youden"`` / ``"closest.topleft"``), and gives Wilson CIs of sensitivity and
specificity *at that threshold*. Those CIs treat the threshold as fixed; a threshold chosen on the
same data is optimistic, so validate it on other patients (or bootstrap the whole selection).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mtbench.stats.roc import _binary_labels

__all__ = ["ThresholdResult", "roc_coords", "best_threshold"]

_METHODS = {"youden": "youden", "closest.topleft": "closest.topleft", "closest-topleft": "closest.topleft",
            "topleft": "closest.topleft"}


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold with sensitivity/specificity and their Wilson CIs (positive if score >= threshold)."""

    threshold: float
    sensitivity: float
    specificity: float
    sensitivity_ci: tuple[float, float]
    specificity_ci: tuple[float, float]
    youden: float
    method: str
    n_pos: int
    n_neg: int
    ci: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        p = 100 * self.ci
        return (f"threshold {self.threshold:.4g} ({self.method}): sensitivity {self.sensitivity:.3f} "
                f"({p:.0f}% CI {self.sensitivity_ci[0]:.3f}-{self.sensitivity_ci[1]:.3f}), specificity "
                f"{self.specificity:.3f} ({self.specificity_ci[0]:.3f}-{self.specificity_ci[1]:.3f})")


def roc_coords(y, score, direction: str = "<") -> pd.DataFrame:
    """All thresholds of the empirical ROC curve, pROC style: columns ``threshold, sensitivity,
    specificity, tp, fp, tn, fn``, thresholds increasing from ``-inf`` to ``+inf``.

    ``direction="<"``: higher scores mean positive (``score >= threshold`` is called positive);
    ``">"``: lower scores mean positive (``score <= threshold`` is called positive).
    """
    y = _binary_labels(y)
    s = np.asarray(score, dtype=float)
    if s.shape != y.shape:
        raise ValueError(f"score has shape {s.shape}, labels {y.shape}.")
    if np.isnan(s).any():
        raise ValueError("score contains NaN; every case needs a score.")
    if direction not in ("<", ">"):
        raise ValueError(f"direction must be '<' or '>', got {direction!r}.")
    u = np.unique(s)
    thr = np.r_[-np.inf, (u[:-1] + u[1:]) / 2, np.inf]
    t = thr if direction == "<" else thr[::-1]
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    if direction == "<":  # positive call: s >= t
        tp = len(pos) - np.searchsorted(pos, t, side="left")
        fp = len(neg) - np.searchsorted(neg, t, side="left")
    else:  # positive call: s <= t
        tp = np.searchsorted(pos, t, side="right")
        fp = np.searchsorted(neg, t, side="right")
    n_pos, n_neg = len(pos), len(neg)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"ROC coords need both classes; got {n_pos} positive and {n_neg} negative cases.")
    return pd.DataFrame({"threshold": t, "sensitivity": tp / n_pos, "specificity": 1 - fp / n_neg,
                         "tp": tp, "fp": fp, "tn": n_neg - fp, "fn": n_pos - tp})


def best_threshold(y, score, method: str = "youden", ci: float = 0.95, direction: str = "<") -> ThresholdResult:
    """The best threshold by Youden's J or closeness to the top-left corner, with Wilson CIs.

    Ties (several thresholds equally good) resolve to the lowest threshold. The infinite
    thresholds (everything or nothing positive) are never chosen.
    """
    from statsmodels.stats.proportion import proportion_confint

    key = _METHODS.get(method.lower().replace("_", "."))
    if key is None:
        raise ValueError(f"method must be 'youden' or 'closest.topleft', got {method!r}.")
    c = roc_coords(y, score, direction)
    c = c[np.isfinite(c["threshold"])]
    if c.empty:
        raise ValueError("All scores are equal: there is no finite threshold to choose.")
    if key == "youden":
        crit = (c["sensitivity"] + c["specificity"]).to_numpy()
    else:
        crit = -((1 - c["sensitivity"]) ** 2 + (1 - c["specificity"]) ** 2).to_numpy()
    row = c.iloc[int(np.argmax(crit))]
    n_pos, n_neg = int(row.tp + row.fn), int(row.tn + row.fp)
    alpha = 1 - ci
    se_ci = proportion_confint(int(row.tp), n_pos, alpha=alpha, method="wilson")
    sp_ci = proportion_confint(int(row.tn), n_neg, alpha=alpha, method="wilson")
    return ThresholdResult(float(row.threshold), float(row.sensitivity), float(row.specificity),
                           (float(se_ci[0]), float(se_ci[1])), (float(sp_ci[0]), float(sp_ci[1])),
                           float(row.sensitivity + row.specificity - 1), key, n_pos, n_neg, ci)
