"""Angle of progression (AoP) from a PS/FH label mask, and a phantom with a known AoP.

Construction (domain.md, "The clinical task"), in image coordinates ``x = column``, ``y = row``
(y grows downwards), or in millimetres when a pixel spacing is given:

1. Keep the largest 8-connected component of each structure and take its outer contour.
2. Fit an ellipse to each contour (``cv2.fitEllipse``, least squares).
3. The PS endpoints are the two ends of the PS ellipse's major axis.
4. **Which end is distal (inferior).** Both the "end nearer the head" and the "end with the
   larger projection towards the head centre" pick the wrong end for a high head (AoP near
   90-110 degrees): the head then sits *under* the symphysis and its centre projects behind the
   distal end. What stays true over the whole clinical range is the side of the PS axis the
   head lies on. Walking along the PS axis from the proximal (cranial) end to the distal
   (caudal) end, the fetal head is on the walker's right-hand side in the standard display
   (PS on the left, head to its right or below it; for example a roughly horizontal PS with the
   head below-right, or, probe at the top, a PS rising to the right with the head below-right).
   So the distal end is the one for which ``cross(u, c_FH - c_PS) > 0`` with
   ``u = distal - proximal`` (``head_side="right"``). Rotating an image keeps this rule;
   mirroring flips it, so pass ``head_side="left"`` for a mirrored display.
5. From the distal end ``D``, the FH ellipse has two tangent lines. The AoP uses the far one:
   the tangent that touches the leading edge of the skull so that the head lies inside the
   angle (the tangent point making the largest angle with the ray from ``D`` towards the PS).
   Tangent points are computed exactly: an affine map turns the FH ellipse into the unit
   circle, where the tangents from a point are closed-form, and affine maps keep tangency.
6. AoP = the angle at ``D`` between the ray towards the proximal end (the PS itself) and the
   ray towards the tangent point, measured through the head's side. Equivalently, 180 degrees
   minus the angle between the PS axis extended beyond ``D`` and the tangent line. A higher
   head gives ~90 degrees; descent turns the tangent towards the extended axis, so the angle
   grows (~160 degrees and more near crowning).

No angle (``None``) is returned, with the reason in ``AoPMeasurement.reason`` and a debug log
line, when: a structure is absent; its largest component has fewer than 5 contour points (an
ellipse needs 5); the ellipse fit is degenerate; or the distal endpoint lies inside (or on)
the FH ellipse, where no tangent exists.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from rtseg_core import ConfigError, DataError

log = logging.getLogger(__name__)

HeadSide = Literal["right", "left"]
_MIN_CONTOUR_POINTS = 5


@dataclass(frozen=True)
class AoPMeasurement:
    """One AoP measurement with the geometry behind it, for overlays and debugging.

    Points are ``(x, y)`` = ``(column, row)`` in pixels, even when the angle was measured in
    millimetres. Every field but ``reason`` is ``None`` when no angle could be measured;
    ``reason`` is ``None`` exactly when ``angle_deg`` is not.
    """

    angle_deg: float | None
    reason: str | None = None
    ps_proximal: tuple[float, float] | None = None
    ps_distal: tuple[float, float] | None = None
    tangent_point: tuple[float, float] | None = None


@dataclass(frozen=True)
class _Ellipse:
    center: np.ndarray  # (x, y)
    axis1: np.ndarray  # unit vector of the first semi-axis
    axis2: np.ndarray  # unit vector of the second, axis1 turned by +90 degrees
    a1: float  # semi-axis length along axis1
    a2: float


def _as_label_map(mask: object) -> np.ndarray:
    if hasattr(mask, "detach"):  # a torch tensor; torch is not needed to read it
        mask = mask.detach().cpu().numpy()  # type: ignore[union-attr]
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise DataError(f"AoP needs one [H, W] label map, got an array of shape {tuple(arr.shape)}")
    return arr


def _largest_contour(mask: np.ndarray, label: int, name: str) -> tuple[np.ndarray | None, str | None]:
    binary = (mask == label).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1:
        return None, f"no {name} pixels (label {label})"
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len).reshape(-1, 2)
    if len(contour) < _MIN_CONTOUR_POINTS:
        return None, f"{name} too small: {len(contour)} contour points, an ellipse needs {_MIN_CONTOUR_POINTS}"
    return contour.astype(np.float64), None


def _fit_ellipse(points: np.ndarray, name: str) -> tuple[_Ellipse | None, str | None]:
    (cx, cy), (w, h), angle = cv2.fitEllipse(points.astype(np.float32))
    if not all(math.isfinite(v) for v in (cx, cy, w, h, angle)) or min(w, h) <= 0:
        return None, f"{name} ellipse fit is degenerate (axes {w:.3g} x {h:.3g})"
    # OpenCV: the first size (w) lies along (cos a, sin a), the second (h) along (-sin a, cos a).
    a = math.radians(angle)
    axis1 = np.array([math.cos(a), math.sin(a)])
    axis2 = np.array([-math.sin(a), math.cos(a)])
    return _Ellipse(np.array([cx, cy], dtype=np.float64), axis1, axis2, w / 2.0, h / 2.0), None


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def _angle_from(ref: np.ndarray, side: np.ndarray, v: np.ndarray) -> float:
    """Angle of ``v`` in degrees, measured from ``ref`` towards ``side`` (both unit, orthogonal)."""
    return math.degrees(math.atan2(float(v @ side), float(v @ ref)))


def _wrap180(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


def _check_spacing(spacing: tuple[float, float] | None) -> tuple[float, float]:
    if spacing is None:
        return 1.0, 1.0
    if len(spacing) != 2 or not all(math.isfinite(float(s)) and float(s) > 0 for s in spacing):
        raise DataError(f"pixel spacing must be two positive numbers (row_mm, col_mm), got {spacing!r}")
    return float(spacing[0]), float(spacing[1])


def measure_aop(
    mask: np.ndarray,
    *,
    ps_label: int = 1,
    fh_label: int = 2,
    spacing: tuple[float, float] | None = None,
    head_side: HeadSide = "right",
) -> AoPMeasurement:
    """Measure the angle of progression of one label map; see the module docstring for the rule.

    Args:
        mask: ``[H, W]`` integer labels (numpy array or torch tensor); other labels are ignored.
        ps_label, fh_label: the label values of the pubic symphysis and the fetal head.
        spacing: ``(row_mm, col_mm)`` pixel size, in array-axis order (SimpleITK's
            ``GetSpacing()`` gives ``(x, y)``: reverse it). Only matters when anisotropic:
            the angle is then measured in physical space. ``None`` means square pixels.
        head_side: the side of the PS axis (walking proximal -> distal, on screen) the head
            lies on: ``"right"`` for the standard display, ``"left"`` for a mirrored one.

    Returns:
        An :class:`AoPMeasurement`; ``angle_deg`` in degrees or ``None`` with ``reason``.
    """
    if head_side not in ("right", "left"):
        raise ConfigError(f"head_side must be 'right' or 'left', got {head_side!r}")
    arr = _as_label_map(mask)
    row_mm, col_mm = _check_spacing(spacing)
    scale = np.array([col_mm, row_mm])  # points are (x, y) = (col, row)

    fitted: dict[str, _Ellipse] = {}
    for name, label in (("PS", ps_label), ("FH", fh_label)):
        contour, reason = _largest_contour(arr, label, name)
        if contour is None:
            return _none(reason)
        ellipse, reason = _fit_ellipse(contour * scale, name)
        if ellipse is None:
            return _none(reason)
        fitted[name] = ellipse
    ps, fh = fitted["PS"], fitted["FH"]

    axis, half = (ps.axis1, ps.a1) if ps.a1 >= ps.a2 else (ps.axis2, ps.a2)
    to_head = fh.center - ps.center
    sign = 1.0 if head_side == "right" else -1.0
    side = sign * _cross(axis, to_head)
    if side == 0.0:  # head centre exactly on the PS axis line: fall back to "end towards the head"
        side = float(axis @ to_head)
    u = axis if side > 0 else -axis  # proximal -> distal
    distal = ps.center + half * u
    proximal = ps.center - half * u

    # Distal point in the frame where the FH ellipse is the unit circle.
    rel = distal - fh.center
    q = np.array([(rel @ fh.axis1) / fh.a1, (rel @ fh.axis2) / fh.a2])
    q_norm = float(np.hypot(*q))
    if q_norm <= 1.0:
        return _none("the distal PS endpoint lies inside the FH ellipse: no tangent exists")
    theta0 = math.atan2(q[1], q[0])
    spread = math.acos(1.0 / q_norm)

    ref = -u  # the ray from D along the PS, towards the proximal end
    normal = sign * np.array([-u[1], u[0]])  # unit normal on the head's side of the PS axis
    phi_center = _angle_from(ref, normal, fh.center - distal)
    candidates = []
    for theta in (theta0 - spread, theta0 + spread):
        point = fh.center + fh.a1 * math.cos(theta) * fh.axis1 + fh.a2 * math.sin(theta) * fh.axis2
        # Relative to the head centre's direction so the far tangent is the larger value even
        # when one tangent ray crosses the PS ray (where the plain angle wraps).
        phi = phi_center + _wrap180(_angle_from(ref, normal, point - distal) - phi_center)
        candidates.append((phi, point))
    angle, tangent = max(candidates, key=lambda c: c[0])

    def to_px(p: np.ndarray) -> tuple[float, float]:
        return float(p[0] / scale[0]), float(p[1] / scale[1])

    return AoPMeasurement(
        angle_deg=float(angle),
        reason=None,
        ps_proximal=to_px(proximal),
        ps_distal=to_px(distal),
        tangent_point=to_px(tangent),
    )


def _none(reason: str | None) -> AoPMeasurement:
    log.debug("no AoP: %s", reason)
    return AoPMeasurement(angle_deg=None, reason=reason)


def angle_of_progression(
    mask: np.ndarray,
    *,
    ps_label: int = 1,
    fh_label: int = 2,
    spacing: tuple[float, float] | None = None,
    head_side: HeadSide = "right",
) -> float | None:
    """AoP in degrees of one ``[H, W]`` label map, or ``None`` when it cannot be measured.

    The same as ``measure_aop(...).angle_deg``; see :func:`measure_aop` for the arguments and
    the module docstring for the construction and the cases that give ``None``.
    """
    return measure_aop(mask, ps_label=ps_label, fh_label=fh_label, spacing=spacing, head_side=head_side).angle_deg


def draw_aop_masks(
    angle_deg: float,
    size: int = 256,
    *,
    rotation_deg: float = 0.0,
    offset: tuple[float, float] = (0.0, 0.0),
    ps_length: float | None = None,
    ps_width: float | None = None,
    head_axes: tuple[float, float] | None = None,
    head_tilt_deg: float = 0.0,
    ps_label: int = 1,
    fh_label: int = 2,
) -> np.ndarray:
    """Draw a PS ellipse and an FH ellipse whose true AoP is exactly ``angle_deg``.

    The construction is analytic, in a frame with the distal PS end ``D`` at the origin and the
    PS axis ``u`` pointing from proximal to distal (``u`` = +x turned by ``rotation_deg``,
    clockwise on screen as y points down). The far tangent direction ``t`` makes
    ``angle_deg`` with ``-u`` on the right-hand side of ``u`` (the standard display). The FH
    ellipse is placed so that the line through ``D`` along ``t`` touches it, the head lying on
    the PS side of that line: its centre is ``D + s*t + h(m)*m``, where ``m`` is the unit normal
    of the line towards the PS side and ``h(m)`` the ellipse's support distance along ``m``;
    ``s`` puts the tangent point one head semi-axis plus a PS width (plus 3 % of ``size``)
    beyond ``D``, so the head never overlaps the PS. The whole drawing is centred in the image,
    then moved by ``offset``.

    Args:
        angle_deg: the AoP to draw, in (0, 180).
        size: the image is ``size x size``.
        rotation_deg: rotation of the whole scene (the standard display is rotation 0).
        offset: ``(dx, dy)`` pixels added after centring.
        ps_length, ps_width: PS ellipse full axes in pixels (default ``0.2 * size`` and
            ``0.06 * size``).
        head_axes: FH full axes in pixels, along the head's own axes (default a circle of
            diameter ``0.4 * size``).
        head_tilt_deg: rotation of the FH axes relative to the PS axis.
        ps_label, fh_label: label values written.

    Returns:
        ``[size, size]`` uint8 label map: 0 background, ``ps_label``, ``fh_label``.

    Raises:
        ConfigError: when the angle is outside (0, 180) or the scene does not fit the image.
    """
    if not 0.0 < angle_deg < 180.0:
        raise ConfigError(f"draw_aop_masks: angle_deg must be in (0, 180), got {angle_deg}")
    length = float(ps_length) if ps_length is not None else 0.2 * size
    width = float(ps_width) if ps_width is not None else max(3.0, 0.06 * size)
    ax1, ax2 = (float(v) / 2.0 for v in head_axes) if head_axes is not None else (0.2 * size, 0.2 * size)

    r = math.radians(rotation_deg)
    u = np.array([math.cos(r), math.sin(r)])
    n = np.array([-u[1], u[0]])  # right-hand side of u on screen
    a = math.radians(angle_deg)
    t = math.cos(a) * -u + math.sin(a) * n  # far tangent direction
    m = np.array([-t[1], t[0]])  # a normal of the tangent line ...
    if m @ -u < 0:  # ... turned towards the PS side, where the head must lie
        m = -m
    tilt = r + math.radians(head_tilt_deg)
    f1 = np.array([math.cos(tilt), math.sin(tilt)])
    f2 = np.array([-f1[1], f1[0]])
    shape = ax1**2 * np.outer(f1, f1) + ax2**2 * np.outer(f2, f2)
    support = math.sqrt(float(m @ shape @ m))
    touch = max(ax1, ax2) + width + 0.03 * size  # distance from D to the tangent point
    # The tangent point is centre - shape @ m / support; shift s so it lands at D + touch * t.
    s = touch + float(t @ shape @ m) / support
    fh_center = s * t + support * m
    ps_center = -(length / 2.0) * u

    outline = np.linspace(0.0, 2.0 * math.pi, 721)
    ring = np.stack([np.cos(outline), np.sin(outline)], axis=1)
    pts = np.concatenate(
        [
            ps_center + ring[:, :1] * (length / 2.0) * u + ring[:, 1:] * (width / 2.0) * n,
            fh_center + ring[:, :1] * ax1 * f1 + ring[:, 1:] * ax2 * f2,
        ]
    )
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    shift = (size - 1) / 2.0 - (lo + hi) / 2.0 + np.asarray(offset, dtype=np.float64)
    if np.any(lo + shift < 0.5) or np.any(hi + shift > size - 1.5):
        raise ConfigError(
            f"draw_aop_masks: the scene ({hi[0] - lo[0]:.0f} x {hi[1] - lo[1]:.0f} px at AoP {angle_deg}, "
            f"rotation {rotation_deg}, offset {offset}) does not fit a {size} px image: "
            "use a larger size, a smaller offset or smaller structures"
        )

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((size, size), dtype=np.uint8)
    for center, (e1, r1), (e2, r2), label in (
        (fh_center + shift, (f1, ax1), (f2, ax2), fh_label),
        (ps_center + shift, (u, length / 2.0), (n, width / 2.0), ps_label),
    ):
        dx, dy = xx - center[0], yy - center[1]
        inside = ((dx * e1[0] + dy * e1[1]) / r1) ** 2 + ((dx * e2[0] + dy * e2[1]) / r2) ** 2 <= 1.0
        out[inside] = label
    return out
