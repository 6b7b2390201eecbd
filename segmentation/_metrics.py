"""Segmentation metrics per image and over a data set: Dice, Jaccard, ASD, HD95 and |dAoP|.

Definitions follow MONAI (``monai.metrics``), the reference implementation, and the tests check
equality with it on non-empty masks:

- Dice ``2|P&T| / (|P|+|T|)`` and Jaccard ``|P&T| / |P or T|`` (``compute_dice``, ``compute_iou``).
- Surfaces are the mask minus its binary erosion (4-connected cross; outside the image counts
  as background), as in ``monai.metrics.utils.get_mask_edges``.
- ASD, the average *symmetric* surface distance: the mean of the distances from every
  predicted surface pixel to the nearest true one and from every true surface pixel to the
  nearest predicted one, pooled (``compute_average_surface_distance(symmetric=True)``).
- HD95: the larger of the two directed 95th percentiles (linear interpolation),
  ``compute_hausdorff_distance(percentile=95)``.
- Distances are Euclidean between pixel centres, in pixels, or in millimetres when a pixel
  spacing ``(row_mm, col_mm)`` is given (array-axis order; SimpleITK's ``GetSpacing()`` gives
  ``(x, y)``: reverse it).

Surface distances come from a Euclidean distance transform of the cropped surface map rather
than MONAI's per-call KD-tree: the same numbers, computed once for both ASD and HD95.

Empty masks. MONAI gives NaN or inf here; this module gives a defined value, so a mean never
silently skips or explodes on an image::

    case (per class, per image)  Dice  Jaccard  ASD       HD95
    both empty                   1.0   1.0      0.0       0.0
    only ground truth empty      0.0   0.0      diagonal  diagonal
    only prediction empty        0.0   0.0      diagonal  diagonal

"diagonal" is a penalty: the image diagonal ``sqrt((H*row_mm)**2 + (W*col_mm)**2)`` (pixels
when no spacing is given), larger than any distance measurable inside the image. Counts of
images with an empty ground truth or prediction are reported next to every mean
(``n_empty_true``, ``n_empty_pred``), and so is the count of images whose ASD/HD95 IS that
penalty (``n_diagonal``); the terminal table marks such means with ``*`` and says how many, so a
penalty never reads as a measured distance.

The AoP columns use :func:`segmentation._aop.angle_of_progression`; ``delta_aop`` is the
absolute difference ``|aop_pred - aop_true|`` in degrees, ``None`` when either angle cannot be
measured. Such images are counted (``n_aop``) and left out of the |dAoP| mean, never filled in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from rtseg_core import DataError, finite_or_none
from segmentation._aop import angle_of_progression
from segmentation._data import CLASS_NAMES

# Label value -> name of the structures that are scored (background is not).
FOREGROUND_CLASSES: dict[int, str] = {i: name for i, name in enumerate(CLASS_NAMES) if i}
METRIC_NAMES: tuple[str, ...] = ("dice", "jaccard", "asd", "hd95")

Spacing = tuple[float, float]


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor; works without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_spacing(spacing: Sequence[float] | None) -> Spacing | None:
    if spacing is None:
        return None
    try:
        values = tuple(float(s) for s in spacing)
    except TypeError as err:
        raise DataError(f"pixel spacing must be two positive numbers (row_mm, col_mm), got {spacing!r}") from err
    if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise DataError(f"pixel spacing must be two positive numbers (row_mm, col_mm), got {spacing!r}")
    return values  # type: ignore[return-value]


def image_diagonal(shape: tuple[int, int], spacing: Spacing | None = None) -> float:
    """The penalty distance for a one-sided empty mask: the image diagonal in pixels or mm."""
    row_mm, col_mm = spacing if spacing is not None else (1.0, 1.0)
    return math.hypot(shape[0] * row_mm, shape[1] * col_mm)


def _surface(mask: np.ndarray) -> np.ndarray:
    # border_value=0: pixels on the image border are surface, as in MONAI.
    return mask & ~ndimage.binary_erosion(mask)


def surface_distances(
    pred_mask: np.ndarray, target_mask: np.ndarray, *, spacing: Spacing | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances ``(pred -> target, target -> pred)`` of two non-empty masks.

    Each array has one entry per surface pixel of its source mask (float64, pixels or mm).
    Both masks must be non-empty ``[H, W]`` boolean arrays of the same shape.
    """
    both = pred_mask | target_mask
    rows = np.flatnonzero(both.any(axis=1))
    cols = np.flatnonzero(both.any(axis=0))
    # Crop to the union with a 1-pixel margin: erosion then sees the same neighbourhood as on the
    # full image, and every surface pixel (so every nearest neighbour) stays inside the crop.
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, both.shape[0])
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, both.shape[1])
    pred_s = _surface(pred_mask[r0:r1, c0:c1])
    target_s = _surface(target_mask[r0:r1, c0:c1])
    to_target = ndimage.distance_transform_edt(~target_s, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_s, sampling=spacing)
    return to_target[pred_s], to_pred[target_s]


