"""The validated figure: each validated model's mean test Dice against its latency, both with their intervals.

Vertical bars: the 95 % t-interval of the mean test Dice over the training seeds (validate
--seeds); none with one seed (a single run has no interval, and the caption says so).
Horizontal bars: the 95 % bootstrap interval of the model's median latency over validate's
alternating rounds (none for an estimate or a prediction). Two models whose boxes overlap are
not told apart by these runs.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports._plots import DOMINATED_COLOR, FIGSIZE, REFERENCE_COLOR, VALIDATED_COLOR
from reports._validated import ValidatedInfo
from rtseg_core import finite_or_none


def plot_validated(v: ValidatedInfo, *, ax: Axes | None = None) -> Figure:
    """x: validate's latency (ms, lower is better); y: test Dice (mean over seeds); error bars both ways."""
    if ax is None:
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    fig.suptitle("Validated models: test Dice vs latency, with their intervals", fontsize=12, fontweight="bold")
    seeds = len(v.seeds)
    ax.set_title(
        (f"Dice: mean over {seeds} training seeds, 95 % t-interval" if seeds > 1 else "Dice: one seed (a single run, "
         "no interval)") + "; latency: median of validate's run, 95 % bootstrap interval over its rounds",
        fontsize=7, loc="left",
    )  # fmt: skip
    ax.set_xlabel(f"latency, ms ({str(v.latency.get('kind', 'measured')).upper()}, validate's run)")
    ax.set_ylabel("test Dice")
    ax.grid(True, color="#eeeeee", linewidth=0.8)
    front = set(v.front.front_names)
    pts = points(v)
    if pts:  # a t-interval of 2-3 seeds can reach past [0, 1], where no Dice lies: the axis stops there
        low, high = min(p["y_low"] for p in pts), max(p["y_high"] for p in pts)
        pad = 0.05 * max(high - low, 0.01)
        ax.set_ylim(max(low - pad, -0.02), min(high + pad, 1.02))
    for p in pts:
        color = REFERENCE_COLOR if p["name"] == "paper" else VALIDATED_COLOR if p["name"] in front else DOMINATED_COLOR
        ax.errorbar(
            [p["x"]], [p["y"]], xerr=[[p["x"] - p["x_low"]], [p["x_high"] - p["x"]]],
            yerr=[[p["y"] - p["y_low"]], [p["y_high"] - p["y"]]], fmt="*" if p["name"] == "paper" else "o",
            ms=12 if p["name"] == "paper" else 6, color=color, ecolor=color, elinewidth=1.2, capsize=3, zorder=4,
        )  # fmt: skip
        ax.annotate(p["name"], (p["x"], p["y"]), textcoords="offset points", xytext=(6, 6), fontsize=7, color=color)
    return fig


def points(v: ValidatedInfo) -> list[dict]:
    """Every validated model with a latency and a Dice: its point and the ends of its two bars (a missing
    interval is the point itself, a bar of zero length)."""
    out = []
    for _, row in v.candidates.iterrows():
        name = str(row["name"])
        x = finite_or_none(row["latency_ms"])
        m = v.models.get(name)
        d = m.dice if m is not None else None
        y = d.mean if d is not None else finite_or_none(row["dice"])
        if x is None or y is None:
            continue
        xi = v.latency_interval.get(name) or (x, x)
        yi = (d.low, d.high) if d is not None and d.low is not None else (y, y)
        out.append({"name": name, "x": x, "x_low": min(xi[0], x), "x_high": max(xi[1], x), "y": y,
                    "y_low": min(yi[0], y), "y_high": max(yi[1], y)})  # fmt: skip
    return out
