"""Fine-tuning a model in place (pruned or DSConv-quantized), and the labelled batches scorers need.

``segmentation.train`` rebuilds its model from the config, which cannot express a pruned
network; this loop trains the model it is given with the same loss, optimiser and schedule.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from common import CompressionError, resolve_device
from compress._importance import Batch

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

    Same recipe as ``segmentation.train``: DiceCE + deep-supervision Dice, Adam(W), cosine decay
    from ``cfg.lr`` to ``cfg.min_lr``, seeded data order. Returns one dict per epoch (loss, val
    Dice). The model ends in eval mode on the CPU.
    """
    from segmentation import DeepSupervisionLoss, load_split, seed_everything, validation_dice

    epochs = cfg.epochs if epochs is None else epochs
    if epochs < 1:
        return []
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    train_ds = load_split(cfg.data, "train", size=cfg.size, seed=cfg.seed, frames=cfg.frames)
    val_ds = load_split(cfg.data, "val", size=cfg.size, seed=cfg.seed, frames=cfg.frames)
    config = getattr(model, "config", None)
    if config is not None and (config.in_channels, config.num_classes) != (train_ds.in_channels, train_ds.num_classes):
        raise CompressionError(
            f"fine-tuning data {cfg.data}: {train_ds.in_channels} channel(s) / {train_ds.num_classes} classes, but the "
            f"model takes {config.in_channels} / predicts {config.num_classes}"
        )
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        train_ds,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(train_ds) > cfg.batch_size,
        num_workers=cfg.workers,
        generator=gen,
    )
    val_loader = DataLoader(val_ds, batch_size=max(cfg.batch_size, 16), shuffle=False, num_workers=cfg.workers)
    steps = len(loader) if cfg.steps_per_epoch is None else min(cfg.steps_per_epoch, len(loader))
    model.to(device)
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, epochs * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda i: (cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(i, total) / total))) / cfg.lr,
    )
    loss_fn = DeepSupervisionLoss(cfg.aux_weight)
    logs = []
    for epoch in range(epochs):
        gen.manual_seed(cfg.seed * 1000 + epoch)
        model.train()
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        bar = tqdm(total=steps, desc=f"fine-tune {epoch + 1}/{epochs}", disable=not progress, leave=False, unit="step")
        for step, batch in enumerate(loader):
            if step >= steps:
                break
            x, y = batch["image"].to(device), batch["mask"].to(device)
            logits, aux = model.forward_with_aux(x)
            loss = loss_fn(logits, aux, y)
            if not torch.isfinite(loss):
                raise CompressionError(
                    f"fine-tuning diverged: loss {loss.item()} at epoch {epoch + 1}, step {step + 1}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += x.shape[0]
            loss_sum += loss.item() * x.shape[0]
            bar.update(1)
        bar.close()
        dice = validation_dice(model, val_loader, device, max_batches=cfg.val_batches)
        logs.append(
            {
                "epoch": epoch + 1,
                "loss": loss_sum / max(seen, 1),
                "val_dice": dice["mean"],
                "val_dice_ps": dice["PS"],
                "val_dice_fh": dice["FH"],
                "seconds": time.perf_counter() - t0,
            }
        )
        log.info("fine-tune epoch %d/%d: loss %.4f, val Dice %.4f", epoch + 1, epochs, logs[-1]["loss"], dice["mean"])
    model.cpu().eval()
    return logs
