"""The suite's one non-dominated sort, checked against pymoo's and against a brute force."""

from __future__ import annotations

import numpy as np
import pytest
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from rtseg_core import ConfigError
from rtseg_core._pareto import nondominated_mask, nondominated_ranks, pareto_indices


def _dominates(a, b, directions) -> bool:
    better_or_equal = all((x <= y) if d == "minimize" else (x >= y) for x, y, d in zip(a, b, directions))
    strictly = any((x < y) if d == "minimize" else (x > y) for x, y, d in zip(a, b, directions))
    return better_or_equal and strictly


def _brute_ranks(points, directions):
    remaining = set(range(len(points)))
    ranks = [-1] * len(points)
    rank = 0
    while remaining:
        layer = {i for i in remaining if not any(_dominates(points[j], points[i], directions) for j in remaining)}
        for i in layer:
            ranks[i] = rank
        remaining -= layer
        rank += 1
    return ranks


DIRS = {
    2: [("minimize", "minimize"), ("maximize", "minimize")],
    3: [("minimize", "minimize", "minimize"), ("maximize", "minimize", "maximize")],
}


def _pymoo_ranks(points: np.ndarray, directions) -> list[int]:
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    _, rank = NonDominatedSorting().do(points * signs, return_rank=True)
    return rank.tolist()


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranks_match_pymoo_and_brute_force(m, seed):
    rng = np.random.default_rng(seed)
    # Small integer grid so that ties and duplicates occur.
    points = rng.integers(0, 6, size=(40, m)).astype(float)
    for directions in DIRS[m]:
        ranks = nondominated_ranks(points, directions).tolist()
        assert ranks == _pymoo_ranks(points, directions)
        assert ranks == _brute_ranks(points.tolist(), directions)
        assert nondominated_mask(points, directions).tolist() == [r == 0 for r in ranks]
        assert pareto_indices(points.tolist(), directions) == [i for i, r in enumerate(ranks) if r == 0]


def test_continuous_points_match_pymoo():
    rng = np.random.default_rng(42)
    points = rng.random((200, 3))
    directions = ("maximize", "minimize", "minimize")
    assert nondominated_ranks(points, directions).tolist() == _pymoo_ranks(points, directions)


def test_pareto_indices_keep_duplicates_and_input_order():
    pts = [(0.9, 10.0), (0.8, 5.0), (0.7, 6.0), (0.9, 10.0), (0.95, 20.0)]
    assert pareto_indices(pts, ["maximize", "minimize"]) == [0, 1, 3, 4]
    assert pareto_indices([], ["maximize", "minimize"]) == []


def test_bad_input_names_the_problem():
    with pytest.raises(ConfigError, match="'up'"):
        nondominated_ranks([[1.0, 2.0]], ["minimize", "up"])
    with pytest.raises(ConfigError, match="2 objective column.*1 direction"):
        nondominated_ranks([[1.0, 2.0]], ["minimize"])
    with pytest.raises(ConfigError, match="finite.*row 1"):
        nondominated_ranks([[1.0, 2.0], [np.nan, 1.0]], ["minimize", "minimize"])
