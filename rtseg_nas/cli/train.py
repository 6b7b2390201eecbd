"""Train an RTSeg-Net family member (CE + Dice, deep supervision, AdamW with cosine decay).

Writes OUT/checkpoint.pt (config, weights, optimizer, epoch, metrics; atomic; loads with
torch.load(weights_only=True)) after every epoch and OUT/metrics.json at the end. --resume
continues a stopped run from its last finished epoch.

Example (CPU-sized):
  python run.py train --data synthetic --size 128 --epochs 20 --out runs/paper128
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import (
    BATCH,
    COUNT,
    LEARNING_RATE,
    add_arch,
    add_data,
    add_device,
    add_seed,
    add_size,
    float_in,
    int_in,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_arch(p)
    add_data(p)
    p.add_argument("--out", required=True, help="output directory for checkpoint.pt and metrics.json")
    add_size(p)
    p.add_argument("--epochs", type=COUNT, default=30, help="epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=BATCH, default=8, help="batch size (default: %(default)s)")
    p.add_argument("--lr", type=LEARNING_RATE, default=1e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=float_in(0.0, 10.0), default=1e-4, help="weight decay (default: %(default)s)")
    p.add_argument("--optimizer", choices=["adam", "adamw"], default="adamw", help="optimizer (default: %(default)s)")
    p.add_argument(
        "--aux-weight", type=float_in(0.0, 1000.0), default=1.0, help="weight of the deep-supervision Dice terms"
    )
    p.add_argument("--frames", default="ps+fh", help="JNU-IFM frame selection: ps+fh, all, or labels like 4,5,6")
    p.add_argument("--workers", type=int_in(0, 256), default=0, help="data-loader worker processes (default: 0)")
    add_seed(p)
    add_device(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    p.add_argument(
        "--overwrite", action="store_true", help="train afresh even if OUT/checkpoint.pt exists (it is replaced)"
    )


def run(args: argparse.Namespace) -> int:
    from models import create_config
    from segmentation import TrainConfig, train

    cfg = TrainConfig(
        data=args.data, size=args.size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, optimizer=args.optimizer, aux_weight=args.aux_weight, seed=args.seed,
        device=args.device, workers=args.workers, frames=args.frames,
    )  # fmt: skip
    result = train(
        create_config(args.arch),
        cfg,
        args.out,
        resume=args.resume,
        progress=args.progress,
        overwrite=args.overwrite,
    )
    last = result.epochs[-1] if result.epochs else None
    if last:
        print(
            f"done: {len(result.epochs)} epochs, val Dice {last.val_dice:.4f} (PS {last.val_dice_ps:.4f}, "
            f"FH {last.val_dice_fh:.4f}), {result.wall_s:.0f} s this run"
        )
    print(f"checkpoint: {result.checkpoint}")
    return 0
