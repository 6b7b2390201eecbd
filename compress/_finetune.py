"""Fine-tuning a model in place (pruned or DSConv-quantized), and the labelled batches scorers need.

``segmentation.train`` rebuilds its model from the config, which cannot express a pruned
network; this loop trains the model it is given with the same loss, optimiser and schedule.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from torch import nn
from torch.utils.data import DataLoader

from compress._importance import Batch
from rtseg_core import CompressionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneSpec:
    """How to fine-tune after pruning or for DSConv QAT; data, size and seed come from the checkpoint.

    ``epochs`` of the final fine-tune (0 = none). Defaults: 0.3 x the training learning rate of
    ``segmentation.TrainConfig`` (measured on paper at 256 px pruned to 45% of its MACs: Dice came
    back to within 0.4 points in 6 epochs at 3e-4), cosine decay to ``min_lr``.
    """

    epochs: int = 0
    lr: float = 3e-4
    min_lr: float = 1e-6
    batch_size: int = 8
    weight_decay: float = 1e-4
    steps_per_epoch: int | None = None
    val_batches: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise CompressionError(f"FinetuneSpec.epochs: must be an integer >= 0, got {self.epochs!r}")
        if not self.lr > 0 or not 0 < self.min_lr <= self.lr:
            raise CompressionError(f"FinetuneSpec: need 0 < min_lr <= lr, got lr={self.lr!r}, min_lr={self.min_lr!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise CompressionError(f"FinetuneSpec.batch_size: must be an integer >= 1, got {self.batch_size!r}")

    def train_config(self, *, data: str, size: int, seed: int, epochs: int | None = None):
        """The ``segmentation.TrainConfig`` this fine-tune runs with."""
        from segmentation import TrainConfig

        return TrainConfig(
            data=data,
            size=size,
            epochs=max(1, self.epochs if epochs is None else epochs),
            batch_size=self.batch_size,
            lr=self.lr,
            min_lr=self.min_lr,
            weight_decay=self.weight_decay,
            seed=seed,
            device=self.device,
            steps_per_epoch=self.steps_per_epoch,
            val_batches=self.val_batches,
        )


def calibration_batches(data: str, *, size: int, seed: int, count: int, batch_size: int = 4) -> list[Batch]:
    """``count`` labelled batches from the TRAINING split, without augmentation (fixed order)."""
    from segmentation import load_split

    ds = load_split(data, "train", size=size, seed=seed, augment=False)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    out: list[Batch] = []
    for batch in loader:
        out.append((batch["image"], batch["mask"]))
        if len(out) >= count:
            break
    return out


def finetune(model: nn.Module, cfg, *, progress: bool = True, epochs: int | None = None) -> list[dict]:
    """Train ``model`` in place for ``epochs`` (default ``cfg.epochs``) with a ``segmentation.TrainConfig``.

    The one training loop of the suite (``segmentation.train`` with ``model=``): DiceCE +
    deep-supervision Dice, Adam(W), cosine decay from ``cfg.lr`` to ``cfg.min_lr``, seeded data
    order. Returns one dict per epoch (loss, val Dice). The model ends in eval mode on the CPU.
    """
    from segmentation import train

    epochs = cfg.epochs if epochs is None else epochs
    if epochs < 1:
        return []
    config = getattr(model, "config", None)
    if config is None:
        raise CompressionError(f"fine-tuning needs an RTSeg-Net family model, got {type(model).__name__}")
    result = train(config, dataclasses.replace(cfg, epochs=epochs), None, model=model, progress=progress)
    model.cpu().eval()
    return [dataclasses.asdict(e) for e in result.epochs]
