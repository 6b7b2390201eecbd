from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from rtseg_core import ConfigError
from segmentation._phantom import make_phantom, phantom_layout


def _max_fh_angle(mask: np.ndarray, proximal: tuple[float, float], distal: tuple[float, float]) -> float:
    """Largest angle at the distal PS tip between the ray to the proximal tip and a ray to an FH pixel."""
    ys, xs = np.nonzero(mask == 2)
    rays = np.stack([xs, ys], axis=1) - np.asarray(distal)
    back = np.asarray(proximal) - np.asarray(distal)
    cos = rays @ back / (np.linalg.norm(rays, axis=1) * np.linalg.norm(back))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max())


def test_same_seed_same_arrays_other_seed_other_scene():
    a_img, a_mask = make_phantom(64, 7)
    b_img, b_mask = make_phantom(64, 7)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    c_img, c_mask = make_phantom(64, 8)
    assert np.abs(a_img - c_img).mean() > 0.02
    assert (a_mask != c_mask).mean() > 0.02


@pytest.mark.parametrize("size", [32, 64, (48, 80), (80, 48)])
def test_shapes_types_and_labels(size):
    h, w = (size, size) if isinstance(size, int) else size
    for seed in range(5):
        image, mask = make_phantom(size, seed)
        assert image.shape == mask.shape == (h, w)
        assert image.dtype == np.float32 and mask.dtype == np.uint8
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert set(np.unique(mask)) == {0, 1, 2}
        # The fan: the top corners are outside it, black and unlabelled.
        assert image[0, 0] == 0 and image[0, -1] == 0 and mask[0, 0] == 0
        assert (image[mask > 0] > 0).mean() > 0.95


def test_ps_and_fh_are_separated_by_background():
    kernel = np.ones((3, 3), np.uint8)
    for seed in range(40):
        _, mask = make_phantom(64, seed)
        grown_ps = cv2.dilate((mask == 1).astype(np.uint8), kernel)
        assert not (grown_ps.astype(bool) & (mask == 2)).any(), seed


def test_scenes_vary_across_seeds():
    layouts = [phantom_layout(128, seed) for seed in range(60)]
    aops = np.array([lay.aop_deg for lay in layouts])
    assert aops.min() >= 90 and aops.max() <= 160
    assert aops.min() < 110 and aops.max() > 140  # spread over the clinical range
    centres = np.array([lay.fh_center for lay in layouts])
    assert centres.std(axis=0).min() > 3  # pixels
    ps_areas = [(make_phantom(64, s)[1] == 1).sum() for s in range(10)]
    assert len(set(ps_areas)) > 5


def test_masks_carry_the_layout_aop_and_orientation():
    for seed in range(8):
        lay = phantom_layout(128, seed)
        _, mask = make_phantom(128, seed)
        assert abs(_max_fh_angle(mask, lay.ps_proximal, lay.ps_distal) - lay.aop_deg) < 2.0
        # Transperineal orientation: the distal PS tip is the upper right one, and walking
        # proximal -> distal the head is on the right-hand side (screen coordinates, y down).
        (x0, y0), (x1, y1) = lay.ps_proximal, lay.ps_distal
        assert x1 > x0 and y1 < y0
        ys, xs = np.nonzero(mask == 2)
        ps_ys, ps_xs = np.nonzero(mask == 1)
        to_head = (xs.mean() - ps_xs.mean(), ys.mean() - ps_ys.mean())
        assert (x1 - x0) * to_head[1] - (y1 - y0) * to_head[0] > 0
        # The PS pixels sit between the tips.
        assert abs(ps_xs.mean() - (x0 + x1) / 2) < 1.5 and abs(ps_ys.mean() - (y0 + y1) / 2) < 1.5


def test_same_seed_same_scene_at_every_size():
    small, large = phantom_layout(64, 3), phantom_layout(128, 3)
    assert small.aop_deg == pytest.approx(large.aop_deg)
    # Pixel centres: x_128 + 0.5 = 2 * (x_64 + 0.5).
    assert np.allclose(2 * (np.array(small.fh_center) + 0.5), np.array(large.fh_center) + 0.5)
    m64 = make_phantom(64, 3)[1]
    m128 = make_phantom(128, 3)[1]
    down = cv2.resize(m128, (64, 64), interpolation=cv2.INTER_NEAREST)
    assert (down == m64).mean() > 0.97


def test_no_intensity_threshold_segments_the_ps():
    best = []
    for seed in range(8):
        image, mask = make_phantom(96, seed)
        ps = mask == 1
        dice = [2 * (ps & (image > t)).sum() / (ps.sum() + (image > t).sum()) for t in np.linspace(0.05, 0.95, 46)]
        best.append(max(dice))
    assert np.mean(best) < 0.6, best


def test_fast_enough_for_the_default_dataset():
    start = time.perf_counter()
    for seed in range(100):
        make_phantom(128, seed)
    # 400 images at 128 x 128 must take well under 5 s; this checks a quarter of that with margin.
    assert time.perf_counter() - start < 2.5


@pytest.mark.parametrize("size", [8, (16, 4), "64", (64,), 64.0, True])
def test_bad_size_is_a_config_error(size):
    with pytest.raises(ConfigError, match="phantom size"):
        make_phantom(size, 0)


@pytest.mark.parametrize("seed", [-1, 1.5, "3"])
def test_bad_seed_is_a_config_error(seed):
    with pytest.raises(ConfigError, match="phantom seed"):
        make_phantom(32, seed)
