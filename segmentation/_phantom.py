"""A synthetic transperineal ultrasound phantom: image, PS/FH mask and the geometry behind them.

The phantom is the suite's default data when no real dataset is given. It is meant to be
learnable but not trivial: the pubic symphysis (PS) and the fetal head (FH) sit in a sector
field of view with speckle, depth attenuation, an acoustic shadow below the PS, tissue layers and
bright distractors (fascia lines, small echoes, a skull-like arc) so that no intensity threshold
separates the classes.

Geometry is drawn in isotropic units of ``s = min(H, W)`` pixels (x centred, y down from the top
edge), so any image size gives the same anatomy and angles are preserved in pixel space.

Layout, as in a transperineal view with the probe on the perineum at the top: the PS is at the
upper left, rising to the right, so its distal (caudal, inferior) tip is the upper right one; the
head lies below or below-right of it and moves up and right as it descends.

Angle of progression (AoP) convention for :attr:`PhantomLayout.aop_deg`: the vertex is the distal
PS tip; one arm points back along the PS to its proximal tip, the other is the tangent to the FH
that touches the skull's leading edge, so that the whole head lies inside the angle (the larger
of the two tangent angles). Equivalently, AoP is the *largest* angle at the distal tip between
the ray to the proximal tip and a ray to any FH point, which is how a mask-based check can
recompute it. Sampled AoPs are spread over 95-155 degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from rtseg_core import ConfigError
from segmentation._config import MIN_SIZE

_MAX_LAYOUT_TRIES = 200


@dataclass(frozen=True)
class PhantomLayout:
    """Ground-truth geometry of one phantom, in pixel coordinates (x = column, y = row).

    Pixel ``(row i, column j)`` has its centre at ``(x=j, y=i)``. The PS is a capsule (a stadium
    of half-width ``ps_half_width``) whose tips, the ends of its long axis, are ``ps_proximal``
    and ``ps_distal`` (the distal one is the upper right tip, nearer the probe); the FH is the
    ellipse with centre ``fh_center``, semi-axes ``fh_axes`` and rotation ``fh_angle_deg``
    (from the +x axis towards +y, i.e. clockwise on screen). ``aop_deg`` follows the module
    docstring's convention. Parts of either structure outside the fan are not in the mask.
    """

    size: tuple[int, int]
    ps_proximal: tuple[float, float]
    ps_distal: tuple[float, float]
    ps_half_width: float
    fh_center: tuple[float, float]
    fh_axes: tuple[float, float]
    fh_angle_deg: float
    aop_deg: float
    fan_apex: tuple[float, float]
    fan_half_angle_deg: float


@dataclass(frozen=True)
class _Geometry:
    # Normalised units (see module docstring); the renderer works in these.
    apex: np.ndarray
    half_angle: float
    r_inner: float
    r_outer: float
    p0: np.ndarray
    p1: np.ndarray
    ps_w: float
    fh_c: np.ndarray
    fh_a: float
    fh_b: float
    fh_ang: float
    aop_deg: float


def make_phantom(size: int | tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one phantom.

    Args:
        size: ``S`` for an ``S x S`` image or ``(H, W)``; at least 16 pixels each way.
        seed: an integer >= 0; the same ``(size, seed)`` always gives the same arrays.

    Returns:
        ``(image, mask)``: ``image`` float32 ``[H, W]`` in ``[0, 1]`` (0 outside the fan),
        ``mask`` uint8 ``[H, W]`` with 0 background, 1 PS, 2 FH. Both structures are present,
        the PS entirely and at least two thirds of the head's outline inside the fan, with
        background between them (at least one pixel wide from 32 x 32 up). The same seed gives
        the same scene, scaled, at every square size.
    """
    h, w = _check_size(size)
    rng = np.random.default_rng(_check_seed(seed))
    geo = _sample_geometry(rng, h, w)
    return _render(rng, geo, h, w)


