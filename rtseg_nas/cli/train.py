"""Train an RTSeg-Net family member (CE + Dice, deep supervision, AdamW with cosine decay).

Writes OUT/checkpoint.pt (config, weights, optimizer, epoch, metrics; atomic; loads with
torch.load(weights_only=True)) after every epoch and OUT/metrics.json at the end. --resume
continues a stopped run from its last finished epoch.

Example (CPU-sized):
  rtseg-nas train --data synthetic --size 128 --epochs 20 --out runs/paper128
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
    add_threads,
    float_in,
    int_in,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from segmentation import TrainConfig  # imports no torch: --help stays fast

    d = TrainConfig()  # its defaults are the CLI defaults
    add_arch(p)
    add_data(p, default=d.data)
    p.add_argument("--out", required=True, help="output directory for checkpoint.pt and metrics.json")
    add_size(p, default=d.size)
    p.add_argument("--epochs", type=COUNT, default=d.epochs, help="epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=BATCH, default=d.batch_size, help="batch size (default: %(default)s)")
    p.add_argument("--lr", type=LEARNING_RATE, default=d.lr, help="peak learning rate (default: %(default)s)")
    p.add_argument(
        "--weight-decay", type=float_in(0.0, 10.0), default=d.weight_decay, help="weight decay (default: %(default)s)"
    )
    p.add_argument(
        "--optimizer", choices=["adam", "adamw"], default=d.optimizer, help="optimizer (default: %(default)s)"
    )
    p.add_argument(
        "--aux-weight",
        type=float_in(0.0, 1000.0),
        default=d.aux_weight,
        help="weight of the deep-supervision Dice terms",
    )
    p.add_argument("--frames", default=d.frames, help="JNU-IFM frame selection: ps+fh, all, or labels like 4,5,6")
    p.add_argument(
        "--workers", type=int_in(0, 256), default=d.workers, help="data-loader worker processes (default: %(default)s)"
    )
    add_seed(p, default=d.seed)
    add_device(p, default=d.device)
    add_threads(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    p.add_argument(
        "--overwrite", action="store_true", help="train afresh even if OUT/checkpoint.pt exists (it is replaced)"
    )


def run(args: argparse.Namespace) -> int:
    from models import create_config
    from rtseg_core import resolve_threads, torch_threads
    from segmentation import TrainConfig, train

    cfg = TrainConfig(
        data=args.data, size=args.size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, optimizer=args.optimizer, aux_weight=args.aux_weight, seed=args.seed,
        device=args.device, workers=args.workers, frames=args.frames,
    )  # fmt: skip
    with torch_threads(resolve_threads(args.threads)):
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
