"""What each scatter plot of a report shows, computed before anything is drawn.

Every plot is described by a :class:`ScatterInfo` (front, dominated and infeasible rows, the
front's staircase, real-time bands, the paper's published point if it is comparable, arrows from
parents to compressed variants, labels). :mod:`reports._plots` only draws it, and tests assert on
it rather than on pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports._pareto import FrontInfo, attainment_line, objective_values, pareto_front

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedPoint:
    """A number taken from the paper, not measured by us; drawn apart from our fronts."""

    label: str
    dice: float  # a fraction in [0, 1], like every Dice in the suite
    fps: float
    dataset: str
    device: str
    note: str


PAPER_PUBLISHED = PublishedPoint(
    label="published (paper)",
    dice=0.9242,
    fps=31.13,
    dataset="jnu-ifm",
    device="Jetson Nano",
    note=(
        "RTSeg-Net paper: Dice 0.9242 (92.42 %) on JNU-IFM at 31.13 FPS (32.1 ms/frame) on a Jetson Nano; "
        "the paper states no runtime, precision, batch, input size or power mode"
    ),
)


@dataclass(frozen=True)
class Band:
    """A shaded FPS range: ``low`` to ``high`` (``None``: to the right edge of the plot)."""

    low: float
    high: float | None
    label: str


# The paper's real-time marks (Fig. "real-time processing capability"): IS>10 and IS>24 frames/s.
REALTIME_BANDS = (Band(10.0, 24.0, "IS>10"), Band(24.0, None, "IS>24"))


@dataclass(frozen=True)
class Arrow:
    """From a parent candidate to a compressed variant of it, in plotted units."""

    parent: str
    child: str
    start: tuple[float, float]
    end: tuple[float, float]


@dataclass(frozen=True)
class AxisSpec:
    column: str
    direction: str
    factor: float  # plotted value = column value * factor
    label: str
    log: bool = False


@dataclass(frozen=True)
class ScatterInfo:
    """Everything one objective-pair plot shows. Coordinates are ``column * factor`` (Dice as stored: a fraction)."""

    key: str  # file stem: "dice_fps", "dice_macs", "dice_params"
    x: AxisSpec
    y: AxisSpec
    front: FrontInfo  # over (y, x) with their directions; only rows with both values count
    front_line: tuple[tuple[float, float], ...]  # staircase through the front, plotted units
    title: str
    subtitle: str
    bands: tuple[Band, ...]  # real-time bands; only for FPS measured or estimated for a Jetson
    published: PublishedPoint | None  # the paper's own number, only when our axes are comparable
    published_reason: str  # why it is or is not drawn
    arrows: tuple[Arrow, ...]
    references: tuple[str, ...]  # candidates with source == "reference" (drawn as a star)
    estimated: tuple[str, ...]  # plotted candidates whose latency is an estimate
    better: tuple[str, str]  # corner where better points lie: ("right"|"left", "top"|"bottom")
    note: str  # shown instead of data when nothing can be plotted; "" otherwise

    @property
    def plotted_names(self) -> tuple[str, ...]:
        return (*self.front.front_names, *self.front.dominated_names, *_names(self.plotted_infeasible))

    @property
    def plotted_infeasible(self) -> pd.DataFrame:
        inf = self.front.infeasible
        if inf.empty:
            return inf
        vals = objective_values(inf, [self.x.column, self.y.column])
        return inf[np.isfinite(vals).all(axis=1)]


DICE_AXIS = AxisSpec("dice", "maximize", 1.0, "Dice, mean of PS and FH (fraction)")


def is_jetson_target(target: str) -> bool:
    """Remote SSH targets are Jetsons in this suite; ``jetson-*`` names are estimates for one."""
    t = str(target).strip().lower()
    return t.startswith("ssh://") or t.startswith("jetson")


def fps_axis(rows: pd.DataFrame) -> AxisSpec:
    kinds = set(rows["latency_kind"].dropna()) if "latency_kind" in rows.columns else set()
    if kinds == {"measured"}:
        label = "FPS, measured (frames/s, batch 1, from median latency)"
    elif kinds == {"estimated"}:
        label = "FPS, ESTIMATED, not measured (frames/s, batch 1)"
    elif kinds:
        label = "FPS (frames/s, batch 1): measured = circles, ESTIMATED = triangles"
    else:
        label = "FPS (frames/s, batch 1)"
    return AxisSpec("fps", "maximize", 1.0, label)


MACS_AXIS = AxisSpec("macs", "minimize", 1e-9, "GMACs per forward pass (counted, fvcore)", log=False)
PARAMS_AXIS = AxisSpec("params", "minimize", 1e-6, "parameters (millions)", log=False)


def scatter_info(df: pd.DataFrame, *, key: str, x: AxisSpec, y: AxisSpec = DICE_AXIS) -> ScatterInfo:
    """Describe the plot of ``y`` against ``x`` for the candidate table ``df`` (not modified)."""
    front = pareto_front(df, [(y.column, y.direction), (x.column, x.direction)])
    vals = objective_values(df, [x.column, y.column]) if len(df) else np.zeros((0, 2))
    plotted = df[np.isfinite(vals).all(axis=1)] if len(df) else df
    coords = {
        str(name): (float(vx) * x.factor, float(vy) * y.factor)
        for name, (vx, vy) in zip(plotted["name"], objective_values(plotted, [x.column, y.column]))
    }
    x = _maybe_log(x, plotted)

    front_pts = objective_values(front.front, [x.column, y.column]) * np.array([x.factor, y.factor])
    line = attainment_line(front_pts, [x.direction, y.direction])

    synthetic = bool(len(plotted)) and (plotted["dataset"] == "synthetic").any()
    title = f"Dice vs {_short(x.column)}"
    if synthetic:
        title += " (accuracy on synthetic data)"

    note = ""
    if plotted.empty:
        note = (
            f"no candidate has both {x.column!r} and {y.column!r} values" if len(df) else "no candidates in this study"
        )
        logger.warning("plot %s: %s; writing an empty figure", key, note)

    bands: tuple[Band, ...] = ()
    published, reason = None, "only drawn on the Dice vs FPS plot"
    if x.column == "fps":
        if len(plotted) and all(is_jetson_target(t) for t in plotted["target"]):
            bands = REALTIME_BANDS
        published, reason = published_point_for(plotted)

    return ScatterInfo(
        key=key,
        x=x,
        y=y,
        front=front,
        front_line=tuple((float(a), float(b)) for a, b in line),
        title=title,
        subtitle=conditions_subtitle(plotted, latency=x.column == "fps"),
        bands=bands,
        published=published,
        published_reason=reason,
        arrows=_arrows(plotted, coords),
        references=tuple(str(n) for n in plotted.loc[plotted["source"] == "reference", "name"]),
        estimated=tuple(str(n) for n in plotted.loc[plotted["latency_kind"] == "estimated", "name"])
        if x.column == "fps"
        else (),
        better=("right" if x.direction == "maximize" else "left", "top" if y.direction == "maximize" else "bottom"),
        note=note,
    )


def dice_fps_info(df: pd.DataFrame) -> ScatterInfo:
    return scatter_info(df, key="dice_fps", x=fps_axis(df[df["fps"].notna()]))


def dice_macs_info(df: pd.DataFrame) -> ScatterInfo:
    return scatter_info(df, key="dice_macs", x=MACS_AXIS)


def dice_params_info(df: pd.DataFrame) -> ScatterInfo:
    return scatter_info(df, key="dice_params", x=PARAMS_AXIS)


def published_point_for(rows: pd.DataFrame) -> tuple[PublishedPoint | None, str]:
    """The paper's point and why, or ``None`` and why not.

    It is comparable only when every plotted candidate has Dice on JNU-IFM and FPS measured (not
    estimated) on a Jetson Nano; even then it is drawn apart and never joins our front.
    """
    if rows.empty:
        return None, "no plotted candidates"
    datasets = sorted(set(map(str, rows["dataset"])))
    if datasets != [PAPER_PUBLISHED.dataset]:
        return None, f"accuracy is on {', '.join(datasets)}, the paper's on {PAPER_PUBLISHED.dataset}"
    kinds = sorted(set(map(str, rows["latency_kind"])))
    if kinds != ["measured"]:
        return None, f"latency is {', '.join(kinds)}; the paper's FPS was measured on a Jetson Nano"
    for target, device in zip(rows["target"], rows["device"]):
        where = f"{target} {device}".lower()
        if not is_jetson_target(target) or "nano" not in where:
            return None, f"measured on {device!r} ({target}), not a Jetson Nano"
    return PAPER_PUBLISHED, "Dice on JNU-IFM and FPS measured on a Jetson Nano, like the paper"


def conditions_subtitle(rows: pd.DataFrame, *, latency: bool, max_lines: int = 3) -> str:
    """One line per distinct measurement condition of ``rows`` (at most ``max_lines``, then a count)."""
    if rows.empty:
        return ""
    # A one-shot search's Dice comes from inherited supernet weights, not from training: say so.
    inherited = {"supernet-inherited": " (inherited supernet weights)"}
    data = sorted(
        {f"{d} on {s} split{inherited.get(r, '')}" for d, s, r in zip(rows["dataset"], rows["split"], rows["recipe"])}
    )
    lines = [f"Dice: {', '.join(data)}"]
    if latency:
        conds = sorted({condition_text(r) for r in rows.itertuples(index=False)})
    else:
        conds = sorted({f"counted at input {_hw(r)}" for r in rows.itertuples(index=False)})
    lines += conds[:max_lines]
    if len(conds) > max_lines:
        lines.append(f"+ {len(conds) - max_lines} more condition(s): see the report's measurement table")
    return "\n".join(lines)


def condition_text(row) -> str:
    """``device | runtime precision | threads | input | measured/ESTIMATED (target)`` for one candidate."""
    threads = "runtime-chosen threads" if _isna(row.threads) else f"{int(row.threads)} thread(s)"
    kind = "ESTIMATED" if row.latency_kind == "estimated" else str(row.latency_kind)
    return f"{row.device} | {row.backend} {row.precision} | {threads} | input {_hw(row)} | {kind} ({row.target})"


def _hw(row) -> str:
    return f"{row.height}x{row.width}"


def _arrows(plotted: pd.DataFrame, coords: dict[str, tuple[float, float]]) -> tuple[Arrow, ...]:
    arrows = []
    for name, parent in zip(plotted["name"], plotted["parent"]):
        if parent is None or _isna(parent):
            continue
        if parent not in coords:
            logger.debug("compressed %s: parent %s is not on this plot; no arrow", name, parent)
            continue
        arrows.append(Arrow(str(parent), str(name), coords[str(parent)], coords[str(name)]))
    return tuple(arrows)


def _maybe_log(axis: AxisSpec, rows: pd.DataFrame) -> AxisSpec:
    # Costs of a search span orders of magnitude; FPS and Dice stay linear like the paper's figure.
    if axis.column == "fps" or rows.empty:
        return axis
    v = objective_values(rows, [axis.column])[:, 0]
    if (v > 0).all() and v.max() / v.min() > 30:
        return AxisSpec(axis.column, axis.direction, axis.factor, axis.label + ", log scale", log=True)
    return axis


def _short(column: str) -> str:
    return {"fps": "FPS", "macs": "MACs", "params": "params"}.get(column, column)


def _names(df: pd.DataFrame) -> Sequence[str]:
    return tuple(df["name"]) if "name" in df.columns else ()


def _isna(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