def phantom_layout(size: int | tuple[int, int], seed: int) -> PhantomLayout:
    """The geometry :func:`make_phantom` draws for the same ``(size, seed)``, in pixels."""
    h, w = _check_size(size)
    geo = _sample_geometry(np.random.default_rng(_check_seed(seed)), h, w)
    s = float(min(h, w))

    def px(p: np.ndarray) -> tuple[float, float]:
        return (float(p[0] * s + w / 2 - 0.5), float(p[1] * s - 0.5))

    return PhantomLayout(
        size=(h, w),
        ps_proximal=px(geo.p0),
        ps_distal=px(geo.p1),
        ps_half_width=float(_ps_half_width_px(geo.ps_w, s)),
        fh_center=px(geo.fh_c),
        fh_axes=(float(geo.fh_a * s), float(geo.fh_b * s)),
        fh_angle_deg=float(math.degrees(geo.fh_ang)),
        aop_deg=float(geo.aop_deg),
        fan_apex=px(geo.apex),
        fan_half_angle_deg=float(math.degrees(geo.half_angle)),
    )


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(v, (int, np.integer)) for v in size):
        h, w = int(size[0]), int(size[1])
    else:
        raise ConfigError(f"phantom size: expected an int or (height, width), got {size!r}")
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ConfigError(f"phantom size: {h}x{w} is too small; use at least {MIN_SIZE}x{MIN_SIZE}")
    return h, w


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"phantom seed: expected an integer >= 0, got {seed!r}")
    return int(seed)


def _ps_half_width_px(ps_w: float, s: float) -> float:
    # Below ~1 px the PS would vanish from tiny test images; keep it at least 2 px wide.
    return max(ps_w * s, 1.0)


# --------------------------------------------------------------------------- geometry


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def _ellipse_matrix(a: float, b: float, ang: float) -> np.ndarray:
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    return rot @ np.diag([a * a, b * b]) @ rot.T


