from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from pymoo.indicators.hv import HV

from reports import default_reference, hypervolume, hypervolume_history
from rtseg_core import ConfigError


def _grid_volume(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact brute force for integer points: count the unit cells some point dominates (minimize)."""
    m = points.shape[1]
    lo = points.min(axis=0).astype(int)
    axes = [np.arange(lo[k], int(ref[k])) for k in range(m)]
    cells = np.array(list(itertools.product(*axes)), dtype=float)
    covered = (points[None, :, :] <= cells[:, None, :]).all(axis=2).any(axis=1)
    return float(covered.sum())


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_grid_brute_force(m, seed):
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 9, size=(25, m)).astype(float)
    ref = np.full(m, 10.0)
    assert hypervolume(pts, ref) == pytest.approx(_grid_volume(pts, ref), abs=1e-9)


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("n", [1, 7, 80])
def test_matches_pymoo_and_optuna(m, n):
    rng = np.random.default_rng(100 * m + n)
    pts = rng.random((n, m))
    ref = np.full(m, 1.05)
    ours = hypervolume(pts, ref)
    assert ours == pytest.approx(HV(ref_point=ref)(pts), rel=1e-10)
    try:
        from optuna._hypervolume import compute_hypervolume
    except ImportError:  # private module: only compared where it exists
        return
    assert ours == pytest.approx(compute_hypervolume(pts, ref), rel=1e-10)


@pytest.mark.parametrize("m", [2, 3])
def test_maximized_objectives_are_negated(m):
    rng = np.random.default_rng(7)
    pts = rng.random((30, m))
    directions = ["maximize"] + ["minimize"] * (m - 1)
    ref = np.array([-0.1] + [1.1] * (m - 1))
    flipped, ref_flipped = pts.copy(), ref.copy()
    flipped[:, 0] *= -1
    ref_flipped[0] *= -1
    assert hypervolume(pts, ref, directions) == pytest.approx(HV(ref_point=ref_flipped)(flipped), rel=1e-10)


def test_monte_carlo_agrees_in_3d():
    rng = np.random.default_rng(11)
    pts = rng.random((15, 3))
    ref = np.ones(3)
    samples = rng.random((200_000, 3))
    covered = np.zeros(len(samples), dtype=bool)
    for p in pts:
        covered |= (samples >= p).all(axis=1)
    assert hypervolume(pts, ref) == pytest.approx(covered.mean(), abs=0.01)


def test_default_reference_pads_worst_by_ten_percent_of_range():
    pts = np.array([[0.9, 10.0], [0.8, 5.0], [0.85, 20.0]])
    ref = default_reference(pts, ["maximize", "minimize"])
    assert ref == pytest.approx([0.8 - 0.1 * 0.1, 20.0 + 0.1 * 15.0])
    # Used when no reference is given.
    assert hypervolume(pts, None, ["maximize", "minimize"]) == pytest.approx(
        hypervolume(pts, ref, ["maximize", "minimize"])
    )
    # Zero range: 10 % of |worst|, or 1 when the worst value is 0.
    assert default_reference(np.array([[2.0, 0.0]]), ["minimize", "minimize"]) == pytest.approx([2.2, 1.0])


def test_edge_cases():
    assert hypervolume(np.zeros((0, 2)), [1.0, 1.0]) == 0.0
    assert hypervolume(np.zeros((0, 2))) == 0.0
    assert hypervolume(np.array([[2.0, 0.5]]), [1.0, 1.0]) == 0.0  # not better than the reference
    assert hypervolume(np.array([[0.5, 0.5], [0.5, 0.5]]), [1.0, 1.0]) == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="reference point needs 2"):
        hypervolume(np.ones((2, 2)), [1.0])
    with pytest.raises(ConfigError, match="finite"):
        hypervolume(np.array([[np.nan, 1.0]]), [2.0, 2.0])


def test_history_is_monotone_and_ends_at_the_feasible_front():
    rng = np.random.default_rng(5)
    n = 30
    hist = pd.DataFrame(
        {
            "number": np.arange(n),
            "state": ["COMPLETE"] * (n - 2) + ["FAIL", "PRUNED"],
            "feasible": rng.random(n) > 0.3,
            "dice": rng.random(n),
            "latency_ms": rng.random(n) * 100,
        }
    )
    objs = [("dice", "maximize"), ("latency_ms", "minimize")]
    h = hypervolume_history(hist, objs)
    assert h.numbers == tuple(range(n - 2))
    assert all(b >= a for a, b in zip(h.values, h.values[1:]))
    counted = hist[(hist.state == "COMPLETE") & hist.feasible]
    pts = counted[["dice", "latency_ms"]].to_numpy()
    assert h.reference == pytest.approx(tuple(default_reference(pts, ["maximize", "minimize"])))
    assert h.values[-1] == pytest.approx(hypervolume(pts, h.reference, ["maximize", "minimize"]))
    # Before the first feasible trial the hypervolume is 0.
    first = int(counted["number"].iloc[0])
    assert all(v == 0 for v in h.values[:first]) and h.values[first] > 0
