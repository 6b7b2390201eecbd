"""The ``--data`` spec, grouped train/val/test splits and the torch dataset the trainer consumes.

``load_split(spec, split)`` is the one way in::

    train = load_split("synthetic", "train", size=128, seed=0)
    val = load_split("jnu-ifm:/data/JNU-IFM", "val", frames="ps+fh")
    item = train[0]  # {"image": [1, H, W] float32, "mask": [H, W] int64 in {0, 1, 2}, "id": str}

Splits are made over *groups*, never over single images: a JNU-IFM video (neighbouring frames
are near-duplicates, so a frame-level split would leak), a PSFHS image, a phantom. Groups are
shuffled with ``seed`` and cut into test (``test_fraction``), val (``val_fraction``) and train
(the rest), so the same seed and fractions always give the same disjoint splits. For JNU-IFM the
cut is made over all videos before ``frames`` selects frames, so changing ``frames`` never moves
a video to another split.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from rtseg_core import ConfigError, DataError
from segmentation._formats import JNU_IFM, PSFHS, DatasetIndex, index_jnu_ifm, index_psfhs, load_sample, parse_frames
from segmentation._phantom import MIN_SIZE, make_phantom
from segmentation._transforms import DEFAULT_AUGMENT, AugmentParams, augment_pair, resize_pair, standardize

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
MAX_SYNTHETIC = 100_000  # phantoms are generated in memory; more is a typo, refused before allocating
DEFAULT_SYNTHETIC_COUNT = 400
#: Side (pixels) of the masks every test evaluation scores against, whatever the model's input size:
#: predictions are resized to it (segmentation.evaluate), so a 192-px and a 256-px model are scored on
#: the same masks and their Dice, ASD and HD95 (pixels of this size) compare. 256 because it is
#: paper's input size, the latency size, and the label size of both real datasets (JNU-IFM frames
#: and PSFHS labels are 256 x 256); the phantom has no native size (its geometry is continuous), so
#: its reference masks are the same scene rasterised at 256 x 256.
REFERENCE_SIZE = 256
SPLITS = ("train", "val", "test", "all")
#: Class index -> name, for masks and per-class metrics.
CLASS_NAMES = ("background", "PS", "FH")
# Multiplier that spreads phantom seeds: phantom ``i`` of a dataset seeded ``seed`` uses
# ``seed * _SEED_STRIDE + i``, so datasets with different seeds share no image (up to 100003 each).
_SEED_STRIDE = 100003

_ACCEPTED = (
    "'synthetic' (the built-in phantom, 400 images), 'synthetic:N' (N images), "
    "'jnu-ifm:PATH' (JNU-IFM folder) or 'psfhs:PATH' (PSFHS / FH-PS-AOP folder with image_mha/, label_mha/)"
)
_ALIASES = {"synthetic": SYNTHETIC, "jnu-ifm": JNU_IFM, "jnu": JNU_IFM, "psfhs": PSFHS, "fh-ps-aop": PSFHS}


@dataclass(frozen=True)
class DataSpec:
    """Which data to use: the phantom or a real dataset folder.

    ``kind`` is ``"synthetic"``, ``"jnu-ifm"`` or ``"psfhs"``; ``path`` is set for the real
    ones; ``count`` (number of phantoms, all splits together) for the synthetic one. Text forms
    (:meth:`parse`, ``str()``): ``synthetic``, ``synthetic:N``, ``jnu-ifm:PATH``, ``psfhs:PATH``.
    """

    kind: str = SYNTHETIC
    path: Path | None = None
    count: int | None = DEFAULT_SYNTHETIC_COUNT

    def __post_init__(self) -> None:
        if self.kind == SYNTHETIC:
            if self.path is not None or not isinstance(self.count, int) or not 1 <= self.count <= MAX_SYNTHETIC:
                raise ConfigError(
                    f"--data: synthetic needs an image count from 1 to {MAX_SYNTHETIC} and no path, got {self!r}"
                )
        elif self.kind in (JNU_IFM, PSFHS):
            if self.path is None or self.count is not None:
                raise ConfigError(f"--data: {self.kind} needs a path and no count, got {self!r}")
            if not isinstance(self.path, Path):
                object.__setattr__(self, "path", Path(self.path))
        else:
            raise ConfigError(f"--data: unknown kind {self.kind!r}; use {_ACCEPTED}")

    @classmethod
    def parse(cls, text: str | DataSpec) -> DataSpec:
        """Parse a ``--data`` value; raises :class:`ConfigError` naming ``--data`` and the accepted forms."""
        if isinstance(text, DataSpec):
            return text
        raw = str(text).strip()
        head, sep, rest = raw.partition(":")
        kind = _ALIASES.get(head.strip().lower())
        if kind == SYNTHETIC:
            if not sep:
                return cls()
            if re.fullmatch(r"\d{1,12}", rest.strip()) and 1 <= int(rest) <= MAX_SYNTHETIC:
                return cls(count=int(rest))
            raise ConfigError(
                f"--data {raw!r}: N in 'synthetic:N' must be an integer from 1 to {MAX_SYNTHETIC}; use {_ACCEPTED}"
            )
        if kind in (JNU_IFM, PSFHS):
            if not rest.strip():
                raise ConfigError(f"--data {raw!r}: {kind} needs a folder, as in '{kind}:PATH'")
            return cls(kind=kind, path=Path(rest.strip()), count=None)
        raise ConfigError(f"--data {raw!r}: not a dataset spec; use {_ACCEPTED}")

    def __str__(self) -> str:
        if self.kind == SYNTHETIC:
            return SYNTHETIC if self.count == DEFAULT_SYNTHETIC_COUNT else f"{SYNTHETIC}:{self.count}"
        return f"{self.kind}:{self.path}"


def split_groups(
    groups: list[str] | tuple[str, ...], *, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Assign each group to ``"train"``, ``"val"`` or ``"test"``; deterministic in ``seed``.

    Sizes are ``round(fraction * n_groups)``, but at least one group for a non-zero fraction
    when there are 3 or more groups; train gets the rest.
    """
    _check_fractions(val_fraction, test_fraction)
    ordered = sorted(set(groups))
    n = len(ordered)
    sizes = expected_split_sizes(n, val_fraction, test_fraction)
    n_test, n_val = sizes["test"], sizes["val"]
    order = np.random.default_rng(seed).permutation(n)
    out = {}
    for rank, i in enumerate(order):
        out[ordered[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
            raise ConfigError(f"{name}: must be in [0, 1), got {value!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction must leave images for training (< 1), got {val_fraction} + {test_fraction}"
        )


class _PhantomSource:
    """Phantom ``i`` of the dataset (``0 <= i < count``) is ``make_phantom(size, seed * 100003 + i)``."""

    def __init__(self, indices: list[int], seed: int) -> None:
        self.indices = indices
        self.seed = seed
        self.ids = [f"phantom-s{seed}-{i:05d}" for i in indices]
        self.groups = list(self.ids)

    def load(self, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        return make_phantom(size, self.seed * _SEED_STRIDE + self.indices[k])


class _FileSource:
    def __init__(self, index: DatasetIndex, groups: set[str]) -> None:
        self.index = index
        self.group_set = groups
        self.samples = [s for s in index.samples if s.group in groups]
        self.ids = [s.id for s in self.samples]
        self.groups = [s.group for s in self.samples]

    def load(self, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        return load_sample(self.samples[k])


class SegmentationDataset(Dataset):
    """Images and PS/FH masks of one split, resized to ``size x size``.

    Item ``i`` is a dict:

    * ``"image"``: float32 tensor ``[1, size, size]``, standardised per image (zero mean, unit
      std over all its pixels; see :func:`standardize`), augmented first when ``augment``;
    * ``"mask"``: int64 tensor ``[label_size, label_size]`` with 0 background, 1 PS, 2 FH
      (``label_size`` is ``size`` unless the split was built for an evaluation at a reference size);
    * ``"id"``: str, the sample id (file stem for real data, ``phantom-s<seed>-<index>`` for the phantom).

    Images are letterboxed to a square and resized (:func:`resize_pair`) once, then kept in
    memory as uint8 (about ``size**2`` bytes per image plus as much for its mask); phantoms are
    rendered when the dataset is built, files are read on first access (or by :meth:`preload`).

    Augmentation randomness: after :meth:`set_epoch`, item ``i``'s augmentation is a pure
    function of ``(seed, epoch, i)``, identical for any number of DataLoader workers. Without
    it, each item draws a fresh seed from torch's global generator, which DataLoader seeds
    differently in every worker and every epoch, so workers never repeat each other's draws
    and ``torch.manual_seed`` makes a run repeatable.

    Masks at another ``label_size`` (an evaluation at a reference size): the phantom's mask is the
    same scene rendered at ``label_size`` (same seed, so the same geometry); a file's mask is its
    native label letterboxed and resized (nearest) to ``label_size``, read a second time.

    Attributes: ``ids``, ``groups``, ``spec`` (:class:`DataSpec`), ``split``, ``size``,
    ``label_size``, ``augment``, ``in_channels`` (1) and ``num_classes`` (3).
    """

    in_channels = 1
    num_classes = len(CLASS_NAMES)

    def __init__(
        self,
        source: _PhantomSource | _FileSource,
        *,
        spec: DataSpec,
        split: str,
        size: int,
        augment: bool,
        seed: int,
        augment_params: AugmentParams = DEFAULT_AUGMENT,
        label_size: int | None = None,
    ) -> None:
        if label_size is not None and label_size != size and augment:
            # augment_pair transforms an image and a mask of one size together
            raise ConfigError(f"label_size {label_size}: masks at another size than the images ({size}) are for "
                              "evaluation only, not with augmentation")  # fmt: skip
        self._source = source
        self.spec = spec
        self.split = split
        self.size = size
        self.label_size = size if label_size is None else int(label_size)
        self.augment = augment
        self.seed = seed
        self.augment_params = augment_params
        self.ids: list[str] = list(source.ids)
        self.groups: list[str] = list(source.groups)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._epoch: int | None = None
        if isinstance(source, _PhantomSource):
            self.preload()

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        """Make augmentation a pure function of ``(seed, epoch, index)`` from now on."""
        self._epoch = int(epoch)

    def preload(self) -> None:
        """Read (or render) and cache every sample now instead of on first access."""
        missing = [i for i in range(len(self)) if i not in self._cache]
        desc = f"{self.spec.kind} {self.split}"
        for i in tqdm(missing, desc=desc, unit="img", leave=False, disable=len(missing) < 50 or None):
            self._cached(i)

    def sample_files(self) -> list[tuple[Path, Path]] | None:
        """``(image, mask)`` paths of every sample, in index order; ``None`` for the phantom (no files)."""
        if isinstance(self._source, _FileSource):
            return [(s.image_path, s.mask_path) for s in self._source.samples]
        return None

    def load_resized(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` without augmentation or standardisation: image float32 ``[size, size]``
        in ``[0, 1]`` and mask uint8 ``[label_size, label_size]`` in {0, 1, 2} (e.g. for overlays)."""
        image, mask = self._cached(index)
        return image.astype(np.float32) / 255.0, mask.copy()

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image, mask = self.load_resized(index)
        if self.augment:
            image, mask = augment_pair(image, mask, self._rng(index), self.augment_params)
        return {
            "image": torch.from_numpy(standardize(image)[None]),
            "mask": torch.from_numpy(mask.astype(np.int64)),
            "id": self.ids[index],
        }

    def _rng(self, index: int) -> np.random.Generator:
        if self._epoch is not None:
            return np.random.default_rng([self.seed, self._epoch, index])
        draw = int(torch.randint(0, 2**62, (1,)).item())
        return np.random.default_rng([self.seed, index, draw])

    def _cached(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self._cache.get(index)
        if hit is None:
            image, mask = self._source.load(index, self.size)
            image, mask = resize_pair(image, mask, self.size)
            if self.label_size != self.size:
                label_image, label = self._source.load(index, self.label_size)
                mask = resize_pair(label_image, label, self.label_size)[1]
            hit = (np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8), mask)
            self._cache[index] = hit
        return hit

    def describe(self) -> dict:
        """Counts of this split as a JSON-ready dict (per frame label for JNU-IFM)."""
        out = {
            "data": str(self.spec),
            "split": self.split,
            "size": self.size,
            "label_size": self.label_size,
            "augment": self.augment,
            "seed": self.seed,
            "images": len(self),
            "groups": len(set(self.groups)),
        }
        if isinstance(self._source, _FileSource):
            out.update({k: v for k, v in self._source.index.describe(self._source.group_set).items() if k not in out})
            out["root"] = str(self._source.index.root)
        return out

    def __repr__(self) -> str:
        return f"SegmentationDataset(data={str(self.spec)!r}, split={self.split!r}, n={len(self)}, size={self.size})"


def load_split(
    spec: DataSpec | str,
    split: str,
    *,
    size: int = 256,
    seed: int = 0,
    augment: bool | None = None,
    frames: str = "ps+fh",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    label_size: int | None = None,
) -> SegmentationDataset:
    """Build the dataset of one split.

    Args:
        spec: a :class:`DataSpec` or its text (``synthetic``, ``synthetic:N``, ``jnu-ifm:PATH``, ``psfhs:PATH``).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        size: side of the square images and masks, in pixels (>= 16).
        seed: drives the split, the phantoms and the augmentation.
        augment: training augmentation on/off; ``None`` means on for ``train`` only.
        frames: JNU-IFM frame selection (see :func:`parse_frames`); other formats ignore it.
        val_fraction, test_fraction: share of groups (videos/images) in val and test.
        label_size: side of the masks when it differs from ``size`` (an evaluation at a reference
            size, e.g. :data:`REFERENCE_SIZE`); ``None``: ``size``. Not with augmentation.

    Raises:
        ConfigError: bad spec, split, size, seed, fractions or ``frames``.
        DataError: missing or malformed dataset, or an empty split.
    """
    spec = DataSpec.parse(spec)
    if split not in SPLITS:
        raise ConfigError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
        raise ConfigError(f"size: expected an integer >= {MIN_SIZE} (pixels), got {size!r}")
    bad_label = isinstance(label_size, bool) or not isinstance(label_size, int) or label_size < MIN_SIZE
    if label_size is not None and bad_label:
        raise ConfigError(f"label_size (reference size): expected an integer >= {MIN_SIZE} pixels, got {label_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed: expected an integer >= 0, got {seed!r}")
    _check_fractions(val_fraction, test_fraction)
    parse_frames(frames)  # reject a bad --frames even when the format does not use it
    augment = split == "train" if augment is None else bool(augment)

    if spec.kind == SYNTHETIC:
        assert spec.count is not None
        ids = [str(i) for i in range(spec.count)]
        chosen = _choose(ids, split, seed, val_fraction, test_fraction, spec, "images")
        source: _PhantomSource | _FileSource = _PhantomSource(sorted(int(g) for g in chosen), seed)
    else:
        assert spec.path is not None
        if not spec.path.exists():
            raise DataError(f"{spec.path}: does not exist (from --data {spec})")
        if spec.kind == JNU_IFM:
            index = index_jnu_ifm(spec.path, frames=frames)
        else:
            if frames != "ps+fh":
                log.warning("--frames %r ignored: only JNU-IFM has frame labels", frames)
            index = index_psfhs(spec.path)
        unit = "videos" if spec.kind == JNU_IFM else "images"
        chosen = _choose(index.groups, split, seed, val_fraction, test_fraction, spec, unit)
        source = _FileSource(index, chosen)
        if not source.samples:
            counts = index.describe(chosen).get("frame_labels")
            raise DataError(
                f"{spec.path}: split {split!r} has no frames selected by --frames {frames!r} "
                f"(frame labels in its {len(chosen)} video(s): {counts}); try --frames all"
            )
    dataset = SegmentationDataset(
        source, spec=spec, split=split, size=size, augment=augment, seed=seed, label_size=label_size
    )
    log.info("%s", _split_line(spec, split, dataset, source))
    return dataset


def _split_line(spec: DataSpec, split: str, dataset: SegmentationDataset, source) -> str:
    """What a split holds, for the log; for JNU-IFM also the frames ``--frames`` left out, per label."""
    groups = len(set(dataset.groups))
    if spec.kind != JNU_IFM:
        n = len(dataset)
        return f"{spec} {split}: {n} image{'s' if n != 1 else ''}" + (f" in {groups} groups" if groups != n else "")
    info = source.index.describe(source.group_set)
    every, kept = info["frame_labels"], info["frame_labels_selected"]
    left = ", ".join(f"{name} {every[name] - kept[name]}" for name in every if every[name] - kept[name])
    return (
        f"{spec} {split}: {len(dataset)} frames from {groups} video(s); --frames {info['frames']} kept "
        f"{len(dataset)} of {info['frames_total']} frames" + (f" (left out: {left})" if left else "")
    )


def _choose(
    groups: list[str], split: str, seed: int, val_fraction: float, test_fraction: float, spec: DataSpec, unit: str
) -> set[str]:
    if split == "all":
        return set(groups)
    assignment = split_groups(groups, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    chosen = {g for g, s in assignment.items() if s == split}
    if not chosen:
        fraction = {"val": val_fraction, "test": test_fraction}.get(split)
        hint = f" with {split}_fraction={fraction}" if fraction is not None else ""
        raise DataError(
            f"--data {spec}: split {split!r} is empty: {len(assignment)} {unit} in all{hint}; "
            f"use more data{' or a larger ' + split + '_fraction' if fraction is not None else ''}"
        )
    return chosen


def expected_split_sizes(n_groups: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Group counts :func:`split_groups` gives for ``n_groups`` groups (for planning and tests)."""
    n_test, n_val = round(test_fraction * n_groups), round(val_fraction * n_groups)
    if n_groups >= 3:
        n_test = max(n_test, 1) if test_fraction > 0 else 0
        n_val = max(n_val, 1) if val_fraction > 0 else 0
    return {"train": n_groups - n_test - n_val, "val": n_val, "test": n_test}
