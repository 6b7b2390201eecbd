"""Training loop: seeded, CPU or CUDA (AMP on CUDA), atomic checkpoints every epoch, resumable."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from models import (
    Checkpoint,
    RTSegConfig,
    RTSegNet,
    build_model,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from rtseg_core import ConfigError, OutputError, SuiteError, resolve_device, write_training_metrics
from segmentation._check import check_dataset
from segmentation._config import TrainConfig
from segmentation._data import load_split
from segmentation._losses import DeepSupervisionLoss, Distillation, DistillationLoss, loss_label

log = logging.getLogger(__name__)


class TrainingDiverged(SuiteError):
    """The loss became NaN or infinite."""


class StopTraining(Exception):
    """Raised by an ``on_epoch_end`` callback to end training early (e.g. a hopeless search trial)."""


@dataclass
class EpochLog:
    epoch: int
    loss: float
    val_dice: float
    val_dice_ps: float
    val_dice_fh: float
    lr: float
    seconds: float
    images_per_s: float
    loss_fn: str = "task"  # "task" (DeepSupervisionLoss) or "task+kd0.5-T2" (distilled from a teacher)


@dataclass
class TrainResult:
    out_dir: Path | None
    checkpoint: Path | None
    epochs: list[EpochLog] = field(default_factory=list)
    wall_s: float = 0.0
    stopped_early: bool = False

    @property
    def val_dice(self) -> float:
        return self.epochs[-1].val_dice if self.epochs else float("nan")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_training_memory(arch: RTSegConfig, cfg: TrainConfig, device: torch.device) -> None:
    """Refuse, before data or weights are loaded, a model that cannot train at ``cfg``'s size and batch."""
    limit, where = None, ""
    if device.type == "cuda":
        limit = torch.cuda.get_device_properties(device).total_memory
        where = f"{device} has"
    arch.check_memory(size=cfg.size, batch=cfg.batch_size, training=True, limit_bytes=limit, where=where)


