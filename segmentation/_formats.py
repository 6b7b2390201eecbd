"""Readers for the real datasets users bring: JNU-IFM (PNG folders) and PSFHS / FH-PS-AOP (MetaImage).

Both readers first *index* a dataset (list its samples, check that every file exists, read the
frame labels) and load pixels only on request, because reading and validating thousands of
images up front would be slow. Anything wrong with the data raises :class:`common.DataError`
whose message names the file or folder, the problem and what was expected.

Loaded samples share one contract (:func:`load_sample`): an image float32 ``[H, W]`` in
``[0, 1]`` and a mask uint8 ``[H, W]`` with 0 background, 1 PS, 2 FH.

JNU-IFM (figshare 14371652) comes in two layouts, both accepted:

* per video: ``ROOT/<video>/image/<video>_<frame>.png``, ``ROOT/<video>/mask/<video>_<frame>_mask.png``
  and ``ROOT/<video>/framelabel.csv`` (columns ``frame_id``, ``frame_label``); ``ROOT`` may
  also be a single video folder;
* flattened: ``ROOT/image/``, ``ROOT/mask/`` and one ``ROOT/framelabel.csv`` that also has a
  ``video_name`` column.

Mask pixels are 7 = PS and 8 = FH (so the PNGs look black); ``mask_enhance/`` holds colour
renderings and is ignored. ``frame_id`` may be ``<video>_<frame>`` or a bare frame number; frame
numbers match across zero padding (``7`` matches ``..._0007.png``). The group of a frame (the unit
that splits keep together) is its video.

PSFHS (Zenodo 10969427) and the FH-PS-AOP challenge set (Zenodo 7851339): ``ROOT/image_mha/*.mha``
(``3 x 256 x 256``, ``256 x 256`` or a 3-component vector image) and ``ROOT/label_mha/*.mha``
with the same file names and values 0/1/2. Colour images become grayscale by the mean over
channels. Each image is its own group.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rtseg_core import ConfigError, DataError

log = logging.getLogger(__name__)

JNU_IFM = "jnu-ifm"
PSFHS = "psfhs"

#: JNU-IFM frame labels (``framelabel.csv``) and the names used in ``--frames`` and ``describe()``.
FRAME_LABEL_NAMES: dict[int, str] = {3: "none", 4: "ps-only", 5: "fh-only", 6: "ps+fh"}
#: Name used in counts for frames that have an image but no row in ``framelabel.csv``.
UNLABELLED = "unlabelled"
#: Pixel value in a JNU-IFM mask -> class index (0 background, 1 PS, 2 FH).
JNU_MASK_VALUES: dict[int, int] = {0: 0, 7: 1, 8: 2}
PSFHS_MASK_VALUES: dict[int, int] = {0: 0, 1: 1, 2: 2}

_FRAMES_HELP = (
    "'ps+fh' (default: frames showing both structures), 'all', or a comma list of JNU-IFM frame "
    "labels by number or name: 3/none, 4/ps-only, 5/fh-only, 6/ps+fh (e.g. '4,5,6')"
)


@dataclass(frozen=True)
class Sample:
    """One image/mask pair on disk.

    ``group`` is the unit a split keeps together (the video for JNU-IFM, the image for PSFHS);
    ``frame_label`` is the JNU-IFM frame label (3-6), ``None`` for PSFHS or for a JNU-IFM
    frame missing from ``framelabel.csv``.
    """

    id: str
    image_path: Path
    mask_path: Path
    group: str
    format: str
    frame_label: int | None = None


@dataclass(frozen=True)
class DatasetIndex:
    """The samples of one dataset folder: those selected for use and every frame listed.

    ``samples`` are the selected ones (for JNU-IFM, the frames whose label is in ``frames``);
    ``all_samples`` also holds the others so that they stay countable. ``rows_without_image``
    counts ``framelabel.csv`` rows (not selected) whose image file does not exist.
    """

    format: str
    root: Path
    samples: tuple[Sample, ...]
    all_samples: tuple[Sample, ...]
    frames: str | None = None
    rows_without_image: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def groups(self) -> list[str]:
        """Every group in the dataset (selected or not), sorted."""
        return sorted({s.group for s in self.all_samples})

    def describe(self, groups: Iterable[str] | None = None) -> dict:
        """Counts as a JSON-ready dict, over all groups or only ``groups``.

        For JNU-IFM, ``frame_labels`` counts every frame per label (named as in
        :data:`FRAME_LABEL_NAMES`, plus ``unlabelled``) and ``frame_labels_selected`` the
        frames that ``frames`` selected, so frames left out are visible, never silently lost.
        """
        keep = None if groups is None else set(groups)
        every = [s for s in self.all_samples if keep is None or s.group in keep]
        chosen = [s for s in self.samples if keep is None or s.group in keep]
        out: dict = {
            "format": self.format,
            "root": str(self.root),
            "images": len(chosen),
            "groups": len({s.group for s in chosen}),
        }
        if self.format == JNU_IFM:
            out["frames"] = self.frames
            out["videos"] = len({s.group for s in every})
            out["frames_total"] = len(every)
            out["frame_labels"] = _label_counts(every)
            out["frame_labels_selected"] = _label_counts(chosen)
            if keep is None and self.rows_without_image:
                out["csv_rows_without_image"] = self.rows_without_image
        return out


def _label_counts(samples: Iterable[Sample]) -> dict[str, int]:
    counts = Counter(s.frame_label for s in samples)
    out = {name: counts.get(label, 0) for label, name in FRAME_LABEL_NAMES.items()}
    out[UNLABELLED] = counts.get(None, 0)
    return out


# --------------------------------------------------------------------------- frame selection


def parse_frames(text: str) -> frozenset[int | None]:
    """Parse ``--frames`` into the set of selected JNU-IFM frame labels (``None`` = unlabelled).

    ``"ps+fh"`` -> ``{6}``; ``"all"`` -> every frame including unlabelled ones; ``"4,5,6"`` or
    ``"ps-only,fh-only"`` -> those labels. Raises :class:`ConfigError` naming ``--frames``.
    """
    raw = str(text).strip().lower()
    if raw == "all":
        return frozenset([*FRAME_LABEL_NAMES, None])
    by_name = {name: label for label, name in FRAME_LABEL_NAMES.items()}
    chosen: set[int | None] = set()
    for item in (part.strip() for part in raw.split(",")):
        if item in by_name:
            chosen.add(by_name[item])
        elif item.isdigit() and int(item) in FRAME_LABEL_NAMES:
            chosen.add(int(item))
        else:
            raise ConfigError(f"--frames {text!r}: {item!r} is not a frame label; use {_FRAMES_HELP}")
    return frozenset(chosen)


# --------------------------------------------------------------------------- indexing


def index_jnu_ifm(root: str | Path, *, frames: str = "ps+fh") -> DatasetIndex:
    """Index a JNU-IFM dataset in either layout (see the module docstring).

    Checks up front that every selected frame has its image and mask file; pixel values are
    checked when a sample is loaded. Raises :class:`DataError` for a missing folder or
    ``framelabel.csv``, a missing column, bad labels, missing files or an empty selection of
    files, and :class:`ConfigError` for a bad ``frames`` text.
    """
    selection = parse_frames(frames)
    root = _existing_dir(root, "JNU-IFM dataset")
    if (root / "image").is_dir():
        folders = [root]
    else:
        folders = sorted(d for d in root.iterdir() if d.is_dir() and (d / "image").is_dir())
        if not folders:
            raise DataError(
                f"{root}: no JNU-IFM data found; expected per-video folders "
                "(<video>/image/*.png, <video>/mask/*_mask.png, <video>/framelabel.csv) or the flattened "
                "layout (image/, mask/ and framelabel.csv with a video_name column at the root)"
            )
    all_samples: list[Sample] = []
    missing_rows = 0
    notes: list[str] = []
    for folder in folders:
        found, missing, note = _index_jnu_folder(folder, selection)
        all_samples.extend(found)
        missing_rows += missing
        if note:
            notes.append(note)
    if not all_samples:
        raise DataError(f"{root}: no JNU-IFM frames found (no .png files in image/ folders)")
    all_samples.sort(key=lambda s: (s.group, _natural_key(s.id)))
    selected = tuple(s for s in all_samples if s.frame_label in selection)
    return DatasetIndex(
        format=JNU_IFM,
        root=root,
        samples=selected,
        all_samples=tuple(all_samples),
        frames=_normalise_frames(frames),
        rows_without_image=missing_rows,
        notes=tuple(notes),
    )


def _normalise_frames(text: str) -> str:
    return str(text).strip().lower().replace(" ", "")


def _index_jnu_folder(folder: Path, selection: frozenset[int | None]) -> tuple[list[Sample], int, str | None]:
    csv_path = folder / "framelabel.csv"
    if not csv_path.is_file():
        raise DataError(
            f"{folder}: no framelabel.csv; a JNU-IFM video folder (or the root of the flattened layout) "
            "needs one with columns frame_id, frame_label"
        )
    rows, has_video = _read_framelabel(csv_path)
    # Without a video_name column the folder is one video and its name is the video name.
    default_video = None if has_video else folder.name
    image_dir, mask_dir = folder / "image", folder / "mask"
    images: dict[tuple[str, object], Path] = {}
    for path in image_dir.iterdir():
        if path.suffix.lower() != ".png" or not path.is_file():
            continue
        video, frame = _split_image_stem(path.stem, default_video)
        images[(video, _frame_key(frame))] = path
    mask_names = {p.name for p in mask_dir.iterdir()} if mask_dir.is_dir() else set()

    labels: dict[tuple[str, object], tuple[int, int]] = {}  # key -> (label, csv line)
    missing_selected: list[str] = []
    missing_other = 0
    for line, frame_id, label, video_name in rows:
        video, frame = _split_frame_id(frame_id, video_name or default_video)
        key = (video, _frame_key(frame))
        if key in labels and labels[key][0] != label:
            raise DataError(
                f"{csv_path}: frame {frame_id!r} is listed twice with different labels "
                f"(line {labels[key][1]}: {labels[key][0]}, line {line}: {label})"
            )
        labels[key] = (label, line)
        if key not in images:
            if label in selection:
                missing_selected.append(f"{frame_id!r} (line {line})")
            else:
                missing_other += 1
    if missing_selected:
        raise DataError(
            f"{csv_path}: {len(missing_selected)} selected frame(s) have no image in {image_dir}: "
            f"{', '.join(missing_selected[:3])}{' ...' if len(missing_selected) > 3 else ''}"
        )

    samples: list[Sample] = []
    missing_masks: list[str] = []
    for key, path in images.items():
        video, label = key[0], labels.get(key, (None, 0))[0]
        mask_path = mask_dir / f"{path.stem}_mask.png"
        if label in selection and mask_path.name not in mask_names:
            missing_masks.append(mask_path.name)
        sample_id = path.stem if path.stem.startswith(video) else f"{video}_{path.stem}"
        samples.append(Sample(sample_id, path, mask_path, video, JNU_IFM, label))
    if missing_masks:
        raise DataError(
            f"{mask_dir}: {len(missing_masks)} image(s) in {image_dir} have no mask; expected "
            f"{', '.join(sorted(missing_masks)[:3])}{' ...' if len(missing_masks) > 3 else ''}"
        )
    unlabelled = sum(1 for s in samples if s.frame_label is None)
    note = None
    if unlabelled:
        note = f"{csv_path}: {unlabelled} image(s) have no row (counted as '{UNLABELLED}', used only with --frames all)"
        log.warning(note)
    return samples, missing_other, note


def _read_framelabel(path: Path) -> tuple[list[tuple[int, str, int, str | None]], bool]:
    """Rows of ``framelabel.csv`` as ``(line, frame_id, frame_label, video_name or None)``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            body = list(enumerate(reader, start=2))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc})") from None
    if header is None:
        raise DataError(f"{path}: empty file; expected a header with frame_id, frame_label")
    columns = [c.strip().lower() for c in header]
    for required in ("frame_id", "frame_label"):
        if required not in columns:
            raise DataError(
                f"{path}: missing column {required!r}; found {[c.strip() for c in header]} "
                "(expected frame_id, frame_label and, in the flattened layout, video_name)"
            )
    i_id, i_label = columns.index("frame_id"), columns.index("frame_label")
    i_video = columns.index("video_name") if "video_name" in columns else None
    rows = []
    for line, row in body:
        if not any(cell.strip() for cell in row):
            continue
        try:
            frame_id = row[i_id].strip()
            label_text = row[i_label].strip()
            video = row[i_video].strip() if i_video is not None else None
        except IndexError:
            raise DataError(f"{path}: line {line} has {len(row)} field(s), the header has {len(columns)}") from None
        try:
            label = float(label_text)
        except ValueError:
            label = float("nan")
        if label not in FRAME_LABEL_NAMES:
            raise DataError(
                f"{path}: line {line}: frame_label {label_text!r} is not one of 3 (none), 4 (PS only), "
                "5 (FH only), 6 (PS + FH)"
            )
        if not frame_id:
            raise DataError(f"{path}: line {line}: empty frame_id")
        if i_video is not None and not video:
            raise DataError(f"{path}: line {line}: empty video_name")
        rows.append((line, frame_id, int(label), video))
    if not rows:
        raise DataError(f"{path}: no rows below the header; expected one row per frame")
    return rows, i_video is not None


