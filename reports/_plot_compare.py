"""The overlay of several studies' validated fronts (``report --compare``), each study's paper marked."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reports._compare import CompareInfo
from reports._pareto import attainment_line
from reports._plots import FIGSIZE, REFERENCE_COLOR

COLORS = ("#1f5fbf", "#e07b00", "#2a9d3c", "#8e44ad", "#c0504d", "#17a2b8", "#7f6000", "#555555")


def plot_compare(info: CompareInfo) -> Figure:
    """x: validated latency (ms, kind as recorded), y: test Dice; one colour per study, its front a staircase."""
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    fig.suptitle("Validated fronts of the compared studies", fontsize=12, fontweight="bold")
    c = info.conditions
    b = info.budget
    kind = str(c.get("latency_kind")).upper()
    ax.set_title(
        f"full budget: {b.get('epochs')} epochs at {b.get('size')} px on {b.get('data')}, test split; latency "
        f"{kind}, {c.get('height')}x{c.get('width')}, {c.get('threads')} thread(s), target {c.get('target')};\n"
        "latencies come from each study's own validate run: compare speed-ups vs each study's paper (star). "
        f"+ = hypervolume reference ({info.reference[0]:.4f}, {info.reference[1]:.3g} ms)",
        fontsize=6.5,
        loc="left",
    )
    ax.set_xlabel(f"latency (ms, median, {kind} in each study's validate run)")
    ax.set_ylabel("test Dice after full training")
    ax.grid(True, color="#eeeeee", linewidth=0.8)
    handles = []
    for i, s in enumerate(info.studies):
        color = COLORS[i % len(COLORS)]
        df = s.validated
        ok = df["dice"].notna() & df["latency_ms"].notna()
        feas = df[ok & df["feasible"].astype(bool)]
        infeas = df[ok & ~df["feasible"].astype(bool)]
        ax.scatter(feas["latency_ms"], feas["dice"], color=color, s=26, zorder=4, alpha=0.8)
        if len(infeas):
            ax.scatter(infeas["latency_ms"], infeas["dice"], color=color, marker="x", s=30, zorder=4)
        front = s.front.front
        if len(front):
            line = attainment_line(front[["dice", "latency_ms"]].to_numpy(dtype=float), ["maximize", "minimize"])
            ax.plot(line[:, 1], line[:, 0], color=color, lw=1.6, zorder=3, drawstyle="default")
            for name, x, y in zip(front["name"], front["latency_ms"], front["dice"]):
                ax.annotate(str(name), (x, y), xytext=(4, 3), textcoords="offset points", fontsize=6.5, color=color)
        paper = s.check.paper
        if paper is not None:
            ax.scatter([paper["latency_ms"]], [paper["dice"]], marker="*", s=240, color=color,
                       edgecolors=REFERENCE_COLOR, linewidths=1.2, zorder=6)  # fmt: skip
        label = f"{s.label}: {s.strategy}, HV {s.hypervolume:.4g}"
        handles.append(Line2D([], [], color=color, marker="o", label=label))
    ref = np.array(info.reference)
    ax.scatter([ref[1]], [ref[0]], marker="+", s=90, color="black", zorder=5)
    handles += [
        Line2D([], [], ls="", marker="*", ms=12, color="#bbbbbb", mec=REFERENCE_COLOR, label="the study's own paper"),
        Line2D([], [], ls="", marker="+", ms=9, color="black", label="hypervolume reference point"),
    ]
    # Below the axes: inside it would hide points or the reference point, wherever the fronts fall.
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2)
    return fig