def train(
    arch: RTSegConfig,
    cfg: TrainConfig,
    out_dir: str | Path | None,
    *,
    resume: bool = False,
    progress: bool = True,
    on_epoch_end: Callable[[EpochLog], None] | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    model: RTSegNet | None = None,
    pruning: dict[str, Any] | None = None,
    overwrite: bool = True,
    teacher: torch.nn.Module | None = None,
    distill: Distillation | None = None,
) -> TrainResult:
    """Train ``arch`` with ``cfg``; write ``out_dir/checkpoint.pt`` and ``out_dir/metrics.json``.

    ``overwrite=False`` (the CLI's default) refuses an ``out_dir`` that already holds a checkpoint
    unless ``resume``: a forgotten ``--resume`` must not replace hours of training.

    With ``resume=True`` an existing checkpoint in ``out_dir`` is continued from its next epoch
    (its config must equal ``arch``). ``on_epoch_end`` may raise :class:`StopTraining`.
    ``model`` trains a model that cannot be rebuilt from ``arch`` alone (a pruned one, whose
    ``pruning`` history then goes into the checkpoint) in place instead of a fresh build.
    ``out_dir=None`` writes nothing (fine-tuning inside a larger step).

    ``teacher`` and ``distill`` (both or neither): learn from ``teacher``'s outputs too
    (:class:`Distillation`; the teacher runs in eval mode without gradients and is left unchanged).
    Every epoch's log records the loss used (``EpochLog.loss_fn``).
    """
    if (teacher is None) != (distill is None):
        raise ConfigError("train: distillation needs both a teacher model and a Distillation (or neither)")
    if distill is not None and not isinstance(distill, Distillation):
        raise ConfigError(f"train: distill must be a Distillation, got {type(distill).__name__}")
    device = resolve_device(cfg.device)
    check_training_memory(arch, cfg, device)  # before any folder, data or weight
    out_dir = Path(out_dir) if out_dir is not None else None
    ckpt_path = out_dir / "checkpoint.pt" if out_dir is not None else None
    if out_dir is not None and not resume and not overwrite and ckpt_path.is_file():
        raise ConfigError(
            f"--out {out_dir}: already holds a checkpoint.pt; pass --resume to continue it, --overwrite to train "
            "afresh and replace it, or choose another folder"
        )
    seed_everything(cfg.seed)

    # A separate data seed keeps the split and the images fixed while the training seed varies (validate --seeds).
    data_seed = cfg.seed if cfg.data_seed is None else cfg.data_seed
    train_ds = load_split(cfg.data, "train", size=cfg.size, seed=data_seed, frames=cfg.frames)
    val_ds = load_split(cfg.data, "val", size=cfg.size, seed=data_seed, frames=cfg.frames)
    if arch.in_channels != train_ds.in_channels or arch.num_classes != train_ds.num_classes:
        raise ConfigError(
            f"--arch: the model takes {arch.in_channels} channel(s) and predicts {arch.num_classes} classes, "
            f"but {cfg.data} has {train_ds.in_channels} channel(s) and {train_ds.num_classes} classes"
        )
    # Every file read and validated now, not when an epoch first reaches a bad frame.
    check_dataset(train_ds, progress=progress)
    check_dataset(val_ds, progress=progress)
    if out_dir is not None:  # before the first epoch, not after it; after the data, so a refused run writes nothing
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise OutputError(f"--out {out_dir}: cannot create the output folder ({exc.strerror}{where})") from None
    gen = torch.Generator().manual_seed(cfg.seed)
    train_loader = DataLoader(
        train_ds, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train_ds) > cfg.batch_size,
        num_workers=cfg.workers, generator=gen, pin_memory=device.type == "cuda",
    )  # fmt: skip
    val_loader = DataLoader(val_ds, batch_size=max(cfg.batch_size, 16), shuffle=False, num_workers=cfg.workers)
    steps = len(train_loader) if cfg.steps_per_epoch is None else min(cfg.steps_per_epoch, len(train_loader))

    if model is None:
        model = build_model(arch)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: cosine_lr(i, total, cfg.lr, cfg.min_lr) / cfg.lr)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loss_fn = DeepSupervisionLoss(cfg.aux_weight)
    loss_name = loss_label(distill)
    if teacher is not None:
        loss_fn = DistillationLoss(loss_fn, distill)
        teacher_training = teacher.training
        teacher.to(device).eval()

    result = TrainResult(out_dir=out_dir, checkpoint=ckpt_path)
    start_epoch = 0
    if resume and ckpt_path is not None and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt.config != arch:
            raise ConfigError(f"{ckpt_path}: --resume with a different --arch than the checkpoint's")
        model.load_state_dict(model_from_checkpoint(ckpt, source=str(ckpt_path)).state_dict())
        state = ckpt.optimizer or {}
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        result.epochs = [EpochLog(**e) for e in ckpt.meta.get("history", [])]
        start_epoch = ckpt.epoch
        log.info("resuming %s from epoch %d/%d", ckpt_path, start_epoch, cfg.epochs)
        if start_epoch >= cfg.epochs:
            return result

    t_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        # A per-epoch seed keeps resumed runs on the same data order as uninterrupted ones.
        gen.manual_seed(cfg.seed * 1000 + epoch)
        train_ds.set_epoch(epoch)  # augmentation depends only on (seed, epoch, index)
        model.train()
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False, unit="step")
        for step, batch in enumerate(train_loader):
            if step >= steps:
                break
            x = batch["image"].to(device, non_blocking=True)
            y = batch["mask"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                logits, aux = model.forward_with_aux(x)
                logits, aux = logits.float(), tuple(a.float() for a in aux)
                if teacher is None:
                    loss = loss_fn(logits, aux, y)
                else:
                    with torch.no_grad():
                        t_logits, t_aux = teacher.forward_with_aux(x)
                    loss = loss_fn(logits, aux, y, t_logits.float(), tuple(a.float() for a in t_aux))
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"training diverged: loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            seen += x.shape[0]
            loss_sum += loss.item() * x.shape[0]
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{seen / (time.perf_counter() - t0):.1f}")
        bar.close()
        dice = validation_dice(model, val_loader, device, max_batches=cfg.val_batches)
        seconds = time.perf_counter() - t0
        entry = EpochLog(
            epoch=epoch + 1, loss=loss_sum / max(seen, 1), val_dice=dice["mean"], val_dice_ps=dice["PS"],
            val_dice_fh=dice["FH"], lr=optimizer.param_groups[0]["lr"], seconds=seconds, images_per_s=seen / seconds,
            loss_fn=loss_name,
        )  # fmt: skip
        result.epochs.append(entry)
        # One line per epoch, bar or no bar: a run under nohup or in CI must not be silent for an hour.
        # Callers that run many short trainings (search trials, validate) quieten the "segmentation"
        # logger instead (their CLI does, unless --debug).
        log.info(
            "epoch %d/%d  loss %.4f (%s)  val Dice %.4f (PS %.4f, FH %.4f)  %.1f s (%.1f img/s)",
            entry.epoch, cfg.epochs, entry.loss, loss_name, entry.val_dice, entry.val_dice_ps, entry.val_dice_fh,
            entry.seconds, entry.images_per_s,
        )  # fmt: skip
        if ckpt_path is not None:
            _save(model, optimizer, scheduler, arch, cfg, result, ckpt_path, pruning)
        if on_epoch_end is not None:
            try:
                on_epoch_end(entry)
            except StopTraining:
                result.stopped_early = True
                break
    result.wall_s = time.perf_counter() - t_start
    if teacher is not None:
        teacher.train(teacher_training)
    if out_dir is None:
        return result
    write_training_metrics(
        out_dir, train=asdict(cfg), epochs=[asdict(e) for e in result.epochs], wall_s=result.wall_s,
        val_dice=result.val_dice, stopped_early=result.stopped_early, device=str(device),
    )  # fmt: skip
    return result


def cosine_lr(step: int, total: int, lr: float, min_lr: float) -> float:
    """The learning rate at ``step`` of ``total``: cosine from ``lr`` down to ``min_lr`` (train and supernet)."""
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


def _save(model, optimizer, scheduler, arch, cfg, result, path, pruning) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = Checkpoint(
        config=arch,
        state_dict=state,
        pruning=pruning,
        optimizer={"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
        epoch=result.epochs[-1].epoch,
        metrics={"val_dice": result.epochs[-1].val_dice},
        meta={"train": asdict(cfg), "history": [asdict(e) for e in result.epochs]},
    )
    save_checkpoint(ckpt, path)


@torch.no_grad()
def validation_dice(model, loader, device, *, max_batches: int | None = None) -> dict[str, float]:
    """Mean per-image Dice for PS and FH (both empty counts as 1), fast enough for every epoch.

    The full metric set (Jaccard, ASD, HD95, AoP) is :func:`segmentation.evaluate_model`'s job.
    """
    model.eval()
    scores = {1: [], 2: []}
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        pred = model(batch["image"].to(device)).argmax(1).cpu()
        target = batch["mask"]
        for c in scores:
            p, t = pred == c, target == c
            inter = (p & t).flatten(1).sum(1).float()
            denom = (p.flatten(1).sum(1) + t.flatten(1).sum(1)).float()
            scores[c].extend(torch.where(denom > 0, 2 * inter / denom.clamp(min=1), torch.ones_like(denom)).tolist())
    ps, fh = (float(np.mean(scores[c])) if scores[c] else float("nan") for c in (1, 2))
    return {"PS": ps, "FH": fh, "mean": (ps + fh) / 2}
