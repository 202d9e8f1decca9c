"""A synthetic head-CT phantom with intracerebral hematomas and a known generative model.

The smoke-profile data of the ICH notebooks and experiments: volumes in Hounsfield units with a
skull, brain parenchyma, ventricles and one hematoma of known volume (mL) and location, and
per-patient labels (GCS, age, prognosis, hematoma growth) drawn from a stated model, so what a
network *can* learn from the image is known.

Generative model (per patient ``i``; every number is a field of :class:`HeadCTPhantomConfig`)
--------------------------------------------------------------------------------------------
1. Age ``A_i ~ Normal(age_mean, age_sd)`` clipped to ``[age_min, age_max]``.
2. Location ``L_i`` in ``{deep, lobar, infratentorial}`` with probabilities ``location_probs``
   (deep = basal ganglia / thalamus, lobar = peripheral cortex, infratentorial = posterior fossa).
3. Target volume ``V*_i ~ LogNormal(log(volume_median_ml), volume_sigma)`` clipped to
   ``[volume_min_ml, volume_max_ml]``; the hematoma is an ellipsoid of that volume (random axis
   ratios) centred at a random point of its region and clipped to the brain. The **measured**
   volume ``V_i`` (mask voxels x voxel volume, column ``hematoma_ml``) is what the labels use.
4. Heterogeneity ``h_i ~ Uniform(0, 1)``: the fraction of hypodense spots inside the clot (the
   "blend/swirl" signs of active bleeding), drawn into the image.
5. GCS ``G_i = clip(round(15 - gcs_per_ml * V_i - gcs_location[L_i] + gcs_noise * e), 3, 15)``.
   Derived labels as Cobo et al. (2024): ``gcs_bin = G <= 8``; ``gcs_ord`` = 0 (13-15, mild),
   1 (9-12, moderate), 2 (3-8, severe) -- higher is worse, like ``gcs_bin`` and ``prognosis``.
6. Prognosis (1 = poor) ``~ Bernoulli(sigmoid(b0 + prog_gcs * (15 - G) + prog_age * (A - 70) / 10
   + prog_volume * V / 10 + prog_location[L] + prog_noise * e'))``; ``b0`` is solved so that the
   expected prevalence is ``poor_prevalence`` (default 162/261, the published data set's).
   ``p_poor`` stores the probability without the noise term ``e'``.
7. Growth (hematoma expansion, for the joint segmentation/growth experiments)
   ``~ Bernoulli(sigmoid(c0 + growth_heterogeneity * h + growth_log_volume * log V))`` with
   ``c0`` solved for ``growth_prevalence``.
8. Age is visible: ventricles widen by ``atrophy_per_decade`` per decade over 60 and the
   subarachnoid CSF rim thickens with age (brain atrophy), so ``age_80`` is learnable in part.
9. The *unrelated* auxiliary task (off by default; ``calcification_prevalence > 0``): a pineal
   calcification (a ~6 mm sphere of ~``calcification_hu`` HU on the midline, posterior to the
   third ventricle) drawn for ``calcification ~ Bernoulli(calcification_prevalence)``,
   independent of every other latent. Fully visible, related to nothing: the control task. It
   draws from its own random stream, so turning it on leaves every other draw as it was.

Known answer: :func:`mtbench.data.worlds.phantom_known_answer` computes from the latents (a Monte-Carlo sample, no volumes)
the Bayes-optimal AUC of each task from what the image shows (volume, location, heterogeneity,
age through atrophy; not the GCS noise nor the prognosis noise), the "clinical" ceiling of
prognosis if GCS were also known, and how strongly each auxiliary label is tied to prognosis.

Image: air -1000 HU, scalp 40, skull ~1000 (7 mm), CSF 5, parenchyma ~32 with smooth texture
(grey/white contrast), perihematomal oedema ~18, clot 65-80 with hypodense (~35) spots, a slight
partial-volume blur and Gaussian noise. Volumes are ``[D, H, W]`` = (inferior->superior,
anterior->posterior, right->left in the array: the canonical
(S, P, L) layout of :mod:`mtbench.data.dicom`), spacing chosen so the field of view is
``fov_mm`` in-plane and ``fov_z_mm`` in depth.

Speed: 64 volumes of 32x64x64 in about a second on one CPU core.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

LOCATIONS = ("deep", "lobar", "infratentorial")


@dataclass(frozen=True)
class HeadCTPhantomConfig:
    """Parameters of :func:`make_head_ct_phantom` (see the module docstring for the model)."""

    n_patients: int = 64
    shape: tuple[int, int, int] = (32, 64, 64)
    fov_mm: float = 220.0
    fov_z_mm: float = 160.0
    age_mean: float = 72.0
    age_sd: float = 12.0
    age_min: float = 25.0
    age_max: float = 100.0
    location_probs: tuple[float, float, float] = (0.5, 0.35, 0.15)
    volume_median_ml: float = 15.0
    volume_sigma: float = 0.9
    volume_min_ml: float = 1.0
    volume_max_ml: float = 120.0
    gcs_per_ml: float = 0.13
    gcs_location: tuple[float, float, float] = (1.5, 0.0, 3.0)
    gcs_noise: float = 2.5
    poor_prevalence: float = 162 / 261
    prog_gcs: float = 0.35
    prog_age: float = 0.6
    prog_volume: float = 0.6
    prog_location: tuple[float, float, float] = (0.3, 0.0, 0.8)
    prog_noise: float = 1.0
    growth_prevalence: float = 0.3
    growth_heterogeneity: float = 3.0
    growth_log_volume: float = 0.5
    atrophy_per_decade: float = 0.15
    image_noise_hu: float = 4.0
    spot_hu: float = 35.0
    calcification_prevalence: float = 0.0
    calcification_hu: float = 300.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_patients < 1:
            raise ValueError("n_patients must be >= 1.")
        if len(self.shape) != 3 or min(self.shape) < 16:
            raise ValueError(f"shape must be (D, H, W) with every size >= 16, got {self.shape}.")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if abs(sum(self.location_probs) - 1) > 1e-6 or len(self.location_probs) != 3:
            raise ValueError(f"location_probs must be three probabilities summing to 1, got {self.location_probs}.")
        if not 0 <= self.calcification_prevalence < 1:
            raise ValueError(f"calcification_prevalence must be in [0, 1), got {self.calcification_prevalence}.")
        for name in ("poor_prevalence", "growth_prevalence"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}.")

    @property
    def spacing(self) -> tuple[float, float, float]:
        d, h, w = self.shape
        return (self.fov_z_mm / d, self.fov_mm / h, self.fov_mm / w)

    @property
    def voxel_ml(self) -> float:
        dz, dy, dx = self.spacing
        return dz * dy * dx / 1000.0


@dataclass
class HeadCTPhantom:
    """Output of :func:`make_head_ct_phantom`.

    ``volumes`` ``float32 [N, D, H, W]`` in HU; ``hematoma_masks`` and ``brain_masks`` ``bool
    [N, D, H, W]``; ``table`` one row per patient (``sample_id``, ``patient_id``, ``age``, ``age_80``,
    ``location``, ``hematoma_ml``, ``hematoma_ml_target``, ``heterogeneity``, ``gcs``, ``gcs_bin``,
    ``gcs_ord``, ``prognosis``, ``p_poor``, ``growth``, ``p_growth``); ``spacing`` ``(dz, dy, dx)`` mm.
    """

    volumes: np.ndarray
    hematoma_masks: np.ndarray
    brain_masks: np.ndarray
    table: pd.DataFrame
    spacing: tuple[float, float, float]
    config: HeadCTPhantomConfig = field(default_factory=HeadCTPhantomConfig)

    def __len__(self) -> int:
        return len(self.table)

    def images(self, preprocess=None) -> np.ndarray:
        """Model inputs ``float32 [N, C, D, H, W]``: ``preprocess`` (a :class:`CTPreprocess`,
        default the paper's window) applied to each volume."""
        from mtbench.data.transforms import CTPreprocess

        pre = preprocess or CTPreprocess(windows=("cobo",))
        return np.stack([pre(v, self.spacing) for v in self.volumes]).astype(np.float32, copy=False)

    def to_nifti(self, root: str | Path, clinical_csv: str = "clinical_data.csv") -> Path:
        """Write the phantom in the layout of the Pérez del Barrio Head-CT ICH set.

        ``root/GOOD_PROGNOSIS/<id>_brain.nii.gz``, ``root/POOR_PROGNOSIS/<id>_brain.nii.gz`` and
        ``root/<clinical_csv>`` with columns ``Patient``, ``Label (poor_prognosis)``, ``Age``,
        ``GCS``: what :mod:`mtbench.data.sources.ich_ct` reads. Returns ``root``.
        """
        from mtbench.data.io import write_nifti

        root = Path(root)
        rows = []
        for i, r in self.table.iterrows():
            folder = "POOR_PROGNOSIS" if r["prognosis"] == 1 else "GOOD_PROGNOSIS"
            write_nifti(self.volumes[i].astype(np.int16), root / folder / f"{r['patient_id']}_brain.nii.gz", self.spacing)
            rows.append({"Patient": r["patient_id"], "Label (poor_prognosis)": int(r["prognosis"]), "Age": float(r["age"]), "GCS": int(r["gcs"])})
        pd.DataFrame(rows).to_csv(root / clinical_csv, index=False)
        return root


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _solve_intercept(lp: np.ndarray, prevalence: float) -> float:
    """``b`` with ``mean(sigmoid(lp + b)) == prevalence`` (bisection; the mean is monotone in b)."""
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if _sigmoid(lp + mid).mean() < prevalence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _ellipsoid(zz, yy, xx, c, r):
    return ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2


def _draw_head(rng, cfg: HeadCTPhantomConfig, grid, age: float, location: str, target_ml: float):
    from scipy import ndimage as ndi

    zz, yy, xx = grid
    # head: outer skull ellipsoid (mm), small per-patient size jitter
    s = rng.uniform(0.93, 1.05)
    r_out = np.array([78.0, 92.0, 74.0]) * s  # (z, y, x) semi-axes
    c_head = np.array([rng.normal(0, 2), rng.normal(0, 2), rng.normal(0, 2)])
    e_out = _ellipsoid(zz, yy, xx, c_head, r_out + 4)  # scalp
    e_skull = _ellipsoid(zz, yy, xx, c_head, r_out)
    e_in = _ellipsoid(zz, yy, xx, c_head, r_out - 7)
    atrophy = max(0.0, (age - 60.0) / 10.0) * cfg.atrophy_per_decade
    rim = 1.0 + 2.0 * atrophy  # subarachnoid CSF thickness (mm)
    e_brain = _ellipsoid(zz, yy, xx, c_head, r_out - 7 - rim)
    vol = np.full(zz.shape, -1000.0, dtype=np.float32)
    vol[e_out <= 1] = 40.0
    vol[e_skull <= 1] = 1000.0 + rng.normal(0, 60)
    vol[e_in <= 1] = 5.0  # CSF
    brain = e_brain <= 1
    # parenchyma with a smooth grey/white texture
    tex = ndi.gaussian_filter(rng.normal(0, 1, zz.shape).astype(np.float32), sigma=2.0)
    tex /= tex.std() + 1e-6
    vol[brain] = 32.0 + 4.0 * tex[brain]
    # lateral ventricles, enlarged with age
    vs = 1.0 + atrophy
    for side in (-1, 1):
        c = c_head + np.array([12.0, -5.0, side * 9.0])
        vent = _ellipsoid(zz, yy, xx, c, np.array([11.0, 24.0, 5.0]) * vs) <= 1
        vol[vent & brain] = 5.0
    # hematoma centre by location
    if location == "deep":
        c = c_head + np.array([rng.uniform(-5, 15), rng.uniform(-15, 10), rng.choice([-1, 1]) * rng.uniform(15, 28)])
    elif location == "lobar":
        theta, phi = rng.uniform(0, 2 * np.pi), rng.uniform(0.25 * np.pi, 0.6 * np.pi)
        rad = rng.uniform(0.55, 0.75)
        r_b = r_out - 7 - rim
        c = c_head + np.array([r_b[0] * rad * np.cos(phi), r_b[1] * rad * np.sin(phi) * np.cos(theta), r_b[2] * rad * np.sin(phi) * np.sin(theta)])
    else:  # infratentorial: posterior fossa, low and posterior
        c = c_head + np.array([rng.uniform(-55, -40), rng.uniform(25, 45), rng.choice([-1, 1]) * rng.uniform(0, 20)])
    ratios = rng.uniform(0.7, 1.3, size=3)
    ratios /= ratios.prod() ** (1 / 3)
    radius = (3 * target_ml * 1000.0 / (4 * np.pi)) ** (1 / 3)  # mm, for a sphere of target_ml
    r_h = radius * ratios
    e_h = _ellipsoid(zz, yy, xx, c, r_h)
    hem = (e_h <= 1) & brain
    edema = (e_h <= (1 + 3.0 / radius) ** 2) & brain & ~hem
    vol[edema] = 18.0 + rng.normal(0, 2)
    clot = rng.uniform(65, 80)
    vol[hem] = clot
    return vol, hem, brain


def make_head_ct_phantom(config: HeadCTPhantomConfig | None = None, progress: bool = False, **overrides) -> HeadCTPhantom:
    """Generate a :class:`HeadCTPhantom` (see the module docstring for the generative model).

    >>> ph = make_head_ct_phantom(n_patients=8, shape=(32, 64, 64), seed=1)
    >>> ph.volumes.shape, ph.table[["hematoma_ml", "gcs", "prognosis"]].shape
    ((8, 32, 64, 64), (8, 3))
    """
    from scipy import ndimage as ndi
    from tqdm.auto import tqdm

    cfg = config or HeadCTPhantomConfig()
    if overrides:
        cfg = HeadCTPhantomConfig(**{**asdict(cfg), **overrides})
    rng = np.random.default_rng(cfg.seed)
    n = cfg.n_patients
    D, H, W = cfg.shape
    dz, dy, dx = cfg.spacing
    z = (np.arange(D) - (D - 1) / 2) * dz
    y = (np.arange(H) - (H - 1) / 2) * dy
    x = (np.arange(W) - (W - 1) / 2) * dx
    grid = np.meshgrid(z, y, x, indexing="ij")

    age = np.clip(rng.normal(cfg.age_mean, cfg.age_sd, n), cfg.age_min, cfg.age_max).round(0)
    loc_idx = rng.choice(3, size=n, p=cfg.location_probs)
    target = np.clip(
        np.exp(rng.normal(math.log(cfg.volume_median_ml), cfg.volume_sigma, n)), cfg.volume_min_ml, cfg.volume_max_ml
    )
    het = rng.uniform(0, 1, n)
    vols = np.empty((n, D, H, W), np.float32)
    hems = np.empty((n, D, H, W), bool)
    brains = np.empty((n, D, H, W), bool)
    for i in tqdm(range(n), desc="phantom", disable=not progress, leave=False):
        v, hem, brain = _draw_head(rng, cfg, grid, float(age[i]), LOCATIONS[loc_idx[i]], float(target[i]))
        # hypodense spots inside the clot, a fraction h of it
        if hem.any():
            spots = ndi.gaussian_filter(rng.normal(0, 1, hem.shape).astype(np.float32), 1.0)
            thr = np.quantile(spots[hem], 1 - 0.5 * het[i]) if het[i] > 0 else np.inf
            v[hem & (spots > thr)] = cfg.spot_hu
        v = ndi.gaussian_filter(v, sigma=0.5)
        v += rng.normal(0, cfg.image_noise_hu, v.shape).astype(np.float32)
        vols[i], hems[i], brains[i] = v, hem, brain
    measured = hems.reshape(n, -1).sum(1) * cfg.voxel_ml

    e = rng.normal(0, 1, n)
    gcs = np.clip(np.round(15 - cfg.gcs_per_ml * measured - np.asarray(cfg.gcs_location)[loc_idx] + cfg.gcs_noise * e), 3, 15).astype(int)
    lp = (
        cfg.prog_gcs * (15 - gcs)
        + cfg.prog_age * (age - 70) / 10
        + cfg.prog_volume * measured / 10
        + np.asarray(cfg.prog_location)[loc_idx]
    )
    noise = cfg.prog_noise * rng.normal(0, 1, n)
    # intercept for the target prevalence, marginalising the noise term with a large fixed sample
    noise_ref = cfg.prog_noise * np.random.default_rng(12345).normal(0, 1, 4000)
    b0 = _solve_intercept((lp[:, None] + noise_ref[None, :200]).ravel(), cfg.poor_prevalence)
    p_poor = _sigmoid(lp + b0)
    prognosis = (rng.uniform(0, 1, n) < _sigmoid(lp + b0 + noise)).astype(int)
    glp = cfg.growth_heterogeneity * het + cfg.growth_log_volume * np.log(np.maximum(measured, 0.1))
    c0 = _solve_intercept(glp, cfg.growth_prevalence)
    p_growth = _sigmoid(glp + c0)
    growth = (rng.uniform(0, 1, n) < p_growth).astype(int)

    calcified = _draw_calcifications(vols, grid, cfg)
    ids = [f"ph{cfg.seed:03d}_{i:04d}" for i in range(n)]
    table = pd.DataFrame(
        {
            "sample_id": ids,
            "patient_id": ids,
            "age": age,
            "age_80": (age >= 80).astype(int),
            "location": [LOCATIONS[k] for k in loc_idx],
            "hematoma_ml": measured.round(3),
            "hematoma_ml_target": target.round(3),
            "heterogeneity": het.round(4),
            "gcs": gcs,
            "gcs_bin": (gcs <= 8).astype(int),
            "gcs_ord": gcs_ordinal(gcs),
            "prognosis": prognosis,
            "p_poor": p_poor.round(4),
            "growth": growth,
            "p_growth": p_growth.round(4),
            "calcification": calcified,
        }
    )
    return HeadCTPhantom(vols, hems, brains, table, cfg.spacing, cfg)


def _draw_calcifications(vols: np.ndarray, grid, cfg: HeadCTPhantomConfig) -> np.ndarray:
    """The unrelated task (module docstring, item 9): draw pineal calcifications in place, own stream."""
    n = len(vols)
    if cfg.calcification_prevalence <= 0:
        return np.zeros(n, dtype=int)
    rng = np.random.default_rng([cfg.seed, 7])
    label = (rng.uniform(size=n) < cfg.calcification_prevalence).astype(int)
    zz, yy, xx = grid
    for i in np.flatnonzero(label):
        c = np.array([8.0, 22.0, 0.0]) + rng.normal(0, 2, 3)  # midline, posterior, just above centre
        ball = _ellipsoid(zz, yy, xx, c, np.full(3, max(6.0, 0.75 * max(cfg.spacing)))) <= 1
        vols[i][ball] = cfg.calcification_hu + rng.normal(0, 20)
    return label


def gcs_ordinal(gcs: Sequence[float] | np.ndarray) -> np.ndarray:
    """GCS to Cobo et al.'s three ordered classes: 0 = 13-15 (mild), 1 = 9-12 (moderate), 2 = 3-8 (severe).

    Higher is worse, as for the binary label (``GCS <= 8`` -> 1); with the cumulative encoding of
    :func:`mtbench.tasks.ordinal_encode` the classes are ``00``, ``10``, ``11``. (The paper states
    the three groups and a two-bit cumulative code; which end is ``00`` is our choice.)

    NaN stays NaN (returned as float then).
    """
    g = np.asarray(gcs, dtype=float)
    out = np.where(g <= 8, 2, np.where(g <= 12, 1, 0)).astype(float)
    out[np.isnan(g)] = np.nan
    return out.astype(int) if not np.isnan(out).any() else out

