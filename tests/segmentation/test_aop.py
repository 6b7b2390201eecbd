"""AoP measurement against phantoms drawn with a known angle, and the cases that give no angle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtseg_core import ConfigError, DataError
from segmentation._aop import angle_of_progression, draw_aop_masks, measure_aop


@pytest.mark.parametrize("angle", [90.0, 105.0, 120.0, 135.0, 150.0, 160.0])
@pytest.mark.parametrize(
    ("rotation", "offset"),
    [(0.0, (0.0, 0.0)), (35.0, (3.0, -4.0)), (-60.0, (-5.0, 2.0)), (180.0, (0.0, 6.0))],
)
def test_measured_angle_matches_drawn_angle(angle, rotation, offset):
    mask = draw_aop_masks(angle, 128, rotation_deg=rotation, offset=offset)
    assert set(np.unique(mask)) == {0, 1, 2}
    measured = angle_of_progression(mask)
    assert measured is not None
    assert measured == pytest.approx(angle, abs=2.0)


@pytest.mark.parametrize(("angle", "tilt"), [(100.0, 0.0), (125.0, 40.0), (155.0, -30.0)])
def test_elliptical_head_at_full_resolution(angle, tilt):
    mask = draw_aop_masks(angle, 256, head_axes=(110.0, 80.0), head_tilt_deg=tilt, rotation_deg=20.0)
    assert angle_of_progression(mask) == pytest.approx(angle, abs=1.0)


def test_geometry_of_the_measurement():
    mask = draw_aop_masks(120.0, 128)
    m = measure_aop(mask)
    assert m.reason is None
    # Rotation 0 is the standard display: PS horizontal, head below-right, distal end on the right.
    assert m.ps_distal[0] > m.ps_proximal[0]
    assert m.ps_distal[1] == pytest.approx(m.ps_proximal[1], abs=1.0)
    x, y = m.tangent_point
    window = mask[int(round(y)) - 2 : int(round(y)) + 3, int(round(x)) - 2 : int(round(x)) + 3]
    assert (window == 2).any() and (window == 0).any()  # on the FH boundary
    assert y > m.ps_distal[1]  # the leading edge below the PS


def test_mirrored_display_needs_head_side_left():
    mask = np.fliplr(draw_aop_masks(130.0, 128)).copy()
    assert angle_of_progression(mask, head_side="left") == pytest.approx(130.0, abs=2.0)
    standard = angle_of_progression(mask)  # the wrong end is taken as distal
    assert standard is None or abs(standard - 130.0) > 10.0


def test_largest_component_is_used():
    mask = draw_aop_masks(125.0, 128)
    clean = angle_of_progression(mask)
    mask[2:5, 2:5] = 2  # stray FH speck
    mask[120:123, 2:6] = 1  # stray PS speck
    assert angle_of_progression(mask) == pytest.approx(clean, abs=1e-6)


def test_anisotropic_spacing_measures_in_physical_space():
    mask = draw_aop_masks(115.0, 96)
    stretched = np.repeat(mask, 2, axis=0)  # rows twice as dense: 0.5 mm rows, 1 mm columns
    assert angle_of_progression(stretched, spacing=(0.5, 1.0)) == pytest.approx(115.0, abs=2.0)
    assert abs(angle_of_progression(stretched) - 115.0) > 5.0  # pixels are not square here


def test_custom_labels_and_tensor_input():
    mask = draw_aop_masks(140.0, 128, ps_label=7, fh_label=8)
    assert angle_of_progression(torch.from_numpy(mask), ps_label=7, fh_label=8) == pytest.approx(140.0, abs=2.0)
    assert angle_of_progression(mask) is None  # labels 1 and 2 are absent


def _blank(size=64):
    return np.zeros((size, size), dtype=np.uint8)


def _only(mask, keep):
    out = mask.copy()
    out[(out != keep) & (out != 0)] = 0
    return out


@pytest.mark.parametrize(
    ("make", "reason_part"),
    [
        (lambda: _blank(), "no PS"),
        (lambda: _only(draw_aop_masks(120.0, 128), 2), "no PS"),
        (lambda: _only(draw_aop_masks(120.0, 128), 1), "no FH"),
    ],
)
def test_missing_structure_gives_none(make, reason_part):
    m = measure_aop(make())
    assert m.angle_deg is None
    assert reason_part in m.reason
    assert m.ps_distal is None and m.tangent_point is None


def test_structure_too_small_for_an_ellipse():
    mask = draw_aop_masks(120.0, 128)
    mask[mask == 1] = 0
    mask[10, 10:12] = 1  # two pixels: fewer than 5 contour points
    m = measure_aop(mask)
    assert m.angle_deg is None
    assert "PS too small" in m.reason


def test_distal_end_inside_the_head_gives_none():
    yy, xx = np.mgrid[0:128, 0:128]
    mask = np.zeros((128, 128), dtype=np.uint8)
    mask[(xx - 80) ** 2 + (yy - 70) ** 2 <= 30**2] = 2
    # PS from (30, 60) to (75, 60): its right end pokes into the head.
    mask[((xx - 52) / 23.0) ** 2 + ((yy - 60) / 5.0) ** 2 <= 1.0] = 1
    m = measure_aop(mask)
    assert m.angle_deg is None
    assert "inside the FH" in m.reason


def test_bad_inputs_raise():
    with pytest.raises(DataError, match="shape"):
        angle_of_progression(np.zeros((2, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match="spacing"):
        angle_of_progression(_blank(), spacing=(0.0, 1.0))
    with pytest.raises(ConfigError, match="head_side"):
        angle_of_progression(_blank(), head_side="up")
    with pytest.raises(ConfigError, match="angle_deg"):
        draw_aop_masks(190.0)
    with pytest.raises(ConfigError, match="does not fit"):
        draw_aop_masks(120.0, 64, offset=(40.0, 0.0))
