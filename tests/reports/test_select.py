from __future__ import annotations

import pytest

from reports import candidates_frame, choose_model

from .conftest import cand, tiny_records


def test_best_and_fastest_within_one_point():
    df = candidates_frame(tiny_records())
    c = choose_model(df, {"min_fps": 10, "max_latency_ms": None, "max_params": None})
    # trial-3 has the best Dice but is infeasible; trial-5 has no Dice.
    assert c.best == "paper" and c.best_dice == pytest.approx(0.90)
    # Within one point of 0.90: paper (20 FPS) and paper.int8 (0.895, 35.7 FPS).
    assert c.fastest == "paper.int8" and c.fastest_fps == pytest.approx(1000 / 28)
    assert set(c.eligible) == {"paper", "trial-1", "trial-2", "trial-4", "paper.int8"}
    assert "Dice is on synthetic data" in c.notes


def test_constraints_are_rechecked_and_estimates_flagged():
    df = candidates_frame(
        [
            cand("a", trial=1, dice=0.91, latency_ms=40.0),
            cand("b", trial=2, dice=0.905, latency_ms=10.0, latency_kind="estimated", params=3_000_000),
            cand("c", trial=3, dice=0.90, latency_ms=20.0),
        ]
    )
    c = choose_model(df, {"max_latency_ms": 30.0})
    assert c.best == "b" and c.fastest == "b"
    assert "FPS values compared here mix MEASURED and ESTIMATED latencies" in c.notes
    c = choose_model(df, {"max_latency_ms": 30.0, "max_params": 2_000_000})
    assert c.best == "c" and c.fastest == "c"
    assert choose_model(df, {"min_fps": 1000}).best is None


@pytest.mark.parametrize(
    ("kinds", "note"),
    [
        (("measured", "measured"), None),
        (("predicted", "predicted"), "every FPS compared here is PREDICTED, not measured"),
        (("estimated", "estimated"), "every FPS compared here is ESTIMATED, not measured"),
        (("measured", "predicted"), "FPS values compared here mix MEASURED and PREDICTED latencies"),
        (("predicted", "estimated"), "FPS values compared here mix ESTIMATED and PREDICTED latencies"),
    ],
)
def test_the_ship_note_names_every_latency_kind(kinds, note):
    # Two candidates within one Dice point of each other, their latencies of the given kinds.
    df = candidates_frame([cand("a", trial=1, latency_kind=kinds[0]), cand("b", trial=2, latency_kind=kinds[1])])
    notes = [n for n in choose_model(df).notes if "FPS" in n]
    assert notes == ([] if note is None else [note])
