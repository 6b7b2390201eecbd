"""What defines a training run (:class:`TrainConfig`), importable without PyTorch (the CLI reads its defaults)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any

from rtseg_core import ConfigError, is_finite_number

# The smallest image side the data sets load (a phantom needs room for its two structures). Here, not in
# the data module, so that a training config refuses a smaller size when it is built, before any run.
MIN_SIZE = 16


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
    seed: int = 0  # weights' initialization and the order of the batches
    data_seed: int | None = None  # the split, the synthetic images and their augmentation; None: ``seed``
    device: str = "auto"
    workers: int = 0
    steps_per_epoch: int | None = None  # cap for proxy training in a search; None = the whole split
    val_batches: int | None = None  # cap on validation batches per epoch; None = whole split
    frames: str = "ps+fh"

    def __post_init__(self) -> None:
        # The CLI's argparse types check the same bounds; these hold for API callers too, and come
        # before torch sees the values (its optimizer errors name no option).
        def option(name: str) -> str:
            return "--" + name.replace("_", "-")

        for name in ("data", "device", "frames", "optimizer"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{option(name)}: must be text, got {type(getattr(self, name)).__name__}")
        bounds = (("size", MIN_SIZE, 4096), ("epochs", 1, 10**6), ("batch_size", 1, 4096), ("workers", 0, 256))
        for name, low, high in bounds:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"{option(name)}: must be an integer from {low} to {high}, got {value!r}")
        if self.data_seed is not None and (
            not isinstance(self.data_seed, int) or isinstance(self.data_seed, bool) or self.data_seed < 0
        ):
            raise ConfigError(f"data_seed: must be an integer >= 0 (or unset), got {self.data_seed!r}")
        for name in ("steps_per_epoch", "val_batches"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{option(name)}: must be an integer >= 1 (or unset), got {value!r}")
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"--optimizer: must be adam or adamw, got {self.optimizer!r}")
        for name, low, high, low_open in (
            ("lr", 0.0, math.inf, True),  # no upper bound here: a test diverges on purpose
            ("min_lr", 0.0, math.inf, False),
            ("weight_decay", 0.0, 10.0, False),
            ("aux_weight", 0.0, 1000.0, False),
        ):
            value = getattr(self, name)
            if not is_finite_number(value) or not (low < value if low_open else low <= value) or not value <= high:
                span = f"{'(' if low_open else '['}{low:g}, {high:g}]"
                raise ConfigError(f"{option(name)}: must be a finite number in {span}, got {value!r}")


@dataclass(frozen=True)
class Distillation:
    """Knowledge distillation from a teacher: ``(1 - weight) * task + weight * T^2 * KL(teacher || student)``.

    The KL term compares the class distributions softened by ``temperature`` (T) pixel by pixel:
    ``KL(softmax(teacher / T) || softmax(student / T))`` summed over classes, averaged over pixels
    and images; the ``T^2`` factor keeps its gradients on the task loss's scale (Hinton et al.).
    ``aux``: the same term on every deep-supervision map too (averaged over the maps, added to the
    main one). The task loss is ``segmentation.DeepSupervisionLoss``.

    Defaults (weight 0.2, T 2): the least harmful of those measured in a pilot (paper 96 px trained
    20 epochs on synthetic:400, pruned to 50 % of its MACs, 6 fine-tune epochs, one seed): test Dice
    0.741 with weight 0.2, 0.535 with 0.5 (T 2), 0.797 without distillation; with 12 epochs 0.896
    with weight 0.2, 0.899 without. The anchors were NNI's 0.9 and a temperature of 2-4. Fine-tuning
    therefore distils only when asked (``prune --kd``).
    """

    weight: float = 0.2
    temperature: float = 2.0
    aux: bool = False

    def __post_init__(self) -> None:
        if not is_finite_number(self.weight) or not 0.0 <= self.weight <= 1.0:
            raise ConfigError(f"--kd-weight: must be a number in [0, 1], got {self.weight!r}")
        if not is_finite_number(self.temperature) or not 0.0 < self.temperature <= 100.0:
            raise ConfigError(f"--kd-temperature: must be a number in (0, 100], got {self.temperature!r}")
        if not isinstance(self.aux, bool):
            raise ConfigError(f"Distillation.aux: must be true or false, got {self.aux!r}")

    def label(self) -> str:
        """A short name for recipes and logs, e.g. ``kd0.5-T2`` or ``kd0.9-T4-aux``."""
        return f"kd{self.weight:g}-T{self.temperature:g}" + ("-aux" if self.aux else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "distillation") -> Distillation:
        """Read one back (prune.json, a checkpoint's meta); an unknown or missing field is a ConfigError."""
        if not isinstance(data, dict) or set(data) != {"weight", "temperature", "aux"}:
            raise ConfigError(f"{source}: a distillation record needs exactly weight, temperature, aux; got {data!r}")
        return cls(**data)


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