def _split_image_stem(stem: str, video: str | None) -> tuple[str, str]:
    if video is not None:
        return video, stem[len(video) + 1 :] if stem.startswith(video + "_") else stem
    head, sep, tail = stem.rpartition("_")
    return (head, tail) if sep else ("", stem)


def _split_frame_id(frame_id: str, video: str | None) -> tuple[str, str]:
    frame_id = re.sub(r"\.png$", "", frame_id, flags=re.IGNORECASE)
    head, sep, tail = frame_id.rpartition("_")
    if video is None:
        return (head, tail) if sep else ("", frame_id)
    if frame_id.startswith(video + "_"):
        return video, frame_id[len(video) + 1 :]
    return video, tail if sep and head == video else frame_id


def _frame_key(frame: str) -> object:
    # Bare numbers in the csv must match zero-padded numbers in file names.
    return int(frame) if frame.isdigit() else frame


def _natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def index_psfhs(root: str | Path) -> DatasetIndex:
    """Index a PSFHS / FH-PS-AOP dataset: ``image_mha/*.mha`` with labels of the same name in ``label_mha/``.

    ``root`` may also be the folder just above (one level of nesting, as in some archives).
    Raises :class:`DataError` if the folders are missing, hold no ``.mha`` file, or an image has
    no label file.
    """
    root = _existing_dir(root, "PSFHS dataset")
    base = root
    if not (root / "image_mha").is_dir():
        nested = [d for d in sorted(root.iterdir()) if d.is_dir() and (d / "image_mha").is_dir()]
        if len(nested) != 1:
            raise DataError(
                f"{root}: no image_mha/ folder; a PSFHS / FH-PS-AOP dataset has image_mha/*.mha and label_mha/*.mha"
            )
        base = nested[0]
        log.info("using %s (image_mha/ found one level down)", base)
    image_dir, label_dir = base / "image_mha", base / "label_mha"
    if not label_dir.is_dir():
        raise DataError(f"{base}: no label_mha/ folder next to image_mha/; it holds the 0/1/2 label images")
    images = sorted((p for p in image_dir.iterdir() if p.suffix.lower() == ".mha"), key=lambda p: _natural_key(p.name))
    if not images:
        raise DataError(f"{image_dir}: no .mha images; expected image_mha/*.mha")
    samples, missing = [], []
    for path in images:
        label = label_dir / path.name
        if not label.is_file():
            missing.append(path.name)
            continue
        samples.append(Sample(path.stem, path, label, path.stem, PSFHS))
    if missing:
        raise DataError(
            f"{label_dir}: {len(missing)} image(s) have no label of the same name: "
            f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
        )
    return DatasetIndex(format=PSFHS, root=base, samples=tuple(samples), all_samples=tuple(samples))