def binary_metrics(
    pred_mask: np.ndarray, target_mask: np.ndarray, *, spacing: Sequence[float] | None = None
) -> dict[str, float]:
    """Dice, Jaccard, ASD and HD95 of one class in one image.

    Args:
        pred_mask, target_mask: ``[H, W]`` masks (anything non-zero is foreground).
        spacing: ``(row_mm, col_mm)``; distances are in mm when given, pixels otherwise.

    Returns:
        ``{"dice", "jaccard", "asd", "hd95"}`` as floats, never NaN or inf.

    Empty masks (``diag`` = the image diagonal, a penalty; see :func:`image_diagonal`)::

        case                     dice  jaccard  asd   hd95
        both empty               1.0   1.0      0.0   0.0
        only ground truth empty  0.0   0.0      diag  diag
        only prediction empty    0.0   0.0      diag  diag
    """
    pred = _to_numpy(pred_mask).astype(bool)
    target = _to_numpy(target_mask).astype(bool)
    if pred.shape != target.shape or pred.ndim != 2:
        raise DataError(
            f"prediction and ground truth must be [H, W] masks of one shape, got {pred.shape} and {target.shape}"
        )
    sp = _check_spacing(spacing)
    n_pred, n_true = int(pred.sum()), int(target.sum())
    if n_pred == 0 and n_true == 0:
        return {"dice": 1.0, "jaccard": 1.0, "asd": 0.0, "hd95": 0.0}
    if n_pred == 0 or n_true == 0:
        penalty = image_diagonal(pred.shape, sp)
        return {"dice": 0.0, "jaccard": 0.0, "asd": penalty, "hd95": penalty}
    inter = int(np.count_nonzero(pred & target))
    d_pt, d_tp = surface_distances(pred, target, spacing=sp)
    return {
        "dice": 2.0 * inter / (n_pred + n_true),
        "jaccard": inter / (n_pred + n_true - inter),
        "asd": float((d_pt.sum() + d_tp.sum()) / (d_pt.size + d_tp.size)),
        "hd95": float(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))),
    }


def _label_pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _to_numpy(pred), _to_numpy(target)
    if p.ndim != 2 or p.shape != t.shape:
        raise DataError(
            f"image_metrics needs two [H, W] label maps of one shape, got {tuple(p.shape)} and {tuple(t.shape)}"
        )
    return p, t


def image_metrics(pred: Any, target: Any, *, spacing: Sequence[float] | None = None) -> dict[str, Any]:
    """All metrics of one image from two ``[H, W]`` label maps (0 background, 1 PS, 2 FH).

    Args:
        pred, target: integer label maps (numpy arrays or torch tensors) of the same shape.
        spacing: ``(row_mm, col_mm)``: ASD and HD95 in mm (and the AoP measured in physical
            space) when given, pixels otherwise.

    Returns:
        ``{"PS": {"dice", "jaccard", "asd", "hd95"}, "FH": {...}, "aop_pred", "aop_true",
        "delta_aop"}``. Per-class values follow the empty-mask table in the module docstring
        (never NaN). AoPs are in degrees, ``delta_aop = |aop_pred - aop_true|``; each is
        ``None`` when an angle cannot be measured (see :mod:`segmentation._aop` for when).

    Empty masks, per class (``diag`` = the image diagonal, a penalty)::

        case                     dice  jaccard  asd   hd95
        both empty               1.0   1.0      0.0   0.0
        only ground truth empty  0.0   0.0      diag  diag
        only prediction empty    0.0   0.0      diag  diag
    """
    p, t = _label_pair(pred, target)
    sp = _check_spacing(spacing)
    out: dict[str, Any] = {
        name: binary_metrics(p == label, t == label, spacing=sp) for label, name in FOREGROUND_CLASSES.items()
    }
    aop_pred = angle_of_progression(p, spacing=sp)
    aop_true = angle_of_progression(t, spacing=sp)
    out["aop_pred"] = aop_pred
    out["aop_true"] = aop_true
    out["delta_aop"] = abs(aop_pred - aop_true) if aop_pred is not None and aop_true is not None else None
    return out


