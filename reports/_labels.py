"""Where a scatter plot's text goes, decided before drawing: point labels that do not overprint each
other or the markers, and the legend and the "better" arrow in corners away from the data.

Everything is computed in typographic points on an assumed axes size (:data:`AXES_PT`): the report's
figures are 8 x 6 in and their axes measure about 525 x 335 pt once the title and the conditions
are above them; a smaller assumed size is the safe side (points come out closer together than
they are drawn, so a label judged free is free). Text sizes are estimated from the character count
(:data:`CHAR_PT`), so no renderer is needed and the placement is the same on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

AXES_PT = (500.0, 300.0)  # assumed axes width, height in points (measured: about 525 x 335)
CHAR_PT = 0.62  # mean character width per point of font size (DejaVu Sans, a little generous)
LINE_PT = 1.3  # line height per point of font size
MARKER_PT = 5.0  # half the side of the box kept free around a plotted marker
CORNERS = ("upper left", "upper right", "lower left", "lower right")  # matplotlib's legend names
# Where a legend or the arrow may go: the corners first, then the middles of the edges.
LEGEND_PLACES = (*CORNERS, "upper center", "lower center", "center left", "center right")
ARROW_PT = (92.0, 36.0)  # the "better" arrow and its word beside it


@dataclass(frozen=True)
class Box:
    """A rectangle in points, (0, 0) at the axes' lower left corner."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlap(self, other: Box) -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    def outside(self, width: float, height: float) -> float:
        """The area of this box that lies outside the axes."""
        inside = Box(0.0, 0.0, width, height).overlap(self)
        return (self.x1 - self.x0) * (self.y1 - self.y0) - inside

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass(frozen=True)
class Frame:
    """The axes' data limits; maps plotted values to points on :data:`AXES_PT`."""

    xlim: tuple[float, float]
    ylim: tuple[float, float]
    log_x: bool = False
    size: tuple[float, float] = AXES_PT

    def to_pt(self, x: float, y: float) -> tuple[float, float]:
        fx = _fraction(x, self.xlim, self.log_x)
        fy = _fraction(y, self.ylim, False)
        return fx * self.size[0], fy * self.size[1]


@dataclass(frozen=True)
class Label:
    """One point's text: drawn at ``xy`` (plotted units) moved by ``offset`` points, aligned by ``ha``/``va``."""

    name: str
    text: str
    xy: tuple[float, float]
    offset: tuple[float, float]
    ha: str  # left | right | center
    va: str  # bottom | top
    role: str  # front | variant | pick | validated | published | reference
    fontsize: float
    crowded: bool = False  # no free place was found: drawn where it covers least

    @property
    def leader(self) -> bool:
        """Whether the text sits far enough from its point to need a line back to it."""
        return math.hypot(*self.offset) > 10.0

    def box(self, frame: Frame) -> Box:
        px, py = frame.to_pt(*self.xy)
        return text_box(self.text, self.fontsize, px + self.offset[0], py + self.offset[1], self.ha, self.va)


@dataclass(frozen=True)
class Wanted:
    """A label asked for: placed in the order given, so the most important comes first."""

    name: str
    text: str
    xy: tuple[float, float]
    role: str
    fontsize: float = 7.0
    clearance: float = MARKER_PT  # half the side of the point's own marker (a ring or a star is larger)


def text_size(text: str, fontsize: float) -> tuple[float, float]:
    lines = text.split("\n")
    return max(len(line) for line in lines) * fontsize * CHAR_PT, len(lines) * fontsize * LINE_PT


def text_box(text: str, fontsize: float, x: float, y: float, ha: str, va: str) -> Box:
    w, h = text_size(text, fontsize)
    x0 = {"left": x, "right": x - w, "center": x - w / 2}[ha]
    y0 = {"bottom": y, "top": y - h, "center": y - h / 2}[va]
    return Box(x0, y0, x0 + w, y0 + h)


def marker_boxes(frame: Frame, points: Iterable[tuple[float, float]], half: float = MARKER_PT) -> list[Box]:
    out = []
    for x, y in points:
        px, py = frame.to_pt(x, y)
        out.append(Box(px - half, py - half, px + half, py + half))
    return out


def line_boxes(frame: Frame, line: Sequence[tuple[float, float]], half: float = 2.0, step: float = 5.0) -> list[Box]:
    """Small boxes along a polyline (plotted units) so labels keep off it: the front's staircase, arrows."""
    pts = [frame.to_pt(x, y) for x, y in line]
    out = []
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        if x0 == x1 or y0 == y1:  # a step of the staircase: one thin box
            out.append(Box(min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half))
            continue
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        for i in range(n + 1):
            x, y = x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n
            out.append(Box(x - half, y - half, x + half, y + half))
    return out


def _offsets() -> list[tuple[float, float, str, str]]:
    # Beside the point first (no leader line needed), then further out in the same directions, steep ones too.
    out = []
    for r in (6.0, 14.0, 26.0, 40.0, 60.0, 85.0):
        out += [
            (r, r * 0.6, "left", "bottom"),
            (r, -r * 0.6, "left", "top"),
            (-r, r * 0.6, "right", "bottom"),
            (-r, -r * 0.6, "right", "top"),
            (0.0, r + 3.0, "center", "bottom"),
            (0.0, -(r + 3.0), "center", "top"),
            (r * 0.5, r + 3.0, "left", "bottom"),
            (r * 0.5, -(r + 3.0), "left", "top"),
            (-r * 0.5, r + 3.0, "right", "bottom"),
            (-r * 0.5, -(r + 3.0), "right", "top"),
        ]
    return out