def _ellipse_points(c: np.ndarray, a: float, b: float, ang: float, n: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    ca, sa = math.cos(ang), math.sin(ang)
    x, y = a * np.cos(t), b * np.sin(t)
    return np.stack([c[0] + ca * x - sa * y, c[1] + sa * x + ca * y], axis=1)


def _in_fan(pts: np.ndarray, apex: np.ndarray, half: float, r0: float, r1: float, inset: float) -> np.ndarray:
    d = pts - apex
    r = np.hypot(d[:, 0], d[:, 1])
    theta = np.arctan2(d[:, 0], d[:, 1])  # 0 = straight down the beam axis
    # An inset in length units becomes an angular inset at radius r.
    return (np.abs(theta) <= half - inset / np.maximum(r, 1e-6)) & (r >= r0 + inset) & (r <= r1 - inset)


def _tangent_angles(p0: np.ndarray, p1: np.ndarray, c: np.ndarray, a: float, b: float, ang: float) -> list[float]:
    """Angles (degrees) at ``p1`` between ``p0 - p1`` and the two tangents from ``p1`` to the ellipse."""
    ca, sa = math.cos(ang), math.sin(ang)
    d = p1 - c
    # p1 in the frame where the ellipse is the unit circle; tangency survives the affine map.
    q = np.array([(ca * d[0] + sa * d[1]) / a, (-sa * d[0] + ca * d[1]) / b])
    rho = float(np.hypot(*q))
    if rho <= 1.0:
        return []
    psi = math.atan2(q[1], q[0])
    delta = math.acos(1.0 / rho)
    v0 = p0 - p1
    out = []
    for phi in (psi + delta, psi - delta):
        x, y = a * math.cos(phi), b * math.sin(phi)
        t = c + np.array([ca * x - sa * y, sa * x + ca * y]) - p1
        cosang = float(v0 @ t / (np.linalg.norm(v0) * np.linalg.norm(t)))
        out.append(math.degrees(math.acos(max(-1.0, min(1.0, cosang)))))
    return sorted(out)


def _sample_geometry(rng: np.random.Generator, h: int, w: int) -> _Geometry:
    depth = h / min(h, w)  # image height in normalised units
    apex = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.12, -0.06)])
    half = rng.uniform(math.radians(38), math.radians(48))
    r0 = rng.uniform(0.14, 0.2)
    r1 = depth * 0.97 - apex[1] - rng.uniform(0.0, 0.04)
    for _ in range(_MAX_LAYOUT_TRIES):
        aop = rng.uniform(95.0, 155.0)
        # P0/P1 are the PS tips (proximal/distal ends of its long axis; the AoP vertex is P1).
        # The probe sits on the perineum (top), so the distal (caudal) PS end P1 is its upper
        # right end and the PS runs down to the left from it; angles are in the y-down frame
        # (0 = right, 90 = down, 180 = left).
        descent = (aop - 95.0) / 60.0
        p1 = np.array([rng.uniform(-0.1, 0.04), rng.uniform(0.22, 0.34)])
        beta = math.radians(rng.uniform(140.0, 172.0))
        length = rng.uniform(0.12, 0.18)
        ps_w = rng.uniform(0.017, 0.028)
        p0 = p1 + length * _unit(beta)
        # FH: the tangent from P1 at the sampled AoP touches its leading edge and the head lies
        # inside the angle, below the PS (a high head) or below-right of it (a descended one).
        # It is placed by its two tangents from P1: the AoP one and a near one ``cone`` degrees
        # closer to the PS, which keeps a clear angle between the head and the PS.
        cone = math.radians(rng.uniform(50.0, min(80.0, aop - 25.0)))
        gamma = beta - math.radians(aop)
        n1 = _unit(gamma + math.pi / 2)  # normals from each tangent line into the head
        n2 = _unit(gamma + cone - math.pi / 2)
        a = rng.uniform(0.18, 0.25) - 0.03 * descent
        b = a * rng.uniform(0.78, 0.95)
        ang = rng.uniform(0.0, math.pi)
        m = _ellipse_matrix(a, b, ang)
        support = np.array([math.sqrt(float(n1 @ m @ n1)), math.sqrt(float(n2 @ m @ n2))])
        c = p1 + np.linalg.solve(np.stack([n1, n2]), support)
        # Checks: PS fully inside the fan, most of the head visible, a clear gap between them.
        seg = p0[None, :] + np.linspace(0, 1, 24)[:, None] * (p1 - p0)[None, :]
        if not _in_fan(seg, apex, half, r0, r1, ps_w + 0.02).all():
            continue
        rim = _ellipse_points(c, a, b, ang, 120)
        if _in_fan(rim, apex, half, r0, r1, 0.0).mean() < 0.65 or not _in_fan(c[None], apex, half, r0, r1, 0.05)[0]:
            continue
        # The AoP tangent point must be visible, or the masks would not carry the sampled AoP.
        touch = c - (m @ n1) / support[0]
        if not _in_fan(touch[None], apex, half, r0, r1, 0.03)[0]:
            continue
        gap = np.min(np.hypot(*(seg[:, None, :] - rim[None, :, :]).transpose(2, 0, 1)))
        if gap < ps_w + 0.05:  # size-independent, so a seed gives the same scene at any size
            continue
        angles = _tangent_angles(p0, p1, c, a, b, ang)
        # The near tangent must stay clear of the PS direction, so the head is not behind the PS.
        if len(angles) != 2 or angles[0] < 5.0 or not 90.0 <= angles[1] <= 160.0:
            continue
        return _Geometry(apex, half, r0, r1, p0, p1, ps_w, c, a, b, ang, angles[1])
    raise RuntimeError("phantom layout sampling did not converge")  # unreachable with these ranges


# --------------------------------------------------------------------------- rendering


class _Canvas:
    """Pixel grids in normalised units, and crops of them so small shapes cost little."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.s = float(min(h, w))
        self.x = ((np.arange(w, dtype=np.float32) + 0.5 - w / 2) / self.s)[None, :].repeat(h, 0)
        self.y = ((np.arange(h, dtype=np.float32) + 0.5) / self.s)[:, None].repeat(w, 1)

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice]:
        """Slices covering the normalised rectangle ``lo..hi`` (clipped; may be empty)."""
        c0 = int(np.clip(math.floor(lo[0] * self.s + self.w / 2), 0, self.w))
        c1 = int(np.clip(math.ceil(hi[0] * self.s + self.w / 2) + 1, 0, self.w))
        r0 = int(np.clip(math.floor(lo[1] * self.s), 0, self.h))
        r1 = int(np.clip(math.ceil(hi[1] * self.s) + 1, 0, self.h))
        return slice(r0, r1), slice(c0, c1)


def _smooth_noise(rng: np.random.Generator, cells: int, h: int, w: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid, upsampled."""
    grid = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _capsule_distance(x: np.ndarray, y: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    x0, y0 = float(p0[0]), float(p0[1])
    dx, dy = float(p1[0]) - x0, float(p1[1]) - y0
    t = ((x - x0) * dx + (y - y0) * dy) * (1.0 / (dx * dx + dy * dy))
    np.clip(t, 0.0, 1.0, out=t)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy))


