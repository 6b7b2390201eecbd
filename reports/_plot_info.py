"""What each scatter plot of a report shows, computed before anything is drawn.

Every plot is described by a :class:`ScatterInfo` (front, dominated and infeasible rows, the
front's staircase, real-time bands, the paper's published point if it is comparable, arrows from
parents to compressed variants, the validated pick and front marked at their search positions, the
axis limits, where each label, the legend and the "better" arrow go). :mod:`reports._plots` only
draws it, and tests assert on it rather than on pixels.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports._labels import (
    ARROW_PT,
    LEGEND_PLACES,
    MARKER_PT,
    Box,
    Frame,
    Label,
    Wanted,
    emptiest_place,
    legend_size,
    line_boxes,
    marker_boxes,
    padded_limits,
    place_labels,
    text_box,
)
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
class ValidatedMarks:
    """What to mark on the (proxy) figures: the ship pick and the validated front, found by name
    among the plotted search candidates and marked at their SEARCH position (the axes are the
    search's numbers); the pick's label carries its validated numbers."""

    front: tuple[str, ...]  # the validated front's names (() when nothing was validated)
    pick: str | None  # the report's ship pick
    pick_text: str  # the pick's label, e.g. "SHIP trial-11\nvalidated: Dice 0.9074 (test), 21.10 ms"
    basis: str = "validated"  # "validated" or "proxy" (then the pick comes from the search itself)


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
    references_infeasible: tuple[str, ...] = ()  # reference stars that break a constraint (drawn hollow, crossed)
    marks: ValidatedMarks | None = None
    marked_front: tuple[str, ...] = ()  # validated-front names with a point on this plot
    pick: str | None = None  # the ship pick, when it has a point on this plot
    pick_note: str = ""  # why the pick is not marked here ("" when it is, or when there is no pick)
    xlim: tuple[float, float] | None = None  # plotted units; None: an empty figure
    ylim: tuple[float, float] | None = None
    labels: tuple[Label, ...] = ()  # every point label with its place
    legend: tuple[tuple[str, str], ...] = ()  # (style key, text), in drawing order
    legend_corner: str = "upper left"
    better_arrow: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # tail x, y, head x, y (axes fraction)
    better_corner: str = ""

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


def scatter_info(
    df: pd.DataFrame, *, key: str, x: AxisSpec, y: AxisSpec = DICE_AXIS, marks: ValidatedMarks | None = None
) -> ScatterInfo:
    """Describe the plot of ``y`` against ``x`` for the candidate table ``df`` (not modified);
    ``marks``: the ship pick and the validated front to mark among the plotted candidates."""
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

    refs = plotted[plotted["source"] == "reference"]
    info = ScatterInfo(
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
        references=tuple(str(n) for n in refs["name"]),
        estimated=tuple(str(n) for n in plotted.loc[plotted["latency_kind"] == "estimated", "name"])
        if x.column == "fps"
        else (),
        better=("right" if x.direction == "maximize" else "left", "top" if y.direction == "maximize" else "bottom"),
        note=note,
        references_infeasible=tuple(str(n) for n in refs.loc[~refs["feasible"].astype(bool), "name"]),
        marks=marks,
    )
    if note:
        return info
    return _laid_out(info, coords)


# Half the side of the box a large marker takes, in points (the ring around the pick, a validated
# ring, a star); labels keep out of them.
PICK_PT, RING_PT, STAR_PT = 12.0, 8.0, 9.0


def _laid_out(info: ScatterInfo, coords: dict[str, tuple[float, float]]) -> ScatterInfo:
    """``info`` with the validated marks found, the axis limits, the legend, the arrow and the labels placed."""
    marks = info.marks
    marked_front: tuple[str, ...] = ()
    pick, pick_note = None, ""
    if marks is not None:
        marked_front = tuple(n for n in marks.front if n in coords)
        if marks.pick is not None and marks.pick in coords:
            pick = marks.pick
        elif marks.pick is not None:
            pick_note = f"the ship pick {marks.pick} has no point on this plot (no {info.x.column} value in the search)"

    points = list(coords.values())
    p = info.published
    extra = [(p.fps, p.dice)] if p is not None else []
    xlim = padded_limits([v for v, _ in points + extra], log=info.x.log)
    ylim = padded_limits([v for _, v in points + extra])
    if info.bands:  # like the paper's figure: from 0 FPS to beyond the last band's start
        top = max(b.high or b.low for b in info.bands) * 1.25
        xlim = (0.0, max(xlim[1], top, p.fps * 1.15 if p is not None else 0.0))
    frame = Frame(xlim, ylim, log_x=info.x.log)

    legend = _legend(info, marked_front, pick)
    corner, legend_box = emptiest_place(legend_size([t for _, t in legend]), frame, points + extra)
    arrow_places = [p for p in LEGEND_PLACES if p != corner]
    arrow_corner, arrow_box = emptiest_place(ARROW_PT, frame, points + extra, arrow_places, avoid=[legend_box])
    big = {n: RING_PT for n in marked_front} | {n: STAR_PT for n in info.references}
    if pick is not None:
        big[pick] = PICK_PT
    obstacles: list[Box] = [legend_box, arrow_box, *marker_boxes(frame, points + extra)]
    obstacles += [b for n, c in big.items() for b in marker_boxes(frame, [coords[n]], half=c)]
    lines = line_boxes(frame, info.front_line)  # the front's staircase and the parent -> variant arrows
    for arrow in info.arrows:
        lines += line_boxes(frame, [arrow.start, arrow.end])
    for band in info.bands:  # the band names sit at 30 % of the height
        right = xlim[1] if band.high is None else band.high
        bx, _ = frame.to_pt((band.low + right) / 2, ylim[0])
        obstacles.append(text_box(band.label, 11, bx, 0.3 * frame.size[1], "center", "bottom"))

    wanted = []
    if pick is not None:
        wanted.append(Wanted(pick, marks.pick_text, coords[pick], "pick", 8.0, PICK_PT))
    if p is not None:
        wanted.append(Wanted(p.label, p.label, (p.fps, p.dice), "published", 8.0))
    labelled = {pick}
    for name in info.front.front_names:
        if name not in labelled:
            wanted.append(Wanted(name, name, coords[name], "front", clearance=big.get(name, MARKER_PT)))
            labelled.add(name)
    for name in marked_front:
        if name not in labelled:
            wanted.append(Wanted(name, name, coords[name], "validated", clearance=big.get(name, MARKER_PT)))
            labelled.add(name)
    for name in info.references_infeasible:
        if name not in labelled:
            wanted.append(Wanted(name, f"{name} (INFEASIBLE)", coords[name], "reference", clearance=STAR_PT))
            labelled.add(name)
    for arrow in info.arrows:
        if arrow.child not in labelled:
            wanted.append(Wanted(arrow.child, arrow.child, arrow.end, "variant"))
            labelled.add(arrow.child)
    labels = place_labels(wanted, frame, obstacles, lines)
    return dataclasses.replace(
        info,
        marked_front=marked_front,
        pick=pick,
        pick_note=pick_note,
        xlim=xlim,
        ylim=ylim,
        labels=labels,
        legend=legend,
        legend_corner=corner,
        better_arrow=_arrow_in(arrow_box, frame, info.better),
        better_corner=arrow_corner,
    )


def _legend(info: ScatterInfo, marked_front: tuple[str, ...], pick: str | None) -> tuple[tuple[str, str], ...]:
    out = []
    if len(info.front.dominated):
        out.append(("dominated", "dominated (feasible)"))
    if len(info.plotted_infeasible):
        out.append(("infeasible", "infeasible (breaks a constraint)"))
    if len(info.front.front):
        out.append(("front", "Pareto front of the search (proxy Dice)"))
    if info.estimated:
        out.append(("estimated", "latency ESTIMATED (triangles)"))
    if info.arrows:
        out.append(("arrow", "compressed: parent -> variant"))
    if set(info.references) - set(info.references_infeasible):
        out.append(("reference", "paper preset (measured here)"))
    if info.references_infeasible:
        out.append(("reference_infeasible", "paper preset, INFEASIBLE: breaks a constraint"))
    if info.published is not None:
        out.append(("published", f"{info.published.label}, not ours"))
    if set(marked_front) - {pick}:  # the pick's own ring is drawn instead of its validated-front ring
        out.append(("validated_front", "validated front (full training, test split), ringed at search position"))
    if pick is not None:
        basis = "validated" if info.marks.basis == "validated" else "PROXY-ONLY, not validated"
        out.append(("pick", f"ship pick ({basis}), at its search position"))
    return tuple(out)


def _arrow_in(box: Box, frame: Frame, better: tuple[str, str]) -> tuple[float, float, float, float]:
    """Tail and head (axes fractions) of an arrow inside ``box``, pointing where better points lie;
    its word goes in the other half of the box (:func:`better_word_at`)."""
    w, h = frame.size
    mid = (box.x0 + box.x1) / 2
    # the arrow takes the half of the box it points into; the word the other half
    left, right = ((mid + 2) / w, (box.x1 - 6) / w) if better[0] == "right" else ((box.x0 + 6) / w, (mid - 2) / w)
    low, high = (box.y0 + 6) / h, (box.y1 - 6) / h
    tail_x, head_x = (left, right) if better[0] == "right" else (right, left)
    tail_y, head_y = (low, high) if better[1] == "top" else (high, low)
    return tail_x, tail_y, head_x, head_y


def dice_fps_info(df: pd.DataFrame, marks: ValidatedMarks | None = None) -> ScatterInfo:
    return scatter_info(df, key="dice_fps", x=fps_axis(df[df["fps"].notna()]), marks=marks)


def dice_macs_info(df: pd.DataFrame, marks: ValidatedMarks | None = None) -> ScatterInfo:
    return scatter_info(df, key="dice_macs", x=MACS_AXIS, marks=marks)


def dice_params_info(df: pd.DataFrame, marks: ValidatedMarks | None = None) -> ScatterInfo:
    return scatter_info(df, key="dice_params", x=PARAMS_AXIS, marks=marks)


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
