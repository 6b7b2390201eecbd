"""Evaluate a checkpoint: per class (PS, FH) and mean Dice, Jaccard, ASD, HD95 and |dAoP|.

The model runs at --size (default: its training size, or a resized model's input size); the
metrics are computed at --reference-size (default 256, segmentation.REFERENCE_SIZE) against the
labels at that size, the predicted probabilities resized to it, so models run at different sizes
are scored on the same masks. Distances are in pixels of the reference size. Empty masks follow
the documented convention of segmentation.image_metrics (never a NaN inside a mean). Writes a
JSON summary and a per-image CSV beside it, and prints a table.

Example:
  rtseg-nas evaluate --checkpoint runs/paper128/checkpoint.pt --split test
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rtseg_nas.cli._args import SIZE, add_device, add_json_out, check_file_outputs, write_json_out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by train, prune or search")
    p.add_argument("--data", default=None, help="dataset spec (default: the one the checkpoint was trained on)")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"], help="split (default: test)")
    p.add_argument("--size", type=SIZE, default=None, help="input size (default: the training size)")
    p.add_argument(
        "--reference-size", type=SIZE, default=None,
        help="label size the metrics are computed at, predictions resized to it (default: 256)",
    )  # fmt: skip
    p.add_argument("--frames", default="ps+fh", help="JNU-IFM frame selection (default: ps+fh)")
    add_json_out(p, "the summary (always also written: evaluation_<split>.json beside the checkpoint by default)")
    p.add_argument("--csv", metavar="PATH", help="per-image CSV (default: the JSON path with .csv)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from rtseg_core import read_json
    from segmentation import REFERENCE_SIZE, evaluate_checkpoint

    to_stdout = args.json == "-"
    default = Path(args.checkpoint).with_name(f"evaluation_{args.split}.json")
    json_path = default if to_stdout or not args.json else Path(args.json)
    csv_path = Path(args.csv) if args.csv else json_path.with_suffix(".csv")
    # before the evaluation: a refused path costs nothing
    check_file_outputs(args, {"--json": json_path, "--csv": csv_path}, "checkpoint", "data")
    result = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        split=args.split,
        size=args.size,
        device=args.device,
        frames=args.frames,
        progress=args.progress,
        reference_size=args.reference_size or REFERENCE_SIZE,
    )
    result.write(json_path, csv_path)
    if to_stdout:
        write_json_out("-", read_json(json_path))
        return 0
    ref = result.reference_size
    print(
        f"{result.data} / {result.split} / input {result.size}x{result.size}, scored at the reference {ref}x{ref}, "
        f"{len(result.rows)} images"
    )
    print(result.table())
    print(f"summary: {json_path}\nper image: {csv_path}")
    return 0
