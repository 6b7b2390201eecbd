"""The up-front dataset check: every file of a split read and validated before any training step.

A bad frame (a JNU-IFM mask holding label 5, a truncated PNG, a mask whose size differs from its
image) would otherwise surface only when an epoch first reaches it, hours into a run. The check
reads every sample once through the dataset's own loader (the same validation as training:
labels in the format's set, decodable image and mask, equal image/mask sizes), keeps the resized
pixels in the dataset's cache so training does not read them again, and reports every unusable
file at once, each by name.

Files that passed once in this process (same path, size and modification time) are not read
again, so a search that builds the same split for every trial pays for the check once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tqdm.auto import tqdm

from rtseg_core import DataError
from segmentation._data import SegmentationDataset

# (path, size, mtime_ns) of image and mask files that loaded cleanly in this process.
_VERIFIED: set[tuple[str, int, int]] = set()
_SHOWN = 10  # problems listed in the error message


@dataclass(frozen=True)
class DataCheck:
    """What :func:`check_dataset` did: ``images`` in the split, ``read`` now, ``known_good`` skipped."""

    data: str
    split: str
    images: int
    read: int
    known_good: int


def check_dataset(dataset: SegmentationDataset, *, progress: bool = True) -> DataCheck:
    """Read and validate every sample of ``dataset``; raise one DataError naming each bad file.

    Synthetic (phantom) datasets are rendered and correct by construction: nothing is read.
    """
    files = dataset.sample_files()
    if files is None:
        return DataCheck(str(dataset.spec), dataset.split, len(dataset), 0, len(dataset))
    problems: list[str] = []
    read = known = 0
    todo = []
    for i, paths in enumerate(files):
        keys = [_file_key(p) for p in paths]
        if all(k is not None and k in _VERIFIED for k in keys):
            known += 1
        else:
            todo.append((i, keys))
    desc = f"checking {dataset.spec.kind} {dataset.split}"
    for i, keys in tqdm(todo, desc=desc, unit="img", leave=False, disable=not progress or len(todo) < 50 or None):
        try:
            dataset.load_resized(i)
        except DataError as exc:
            problems.append(str(exc))
            continue
        read += 1
        _VERIFIED.update(k for k in keys if k is not None)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems[:_SHOWN])
        more = f"\n  ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise DataError(
            f"--data {dataset.spec}: {len(problems)} of {len(dataset)} sample(s) in the {dataset.split!r} split "
            f"cannot be used (found by the check before training; fix or remove them):\n{listed}{more}"
        )
    return DataCheck(str(dataset.spec), dataset.split, len(dataset), read, known)


def _file_key(path) -> tuple[str, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # the loader reports the missing file by name
    return (str(path), st.st_size, st.st_mtime_ns)
