"""Fine-tuning a model in place (pruned or DSConv-quantized), and the labelled batches scorers need.

``segmentation.train`` rebuilds its model from the config, which cannot express a pruned
network; this loop trains the model it is given with the same loss, optimiser and schedule,
distilled from a teacher (the uncompressed parent) when one is given.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from torch import nn
from torch.utils.data import DataLoader

from compress._importance import Batch
from rtseg_core import CompressionError, CompressionOptionError, is_finite_number
from segmentation import Distillation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneSpec:
    """How to fine-tune after pruning or for DSConv QAT; data, size and seed come from the checkpoint.

    ``epochs`` of the final fine-tune (0 = none). Defaults: 0.3 x the training learning rate of
    ``segmentation.TrainConfig`` (measured on paper at 256 px pruned to 45% of its MACs: Dice came
    back to within 0.4 points in 6 epochs at 3e-4), cosine decay to ``min_lr``.

    ``distill``: learn from the uncompressed parent as teacher (``segmentation.Distillation``) wherever
    the caller has one (prune, DSConv QAT); None (the default): the task loss only. Chosen by a pilot
    (paper 96 px trained 20 epochs on synthetic:400, pruned to 50 % MACs, 6 fine-tune epochs, one
    seed): test Dice 0.797 with the task loss, 0.741 distilled with weight 0.2, 0.535 with 0.5 (T 2).
    ``budget``: the fine-tune epochs as a fraction of the parent's own training epochs (its checkpoint's train config),
    resolved by :meth:`resolve_epochs`; exclusive with ``epochs``.
    """

    epochs: int = 0
    lr: float = 3e-4
    min_lr: float = 1e-6
    batch_size: int = 8
    weight_decay: float = 1e-4
    steps_per_epoch: int | None = None
    val_batches: int | None = None
    device: str = "auto"
    distill: Distillation | None = None
    budget: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.distill, dict):  # read back from a record
            object.__setattr__(self, "distill", Distillation.from_dict(self.distill, source="FinetuneSpec.distill"))
        if self.distill is not None and not isinstance(self.distill, Distillation):
            raise CompressionOptionError(f"FinetuneSpec.distill: must be a Distillation or None, got {self.distill!r}")
        if self.budget is not None:
            if not is_finite_number(self.budget) or not 0 < self.budget <= 10:
                raise CompressionOptionError(
                    "--finetune-budget: must be a fraction of the parent's training epochs in (0, 10], "
                    f"got {self.budget!r}"
                )
            if self.epochs:
                raise CompressionOptionError(
                    f"--finetune-budget {self.budget:g} and --finetune-epochs {self.epochs}: give one of them"
                )
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise CompressionError(f"FinetuneSpec.epochs: must be an integer >= 0, got {self.epochs!r}")
        if not self.lr > 0 or not 0 < self.min_lr <= self.lr:
            raise CompressionError(f"FinetuneSpec: need 0 < min_lr <= lr, got lr={self.lr!r}, min_lr={self.min_lr!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise CompressionError(f"FinetuneSpec.batch_size: must be an integer >= 1, got {self.batch_size!r}")

    def resolve_epochs(self, parent_epochs: int) -> FinetuneSpec:
        """This spec with ``budget`` turned into epochs: ``round(budget * parent_epochs)``, at least 1."""
        if self.budget is None:
            return self
        if not isinstance(parent_epochs, int) or parent_epochs < 1:
            raise CompressionError(
                f"--finetune-budget: the parent's training epochs must be >= 1, got {parent_epochs!r}"
            )
        epochs = max(1, round(self.budget * parent_epochs))
        return dataclasses.replace(self, epochs=epochs, budget=None)

    def loss(self, teacher: bool) -> str:
        """The loss this fine-tune uses with (``teacher=True``) or without a teacher: ``task`` or ``task+kd...``."""
        from segmentation import loss_label

        return loss_label(self.distill if teacher else None)

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


def split_budget(total: int, steps: int) -> tuple[int, int]:
    """``(per_step, final)``: ``total`` fine-tune epochs spread over ``steps`` pruning steps.

    The final fine-tune keeps at least half of the budget (the last model is the one shipped, and
    the last step removes as much as each earlier one); the other half is shared equally by the
    ``steps - 1`` fine-tunes between steps, at least one epoch each, so they add up to ``total``.
    Measured in a pilot (paper 96 px, 20 epochs, synthetic:400, to 50 % MACs in 3 steps with 6
    epochs, one seed): test Dice 0.722 with 1 + 1 + 4 epochs, 0.474 with an equal 2 + 2 + 2.
    Fewer epochs than steps is an error (a step without fine-tuning is not gradual).
    """
    if steps < 1 or total < 0:
        raise CompressionError(f"split_budget: need steps >= 1 and total >= 0, got steps={steps}, total={total}")
    if steps == 1 or total == 0:
        return 0, total
    if total < steps:
        raise CompressionOptionError(
            f"--steps {steps}: gradual pruning needs at least one fine-tune epoch per step, got a total of {total} "
            "(raise --finetune-epochs/--finetune-budget or lower --steps)"
        )
    per_step = max(1, (total // 2) // (steps - 1))
    return per_step, total - per_step * (steps - 1)


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


def finetune(
    model: nn.Module,
    cfg,
    *,
    progress: bool = True,
    epochs: int | None = None,
    teacher: nn.Module | None = None,
    distill: Distillation | None = None,
) -> list[dict]:
    """Train ``model`` in place for ``epochs`` (default ``cfg.epochs``) with a ``segmentation.TrainConfig``.

    The one training loop of the suite (``segmentation.train`` with ``model=``): DiceCE +
    deep-supervision Dice, Adam(W), cosine decay from ``cfg.lr`` to ``cfg.min_lr``, seeded data
    order. With ``teacher`` the loss mixes in distillation from it (eval mode, no gradients; e.g. a
    copy of the model taken before it was compressed) as ``distill`` says (None: the defaults of
    ``segmentation.Distillation``); ``distill`` without a teacher is an error.
    Returns one dict per epoch (loss, val Dice, ``loss_fn``: the loss used). The model and the
    teacher end in eval mode on the CPU.
    """
    from segmentation import train

    epochs = cfg.epochs if epochs is None else epochs
    if epochs < 1:
        return []
    config = getattr(model, "config", None)
    if config is None:
        raise CompressionError(f"fine-tuning needs an RTSeg-Net family model, got {type(model).__name__}")
    if teacher is not None and distill is None:
        distill = Distillation()
    result = train(
        config, dataclasses.replace(cfg, epochs=epochs), None, model=model, progress=progress, teacher=teacher,
        distill=distill,
    )  # fmt: skip
    model.cpu().eval()
    if teacher is not None:
        teacher.cpu().eval()
    return [dataclasses.asdict(e) for e in result.epochs]
