"""Export a model to ONNX: DSConv frozen, Conv+BN folded, checked, and matched against PyTorch.

The file is written only if onnx.checker accepts it and ONNX Runtime's output matches PyTorch
within --atol on a random input. Use --opset 13 for TensorRT 8.0/8.2 on a Jetson Nano.

Examples:
  rtseg-nas export --arch paper --out paper.onnx
  rtseg-nas export --checkpoint runs/best.pt --out best.onnx --opset 13
  rtseg-nas export --arch paper --out paper_dyn.onnx --dynamic batch
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import (
    BATCH,
    OPSET,
    POSITIVE,
    SIZE,
    add_json_out,
    add_model_source,
    add_seed,
    emit,
    model_source,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_source(p, onnx=False)
    p.add_argument("--out", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--opset", type=OPSET, default=17, help="ONNX opset (default: %(default)s; 13 for a Jetson Nano)")
    p.add_argument(
        "--dynamic",
        nargs="?",
        const="batch",
        default="none",
        choices=("none", "batch", "size", "batch+size"),
        help="symbolic axes; '--dynamic' alone means batch (default: none)",
    )
    p.add_argument("--size", type=SIZE, default=256, help="example input height and width (default: %(default)s)")
    p.add_argument("--batch", type=BATCH, default=1, help="example batch (a dynamic batch is traced with >= 2)")
    p.add_argument(
        "--atol", type=POSITIVE, default=1e-4, help="largest |ORT - PyTorch| accepted (default: %(default)g)"
    )
    p.add_argument("--no-fold-bn", action="store_true", help="keep BatchNormalization nodes")
    add_json_out(p, "the export result")
    add_seed(p)


def run(args: argparse.Namespace) -> int:
    from profiling import ExportConfig, export_model

    config = ExportConfig(
        opset=args.opset,
        dynamic=args.dynamic,
        batch=args.batch,
        height=args.size,
        width=args.size,
        atol=args.atol,
        fold_bn=not args.no_fold_bn,
        seed=args.seed,
    )
    result = export_model(model_source(args), args.out, config, seed=args.seed)

    def show() -> None:
        print(
            f"wrote {result.path} ({result.file_bytes / 2**20:.2f} MiB, opset {result.opset}, "
            f"dynamic {result.dynamic}, {result.nodes} nodes, {result.folded_bn} Conv+BN folded)"
        )
        print(
            f"ONNX Runtime vs PyTorch on a random {result.batch}x{result.channels}x{result.height}x{result.width} "
            f"input: max |diff| {result.max_abs_diff:.2e} (<= {args.atol:g})"
        )

    emit(args.json, result.to_dict(), show, what="export result")
    return 0