def _existing_dir(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: {what} folder does not exist")
    if not path.is_dir():
        raise DataError(f"{path}: {what} must be a folder, got a file")
    return path


# --------------------------------------------------------------------------- loading


def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Read one sample: image float32 ``[H, W]`` in ``[0, 1]``, mask uint8 ``[H, W]`` in {0, 1, 2}.

    Raises :class:`DataError` naming the file for an unreadable or corrupt file, label values
    outside the format's set (JNU-IFM {0, 7, 8}, PSFHS {0, 1, 2}) or an image/mask size mismatch.
    """
    if sample.format == JNU_IFM:
        image = _to_gray(_read_png(sample.image_path, "image"), sample.image_path)
        mask = _map_labels(_png_mask(sample.mask_path), JNU_MASK_VALUES, sample.mask_path, "JNU-IFM", "7 PS, 8 FH")
    elif sample.format == PSFHS:
        image = _mha_image(sample.image_path)
        mask = _map_labels(_mha_mask(sample.mask_path), PSFHS_MASK_VALUES, sample.mask_path, "PSFHS", "1 PS, 2 FH")
    else:
        raise DataError(f"{sample.image_path}: unknown dataset format {sample.format!r}")
    if image.shape != mask.shape:
        raise DataError(
            f"{sample.mask_path}: mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image "
            f"{sample.image_path.name} is {image.shape[0]}x{image.shape[1]}"
        )
    return image, mask


def _read_png(path: Path, what: str) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)  # imdecode also copes with non-ASCII paths
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if arr is None:
        raise DataError(f"{path}: cannot decode the {what}; the file is empty, corrupt or not an image")
    return arr


def _to_gray(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[:, :, :3]
        arr = arr.mean(axis=2) if arr.shape[2] != 1 else arr[:, :, 0]
    if arr.ndim != 2:
        raise DataError(f"{path}: expected a 2-D grayscale or colour image, got an array of shape {arr.shape}")
    return _to_unit_range(arr, path)


def _to_unit_range(arr: np.ndarray, path: Path) -> np.ndarray:
    """Scale to [0, 1]: 8-bit range when the values fit it, else the type's range (floats: min-max)."""
    arr = np.asarray(arr)
    if arr.size == 0:
        raise DataError(f"{path}: the image is empty")
    if np.issubdtype(arr.dtype, np.integer):
        top = 255.0 if arr.max() <= 255 else float(np.iinfo(arr.dtype).max)
        return (arr.astype(np.float32) / top).clip(0.0, 1.0)
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: the image holds NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0.0 and hi <= 1.0:
        return arr
    if lo >= 0.0 and hi <= 255.0:
        return arr / 255.0
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)


