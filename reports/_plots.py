"""Drawing the report's figures from their info objects (:mod:`reports._plot_info`).

Figures are plain :class:`matplotlib.figure.Figure` objects rendered with the Agg/SVG canvases, so
nothing here touches pyplot's global state or the process-wide backend.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
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
VALIDATED_COLOR = "#2a9d3c"
PICK_COLOR = "#006400"
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

    ax.set_xlim(*info.xlim)  # the info placed the labels, the legend and the arrow for these limits
    ax.set_ylim(*info.ylim)
    scale = np.array([info.x.factor, info.y.factor])
    estimated = set(info.estimated)

    def xy(df):
        return objective_values(df, [info.x.column, info.y.column]) * scale

    def markers(df):
        return ["^" if n in estimated else "o" for n in df["name"]]

    # Dominated first (behind), then infeasible, then the front on top.
    dom = info.front.dominated
    if len(dom):
        _scatter(ax, xy(dom), markers(dom), dict(color=DOMINATED_COLOR, s=30, zorder=3))
    inf = info.plotted_infeasible
    if len(inf):
        pts = xy(inf)
        ax.scatter(pts[:, 0], pts[:, 1], marker="x", color=INFEASIBLE_COLOR, s=35, zorder=3, linewidths=1.2)
    front = info.front.front
    if len(front):
        line = np.array(info.front_line)
        ax.plot(line[:, 0], line[:, 1], color=FRONT_COLOR, lw=1.5, zorder=4)
        _scatter(ax, xy(front), markers(front), dict(color=FRONT_COLOR, s=42, zorder=5))

    for arrow in info.arrows:
        ax.annotate(
            "",
            xy=arrow.end,
            xytext=arrow.start,
            arrowprops=dict(arrowstyle="->", color=ARROW_COLOR, lw=1.2, shrinkA=4, shrinkB=4),
            zorder=6,
        )

    rows = [d for d in (front, dom, inf) if len(d)]
    plotted = pd.concat(rows) if rows else front
    at = dict(zip(plotted["name"], map(tuple, xy(plotted)))) if len(plotted) else {}
    for names, hollow in ((set(info.references) - set(info.references_infeasible), False),
                          (set(info.references_infeasible), True)):  # fmt: skip
        pts = np.array([at[n] for n in sorted(names) if n in at])
        if not len(pts):
            continue
        if hollow:  # an infeasible paper: an empty star, crossed
            ax.scatter(pts[:, 0], pts[:, 1], marker="*", s=300, facecolors="white", edgecolors=REFERENCE_COLOR,
                       linewidths=1.4, zorder=7)  # fmt: skip
            ax.scatter(pts[:, 0], pts[:, 1], marker="x", s=60, color=REFERENCE_COLOR, linewidths=1.6, zorder=8)
        else:
            ax.scatter(pts[:, 0], pts[:, 1], marker="*", s=260, color=REFERENCE_COLOR, zorder=7, edgecolors="white")

    ringed = [at[n] for n in info.marked_front if n in at and n != info.pick]
    if ringed:
        pts = np.array(ringed)
        ax.scatter(pts[:, 0], pts[:, 1], marker="o", s=170, facecolors="none", edgecolors=VALIDATED_COLOR,
                   linewidths=1.6, zorder=8)  # fmt: skip
    if info.pick is not None:
        px, py = at[info.pick]
        ax.scatter([px], [py], marker="o", s=420, facecolors="none", edgecolors=PICK_COLOR, linewidths=2.6, zorder=9)

    if info.published is not None:
        p = info.published
        ax.scatter([p.fps], [p.dice], marker="*", s=260, facecolors="none", edgecolors=PUBLISHED_COLOR, zorder=7)

    for label in info.labels:
        _draw_label(ax, label)
    _draw_bands(ax, info)
    _better(ax, info)
    ax.legend(handles=[_handle(key, text) for key, text in info.legend], fontsize=7, loc=info.legend_corner)
    return fig


def _handle(key: str, text: str) -> Line2D:
    styles = {
        "dominated": dict(ls="", marker="o", color=DOMINATED_COLOR),
        "infeasible": dict(ls="", marker="x", color=INFEASIBLE_COLOR),
        "front": dict(marker="o", color=FRONT_COLOR),
        "estimated": dict(ls="", marker="^", color="#555555"),
        "arrow": dict(color=ARROW_COLOR),
        "reference": dict(ls="", marker="*", ms=13, color=REFERENCE_COLOR),
        "reference_infeasible": dict(ls="", marker="*", ms=13, mfc="white", mec=REFERENCE_COLOR),
        "published": dict(ls="", marker="*", ms=13, mfc="none", color=PUBLISHED_COLOR),
        "validated_front": dict(ls="", marker="o", ms=12, mfc="none", mec=VALIDATED_COLOR, mew=1.6),
        "pick": dict(ls="", marker="o", ms=15, mfc="none", mec=PICK_COLOR, mew=2.4),
    }
    return Line2D([], [], label=text, **styles[key])


LABEL_COLORS = {"front": FRONT_COLOR, "variant": ARROW_COLOR, "validated": VALIDATED_COLOR, "pick": PICK_COLOR,
                "published": PUBLISHED_COLOR, "reference": REFERENCE_COLOR}  # fmt: skip


def _draw_label(ax: Axes, label) -> None:
    color = LABEL_COLORS[label.role]
    arrow = dict(arrowstyle="-", color=color, lw=0.6, shrinkA=0, shrinkB=4) if label.leader else None
    ax.annotate(
        label.text,
        label.xy,
        xytext=label.offset,
        textcoords="offset points",
        ha=label.ha,
        va=label.va,
        fontsize=label.fontsize,
        color=color,
        fontweight="bold" if label.role == "pick" else "normal",
        arrowprops=arrow,
        bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75),  # a line it crosses stays faint
        zorder=10,
    )


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
    if info.xlim is None:  # an empty figure: the bands alone
        hi = max(b.high or b.low for b in info.bands) * 1.25
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
    """The arrow towards better values, in the corner the info chose away from the data; its word beside its tail."""
    tx, ty, hx, hy = info.better_arrow
    ax.annotate(
        "",
        xy=(hx, hy),
        xytext=(tx, ty),
        xycoords="axes fraction",
        arrowprops=dict(arrowstyle="->", color=ARROW_COLOR, lw=1.5),
        zorder=9,
    )
    right = hx > tx  # the word sits on the side the arrow comes from
    ax.text(tx + (-0.008 if right else 0.008), ty, "better", transform=ax.transAxes, ha="right" if right else "left",
            va="center", fontsize=9, fontweight="bold", color=REFERENCE_COLOR, zorder=9)  # fmt: skip
