"""Quantize a model: ONNX Runtime static/dynamic INT8, FP16 ONNX, or DSConv low-bit fine-tuning.

--format int8-static (default; QDQ, per-channel INT8 weights, UINT8 activations, calibrated on
TRAINING images with --calibration minmax|entropy|percentile), int8-qat (the same after --epochs
of quantization-aware fine-tuning under fake quantization; --distill learns from the FP32
model), int8-dynamic (offered, but ConvInteger is slow on convnets), fp16 (for TensorRT on a
Jetson GPU; inputs/outputs stay FP32) or dsconv (DSConv --bits VQK/KDS weights, --epochs of
quantization-aware fine-tuning, then frozen). --int8, --qat and --fp16 are short for the first,
second and fourth. --for names where it will run: INT8 for the Jetson Nano's GPU is refused
(compute capability 5.3: no fast INT8 in TensorRT; use its CPU via ONNX Runtime, or FP16).

Why these INT8 defaults (measured on `paper` at 256 px, 1 thread, ONNX Runtime 1.32 CPU, on
this project's 2-core AMD EPYC (Zen 4, AVX-512 VNNI, whose u8 x s8 dot product suits U8S8),
FP32 and every variant in one alternating loop of 30 rounds, load average 9-12 from other
jobs): QDQ with UINT8 activations (U8S8) runs all 27 Conv as QLinearConv: 1.51x over FP32 (95 %
CI 1.48-1.58). --activations int8 (S8S8) leaves 12 Conv float (a QuantizeLinear feeding several
consumers is not folded; --dedicated-qdq pairs are merged again by ORT's common-subexpression
elimination) and is slower than FP32 (0.78x); --graph-format qoperator 1.33x (all 27 Conv
integer with S8S8 too, but 3x slower than FP32 there); --dedicated-qdq with U8S8 gives the same
executed graph (1.51x); --per-tensor 1.60x (1.52-1.70; 1.45x in an earlier loop: no clear gain,
and it costs accuracy); quantizing Conv alone 1.46x. Every INT8 output has OUT/int8_graph.json:
Conv as integer kernels, Q/DQ pairs left, the ops that stay float and why, time per op class.

Every result is evaluated on the validation split with ONNX Runtime beside the FP32 model (Dice
change, latency, speed-up). Writes OUT/model.onnx, OUT/model_fp32.onnx, OUT/quantize.json
(and OUT/checkpoint.pt for dsconv and int8-qat). With --study DIR the top-k Pareto trials are
quantized; to quantize pruned variants of a study, prune with `prune --study DIR ... --then-int8`
(or --then-qat EPOCHS).

Examples:
  rtseg-nas quantize --checkpoint runs/paper/checkpoint.pt --out runs/paper.int8
  rtseg-nas quantize --checkpoint runs/paper/checkpoint.pt --qat --epochs 2 --out runs/paper.qat
  rtseg-nas quantize --checkpoint runs/paper/checkpoint.pt --format fp16 --for jetson-nano-gpu --out runs/p.fp16
  rtseg-nas quantize --checkpoint runs/paper/checkpoint.pt --format dsconv --bits 4 --epochs 3 --out runs/p.ds4
  rtseg-nas quantize --onnx model.onnx --data synthetic --out runs/m.int8
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import (
    BATCH,
    COUNT,
    COUNT0,
    LEARNING_RATE,
    OPSET,
    SIZE,
    THREADS,
    add_device,
    add_json_out,
    check_file_outputs,
    emit,
    float_in,
    int_in,
    overwrite_help,
    timing_defaults,
)
from rtseg_nas.cli._choices import ACTIVATION_TYPES, CALIBRATIONS, GRAPH_FORMATS, QUANT_FORMATS, QUANT_TARGETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="CKPT", help="a trained checkpoint (pruned ones too)")
    src.add_argument("--onnx", metavar="FILE", help="an FP32 ONNX file (no dsconv)")
    src.add_argument("--study", metavar="DIR", help="quantize the top-k feasible Pareto trials of this search")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (required unless --study): new, empty or an earlier quantize output; replaced atomically",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=overwrite_help("--out"),
    )
    p.add_argument("--top-k", type=COUNT, default=3, help="with --study: how many front members (default: 3)")
    p.add_argument(
        "--parent",
        action="append",
        default=[],
        metavar="NAME",
        help="with --study: quantize this trial (by name, e.g. paper, the search's reference, or trial-7) instead "
        "of the front's top-k; repeatable. validate re-applies the recipe to the validated trial of each seed",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--format", choices=QUANT_FORMATS, default=None, help="default: int8-static")
    fmt.add_argument("--int8", dest="format", action="store_const", const="int8-static", help="= --format int8-static")
    fmt.add_argument("--qat", dest="format", action="store_const", const="int8-qat", help="= --format int8-qat")
    fmt.add_argument("--fp16", dest="format", action="store_const", const="fp16", help="= --format fp16")
    p.add_argument("--for", dest="target", choices=QUANT_TARGETS, default="cpu", help="where it will run")
    p.add_argument("--calibration", choices=CALIBRATIONS, default="minmax", help="static INT8 calibration")
    p.add_argument(
        "--percentile", type=float_in(90.0, 100.0, hi_open=True), default=99.999, help="for --calibration percentile"
    )
    p.add_argument("--calibration-images", type=COUNT, default=32, help="training images for calibration")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel weights")
    p.add_argument(
        "--activations",
        choices=ACTIVATION_TYPES,
        default="uint8",
        help="static INT8 activation type: uint8 (U8S8, default: fastest here) or int8 (S8S8)",
    )
    p.add_argument(
        "--graph-format", choices=GRAPH_FORMATS, default="qdq", help="QDQ (default) or QOperator graph for INT8"
    )
    p.add_argument("--dedicated-qdq", action="store_true", help="one Q/DQ pair per consumer (ORT's DedicatedQDQPair)")
    p.add_argument(
        "--distill", action="store_true", help="int8-qat: learn from the FP32 model as teacher (distillation)"
    )
    p.add_argument("--op-types", default="", help="comma-separated ops to quantize (default: ORT's set)")
    p.add_argument("--no-preprocess", action="store_true", help="skip ORT's quant_pre_process")
    p.add_argument("--opset", type=OPSET, default=None, help="ONNX opset (default: 13 for Jetson targets, else 17)")
    p.add_argument("--bits", type=int_in(2, 8), default=4, help="DSConv bits, 2-8 (default: 4)")
    p.add_argument(
        "--epochs", type=COUNT0, default=2, help="quantization-aware fine-tuning epochs (dsconv, int8-qat; default: 2)"
    )
    p.add_argument(
        "--lr", type=LEARNING_RATE, default=3e-4, help="dsconv/int8-qat fine-tuning learning rate (default: 3e-4)"
    )
    p.add_argument("--batch-size", type=BATCH, default=8, help="dsconv/int8-qat fine-tuning batch size")
    p.add_argument("--data", default=None, help="dataset (default: the checkpoint's; required with --onnx)")
    p.add_argument("--size", type=SIZE, default=None, help="input size (default: the training size)")
    p.add_argument("--threads", type=THREADS, default=1, help="ONNX Runtime threads for latency (default: 1)")
    p.add_argument(
        "--rounds",
        type=COUNT,
        default=timing_defaults().rounds,
        help="alternating rounds timing FP32 vs the quantized graph (default: %(default)s)",
    )
    p.add_argument("--no-eval", action="store_true", help="skip Dice evaluation")
    p.add_argument("--no-latency", action="store_true", help="skip latency measurement")
    add_device(p)
    add_json_out(p, "the report")


def run(args: argparse.Namespace) -> int:
    from compress import FinetuneSpec, QuantSpec, compress_study, quantize_checkpoint, quantize_onnx
    from rtseg_core import ConfigError

    check_file_outputs(args, {"--json": args.json}, "checkpoint", "onnx", "data", "study")
    fmt = args.format or "int8-static"
    if fmt == "int8-qat" and args.epochs < 1:
        raise ConfigError("--epochs: int8-qat needs at least 1 fine-tune epoch (without one it is --int8), got 0")
    if fmt == "int8-qat" and args.onnx:
        raise ConfigError("--qat: needs the weights (--checkpoint or --study), not an ONNX file")
    spec = QuantSpec(
        format=fmt,
        calibration=args.calibration,
        percentile=args.percentile,
        calibration_images=args.calibration_images,
        per_channel=not args.per_tensor,
        activations=args.activations,
        graph_format=args.graph_format,
        dedicated_qdq=args.dedicated_qdq,
        qat_epochs=max(args.epochs, 1),
        distill=args.distill,
        op_types=tuple(o.strip() for o in args.op_types.split(",") if o.strip()),
        preprocess=not args.no_preprocess,
        target=args.target,
        opset=args.opset,
        dsconv_bits=args.bits,
    )
    ft = FinetuneSpec(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, device=args.device)
    if args.parent and not args.study:
        raise ConfigError("--parent: only with --study (with --checkpoint the output is --out)")
    if args.study:
        records = compress_study(
            args.study,
            top_k=args.top_k,
            parents=tuple(args.parent) or None,
            quantize=spec,
            finetune_spec=ft,
            data=args.data,
            progress=args.progress,
            overwrite=args.overwrite,
        )
        for r in records:
            print(
                f"{r.name}: Dice {r.dice:.4f}, {r.latency_ms:.2f} ms at {r.height}x{r.width}, "
                f"{r.precision} ({r.recipe})"
            )
        return 0
    if not args.out:
        raise ConfigError("--out: required with --checkpoint/--onnx (the folder for model.onnx and quantize.json)")
    common = {
        "overwrite": args.overwrite,
        "evaluate": not args.no_eval,
        "measure": not args.no_latency,
        "threads": args.threads,
        "rounds": args.rounds,
    }
    if args.onnx:
        report = quantize_onnx(args.onnx, spec, args.out, data=args.data, **common)
    else:
        report = quantize_checkpoint(
            args.checkpoint,
            spec,
            args.out,
            data=args.data,
            size=args.size,
            finetune_spec=ft,
            progress=args.progress,
            **common,
        )

    def show() -> None:
        print(f"{report.recipe} ({args.target}): {args.out}/model.onnx")
        if report.dice_fp32 is not None:
            print(
                f"Dice ({report.split}, ONNX Runtime): FP32 {report.dice_fp32:.4f}, quantized {report.dice_quant:.4f} "
                f"({report.dice_change:+.4f}); pixels agreeing with FP32 {report.pixel_agreement:.2%}, "
                f"max |logit diff| {report.max_abs_diff:.3g}"
            )
        if report.latency_fp32_ms is not None:
            print(
                f"latency (ORT CPU, batch 1, {report.threads} thread(s), one alternating loop): FP32 "
                f"{report.latency_fp32_ms:.2f} ms, quantized {report.latency_quant_ms:.2f} ms ({report.speedup:.2f}x, "
                f"95 % CI {report.speedup_ci95_low:.2f}-{report.speedup_ci95_high:.2f}x)"
            )
        if report.int8_graph:
            from compress import Int8GraphReport
            from rtseg_core import read_json

            print(Int8GraphReport.from_dict(read_json(f"{args.out}/{report.int8_graph}")).summary())
        print(f"notes: {report.notes}")

    emit(args.json, report.to_dict(), show)
    return 0
