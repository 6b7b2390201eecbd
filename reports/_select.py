"""Which model to ship: the report's recommendation, computed from the candidate table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports._pareto import objective_values
from rtseg_core import KINDS, MEASURED, Constraints

DICE_TOLERANCE = 0.01  # one Dice point (Dice is stored in [0, 1])


@dataclass(frozen=True)
class ShipChoice:
    """The best eligible candidate by Dice, and the fastest one within ``tolerance`` of it.

    Eligible: ``feasible`` is True, Dice is known, and every study constraint whose value is known
    holds (``fps >= min_fps``, ``latency_ms <= max_latency_ms``, ``params <= max_params``; a
    constraint on an unknown value fails). Fastest means highest FPS; ties go to higher Dice.
    """

    best: str | None
    best_dice: float | None
    fastest: str | None
    fastest_dice: float | None
    fastest_fps: float | None
    fastest_latency_kind: str | None
    tolerance: float
    eligible: tuple[str, ...]
    constraints: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def meets_constraints(df: pd.DataFrame, constraints: dict[str, float | None] | None) -> np.ndarray:
    """Boolean mask: feasible, Dice known, and within every given constraint (:class:`rtseg_core.Constraints`)."""
    limits = Constraints.from_dict(constraints, source="constraints")
    ok = df["feasible"].fillna(False).astype(bool).to_numpy() & np.isfinite(objective_values(df, ["dice"])[:, 0])
    if not limits.active:
        return ok
    numbers = objective_values(df, ["params", "latency_ms", "fps"])
    met = [limits.met_by(params=p, latency_ms=lat, fps=fps) for p, lat, fps in numbers]
    return ok & np.array(met, dtype=bool)


def choose_model(
    df: pd.DataFrame, constraints: dict[str, float | None] | None = None, *, tolerance: float = DICE_TOLERANCE
) -> ShipChoice:
    """Recommend what to ship from a candidate table (see :class:`ShipChoice` for the rules)."""
    constraints = dict(constraints or {})
    eligible = df[meets_constraints(df, constraints)] if len(df) else df
    if eligible.empty:
        return ShipChoice(
            None,
            None,
            None,
            None,
            None,
            None,
            tolerance,
            (),
            constraints,
            ("no candidate is feasible and meets the constraints",),
        )
    dice = objective_values(eligible, ["dice"])[:, 0]
    order = sorted(range(len(eligible)), key=lambda i: (-dice[i], str(eligible["name"].iloc[i])))
    best_i = order[0]
    best_dice = float(dice[best_i])
    fps = objective_values(eligible, ["fps"])[:, 0]
    close = [i for i in range(len(eligible)) if dice[i] >= best_dice - tolerance - 1e-12 and np.isfinite(fps[i])]
    notes = []
    fastest = fastest_dice = fastest_fps = fastest_kind = None
    if close:
        fi = sorted(close, key=lambda i: (-fps[i], -dice[i], str(eligible["name"].iloc[i])))[0]
        fastest = str(eligible["name"].iloc[fi])
        fastest_dice, fastest_fps = float(dice[fi]), float(fps[fi])
        fastest_kind = str(eligible["latency_kind"].iloc[fi])
        notes += _kind_notes(set(map(str, eligible["latency_kind"].iloc[close])))
        targets = set(map(str, eligible["target"].iloc[close]))
        if len(targets) > 1:
            notes.append(f"FPS values come from different targets: {', '.join(sorted(targets))}")
    else:
        notes.append("no candidate within tolerance has an FPS value")
    if (eligible["dataset"] == "synthetic").any():
        notes.append("Dice is on synthetic data")
    return ShipChoice(
        best=str(eligible["name"].iloc[best_i]),
        best_dice=best_dice,
        fastest=fastest,
        fastest_dice=fastest_dice,
        fastest_fps=fastest_fps,
        fastest_latency_kind=fastest_kind,
        tolerance=tolerance,
        eligible=tuple(str(n) for n in eligible["name"]),
        constraints=constraints,
        notes=tuple(notes),
    )


def _kind_notes(kinds: set[str]) -> list[str]:
    """What the FPS values compared are: a note unless every one is MEASURED (ESTIMATED and PREDICTED
    numbers come from a model of the target, never a timing)."""
    if kinds == {MEASURED}:
        return []
    named = [k.upper() for k in KINDS if k in kinds] + sorted(k for k in kinds if k not in KINDS)
    if len(named) == 1:
        return [f"every FPS compared here is {named[0]}, not measured"]
    return [f"FPS values compared here mix {', '.join(named[:-1])} and {named[-1]} latencies"]
