"""Known-answer worlds: what the synthetic chest X-rays and the head-CT phantom are built to contain.

The smoke profile teaches with generated data, so every claim a notebook makes can be checked
against the truth. This module computes that truth from each generator's latent variables
(a Monte-Carlo sample of the stated generative model; no images are drawn):

* :func:`cxr_known_answer` for :func:`mtbench.data.make_synthetic_cxr`;
* :func:`phantom_known_answer` for :func:`mtbench.data.make_head_ct_phantom`;

and holds the measured smoke settings (:data:`SMOKE_PHANTOM`), at which small random-init
models learn on a 2-core CPU. docs/worlds.md gives the designs, ceilings and measurements.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from mtbench.data.phantom import HeadCTPhantomConfig, _sigmoid, _solve_intercept, gcs_ordinal
from mtbench.data.synthetic import SyntheticCXRConfig, flip_labels


def cxr_known_answer(config: SyntheticCXRConfig | None = None, n_mc: int = 200_000, **overrides) -> dict:
    """The world's ceilings and task relations, from its latent variables (no images drawn).

    Returns a dict: ``bayes_auc`` ``{"prognosis": ...}`` (the best AUC any image model can reach
    against the observed, possibly noisy, labels), ``bayes_pearson_r`` ``{"severity": 1.0,
    "heart_size": 1.0}`` (both are drawn visibly into the image), ``related_strength`` (share of
    the variance of prognosis's latent logit that severity explains), ``unrelated_auc`` (AUC of
    prognosis scored by heart size: 0.5 by construction, reported as sampled), ``prevalence``
    and ``n_mc``. Deterministic for a given config.

    >>> ka = cxr_known_answer(n_mc=20_000)
    >>> 0.88 < ka["bayes_auc"]["prognosis"] < 0.93
    True
    """
    from sklearn.metrics import roc_auc_score

    cfg = config or SyntheticCXRConfig()
    if overrides:
        cfg = SyntheticCXRConfig(**{**asdict(cfg), **overrides})
    rng = np.random.default_rng([cfg.seed, 99])
    burden = rng.beta(cfg.burden_a, cfg.burden_b, size=n_mc)
    severity = rng.binomial(3, burden[:, None], size=(n_mc, 6)).sum(axis=1)
    signal = cfg.prognosis_slope * (severity - cfg.prognosis_center)
    logit = signal + cfg.prognosis_noise * rng.normal(size=n_mc)
    y = (rng.uniform(size=n_mc) < 1 / (1 + np.exp(-logit))).astype(int)
    if cfg.label_noise > 0:
        y = flip_labels(y, cfg.label_noise, rng).astype(int)
    heart = np.exp(max(cfg.heart_size_sd, 1e-3) * rng.normal(size=n_mc))
    # P(y=1 | S) is increasing in S, so ranking by S is Bayes-optimal for AUC.
    return {
        "bayes_auc": {"prognosis": float(roc_auc_score(y, severity))},
        "bayes_pearson_r": {"severity": 1.0, "heart_size": 1.0},
        "related_strength": float(np.var(signal) / (np.var(signal) + cfg.prognosis_noise**2 + np.pi**2 / 3)),
        "unrelated_auc": float(roc_auc_score(y, heart)),
        "prevalence": float(y.mean()),
        "n_mc": int(n_mc),
    }


def phantom_known_answer(config: HeadCTPhantomConfig | None = None, n_mc: int = 10_000, inner: int = 32, **overrides) -> dict:
    """The phantom's ceilings and task relations, from its latents (Monte Carlo, no volumes drawn).

    What the image shows: hematoma volume (approximated here by the target volume; the measured
    mask differs where the ellipsoid is clipped to the brain), location, heterogeneity and age
    (through atrophy, exactly for ages over 60). What it cannot show: the GCS noise and the
    prognosis noise. The Bayes-optimal score of a task is its probability given what is shown,
    averaged over ``inner`` draws of what is not. Returns a dict with

    * ``bayes_auc``: ``prognosis``, ``gcs_bin``, ``age_80`` (1.0: age is a deterministic function
      of the atrophy for ages over 60; ``age_80`` needs only that), ``growth`` and, if enabled,
      ``calcification`` (1.0: fully visible); ``bayes_qwk`` ``{"gcs_ord": ...}`` (the most likely
      class given the image); ``bayes_pearson_r`` ``{"hematoma_ml": 1.0}``;
    * ``clinical_auc_prognosis``: the ceiling if GCS were also known (the tabular ``p_poor``);
    * ``relation``: AUC of prognosis scored by each auxiliary label alone (how much each
      auxiliary task is tied to prognosis; 0.5 for the unrelated calcification);
    * ``prevalence`` per label and ``n_mc``.
    """
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    cfg = config or HeadCTPhantomConfig()
    if overrides:
        cfg = HeadCTPhantomConfig(**{**asdict(cfg), **overrides})
    rng = np.random.default_rng([cfg.seed, 99])
    n = n_mc
    age = np.clip(rng.normal(cfg.age_mean, cfg.age_sd, n), cfg.age_min, cfg.age_max).round(0)
    loc = rng.choice(3, size=n, p=cfg.location_probs)
    vol = np.clip(np.exp(rng.normal(math.log(cfg.volume_median_ml), cfg.volume_sigma, n)), cfg.volume_min_ml, cfg.volume_max_ml)
    het = rng.uniform(0, 1, n)
    gloc = np.asarray(cfg.gcs_location)[loc]

    def gcs_of(e):
        return np.clip(np.round(15 - cfg.gcs_per_ml * vol[..., None] - gloc[..., None] + cfg.gcs_noise * e), 3, 15)

    def lp_of(g):
        return (cfg.prog_gcs * (15 - g) + (cfg.prog_age * (age - 70) / 10 + cfg.prog_volume * vol / 10
                + np.asarray(cfg.prog_location)[loc])[..., None])

    gcs = gcs_of(rng.normal(size=(n, 1)))[:, 0]
    noise_ref = cfg.prog_noise * np.random.default_rng(12345).normal(0, 1, 4000)
    # intercept as make_head_ct_phantom solves it (on a 2000-patient subsample, for speed)
    lp = lp_of(gcs[:, None])[:, 0]
    b0 = _solve_intercept((lp[:2000, None] + noise_ref[None, :200]).ravel(), cfg.poor_prevalence)
    p_clin = _sigmoid(lp + b0)
    poor = (rng.uniform(size=n) < _sigmoid(lp + b0 + cfg.prog_noise * rng.normal(size=n))).astype(int)
    # what the image shows: average over the hidden GCS noise and prognosis noise
    g_in = gcs_of(rng.normal(size=(n, inner)))
    p_img = _sigmoid(lp_of(g_in) + b0 + cfg.prog_noise * rng.normal(size=(n, inner))).mean(axis=1)
    p_gcs8 = (g_in <= 8).mean(axis=1)
    ord_in = gcs_ordinal(g_in.ravel()).reshape(n, inner)
    ord_best = np.stack([(ord_in == k).mean(axis=1) for k in range(3)], axis=1).argmax(axis=1)
    glp = cfg.growth_heterogeneity * het + cfg.growth_log_volume * np.log(np.maximum(vol, 0.1))
    p_growth = _sigmoid(glp + _solve_intercept(glp, cfg.growth_prevalence))
    growth = (rng.uniform(size=n) < p_growth).astype(int)
    labels = {"gcs_bin": (gcs <= 8).astype(int), "gcs_ord": gcs_ordinal(gcs), "age_80": (age >= 80).astype(int),
              "growth": growth}
    bayes = {"prognosis": roc_auc_score(poor, p_img), "gcs_bin": roc_auc_score(labels["gcs_bin"], p_gcs8),
             "age_80": 1.0, "growth": roc_auc_score(growth, p_growth)}
    relation = {k: roc_auc_score(poor, v) for k, v in {**labels, "hematoma_ml": vol}.items()}
    if cfg.calcification_prevalence > 0:
        calc = (np.random.default_rng([cfg.seed, 98]).uniform(size=n) < cfg.calcification_prevalence).astype(int)
        bayes["calcification"], relation["calcification"] = 1.0, roc_auc_score(poor, calc)
        labels["calcification"] = calc
    return {
        "bayes_auc": {k: float(v) for k, v in bayes.items()},
        "bayes_qwk": {"gcs_ord": float(cohen_kappa_score(labels["gcs_ord"], ord_best, weights="quadratic"))},
        "bayes_pearson_r": {"hematoma_ml": 1.0},
        "clinical_auc_prognosis": float(roc_auc_score(poor, p_clin)),
        "relation": {k: float(v) for k, v in relation.items()},
        "prevalence": {"prognosis": float(poor.mean()), **{k: float(np.mean(v)) for k, v in labels.items() if k != "gcs_ord"}},
        "n_mc": int(n),
    }


#: Head-CT phantom settings for the smoke profile (pass as ``make_head_ct_phantom(**SMOKE_PHANTOM, ...)``
#: or into an experiment's ``data.phantom``). The default phantom is tuned to the published data
#: set's prevalences and is hard: its image-based ceilings are prognosis AUC 0.79, GCS<=8 AUC 0.87,
#: GCS ordinal QWK 0.57, growth AUC 0.74, too close to the smoke targets (0.75, 0.4, ..., balanced
#: accuracy 0.6) for a small random-init 3D model trained for a minute. This world keeps the same
#: structure with less hidden noise and stronger visible effects; its ceilings
#: (``phantom_known_answer(**SMOKE_PHANTOM)``, 10,000 draws) are prognosis 0.89, GCS<=8 0.99,
#: GCS ordinal QWK 0.85, age>=80 1.0, growth 0.91 (prevalences: poor 0.62, GCS<=8 0.28, age>=80
#: 0.27, growth 0.30).
SMOKE_PHANTOM = {
    "gcs_noise": 0.8,
    "gcs_per_ml": 0.2,
    "prog_noise": 0.2,
    "prog_volume": 1.0,
    "prog_age": 1.0,
    "growth_heterogeneity": 8.0,
    "growth_log_volume": 1.0,
}

#: The :data:`SMOKE_PHANTOM` world with brain atrophy strong enough to see at the smoke
#: resolution (``atrophy_per_decade`` 0.5 instead of 0.15: ventricles +50 % per decade over 60,
#: the CSF rim +1 mm per decade). At 16x32x32 (7 mm in-plane voxels) the default atrophy is below
#: a voxel and age >= 80 was not learned (test AUC 0.58); with this setting the ventricles' size
#: shows through partial volume. Only the image changes (the labels and ceilings are those of
#: ``SMOKE_PHANTOM``: age >= 80 is a deterministic function of the atrophy either way). The basis
#: of :data:`SMOKE_PHANTOM_COBO`, the world of :mod:`mtbench.experiments.cobo2024`'s smoke profile.
SMOKE_PHANTOM_AGE = {**SMOKE_PHANTOM, "atrophy_per_decade": 0.5}

#: The :data:`SMOKE_PHANTOM` world for the hematoma-volume/prognosis experiment
#: (:mod:`mtbench.experiments.gong2023`): prognosis leans on volume (``prog_volume`` 2.0) more than
#: on age (``prog_age`` 0.3, since age is not visible at 16x32x32), and the clot's hypodense spots
#: are milder (``spot_hu`` 55 instead of 35) so the clot stays distinct from the oedema at the smoke
#: resolution. Prognosis ceiling from the latents: AUC 0.92.
SMOKE_PHANTOM_ICH = {**SMOKE_PHANTOM, "prog_volume": 2.0, "prog_age": 0.3, "spot_hu": 55.0}

#: The world of :mod:`mtbench.experiments.cobo2024`'s smoke profile: :data:`SMOKE_PHANTOM_AGE`
#: (atrophy visible at 16x32x32) with GCS tied more closely to what the image shows
#: (``gcs_per_ml`` 0.3 instead of 0.2, ``gcs_noise`` 0.5 instead of 0.8) and prognosis leaning more
#: on the hematoma volume (``prog_volume`` 2.5 instead of 1.0). In the ``SMOKE_PHANTOM_AGE`` world the
#: small DenseNet arm reached a GCS ordinal QWK of only 0.30 (ceiling 0.85); here the severe GCS
#: class is more common and GCS is closer to the image. With ``prog_volume`` 1.5 the single-task
#: DenseNet's prognosis AUC fell to 0.74 on one phantom/training seed; at 2.5 every arm stayed >= 0.79 on
#: phantom/training seeds 0-3 (1 torch thread) and seeds 0, 2 (2 threads) (docs/worlds.md). Ceilings (``phantom_known_answer(n_mc=3000, **SMOKE_PHANTOM_COBO)``):
#: prognosis AUC 0.95, GCS<=8 AUC 1.00, GCS ordinal QWK 0.92, age>=80 AUC 1.0 (prevalences: poor
#: 0.62, GCS<=8 0.45, age>=80 0.26).
SMOKE_PHANTOM_COBO = {**SMOKE_PHANTOM_AGE, "gcs_per_ml": 0.3, "gcs_noise": 0.5, "prog_volume": 2.5}
#: The head-CT phantom for the hematoma-growth experiment (:mod:`mtbench.experiments.hirano2021`,
#: notebook 04) in the smoke profile, drawn directly on the model's 16x32x32 grid (so the mask is the
#: one the image was drawn from, not a nearest-neighbour resize). At that grid (7 mm in-plane, 10 mm
#: deep voxels) the default clots (median 15 mL) are a few voxels across and their 35 HU spots look
#: like brain, so a decoder cannot outline them: test Dice stayed below 0.5. Here clots are larger
#: (``volume_median_ml`` 25, ``volume_sigma`` 0.8), the spots milder (``spot_hu`` 55, as
#: :data:`SMOKE_PHANTOM_ICH`), and growth leans mostly on the clot's volume, which the mask teaches
#: (``growth_log_volume`` 8.0, ``growth_heterogeneity`` 4.0), at a 30 % prevalence (0.15 left 2 to 5
#: positives in a validation split, too few to choose a threshold on). With a weaker volume term
#: (5.0, ``volume_sigma`` 0.6) the plain classifier's balanced accuracy moved between 0.56 and 0.72
#: across data seeds. Growth ceiling from the latents: AUC 0.98 (the true mask volume alone: about
#: 0.96). The labels other than growth are those of :data:`SMOKE_PHANTOM`.
SMOKE_PHANTOM_GROWTH = {**SMOKE_PHANTOM, "volume_median_ml": 25.0, "volume_sigma": 0.8, "spot_hu": 55.0,
                        "growth_prevalence": 0.3, "growth_heterogeneity": 4.0, "growth_log_volume": 8.0}
