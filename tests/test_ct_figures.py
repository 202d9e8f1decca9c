"""CT figures: orientation letters, physical aspect, and the same display in plots_ct and the saliency planes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mtbench.data.io import canonical_affine  # noqa: E402
from mtbench.plots_ct import LETTERS, plane, plane_aspect, plot_three_planes  # noqa: E402


def _letters(ax):
    """{letter: (x, y)} of the texts drawn in axes coordinates."""
    return {t.get_text(): t.get_position() for t in ax.texts}


def _marked():
    """A canonical volume with one bright voxel anterior, right and superior of the centre."""
    vol = np.zeros((9, 10, 11), np.float32)
    vol[6, 2, 1] = 1  # d=6 superior half, h=2 anterior (h runs to P), w=1 patient's right (w runs to L)
    return vol


def test_planes_put_the_patient_where_the_letters_say():
    vol = _marked()
    # the affine confirms the marker's world direction: +x (R), +y (A), +z (S) from the centre
    world = canonical_affine((1, 1, 1)) @ np.array([[6, 2, 1, 1], [4, 5, 5, 1]]).T
    assert (world[:3, 0] - world[:3, 1] > 0).all()
    for name, idx in (("axial", 6), ("coronal", 2), ("sagittal", 1)):
        r, c = np.argwhere(plane(vol, name, idx))[0]
        img = plane(vol, name, idx)
        top, bottom, left, right = LETTERS[name]
        vertical = top if r < img.shape[0] / 2 else bottom
        horizontal = left if c < img.shape[1] / 2 else right
        assert {vertical, horizontal} <= {"A", "R", "S"}, (name, vertical, horizontal)


def test_three_planes_figure_has_letters_and_physical_aspect():
    fig = plot_three_planes(np.zeros((20, 30, 40)), spacing=(5.0, 0.5, 0.4), window=None)
    axes = fig.axes[:3]
    for ax, name in zip(axes, ("axial", "coronal", "sagittal")):
        pos = _letters(ax)
        top, bottom, left, right = LETTERS[name]
        assert pos[top][1] > 0.9 and pos[bottom][1] < 0.1 and pos[left][0] < 0.1 and pos[right][0] > 0.9
    assert axes[0].get_aspect() == pytest.approx(0.5 / 0.4)
    assert axes[1].get_aspect() == pytest.approx(5.0 / 0.4)
    assert plane_aspect("sagittal", (5.0, 0.5, 0.4)) == pytest.approx(10.0)
    plt.close(fig)


def test_saliency_planes_share_the_ct_display():
    from mtbench.explain import plots as xplots
    from mtbench.explain.saliency import Saliency

    vol = _marked()
    sal = Saliency(maps=vol[None], task="t", method="m", targets=["x"], scores=np.ones(1), normalization="per image")
    fig = xplots.plot_volume_planes(vol, sal, index=(6, 2, 1), spacing=(5.0, 0.5, 0.5))
    for k, name in enumerate(("axial", "coronal", "sagittal")):
        ax = fig.axes[3 + k]  # the saliency row
        shown = ax.get_images()[1].get_array()
        np.testing.assert_array_equal(np.asarray(shown), plane(vol, name, (6, 2, 1)[k]) / 1.0)
        assert set(LETTERS[name]) <= set(_letters(ax))
    assert fig.axes[1].get_aspect() == pytest.approx(10.0)
    plt.close(fig)
