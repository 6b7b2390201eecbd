from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from reports import attainment_line, nondominated_ranks, pareto_front
from rtseg_core import ConfigError


def _dominates(a, b, directions) -> bool:
    better_or_equal = all((x <= y) if d == "minimize" else (x >= y) for x, y, d in zip(a, b, directions))
    strictly = any((x < y) if d == "minimize" else (x > y) for x, y, d in zip(a, b, directions))
    return better_or_equal and strictly


DIRS = {
    2: [("minimize", "minimize"), ("maximize", "minimize")],
    3: [("minimize", "minimize", "minimize"), ("maximize", "minimize", "maximize")],
}


@pytest.mark.parametrize("m", [2, 3])
def test_front_of_table_matches_brute_force_and_skips_infeasible(m):
    rng = np.random.default_rng(10 + m)
    n = 60
    cols = [f"o{i}" for i in range(m)]
    values = rng.random((n, m))
    values[rng.random((n, m)) < 0.05] = np.nan
    feasible = rng.random(n) > 0.2
    df = pd.DataFrame(values, columns=cols)
    df.insert(0, "name", [f"c{i}" for i in range(n)])
    df["feasible"] = feasible
    directions = DIRS[m][1]
    info = pareto_front(df, list(zip(cols, directions)))

    usable = [i for i in range(n) if feasible[i] and np.isfinite(values[i]).all()]
    expected = {
        f"c{i}" for i in usable if not any(_dominates(values[j], values[i], directions) for j in usable if j != i)
    }
    assert set(info.front_names) == expected
    assert set(info.dominated_names) == {f"c{i}" for i in usable} - expected
    assert set(info.infeasible_names) == {f"c{i}" for i in range(n) if not feasible[i]}
    assert set(info.missing["name"]) == {f"c{i}" for i in range(n) if feasible[i] and not np.isfinite(values[i]).all()}
    # The four groups partition the table; the input is not modified.
    assert len(info.front) + len(info.dominated) + len(info.infeasible) + len(info.missing) == n
    assert "rank" not in df.columns
    # Sorted best first on the first objective.
    first = info.front[cols[0]].to_numpy()
    assert (np.diff(first) <= 0).all() if directions[0] == "maximize" else (np.diff(first) >= 0).all()


def test_duplicates_share_the_front():
    df = pd.DataFrame({"name": ["a", "b", "c"], "x": [1.0, 1.0, 2.0], "y": [1.0, 1.0, 0.5], "feasible": True})
    info = pareto_front(df, [("x", "minimize"), ("y", "maximize")])
    assert set(info.front_names) == {"a", "b"}
    assert info.dominated_names == ("c",)


def test_bad_objectives_name_the_problem():
    df = pd.DataFrame({"name": ["a"], "x": [1.0], "feasible": [True]})
    with pytest.raises(ConfigError, match="latency_ms"):
        pareto_front(df, [("x", "minimize"), ("latency_ms", "minimize")])
    with pytest.raises(ConfigError, match="'up'"):
        pareto_front(df, [("x", "up")])


@pytest.mark.parametrize("directions", list(itertools.product(["minimize", "maximize"], repeat=2)))
def test_attainment_line_is_the_dominated_region_boundary(directions):
    rng = np.random.default_rng(3)
    pts = rng.random((30, 2))
    front = pts[nondominated_ranks(pts, directions) == 0]
    line = attainment_line(front, directions)
    assert line.shape == (2 * len(front) - 1, 2)
    # Vertices at even positions are the front points; corners sit between neighbours and are
    # dominated by (or equal to) both of them.
    assert {tuple(p) for p in line[::2]} == {tuple(p) for p in front}
    for i in range(1, len(line), 2):
        corner, before, after = line[i], line[i - 1], line[i + 1]
        assert corner[0] == after[0] and corner[1] == before[1]
        for p in (before, after):
            assert not _dominates(corner, p, directions)
