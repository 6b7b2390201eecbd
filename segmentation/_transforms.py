"""Image/mask transforms: square resize, intensity standardisation and training augmentation.

Every function takes an image float32 ``[H, W]`` in ``[0, 1]`` and, where geometry changes, its
mask uint8 ``[H, W]`` (class indices), and returns new arrays; inputs are never modified.
Geometric changes use bilinear/area interpolation for the image and nearest-neighbour for the
mask, so the mask keeps exactly the class values it had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from rtseg_core import ConfigError


def letterbox_square(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``image`` and ``mask`` with zeros (background) to a centred square.

    Padding rather than stretching keeps the aspect ratio, so angles measured on the result
    (the AoP) equal those on the original; the padding is black like the area outside the fan.
    """
    h, w = image.shape[:2]
    if h == w:
        return image, mask
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    pad = ((top, side - h - top), (left, side - w - left))
    return np.pad(image, pad), np.pad(mask, pad)


def resize_pair(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Letterbox to a square (:func:`letterbox_square`), then resize to ``size x size``.

    The image uses area interpolation when shrinking and bilinear when enlarging; the mask uses
    nearest-neighbour. Returns float32 and uint8 arrays ``[size, size]``.
    """
    image, mask = letterbox_square(image, mask)
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] == size:
        return image, np.asarray(mask, dtype=np.uint8)
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    out = cv2.resize(image, (size, size), interpolation=interp)
    out_mask = cv2.resize(np.asarray(mask, dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return out, out_mask


def standardize(image: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Per-image standardisation: subtract the mean, divide by the standard deviation.

    Statistics cover the whole image, the black area outside the fan included, so an image and
    its augmented copies are scaled alike. A constant image becomes all zeros.
    """
    image = np.asarray(image, dtype=np.float32)
    std = float(image.std())
    out = image - float(image.mean())
    if std > eps:
        out /= std
    return out


@dataclass(frozen=True)
class AugmentParams:
    """Ranges of the training augmentation (each drawn uniformly per sample).

    ``rotation_deg`` +-degrees; ``scale`` (low, high) zoom; ``translate`` +- fraction of the side;
    ``brightness`` +- additive offset on the [0, 1] image; ``contrast`` (low, high) gain around
    the mean; ``gamma`` (low, high) exponent. No horizontal (or vertical) flip on purpose: a
    transperineal view has a fixed orientation (probe on top, PS to the left of the head, the AoP
    measured from the PS's distal end towards the head), so a mirrored image shows an anatomy
    that never occurs and would reverse the side the AoP is measured on.
    """

    rotation_deg: float = 15.0
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.06
    brightness: float = 0.1
    contrast: tuple[float, float] = (0.8, 1.2)
    gamma: tuple[float, float] = (0.7, 1.5)

    def __post_init__(self) -> None:
        if not (0 <= self.rotation_deg <= 180 and 0 <= self.translate < 0.5 and self.brightness >= 0):
            raise ConfigError(f"AugmentParams: rotation/translate/brightness out of range: {self!r}")
        for name in ("scale", "contrast", "gamma"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"AugmentParams.{name}: needs 0 < low <= high, got {(lo, hi)!r}")


DEFAULT_AUGMENT = AugmentParams()


def random_affine(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, params: AugmentParams = DEFAULT_AUGMENT
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate, scale and translate image and mask by the same random transform (zeros fill in)."""
    h, w = image.shape[:2]
    angle = float(rng.uniform(-params.rotation_deg, params.rotation_deg))
    scale = float(rng.uniform(*params.scale))
    tx, ty = (float(v) for v in rng.uniform(-params.translate, params.translate, 2) * (w, h))
    matrix = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, scale)
    matrix[:, 2] += (tx, ty)
    out = cv2.warpAffine(
        np.asarray(image, dtype=np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    out_mask = cv2.warpAffine(
        np.asarray(mask, dtype=np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT
    )
    return out, out_mask


def random_intensity(
    image: np.ndarray, rng: np.random.Generator, params: AugmentParams = DEFAULT_AUGMENT
) -> np.ndarray:
    """Gamma, contrast and brightness jitter on a [0, 1] image; the result is clipped to [0, 1]."""
    out = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    # Log-uniform gamma, so that darkening and brightening are equally likely.
    lo, hi = params.gamma
    out = out ** float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    mean = float(out.mean())
    out = (out - mean) * float(rng.uniform(*params.contrast)) + mean
    out += float(rng.uniform(-params.brightness, params.brightness))
    return np.clip(out, 0.0, 1.0, out=out)


def augment_pair(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, params: AugmentParams = DEFAULT_AUGMENT
) -> tuple[np.ndarray, np.ndarray]:
    """The training augmentation: :func:`random_affine` then :func:`random_intensity`."""
    image, mask = random_affine(image, mask, rng, params)
    return random_intensity(image, rng, params), mask
