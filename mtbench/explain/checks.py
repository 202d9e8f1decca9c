"""Should a saliency map be trusted? Two checks.

Model-parameter randomisation (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018)
    Re-initialise the model's layers one after another, from the output down to the input
    (*cascading*), or one at a time (*independent*), recompute the maps and measure their Spearman
    rank correlation with the maps of the trained model. A method whose maps stay similar while
    the weights that produced the prediction are destroyed is not explaining the model (an edge
    detector passes this "check" perfectly: its correlation stays 1). Adebayo et al. report guided
    backpropagation among the methods that barely change; Grad-CAM changes.

Localisation on a known lesion (the measured check)
    Where the lesion is known (a phantom's hematoma mask, the synthetic X-ray's opacity mask),
    measure the fraction of the map's mass inside the mask ("energy-based pointing game", Wang et
    al. 2020, Score-CAM) and whether the map's maximum falls inside it (pointing game, Zhang et al.
    2018, with an optional tolerance in pixels), for the trained model and for a fully randomised
    copy. Chance is the mask's share of the image for both scores.

Layers: the leaf modules that own parameters (convolutions, linear layers, normalisation
layers), taken in reverse registration order (the explained head's first, then the backbone's),
which is output-to-input order for sequential networks. Re-initialisation uses each layer's own
``reset_parameters()`` (PyTorch's default initialisation; Adebayo et al. used the networks'
original initialisers, a detail that is a choice here: ``reinit=``), under a fixed seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import ndimage, stats
from torch import nn
from tqdm.auto import tqdm

from mtbench.explain.saliency import Saliency, explain, preserved_state
from mtbench.explain.targets import TaskHead, head_targets
from mtbench.tasks import Task

Explainer = Callable[[nn.Module, torch.Tensor, Task, Any], np.ndarray]


# ------------------------------------------------------------------ layers and reinit
def randomization_layers(model: nn.Module, task: Task | str) -> list[str]:
    """Names of the layers the randomisation check re-initialises, output first.

    The explained head's parameterised leaf modules, then the backbone's; other heads are left
    out (they do not influence this head's output).
    """
    name = task.name if isinstance(task, Task) else task
    layers = []
    for mod_name, m in model.named_modules():
        if next(m.children(), None) is not None:
            continue
        if not any(True for _ in m.parameters(recurse=False)):
            continue
        if mod_name.startswith("heads.") and not mod_name.startswith(f"heads.{name}."):
            continue
        layers.append(mod_name)
    head = [n for n in layers if n.startswith(f"heads.{name}.")]
    rest = [n for n in layers if n not in head]
    return head[::-1] + rest[::-1]


def reinitialize(module: nn.Module, generator_seed: int = 0, reinit: str = "default") -> None:
    """Re-initialise one layer's parameters in place.

    ``reinit="default"``: the layer's ``reset_parameters()`` (falls back to a Gaussian with each
    tensor's own standard deviation when it has none); ``"gaussian"``: every parameter drawn from
    ``N(0, 0.01^2)``, as in Adebayo et al.'s truncated-normal variant.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        with torch.no_grad():
            if reinit == "default" and hasattr(module, "reset_parameters"):
                module.reset_parameters()
                return
            if reinit not in ("default", "gaussian"):
                raise ValueError(f"reinit must be 'default' or 'gaussian', got {reinit!r}.")
            for p in module.parameters(recurse=False):
                std = 0.01 if reinit == "gaussian" else float(p.detach().float().std().nan_to_num(0.01))
                p.normal_(0.0, max(std, 1e-3))


def randomized_copy(model: nn.Module, task: Task | str, layers: Sequence[str] | None = None, seed: int = 0, reinit: str = "default") -> nn.Module:
    """A deep copy of ``model`` with ``layers`` (default: all of :func:`randomization_layers`) re-initialised."""
    rnd = copy.deepcopy(model)
    names = list(randomization_layers(model, task) if layers is None else layers)
    for i, n in enumerate(names):
        reinitialize(rnd.get_submodule(n), seed + i, reinit)
    return rnd


def _fixed_targets(model: nn.Module, images: torch.Tensor, task: Task, target: Any) -> Any:
    """Resolve default (predicted) targets once on the trained model, so every step explains the same scalar."""
    if target is not None and not (isinstance(target, (list, tuple)) and any(t is None for t in target)):
        return target
    head = TaskHead(model, task)
    with preserved_state(model), torch.no_grad():
        model.eval()
        out = head(images.to(next(model.parameters()).device))
    return head_targets(task, out, target)


def _run_explainer(explainer: str | Explainer, model, images, task, target, kwargs) -> np.ndarray:
    if callable(explainer):
        return np.asarray(explainer(model, images, task, target), dtype=np.float32)
    return explain(model, images, task, method=explainer, target=target, **kwargs).maps


def spearman_per_sample(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation between ``a[i]`` and ``b[i]`` (flattened) for each sample.

    NaN where either map is constant (its ranks carry no information).
    """
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        x, y = np.ravel(a[i]), np.ravel(b[i])
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            out[i] = stats.spearmanr(x, y).statistic
    return out


@dataclass
class RandomizationResult:
    """Output of :func:`cascading_randomization`.

    ``table``: one row per (step, sample) with ``step`` (0 = trained model), ``layer`` (the layer
    randomised at that step) and ``spearman`` (rank correlation of the map with the trained
    model's map; the maps of :func:`~mtbench.explain.explain` are non-negative, so this is the
    paper's "absolute value" variant). ``maps``: ``{step: [B, *spatial]}``.
    """

    table: pd.DataFrame
    maps: dict[int, np.ndarray]
    layers: list[str]
    method: str
    task: str
    mode: str
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean, SD and count of the rank correlation per step."""
        g = self.table.groupby(["step", "layer"], sort=False)["spearman"]
        return g.agg(["mean", "std", "count"]).reset_index()

    def final_correlation(self) -> float:
        """Mean rank correlation after the last step (every layer randomised when cascading)."""
        last = self.table[self.table["step"] == self.table["step"].max()]
        return float(last["spearman"].mean())

    def passed(self, threshold: float = 0.5) -> bool:
        """True when the maps of the fully randomised model correlate with the trained ones below ``threshold``."""
        return self.final_correlation() < threshold


def cascading_randomization(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    task: Task,
    explainer: str | Explainer = "gradcam",
    target: Any = None,
    layers: Sequence[str] | None = None,
    mode: str = "cascading",
    seed: int = 0,
    reinit: str = "default",
    progress: bool = False,
    **explain_kwargs,
) -> RandomizationResult:
    """The model-parameter randomisation test of Adebayo et al. (2018) for one task head.

    Parameters
    ----------
    model, images, task, target:
        As for :func:`~mtbench.explain.explain`; default targets (the predicted class) are fixed
        on the trained model, so every step explains the same scalar.
    explainer:
        A method name of :func:`~mtbench.explain.list_methods`, or a callable
        ``explainer(model, images, task, target) -> maps [B, *spatial]`` (to test any explainer,
        e.g. one that ignores the model).
    layers:
        Layers to randomise in order; default :func:`randomization_layers` (output to input).
    mode:
        ``"cascading"`` (cumulative, as in the paper's main figure) or ``"independent"`` (one layer
        at a time, the others trained).
    seed, reinit:
        Re-initialisation seed and scheme (:func:`reinitialize`).

    The model itself is never changed: randomisation happens on a deep copy.
    """
    if mode not in ("cascading", "independent"):
        raise ValueError(f"mode must be 'cascading' or 'independent', got {mode!r}.")
    x = torch.as_tensor(images, dtype=torch.float32)
    names = list(randomization_layers(model, task) if layers is None else layers)
    if not names:
        raise ValueError("No layer with parameters to randomise.")
    fixed = _fixed_targets(model, x, task, target)
    base = _run_explainer(explainer, model, x, task, fixed, explain_kwargs)
    maps = {0: base}
    rows = [
        {"step": 0, "layer": "trained", "sample": i, "spearman": 1.0}
        for i in range(len(base))
    ]
    work = copy.deepcopy(model)
    for step, name in enumerate(tqdm(names, desc="randomising", disable=not progress), start=1):
        if mode == "independent":
            work = copy.deepcopy(model)
        reinitialize(work.get_submodule(name), seed + step - 1, reinit)
        m = _run_explainer(explainer, work, x, task, fixed, explain_kwargs)
        maps[step] = m
        rho = spearman_per_sample(base, m)
        rows += [{"step": step, "layer": name, "sample": i, "spearman": float(rho[i])} for i in range(len(m))]
    name = explainer if isinstance(explainer, str) else getattr(explainer, "__name__", "custom")
    return RandomizationResult(pd.DataFrame(rows), maps, names, name, task.name, mode, {"seed": seed, "reinit": reinit})


# ------------------------------------------------------------------------ localisation
def localization_scores(maps: np.ndarray, masks: np.ndarray, tolerance: int = 0) -> pd.DataFrame:
    """Per-sample agreement of saliency maps with lesion masks.

    Columns: ``sample``, ``mass_inside`` (sum of the map inside the mask / sum of the map),
    ``hit`` (the map's maximum, first in raster order on ties, lies inside the mask or within
    ``tolerance`` pixels/voxels of it, Euclidean distance; Zhang et al. used 15 pixels at 224), ``mask_fraction`` (the mask's share of the image: the chance
    level of both scores for a map that knows nothing), ``has_lesion``, ``zero_map`` (the map is
    all zero: its ``mass_inside`` is NaN and its ``hit`` 0, and summaries count it in ``zero_maps``
    rather than average it away). Samples with an empty mask
    are kept with NaN scores and ``has_lesion=False``; summaries count them, never drop them.
    """
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks).astype(bool)
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must have the same shape [B, *spatial].")
    rows = []
    for i, (m, k) in enumerate(zip(maps, masks)):
        if not k.any():
            rows.append({"sample": i, "mass_inside": np.nan, "hit": np.nan, "mask_fraction": 0.0, "has_lesion": False, "zero_map": not (m > 0).any()})
            continue
        region = ndimage.distance_transform_edt(~k) <= tolerance if tolerance > 0 else k
        total = m.sum()
        mass = float((m * k).sum() / total) if total > 0 else np.nan
        peak = np.unravel_index(int(np.argmax(m)), m.shape)
        zero = not (m > 0).any()
        rows.append(
            {"sample": i, "mass_inside": mass, "hit": 0.0 if zero else float(region[peak]),
             "mask_fraction": float(region.mean() if tolerance else k.mean()), "has_lesion": True, "zero_map": zero}
        )
    return pd.DataFrame(rows)


def summarize_localization(scores: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Mean fraction inside (with SD), pointing-game hit rate (with a Wilson 95% CI) and chance, per group.

    ``zero_maps`` counts all-zero maps: their fraction inside is undefined and left out of the
    mean (so read ``mass_inside`` together with ``zero_maps``); they count as pointing-game misses.
    """
    from statsmodels.stats.proportion import proportion_confint

    groups = [((), scores)] if by is None else scores.groupby(by, sort=False)
    out = []
    for key, sub in groups:
        les = sub[sub["has_lesion"]]
        n, hits = len(les), int(les["hit"].sum())
        lo, hi = proportion_confint(hits, n, method="wilson") if n else (np.nan, np.nan)
        row = dict(zip([by] if isinstance(by, str) else (by or []), key if isinstance(key, tuple) else (key,)))
        row.update(
            {
                "n": n,
                "no_lesion": int((~sub["has_lesion"]).sum()),
                "zero_maps": int(sub["zero_map"].sum()) if "zero_map" in sub else 0,
                "mass_inside": les["mass_inside"].mean(),
                "mass_inside_sd": les["mass_inside"].std(),
                "hit_rate": hits / n if n else np.nan,
                "hit_ci_low": lo,
                "hit_ci_high": hi,
                "chance": les["mask_fraction"].mean(),
            }
        )
        out.append(row)
    return pd.DataFrame(out)


def measured_check(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    masks: np.ndarray,
    task: Task,
    method: str = "gradcam",
    target: Any = None,
    tolerance: int = 0,
    seed: int = 0,
    reinit: str = "default",
    rectify: str = "abs",
    **explain_kwargs,
) -> tuple[pd.DataFrame, dict[str, Saliency]]:
    """Localisation of the lesion by the trained model's maps vs a fully randomised copy's.

    Returns ``(scores, saliency)``: ``scores`` is :func:`localization_scores` with a ``model``
    column (``trained`` / ``randomized``; summarise with ``summarize_localization(scores, "model")``),
    ``saliency`` the two :class:`~mtbench.explain.Saliency` objects. The target is fixed on the
    trained model (the same scalar is explained for both). Grad-CAM maps are ``rectify="abs"``
    by default, for both models: with the published ReLU a randomised head's map is usually all
    zero (its evidence is negative everywhere), an empty control that cannot be beaten or fail to
    be (see :mod:`mtbench.explain.cam`); ``rectify="relu"`` restores the published map.
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    if method in ("gradcam", "guided_gradcam"):
        explain_kwargs["rectify"] = rectify
    fixed = _fixed_targets(model, x, task, target)
    rnd = randomized_copy(model, task, seed=seed, reinit=reinit)
    sal = {
        "trained": explain(model, x, task, method=method, target=fixed, **explain_kwargs),
        "randomized": explain(rnd, x, task, method=method, target=fixed, **explain_kwargs),
    }
    parts = []
    for name, s in sal.items():
        df = localization_scores(s.maps, masks, tolerance=tolerance)
        df.insert(0, "model", name)
        df.insert(1, "method", method)
        parts.append(df)
    return pd.concat(parts, ignore_index=True), sal


def localization_verdict(scores: pd.DataFrame, min_ratio: float = 3.0, ci: float = 0.95, what: str = "saliency") -> dict[str, Any]:
    """Numbers and sentences for "the trained model's maps find the lesion, and beat the randomised model's".

    ``scores``: :func:`measured_check` output (both models, one method and head). Per lesion image,
    the fraction of map mass inside the lesion is divided by the lesion's share of the image
    (chance = 1); ``ratio_trained`` / ``ratio_randomized`` are the mean fraction inside over the
    mean share (the summary's ``mass_inside / chance``). The comparison is paired by image: the
    mean difference in multiples of chance with a ``ci`` paired-t interval. ``beats_randomized``
    is True only when that interval lies above 0 *and* neither model has an all-zero map (an
    empty control cannot be beaten); ``localises`` when ``ratio_trained >= min_ratio``.
    """
    from mtbench.verdict import difference_verdict, threshold_verdict

    les = scores[scores["has_lesion"]]
    by = {m: les[les["model"] == m].set_index("sample") for m in ("trained", "randomized")}
    if any(len(v) == 0 for v in by.values()):
        raise ValueError("scores need lesion rows for both 'trained' and 'randomized' (measured_check output).")
    t, r = by["trained"], by["randomized"].reindex(by["trained"].index)
    ratio = {m: float(v["mass_inside"].mean() / v["mask_fraction"].mean()) for m, v in by.items()}
    zero = {m: int(v["zero_map"].sum()) for m, v in by.items()}
    d = ((t["mass_inside"] - r["mass_inside"]) / t["mask_fraction"]).dropna().to_numpy()
    if len(d) >= 2 and np.ptp(d) > 0:
        lo, hi = stats.ttest_1samp(d, 0.0).confidence_interval(ci)
    else:
        lo = hi = np.nan
    diff = float(d.mean()) if len(d) else np.nan
    beats = bool(np.isfinite(lo) and lo > 0 and zero["trained"] == 0 and zero["randomized"] == 0)
    text = [
        threshold_verdict(ratio["trained"], min_ratio, f"{what}: trained model's mass inside the lesion, x chance", digits=2),
        f"randomised model: {ratio['randomized']:.2f}x chance; all-zero maps: trained {zero['trained']}, randomised {zero['randomized']} of {len(t)}.",
        difference_verdict(diff, lo, hi, "trained minus randomised, x chance per image (paired)", digits=2),
        ("The trained model beats the randomised model." if beats else
         "The trained model does NOT beat the randomised model" + (" (an all-zero map makes the comparison empty)." if any(zero.values()) else ".")),
    ]
    return {"n": int(len(t)), "ratio_trained": ratio["trained"], "ratio_randomized": ratio["randomized"],
            "zero_trained": zero["trained"], "zero_randomized": zero["randomized"], "difference": diff,
            "low": float(lo), "high": float(hi), "beats_randomized": beats,
            "localises": bool(ratio["trained"] >= min_ratio), "text": "\n".join(text)}