@dataclass(frozen=True)
class ClassMetrics:
    """Means over ``n`` images for one structure (PS or FH); ``None`` when there are no images."""

    dice: float | None
    jaccard: float | None
    asd: float | None
    hd95: float | None
    n: int
    n_empty_true: int  # images whose ground truth has none of this structure
    n_empty_pred: int  # images whose prediction has none of it
    # images whose ASD/HD95 are the image diagonal (exactly one of prediction and ground truth empty:
    # no surface to measure, a penalty); None in summaries written before it was counted
    n_diagonal: int | None = None


@dataclass(frozen=True)
class MeanMetrics:
    """The mean of the PS and FH means, and ``|dAoP|`` (degrees) over the ``n_aop`` images where both angles exist."""

    dice: float | None
    jaccard: float | None
    asd: float | None
    hd95: float | None
    delta_aop: float | None
    n_aop: int
    n: int


@dataclass(frozen=True)
class HeadlineMetrics:
    """The four numbers a model is ranked and recorded by (the :class:`rtseg_core.CandidateRecord`
    fields of the same names): mean foreground Dice, Dice of PS and FH, and mean |dAoP| in degrees.
    Each is a finite float or None (no image, or no image with both angles, for ``delta_aop_deg``)."""

    dice: float | None
    dice_ps: float | None
    dice_fh: float | None
    delta_aop_deg: float | None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class EvalSummary:
    """An evaluation's summary: per structure (``ps``, ``fh``) and their ``mean``.

    Dice and Jaccard are fractions in [0, 1]; ASD and HD95 in the accumulator's distance unit.
    :meth:`to_dict` is the JSON form (``{"PS": {...}, "FH": {...}, "mean": {...}}``, the schema of
    ``evaluation_<split>.json`` and of ``metrics.json``'s ``val``); :meth:`from_dict` reads it back.
    """

    ps: ClassMetrics
    fh: ClassMetrics
    mean: MeanMetrics
    #: Side of the masks the metrics were computed on (segmentation.evaluate sets it; ``None``: the
    #: model's input size, as the training loop's validation and summaries written before it).
    reference_size: int | None = None

    @property
    def dice(self) -> float | None:
        """Mean foreground Dice (PS and FH), the number every stage ranks models by."""
        return self.mean.dice

    def headline(self) -> HeadlineMetrics:
        """Dice (mean, PS, FH) and |dAoP|, as every record of a model carries them."""
        return HeadlineMetrics(
            dice=finite_or_none(self.mean.dice),
            dice_ps=finite_or_none(self.ps.dice),
            dice_fh=finite_or_none(self.fh.dice),
            delta_aop_deg=finite_or_none(self.mean.delta_aop),
        )

    def by_class(self) -> dict[str, ClassMetrics]:
        return {"PS": self.ps, "FH": self.fh}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"PS": asdict(self.ps), "FH": asdict(self.fh), "mean": asdict(self.mean)}
        if self.reference_size is not None:
            out["reference_size"] = self.reference_size
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "summary") -> EvalSummary:
        """Parse :meth:`to_dict`'s form; a missing or unknown key is a DataError naming ``source``."""
        try:
            ref = data.get("reference_size")
            if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int) or ref < 1):
                raise DataError(f"{source}: reference_size must be a positive integer, got {ref!r}")
            return cls(
                ps=ClassMetrics(**data["PS"]), fh=ClassMetrics(**data["FH"]), mean=MeanMetrics(**data["mean"]),
                reference_size=ref,
            )  # fmt: skip
        except (KeyError, TypeError) as exc:
            raise DataError(f"{source}: not an evaluation summary (PS, FH, mean) ({exc})") from None


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


