"""The records a training leaves in its folder: ``metrics.json``, ``validation.json``, ``supernet.json``.

``metrics.json`` has one schema wherever it is written (a trial folder, ``train --out``, a validated
candidate): the trainer's history (:data:`TRAINING_METRICS_KEYS`). A trial's validation metrics go to
``validation.json``, never into ``metrics.json``. A supernet's training record, beside its
``supernet.pt``, has its own name, ``supernet.json`` (:data:`SUPERNET_TRAINING_KEYS`): a folder
written before it had that name holds it as ``metrics.json`` and still reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rtseg_core._errors import ConfigError
from rtseg_core._fields import Fields
from rtseg_core._io import atomic_write_json, read_json_object

METRICS_JSON = "metrics.json"
VALIDATION_JSON = "validation.json"
SUPERNET_JSON = "supernet.json"

# The keys of metrics.json (written by segmentation.train): the TrainConfig as a dict, one entry per
# epoch (epoch, loss, val_dice, val_dice_ps, val_dice_fh, lr, seconds, images_per_s, loss_fn: "task" or
# "task+kd0.5-T2" when distilled from a teacher), the wall time,
# the last validation Dice, whether an on_epoch_end callback stopped training, and the device.
TRAINING_METRICS_KEYS = ("train", "epochs", "wall_s", "val_dice", "stopped_early", "device")
# The keys of supernet.json: its TrainConfig and sandwich settings as dicts, the space, the largest and
# smallest members, one entry per epoch (epoch, losses, val Dice of both, lr, seconds, subnets_per_s),
# the wall seconds of the run that wrote it, and the device.
SUPERNET_TRAINING_KEYS = ("train", "sandwich", "space", "largest", "smallest", "epochs", "wall_s_this_run", "device")


def write_training_metrics(
    folder: str | os.PathLike,
    *,
    train: Mapping[str, Any],
    epochs: Iterable[Mapping[str, Any]],
    wall_s: float,
    val_dice: float | None,
    stopped_early: bool,
    device: str,
) -> Path:
    """``folder/metrics.json``: the one schema of that file (:data:`TRAINING_METRICS_KEYS`)."""
    return atomic_write_json(
        Path(folder) / METRICS_JSON,
        {"train": dict(train), "epochs": [dict(e) for e in epochs], "wall_s": wall_s, "val_dice": val_dice,
         "stopped_early": stopped_early, "device": device},
    )  # fmt: skip


def read_training_metrics(folder: str | os.PathLike) -> dict[str, Any]:
    """``folder/metrics.json``; a file without the trainer's keys is a :class:`ConfigError` naming it."""
    path = Path(folder) / METRICS_JSON
    data = read_json_object(path, "of training metrics")
    missing = [k for k in TRAINING_METRICS_KEYS if k not in data]
    if missing:
        raise ConfigError(f"{path}: not a training-metrics file (missing {missing}); it is written by train")
    return data


def write_validation(folder: str | os.PathLike, *, split: str, size: int, summary: Any) -> Path:
    """``folder/validation.json``: the evaluation of a trial's checkpoint (``split``, ``size``, ``summary``)."""
    return atomic_write_json(Path(folder) / VALIDATION_JSON, {"split": split, "size": size, "summary": summary})


def read_validation(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / VALIDATION_JSON
    data = read_json_object(path, "of validation metrics")
    missing = [k for k in ("split", "size", "summary") if k not in data]
    if missing:
        raise ConfigError(f"{path}: not a validation file (missing {missing})")
    return data


def write_supernet_training(folder: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """``folder/supernet.json``: a supernet's training record (:data:`SUPERNET_TRAINING_KEYS`)."""
    missing = [k for k in SUPERNET_TRAINING_KEYS if k not in record]
    if missing:
        raise ValueError(f"a supernet training record needs {missing}")
    return atomic_write_json(Path(folder) / SUPERNET_JSON, dict(record))


def read_supernet_training(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The training record beside a ``supernet.pt``, or None when the folder has none.

    ``supernet.json``; a folder written before the record had its own name holds it as
    ``metrics.json`` (read when it has the supernet's keys; a trainer's ``metrics.json`` there is
    refused, naming it). Each epoch's ``seconds`` and ``wall_s_this_run`` are checked numbers.
    """
    path = Path(folder) / SUPERNET_JSON
    if not path.is_file():
        old = Path(folder) / METRICS_JSON
        if not old.is_file():
            return None
        path = old
    data = read_json_object(path, "of a supernet's training")
    missing = [k for k in SUPERNET_TRAINING_KEYS if k not in data]
    if missing:
        raise ConfigError(
            f"{path}: not a supernet's training record (missing {missing}); it is written by `supernet train`"
        )
    f = Fields(data, str(path))
    f.number("wall_s_this_run", minimum=0.0)
    for i, epoch in enumerate(f.list("epochs")):
        e = Fields(epoch, str(path), f"epochs[{i}].")
        e.number("seconds", minimum=0.0)
        e.number("cpu_s", minimum=0.0, optional=True)  # absent from records written before it
    return data
