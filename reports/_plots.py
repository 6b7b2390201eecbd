"""Drawing the report's figures from their info objects (:mod:`reports._plot_info`).

Figures are plain :class:`matplotlib.figure.Figure` objects rendered with the Agg/SVG canvases, so
nothing here touches pyplot's global state or the process-wide backend.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reports._hypervolume import DEFAULT_PAD, HypervolumeHistory
from reports._pareto import objective_values
from reports._plot_info import ScatterInfo
from reports._remeasured import WITHIN, RemeasuredInfo
from rtseg_core import atomic_write_bytes

FRONT_COLOR = "#1f5fbf"
DOMINATED_COLOR = "#9a9a9a"
INFEASIBLE_COLOR = "#c0504d"
REFERENCE_COLOR = "#e00000"
PUBLISHED_COLOR = "#000000"
ARROW_COLOR = "#e07b00"
BAND_COLOR = "#b8322a"
FIGSIZE = (8.0, 6.0)


def plot_scatter(info: ScatterInfo, *, ax: Axes | None = None) -> Figure:
    """Draw one objective-pair plot; returns the figure (a new one unless ``ax`` is given)."""
    fig, ax = _figure(ax)
    ax.set_xlabel(info.x.label)
    ax.set_ylabel(info.y.label)
    fig.suptitle(info.title, fontsize=12, fontweight="bold")
    if info.subtitle:
        ax.set_title(info.subtitle, fontsize=7, loc="left")
    ax.grid(True, axis="y", color="#dddddd", linewidth=0.8)
    if info.x.log:
        ax.set_xscale("log")
    if info.note:
        ax.text(0.5, 0.5, info.note, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="#555555")
        _draw_bands(ax, info)
        return fig

    ax.margins(x=0.08, y=0.08)  # room for the point labels at the edges
    scale = np.array([info.x.factor, info.y.factor])
    handles = []
    estimated = set(info.estimated)

    def xy(df):
        return objective_values(df, [info.x.column, info.y.column]) * scale

    def markers(df):
        return ["^" if n in estimated else "o" for n in df["name"]]

    # Dominated first (behind), then infeasible, then the front on top.
    dom = info.front.dominated
    if len(dom):
        _scatter(ax, xy(dom), markers(dom), dict(color=DOMINATED_COLOR, s=30, zorder=3))
        handles.append(Line2D([], [], ls="", marker="o", color=DOMINATED_COLOR, label="dominated (feasible)"))
    inf = info.plotted_infeasible
    if len(inf):
        pts = xy(inf)
        ax.scatter(pts[:, 0], pts[:, 1], marker="x", color=INFEASIBLE_COLOR, s=35, zorder=3, linewidths=1.2)
        handles.append(
            Line2D([], [], ls="", marker="x", color=INFEASIBLE_COLOR, label="infeasible (breaks a constraint)")
        )
    front = info.front.front
    if len(front):
        line = np.array(info.front_line)
        ax.plot(line[:, 0], line[:, 1], color=FRONT_COLOR, lw=1.5, zorder=4)
        _scatter(ax, xy(front), markers(front), dict(color=FRONT_COLOR, s=42, zorder=5))
        handles.append(Line2D([], [], marker="o", color=FRONT_COLOR, label="Pareto front (feasible)"))
        for name, (px, py) in zip(front["name"], xy(front)):
            ax.annotate(str(name), (px, py), xytext=(5, 4), textcoords="offset points", fontsize=7, color=FRONT_COLOR)
    if estimated:
        handles.append(Line2D([], [], ls="", marker="^", color="#555555", label="latency ESTIMATED (triangles)"))

    front_names = set(info.front.front_names)
    for arrow in info.arrows:
        ax.annotate(
            "",
            xy=arrow.end,
            xytext=arrow.start,
            arrowprops=dict(arrowstyle="->", color=ARROW_COLOR, lw=1.2, shrinkA=4, shrinkB=4),
            zorder=6,
        )
        if arrow.child not in front_names:  # front points are labelled already
            ax.annotate(
                arrow.child, arrow.end, xytext=(5, -9), textcoords="offset points", fontsize=7, color=ARROW_COLOR
            )
    if info.arrows:
        handles.append(Line2D([], [], color=ARROW_COLOR, label="compressed: parent -> variant"))

    all_rows = [d for d in (front, dom, inf) if len(d)]
    for df in all_rows:
        refs = df[df["name"].isin(info.references)]
        if len(refs):
            pts = xy(refs)
            ax.scatter(pts[:, 0], pts[:, 1], marker="*", s=260, color=REFERENCE_COLOR, zorder=7, edgecolors="white")
    if info.references:
        handles.append(
            Line2D([], [], ls="", marker="*", ms=13, color=REFERENCE_COLOR, label="paper preset (measured here)")
        )

    if info.published is not None:
        p = info.published
        ax.scatter([p.fps], [p.dice], marker="*", s=260, facecolors="none", edgecolors=PUBLISHED_COLOR, zorder=7)
        ax.annotate(p.label, (p.fps, p.dice), xytext=(7, 6), textcoords="offset points", fontsize=8)
        handles.append(
            Line2D([], [], ls="", marker="*", ms=13, mfc="none", color=PUBLISHED_COLOR, label=f"{p.label}, not ours")
        )

    _draw_bands(ax, info)
    _better(ax, info)
    ax.legend(handles=handles, fontsize=7, loc="best")
    return fig


def plot_hypervolume_history(history: HypervolumeHistory, *, ax: Axes | None = None) -> Figure:
    """Hypervolume of the feasible trials so far against trial number (a non-decreasing staircase)."""
    fig, ax = _figure(ax)
    fig.suptitle("Hypervolume over trials", fontsize=12, fontweight="bold")
    objs = ", ".join(f"{n} ({'max' if d == 'maximize' else 'min'})" for n, d in history.objectives)
    ax.set_xlabel("trial number")
    ax.set_ylabel("hypervolume (product of objective units)")
    ax.grid(True, color="#dddddd", linewidth=0.8)
    sub = [f"objectives: {objs}"]
    if history.reference:
        ref = ", ".join(f"{v:.6g}" for v in history.reference)
        sub.append(f"reference point ({ref}): worst feasible value + {DEFAULT_PAD:.0%} of range, unless given")
    if history.source:
        sub.append(f"trials from {history.source}; only COMPLETE, feasible trials count")
    ax.set_title("\n".join(sub), fontsize=7, loc="left")
    if history.is_empty:
        ax.text(0.5, 0.5, "no trials in this study", transform=ax.transAxes, ha="center", va="center", fontsize=11)
        return fig
    ax.step(history.numbers, history.values, where="post", color=FRONT_COLOR, lw=1.5)
    ax.plot(history.numbers, history.values, "o", color=FRONT_COLOR, ms=3)
    if not any(history.values):
        ax.text(0.5, 0.5, "no feasible trial yet", transform=ax.transAxes, ha="center", va="center", fontsize=11)
    return fig


def plot_remeasured(info: RemeasuredInfo, *, ax: Axes | None = None) -> Figure:
    """PREDICTED against MEASURED latency of the remeasured front, with y = x and the +-10 % band."""
    fig, ax = _figure(ax)
    fig.suptitle("Latency: PREDICTED (kernel table) vs MEASURED", fontsize=12, fontweight="bold")
    ax.set_xlabel("MEASURED latency (ms, median)")
    ax.set_ylabel("PREDICTED latency (ms)")
    ax.grid(True, color="#dddddd", linewidth=0.8)
    keys = sorted({r.table_key for r in info.rows})
    ons = sorted({r.measured_on for r in info.rows})
    ax.set_title("\n".join([*(f"table {k}" for k in keys), *(f"measured on {m}" for m in ons)]), fontsize=6, loc="left")
    if not info.rows:
        ax.text(0.5, 0.5, "not remeasured", transform=ax.transAxes, ha="center", va="center", fontsize=11)
        return fig
    measured = np.array([r.measured_ms for r in info.rows])
    predicted = np.array([r.predicted_ms for r in info.rows])
    top = float(max(measured.max(), predicted.max())) * 1.15
    line = np.array([0.0, top])
    ax.fill_between(line, line * (1 - WITHIN / 100), line * (1 + WITHIN / 100), color=FRONT_COLOR, alpha=0.12, lw=0)
    ax.plot(line, line, color=DOMINATED_COLOR, lw=1, ls="--")
    ax.scatter(measured, predicted, color=FRONT_COLOR, zorder=3)
    for r in info.rows:
        ax.annotate(r.name, (r.measured_ms, r.predicted_ms), xytext=(5, 4), textcoords="offset points", fontsize=7)
    ax.set_xlim(0.0, top)
    ax.set_ylim(0.0, top)
    ax.legend(
        handles=[
            Line2D([], [], ls="", marker="o", color=FRONT_COLOR, label="front candidate"),
            Line2D([], [], ls="--", color=DOMINATED_COLOR, label="predicted = measured"),
            Line2D([], [], lw=8, alpha=0.12, color=FRONT_COLOR, label=f"within +-{WITHIN:g} %"),
        ],
        fontsize=7,
        loc="upper left",
    )
    return fig


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """Render ``fig`` as ``png`` or ``svg`` bytes (the SVG carries no date, so reruns are identical)."""
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    fig.savefig(buf, format=fmt, dpi=120, metadata=metadata)
    return buf.getvalue()


def save_figure(fig: Figure, out_dir: str | os.PathLike, stem: str) -> dict[str, bytes]:
    """Write ``<stem>.png`` and ``<stem>.svg`` atomically; returns the bytes written per format."""
    out = {}
    for fmt in ("png", "svg"):
        data = figure_bytes(fig, fmt)
        atomic_write_bytes(Path(out_dir) / f"{stem}.{fmt}", data)
        out[fmt] = data
    return out


def _figure(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    return fig, fig.add_subplot()


def _scatter(ax: Axes, pts: np.ndarray, markers: list[str], kw: dict) -> None:
    for marker in sorted(set(markers)):
        sel = np.array([m == marker for m in markers])
        ax.scatter(pts[sel, 0], pts[sel, 1], marker=marker, **kw)


def _draw_bands(ax: Axes, info: ScatterInfo) -> None:
    if not info.bands:
        return
    lo, hi = ax.get_xlim()
    top = max(b.high or b.low for b in info.bands) * 1.25
    hi = max(hi, top)
    if info.published is not None:
        hi = max(hi, info.published.fps * 1.15)
    ax.set_xlim(0.0, hi)
    # Like the paper: the first band fades in, the last is solid behind a red line at its start.
    n = len(info.bands)
    for i, band in enumerate(info.bands):
        right = hi if band.high is None else band.high
        if i < n - 1:
            edges = np.linspace(band.low, right, 25)
            for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
                ax.axvspan(a, b, color=BAND_COLOR, alpha=0.28 * (k + 1) / len(edges), lw=0, zorder=0)
        else:
            ax.axvspan(band.low, right, color=BAND_COLOR, alpha=0.28, lw=0, zorder=0)
            ax.axvline(band.low, color=REFERENCE_COLOR, lw=1.2, zorder=1)
        ax.text(
            (band.low + right) / 2,
            0.3,
            band.label,
            transform=ax.get_xaxis_transform(),
            ha="center",
            fontsize=11,
            fontweight="bold",
            color=REFERENCE_COLOR if i == n - 1 else "black",
            zorder=2,
        )


def _better(ax: Axes, info: ScatterInfo) -> None:
    hx, vy = info.better
    x = 0.98 if hx == "right" else 0.02
    y = 0.97 if vy == "top" else 0.03
    dx = 0.05 if hx == "right" else -0.05
    dy = 0.05 if vy == "top" else -0.05
    ax.annotate(
        "better",
        xy=(x, y),
        xytext=(x - 2 * dx, y - 2 * dy),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=9,
        fontweight="bold",
        color=REFERENCE_COLOR,
        arrowprops=dict(arrowstyle="->", color=ARROW_COLOR, lw=1.5),
    )
