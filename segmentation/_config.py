"""What defines a training run (:class:`TrainConfig`), importable without PyTorch (the CLI reads its defaults)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rtseg_core import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved in the checkpoint's ``meta``)."""

    data: str = "synthetic"
    size: int = 256
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # "adam" | "adamw"
    aux_weight: float = 1.0
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    steps_per_epoch: int | None = None  # cap for proxy training in a search; None = the whole split
    val_batches: int | None = None  # cap on validation batches per epoch; None = whole split
    frames: str = "ps+fh"

    def __post_init__(self) -> None:
        for name in ("size", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(self, name)}")
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"--optimizer: must be adam or adamw, got {self.optimizer!r}")
        if not self.lr > 0:
            raise ConfigError(f"--lr: must be > 0, got {self.lr}")


def load_train_config(meta: dict[str, Any] | None, *, source: str = "checkpoint") -> TrainConfig:
    """The :class:`TrainConfig` a checkpoint was trained with (its ``meta["train"]``), parsed once.

    Missing fields take TrainConfig's defaults (a pruned checkpoint records only data, size and
    seed); a field this version does not know is a ConfigError naming ``source``.
    """
    fields = (meta or {}).get("train") or {}
    if not isinstance(fields, dict):
        raise ConfigError(f"{source}: meta.train must be a mapping, got {type(fields).__name__}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"{source}: meta.train has unknown field(s) {unknown}; written by another version?")
    return TrainConfig(**fields)
