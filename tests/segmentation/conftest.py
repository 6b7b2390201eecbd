"""Writers for small datasets in the real on-disk formats (JNU-IFM PNG folders, PSFHS .mha).

Images and masks come from the phantom, so they look like ultrasound frames and carry real PS/FH
shapes; masks are written with each format's own label values (JNU-IFM 7/8, PSFHS 1/2).
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from segmentation._phantom import make_phantom

JNU_SIZE = (40, 48)  # H x W, deliberately not square (the real frames are 1026 x 1295)


def jnu_frame(seed: int, label: int, size: tuple[int, int] = JNU_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image uint8, JNU-IFM mask (0/7/8) and the expected 0/1/2 mask for a frame with ``label``."""
    image, classes = make_phantom(size, seed)
    expected = np.zeros_like(classes)
    if label in (4, 6):
        expected[classes == 1] = 1
    if label in (5, 6):
        expected[classes == 2] = 2
    raw = np.choose(expected, [0, 7, 8]).astype(np.uint8)
    return (image * 255).round().astype(np.uint8), raw, expected


def _write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_jnu_frames(folder: Path, video: str, labels: list[int], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Write ``image/``, ``mask/`` and ``mask_enhance/`` PNGs of one video into ``folder``.

    Frame ``k`` (1-based) is ``<video>_<k:04d>``; returns {sample id: expected 0/1/2 mask}.
    """
    expected = {}
    for k, label in enumerate(labels, start=1):
        stem = f"{video}_{k:04d}"
        image, raw, want = jnu_frame(seed * 1000 + k, label)
        _write_png(folder / "image" / f"{stem}.png", image)
        _write_png(folder / "mask" / f"{stem}_mask.png", raw)
        colour = np.zeros((*raw.shape, 3), np.uint8)
        colour[raw == 7] = (0, 0, 255)
        colour[raw == 8] = (0, 255, 0)
        _write_png(folder / "mask_enhance" / f"{stem}.png", colour)
        expected[stem] = want
    return expected


def write_jnu_video(root: Path, video: str, labels: list[int], *, bare_ids: bool = False, seed: int = 0) -> Path:
    """A per-video JNU-IFM folder ``root/<video>`` with its ``framelabel.csv``."""
    folder = root / video
    write_jnu_frames(folder, video, labels, seed=seed)
    ids = [str(k) if bare_ids else f"{video}_{k:04d}" for k in range(1, len(labels) + 1)]
    _write_csv(folder / "framelabel.csv", ["frame_id", "frame_label"], [[i, lab] for i, lab in zip(ids, labels)])
    return folder


def write_jnu_flat(root: Path, videos: dict[str, list[int]], *, bare_ids: bool = False) -> Path:
    """The flattened JNU-IFM layout: shared ``image/``, ``mask/`` and one csv with ``video_name``."""
    rows = []
    for seed, (video, labels) in enumerate(videos.items()):
        write_jnu_frames(root, video, labels, seed=seed)
        for k, label in enumerate(labels, start=1):
            rows.append([str(k) if bare_ids else f"{video}_{k:04d}", label, video])
    _write_csv(root / "framelabel.csv", ["frame_id", "frame_label", "video_name"], rows)
    return root


def write_psfhs(root: Path, n: int, *, layout: str = "chw", size: int = 32, seed: int = 0) -> Path:
    """``root/image_mha/NNNNN.mha`` and ``root/label_mha/NNNNN.mha`` (values 0/1/2).

    ``layout``: ``"chw"`` (3 x H x W scalar volume), ``"2d"`` (H x W) or ``"vector"`` (H x W,
    3 components per pixel, as SimpleITK reads an RGB image).
    """
    import SimpleITK as sitk

    (root / "image_mha").mkdir(parents=True, exist_ok=True)
    (root / "label_mha").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, mask = make_phantom(size, seed * 1000 + i)
        gray = (image * 255).round().astype(np.uint8)
        if layout == "chw":
            img = sitk.GetImageFromArray(np.stack([gray, gray, gray]))
        elif layout == "vector":
            img = sitk.GetImageFromArray(np.stack([gray, gray, gray], axis=-1), isVector=True)
        else:
            img = sitk.GetImageFromArray(gray)
        sitk.WriteImage(img, str(root / "image_mha" / f"{i:05d}.mha"))
        sitk.WriteImage(sitk.GetImageFromArray(mask), str(root / "label_mha" / f"{i:05d}.mha"))
    return root


@pytest.fixture
def jnu_root(tmp_path: Path) -> Path:
    """Two videos in the per-video layout with every frame label present."""
    root = tmp_path / "JNU-IFM"
    write_jnu_video(root, "20190916T104520", [6, 6, 4, 5, 3], seed=1)
    write_jnu_video(root, "20190917T090000", [6, 3, 6], seed=2)
    return root


@pytest.fixture
def writers() -> SimpleNamespace:
    """The writers above, for tests (conftest modules cannot be imported under importlib mode)."""
    return SimpleNamespace(
        jnu_frame=jnu_frame,
        jnu_frames=write_jnu_frames,
        jnu_video=write_jnu_video,
        jnu_flat=write_jnu_flat,
        psfhs=write_psfhs,
        csv=_write_csv,
        png=_write_png,
    )