class MetricAccumulator:
    """Collects per-image metrics over batches; gives CSV rows and a data-set summary.

    Usage::

        acc = MetricAccumulator()
        for batch in loader:
            acc.update(model(batch["image"]), batch["mask"], batch["id"])
        write_csv(acc.rows()); print(format_table(acc.summary(), distance_unit=acc.distance_unit))

    All images in one accumulator must share a distance unit: all with a spacing (mm) or all
    without (pixels). Mixing raises :class:`DataError` rather than averaging mm with pixels.

    Empty masks enter every mean with defined values, and are counted in the summary
    (``n_empty_true``, ``n_empty_pred``); ``diag`` = the image diagonal, a penalty::

        case                     dice  jaccard  asd   hd95
        both empty               1.0   1.0      0.0   0.0
        only ground truth empty  0.0   0.0      diag  diag
        only prediction empty    0.0   0.0      diag  diag

    An image without both AoPs has ``delta_aop = None``: it is left out of the |dAoP| mean and
    the images that have one are counted (``n_aop``).
    """

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._empty: list[tuple[dict[str, bool], dict[str, bool]]] = []
        self._unit: str | None = None

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def distance_unit(self) -> str:
        """``"px"`` or ``"mm"``: the unit of ASD and HD95 so far (``"px"`` before any update)."""
        return self._unit or "px"

    def reset(self) -> None:
        """Forget every image."""
        self._rows.clear()
        self._empty.clear()
        self._unit = None

    def update(
        self,
        pred: Any,
        target: Any,
        ids: Sequence[str] | None = None,
        *,
        spacing: Sequence[float] | Sequence[Sequence[float] | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Add one batch and return its rows.

        Args:
            pred: ``[B, H, W]`` integer labels, ``[B, 1, H, W]`` labels, or ``[B, C, H, W]``
                scores/logits with ``C > 1`` (the argmax over ``C`` is taken; no activation
                is needed as argmax is unchanged by softmax). numpy or torch.
            target: ``[B, H, W]`` (or ``[B, 1, H, W]``) integer labels.
            ids: one identifier per image; defaults to the running image index.
            spacing: ``None`` (pixels), one ``(row_mm, col_mm)`` for the whole batch, or one
                per image.
        """
        p = _to_numpy(pred)
        t = _to_numpy(target)
        if t.ndim == 4 and t.shape[1] == 1:
            t = t[:, 0]
        if p.ndim == 4:
            p = p[:, 0] if p.shape[1] == 1 else p.argmax(axis=1)
        if p.ndim != 3 or t.ndim != 3 or p.shape != t.shape:
            raise DataError(
                "MetricAccumulator.update needs predictions [B, H, W] or [B, C, H, W] and targets [B, H, W] "
                f"of matching size, got {tuple(_to_numpy(pred).shape)} and {tuple(_to_numpy(target).shape)}"
            )
        batch = p.shape[0]
        if ids is None:
            ids = [str(len(self._rows) + i) for i in range(batch)]
        if len(ids) != batch:
            raise DataError(f"MetricAccumulator.update: {len(ids)} ids for a batch of {batch} images")
        spacings = self._per_image_spacing(spacing, batch)
        unit = "px" if spacings[0] is None else "mm"
        if any((s is None) != (spacings[0] is None) for s in spacings) or (self._unit not in (None, unit)):
            raise DataError(
                "MetricAccumulator: some images have a pixel spacing (mm) and others not (pixels); "
                "give a spacing for all images or for none"
            )
        self._unit = unit

        new_rows = []
        for i in range(batch):
            m = image_metrics(p[i], t[i], spacing=spacings[i])
            row: dict[str, Any] = {"id": str(ids[i])}
            for name in FOREGROUND_CLASSES.values():
                for metric in METRIC_NAMES:
                    row[f"{name}_{metric}"] = m[name][metric]
            row["aop_pred"] = m["aop_pred"]
            row["aop_true"] = m["aop_true"]
            row["delta_aop"] = m["delta_aop"]
            new_rows.append(row)
            self._empty.append(
                (
                    {n: not (t[i] == c).any() for c, n in FOREGROUND_CLASSES.items()},
                    {n: not (p[i] == c).any() for c, n in FOREGROUND_CLASSES.items()},
                )
            )
        self._rows.extend(new_rows)
        return [dict(r) for r in new_rows]

    @staticmethod
    def _per_image_spacing(spacing: Any, batch: int) -> list[Spacing | None]:
        if spacing is None:
            return [None] * batch
        items = list(spacing)
        if len(items) == 2 and all(isinstance(v, int | float | np.floating | np.integer) for v in items):
            return [_check_spacing(items)] * batch
        if len(items) != batch:
            raise DataError(f"MetricAccumulator.update: {len(items)} spacings for a batch of {batch} images")
        return [_check_spacing(s) for s in items]

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per image, in update order, ready for ``csv.DictWriter`` or pandas.

        Keys: ``id``, ``PS_dice``, ``PS_jaccard``, ``PS_asd``, ``PS_hd95``, ``FH_dice``, ...,
        ``FH_hd95``, ``aop_pred``, ``aop_true``, ``delta_aop`` (``None`` where undefined).
        """
        return [dict(r) for r in self._rows]

    def summary(self) -> EvalSummary:
        """Means over images, per class and over both classes (see :class:`EvalSummary`).

        Per-class values are means over all ``n`` images (empty masks included by the module's
        convention, and counted). ``mean`` holds the mean of the PS and FH means, and
        ``delta_aop`` the mean ``|dAoP|`` over the ``n_aop`` images where both angles exist
        (``None`` if there are none). With no images every mean is ``None``.
        """
        per_class: dict[str, ClassMetrics] = {}
        for name in FOREGROUND_CLASSES.values():
            per_class[name] = ClassMetrics(
                **{m: _mean([r[f"{name}_{m}"] for r in self._rows]) for m in METRIC_NAMES},
                n=len(self._rows),
                n_empty_true=sum(et[name] for et, _ in self._empty),
                n_empty_pred=sum(ep[name] for _, ep in self._empty),
                n_diagonal=sum(et[name] != ep[name] for et, ep in self._empty),
            )
        means: dict[str, float | None] = {}
        for m in METRIC_NAMES:
            values = [getattr(c, m) for c in per_class.values()]
            means[m] = None if any(v is None for v in values) else float(np.mean(values))
        deltas = [r["delta_aop"] for r in self._rows if r["delta_aop"] is not None]
        mean = MeanMetrics(**means, delta_aop=_mean(deltas), n_aop=len(deltas), n=len(self._rows))
        return EvalSummary(ps=per_class["PS"], fh=per_class["FH"], mean=mean)


def format_table(summary: EvalSummary, *, distance_unit: str = "px") -> str:
    """A fixed-width text table of :meth:`MetricAccumulator.summary` for the terminal.

    Rows PS, FH, mean; columns Dice and Jaccard (fractions in [0, 1], as in every file), ASD and HD95
    (``distance_unit``), |dAoP| (degrees, mean row only, with its count) and n. Missing values print as ``-``.
    An ASD/HD95 mean that includes the image-diagonal penalty (``n_diagonal``) is marked ``*`` and a
    footnote says for how many images.
    """

    def fmt(value: Any, digits: int = 2, mark: bool = False) -> str:
        return "-" if value is None else f"{value:.{digits}f}" + ("*" if mark else "")

    diagonal = {key: c.n_diagonal or 0 for key, c in summary.by_class().items()}

    header = (
        f"{'class':<6}{'dice':>9}{'jaccard':>11}{'ASD ' + distance_unit:>10}"
        f"{'HD95 ' + distance_unit:>10}{'|dAoP| deg':>12}{'n':>6}"
    )
    lines = [header, "-" * len(header)]
    for key, entry in (*summary.by_class().items(), ("mean", summary.mean)):
        entry = asdict(entry)
        mark = bool(diagonal.get(key) if key != "mean" else any(diagonal.values()))
        if key == "mean":
            aop = entry.get("delta_aop")
            aop_text = "-" if aop is None else f"{aop:.2f} ({entry.get('n_aop', 0)})"
        else:
            aop_text = ""
        lines.append(
            f"{key:<6}{fmt(entry.get('dice'), digits=4):>9}{fmt(entry.get('jaccard'), digits=4):>11}"
            f"{fmt(entry.get('asd'), mark=mark):>10}{fmt(entry.get('hd95'), mark=mark):>10}{aop_text:>12}"
            f"{entry.get('n', 0):>6}"
        )
    if any(diagonal.values()):
        n = summary.mean.n
        counts = " and ".join(f"{v} of {n} {k}" for k, v in diagonal.items() if v)
        lines.append(f"* the image diagonal stands in for ASD and HD95 in {counts} image(s) (n_diagonal):")
        lines.append("  an empty prediction or ground truth has no surface to measure; a penalty, not a distance")
    return "\n".join(lines)