OFFSETS = tuple(_offsets())


def place_labels(
    wanted: Sequence[Wanted], frame: Frame, obstacles: Sequence[Box], lines: Sequence[Box] = ()
) -> tuple[Label, ...]:
    """Greedy: each label takes the first offset (nearest first) where it covers no marker, no
    earlier label, no obstacle (legend, arrow), no line, and stays inside the axes. When none is
    free it takes the cheapest: a line crossed costs little (the text has a white backing),
    a marker or a label more, leaving the axes most; it is ``crowded`` if it covers more than
    lines. A label never covers its own point's marker."""
    width, height = frame.size
    taken: list[Box] = []
    out = []
    for w in wanted:
        px, py = frame.to_pt(*w.xy)
        c = w.clearance
        own = Box(px - c, py - c, px + c, py + c)
        best = None
        for dx, dy, ha, va in OFFSETS:
            if abs(dx) < c and abs(dy) < c:  # would start inside its own (large) marker
                continue
            box = text_box(w.text, w.fontsize, px + dx, py + dy, ha, va)
            hard = sum(box.overlap(b) for b in (*obstacles, *taken)) + box.overlap(own)
            cost = 3.0 * hard + 10.0 * box.outside(width, height) + 0.3 * sum(box.overlap(b) for b in lines)
            if best is None or cost < best[0] - 1e-9:
                best = (cost, dx, dy, ha, va, box, hard + box.outside(width, height))
            if cost == 0.0:
                break
        cost, dx, dy, ha, va, box, covered = best
        taken.append(box)
        out.append(Label(w.name, w.text, w.xy, (dx, dy), ha, va, w.role, w.fontsize, crowded=covered > 0.0))
    return tuple(out)


def place_box(where: str, size: tuple[float, float], frame: Frame, pad: float = 4.0) -> Box:
    """A box of ``size`` at a matplotlib legend location (``upper left``, ``center right``, ...)."""
    width, height = frame.size
    w, h = size
    vertical, _, horizontal = where.partition(" ")  # "upper left", "lower center", "center right", ...
    x0 = {"left": pad, "right": width - pad - w}.get(horizontal, (width - w) / 2)
    y0 = {"upper": height - pad - h, "lower": pad}.get(vertical, (height - h) / 2)
    return Box(x0, y0, x0 + w, y0 + h)


def emptiest_place(
    size: tuple[float, float],
    frame: Frame,
    points: Sequence[tuple[float, float]],
    places: Sequence[str] = LEGEND_PLACES,
    avoid: Sequence[Box] = (),
) -> tuple[str, Box]:
    """The place (of ``places``, matplotlib legend locations) where a box of ``size`` points covers
    the fewest of ``points`` (plotted units) and least of ``avoid``; ties go to the one whose nearest
    point is farthest, then to the first in ``places``."""
    pts = [frame.to_pt(x, y) for x, y in points]
    best = None
    for where in places:
        box = place_box(where, size, frame)
        grown = Box(box.x0 - MARKER_PT, box.y0 - MARKER_PT, box.x1 + MARKER_PT, box.y1 + MARKER_PT)
        covered = sum(grown.contains(px, py) for px, py in pts)
        near = min((_distance(box, px, py) for px, py in pts), default=math.inf)
        score = (covered, sum(box.overlap(b) for b in avoid), -near)
        if best is None or score < best[0]:
            best = (score, where, box)
    return best[1], best[2]


def _distance(box: Box, x: float, y: float) -> float:
    dx = max(box.x0 - x, 0.0, x - box.x1)
    dy = max(box.y0 - y, 0.0, y - box.y1)
    return math.hypot(dx, dy)


def legend_size(labels: Sequence[str], fontsize: float = 7.0) -> tuple[float, float]:
    """About the box matplotlib draws for a legend of ``labels`` (handle, padding and border included)."""
    if not labels:
        return 0.0, 0.0
    width = max(len(s) for s in labels) * fontsize * CHAR_PT + 34.0
    return width, len(labels) * fontsize * 1.75 + 8.0


def padded_limits(values: Sequence[float], *, log: bool = False, pad: float = 0.08) -> tuple[float, float]:
    """``values``' range widened by ``pad`` of it on each side (in log space on a log axis);
    a single value gets a window around it."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v)) and (not log or float(v) > 0)]
    if not vals:
        return (1.0, 10.0) if log else (0.0, 1.0)
    if log:
        lo, hi = math.log10(min(vals)), math.log10(max(vals))
        span = hi - lo or 0.5
        return 10 ** (lo - pad * span), 10 ** (hi + pad * span)
    lo, hi = min(vals), max(vals)
    span = hi - lo or max(abs(hi) * 0.1, 0.01)
    # Every plotted quantity is >= 0 (Dice, FPS, MACs, parameters): no room below 0 unless a point sits at 0.
    return (0.0 if lo > 0 > lo - pad * span else lo - pad * span), hi + pad * span


def _fraction(v: float, lim: tuple[float, float], log: bool) -> float:
    lo, hi = lim
    if log:
        v, lo, hi = math.log10(max(v, 1e-300)), math.log10(lo), math.log10(hi)
    return (v - lo) / (hi - lo) if hi != lo else 0.5