def _png_mask(path: Path) -> np.ndarray:
    arr = _read_png(path, "mask")
    if arr.ndim == 3:
        if arr.shape[2] >= 3 and not (
            np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 0], arr[:, :, 2])
        ):
            raise DataError(
                f"{path}: the mask has colour pixels; JNU-IFM labels are single-channel PNGs with 7 = PS and "
                "8 = FH (mask_enhance/ holds colour renderings, not labels)"
            )
        arr = arr[:, :, 0]
    return arr


def _map_labels(arr: np.ndarray, mapping: dict[int, int], path: Path, fmt: str, legend: str) -> np.ndarray:
    values = np.unique(arr)
    allowed = np.array(sorted(mapping), dtype=np.float64)
    bad = values[~np.isin(values.astype(np.float64), allowed)]
    if bad.size:
        shown = ", ".join(_fmt_value(v) for v in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise DataError(
            f"{path}: unexpected label value(s) {shown}; {fmt} masks use only {sorted(mapping)} "
            f"(0 background, {legend})"
        )
    lut = np.zeros(int(allowed.max()) + 1, dtype=np.uint8)
    for value, cls in mapping.items():
        lut[value] = cls
    return lut[arr.astype(np.intp)]


def _fmt_value(v: object) -> str:
    f = float(v)  # type: ignore[arg-type]
    return str(int(f)) if f.is_integer() else repr(f)


def _read_mha(path: Path, what: str):
    import SimpleITK as sitk

    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        # SimpleITK's message is a C++ trace; keep its "ERROR:" line without the object address.
        errors = [ln.split("ERROR:", 1)[1] for ln in str(exc).splitlines() if "ERROR:" in ln]
        detail = re.sub(r"^\s*\w+\(0x[0-9a-f]+\):\s*", "", errors[0]).strip() if errors else str(exc).strip()
        raise DataError(
            f"{path}: cannot read the {what}: the file is corrupt or not a MetaImage (.mha) (ITK: {detail})"
        ) from None


def _mha_image(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    img = _read_mha(path, "image")
    arr = sitk.GetArrayFromImage(img)
    if img.GetNumberOfComponentsPerPixel() > 1:  # vector image: (..., H, W, C)
        arr = arr.mean(axis=-1)
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4):  # channel-first stack: C x H x W
        arr = arr[:3].mean(axis=0) if arr.shape[0] > 1 else arr[0]
    if arr.ndim != 2:
        raise DataError(
            f"{path}: expected a 2-D image, 3 x H x W or an H x W vector image, got an array of shape {arr.shape}"
        )
    return _to_unit_range(arr, path)


def _mha_mask(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    img = _read_mha(path, "label")
    if img.GetNumberOfComponentsPerPixel() > 1:
        raise DataError(f"{path}: the label image has {img.GetNumberOfComponentsPerPixel()} components; expected one")
    arr = sitk.GetArrayFromImage(img)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise DataError(f"{path}: expected a 2-D label image, got an array of shape {arr.shape}")
    return arr