def _ellipse_coords(
    x: np.ndarray, y: np.ndarray, c: np.ndarray, a: float, b: float, ang: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised radius ``q`` (1 on the contour), contour angle ``phi`` and minor-axis offset."""
    ca, sa = math.cos(ang), math.sin(ang)
    dx, dy = x - float(c[0]), y - float(c[1])
    xl = (ca * dx + sa * dy) * (1.0 / a)
    yl = (ca * dy - sa * dx) * (1.0 / b)
    return np.hypot(xl, yl), np.arctan2(yl, xl), yl


def _gauss_blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    if sigma_px < 0.3:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REFLECT)


def _render(rng: np.random.Generator, g: _Geometry, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    cv = _Canvas(h, w)
    s, x, y = cv.s, cv.x, cv.y
    px = 1.0 / s  # one pixel in normalised units
    ax, ay = float(g.apex[0]), float(g.apex[1])
    rx, ry = x - ax, y - ay
    r = np.hypot(rx, ry)
    theta = np.arctan2(rx, ry)
    fan = (np.abs(theta) <= g.half_angle) & (r >= g.r_inner) & (r <= g.r_outer)

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    def fan_point() -> np.ndarray:
        return g.apex + u(g.r_inner + 0.05, g.r_outer - 0.05) * _unit(math.pi / 2 - u(-0.85, 0.85) * g.half_angle)

    # Soft tissue: smooth echogenicity plus layers that follow the probe's arcs.
    img = 0.3 + 0.1 * _smooth_noise(rng, 5, h, w) + 0.05 * _smooth_noise(rng, 14, h, w)
    for _ in range(int(rng.integers(2, 5))):
        rk = g.r_inner + u(0.02, 0.35)
        wid = u(0.006, 0.02) + px
        band = r[: min(h, int(math.ceil((ay + rk + 3 * wid) * s)) + 1)]
        sl = slice(0, band.shape[0])
        img[sl] += (
            u(0.08, 0.3) * np.exp(-(((band - rk) * (1.0 / wid)) ** 2)) * (0.7 + 0.3 * _smooth_noise(rng, 4, h, w)[sl])
        )

    # Distractors, painted before the labelled structures so that those cover them.
    for _ in range(int(rng.integers(1, 4))):  # fascia-like bright lines
        q0 = fan_point()
        q1 = q0 + u(0.12, 0.4) * _unit(u(-0.6, 0.6) + (math.pi if rng.random() < 0.5 else 0.0))
        wid = u(0.004, 0.01) + px
        sl = cv.box(np.minimum(q0, q1) - 3 * wid, np.maximum(q0, q1) + 3 * wid)
        d = _capsule_distance(x[sl], y[sl], q0, q1)
        img[sl] += u(0.25, 0.6) * np.exp(-((d * (1.0 / wid)) ** 2))
    for _ in range(int(rng.integers(1, 3))):  # small bright echoes, PS-like in brightness
        a, c = u(0.02, 0.05), fan_point()
        sl = cv.box(c - 1.6 * a, c + 1.6 * a)
        q, _, _ = _ellipse_coords(x[sl], y[sl], c, a, a * u(0.4, 0.9), u(0, math.pi))
        blob = u(0.5, 0.85) * np.exp(-((np.maximum(q - 0.6, 0) * (1 / 0.35)) ** 2)) * (q < 1.6)
        img[sl] = np.maximum(img[sl], blob)
    if rng.random() < 0.6:  # a skull-like partial arc
        a, c = u(0.1, 0.2), fan_point()
        sl = cv.box(c - 1.3 * a, c + 1.3 * a)
        q, phi, _ = _ellipse_coords(x[sl], y[sl], c, a, a * u(0.6, 1.0), u(0, math.pi))
        start, span, wid = u(-math.pi, math.pi), u(1.0, 2.5), u(0.04, 0.08)
        on_arc = np.mod(phi - start, 2 * math.pi) < span
        img[sl] += u(0.3, 0.6) * np.exp(-(((q - 1) * (1.0 / wid)) ** 2)) * on_arc
    if rng.random() < 0.5:  # a hypoechoic region (fluid)
        a, c = u(0.06, 0.14), fan_point()
        sl = cv.box(c - 1.3 * a, c + 1.3 * a)
        q, _, _ = _ellipse_coords(x[sl], y[sl], c, a, a * u(0.5, 1.0), u(0, math.pi))
        img[sl] *= 1.0 - 0.65 * np.clip((1.2 - q) * 2.5, 0, 1)

    # Fetal head: dark textured interior, midline echo, bright skull rim with lateral dropout.
    reach = 1.15 * g.fh_a
    fsl = cv.box(g.fh_c - reach, g.fh_c + reach)
    q, phi, yl = _ellipse_coords(x[fsl], y[fsl], g.fh_c, g.fh_a, g.fh_b, g.fh_ang)
    fh_crop = q <= 1.0
    interior = u(0.07, 0.18) + 0.07 * _smooth_noise(rng, 8, h, w)[fsl]
    if rng.random() < 0.7:
        interior += u(0.12, 0.3) * np.exp(-((yl * (1 / 0.04)) ** 2)) * (q < 0.85)
    head = np.where(fh_crop, interior, img[fsl])
    rim_t = u(0.06, 0.11)
    rim = np.exp(-(((q - (1 - rim_t / 2)) * (2 / rim_t)) ** 2))
    dropout = u(0.3, 0.8)
    rim_gain = u(0.6, 0.95) * (1 - dropout * 0.5 * (1 + np.cos(phi - u(-math.pi, math.pi))))
    img[fsl] = head + rim * rim_gain

    # Pubic symphysis: bright capsule with a soft edge.
    # The sampled points are the capsule's tips, so its core segment is shorter by a half-width.
    ps_w_px = _ps_half_width_px(g.ps_w, s)
    axis = (g.p1 - g.p0) / float(np.linalg.norm(g.p1 - g.p0))
    c0, c1 = g.p0 + ps_w_px * px * axis, g.p1 - ps_w_px * px * axis
    reach = ps_w_px * px + 2 * px
    psl = cv.box(np.minimum(c0, c1) - reach, np.maximum(c0, c1) + reach)
    d = _capsule_distance(x[psl], y[psl], c0, c1) * s  # in pixels
    ps_crop = d <= ps_w_px
    prof = np.clip((ps_w_px - d) / max(0.35 * ps_w_px, 0.7) + 0.5, 0, 1)
    img[psl] = img[psl] * (1 - prof) + u(0.7, 1.0) * prof

    # Acoustic shadow: everything farther from the probe than the PS along the same beam lines.
    nb = max(64, 2 * w)
    bins = np.clip(((theta + g.half_angle) * (nb / (2 * g.half_angle))).astype(np.intp), 0, nb - 1)
    near = np.full(nb, np.inf, dtype=np.float32)
    np.minimum.at(near, bins[psl][ps_crop], r[psl][ps_crop])
    shadow = (r > near[bins] + g.ps_w).astype(np.float32)
    shadow = _gauss_blur(shadow, 1.5 * s / 128)
    img *= 1.0 - u(0.45, 0.8) * shadow

    # Acquisition: depth attenuation, correlated Rayleigh speckle, blur, gain and gamma.
    img *= np.exp(-u(0.4, 1.3) * np.maximum(r - g.r_inner, 0))
    sigma = max(0.5, 0.8 * s / 128)
    g1 = _gauss_blur(rng.standard_normal((h, w), dtype=np.float32), sigma)
    g2 = _gauss_blur(rng.standard_normal((h, w), dtype=np.float32), sigma)
    speckle = np.hypot(g1, g2)
    mix = u(0.55, 0.9)
    img *= (1 - mix) + (mix / float(speckle.mean())) * speckle
    img = _gauss_blur(img, u(0.2, 0.9) * s / 128)
    img = np.clip(img * u(0.8, 1.2), 0.0, 1.0) ** u(0.8, 1.25)
    img = np.where(fan, img, np.float32(0.0)).astype(np.float32, copy=False)

    mask = np.zeros((h, w), dtype=np.uint8)
    mask[psl][ps_crop] = 1
    mask[fsl][fh_crop] = 2
    mask[~fan] = 0
    return img, mask
