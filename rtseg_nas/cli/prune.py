"""Structured pruning of a trained checkpoint (Torch-Pruning), then fine-tuning, ONNX export and evaluation.

Exactly one target: --ratio (fraction of channels removed from every prunable layer group),
--target-macs (fraction of the unpruned MACs to reach) or --target-latency-ms (median latency
measured on this machine, ONNX Runtime by default). Targets other than --ratio are reached by
pruning in --step-ratio increments up to --max-ratio; a target still unmet there is an error.
The result is a real, smaller model: OUT/checkpoint.pt (config + pruning history replayed on a
fresh build, weights; `rtseg-nas evaluate --checkpoint OUT/checkpoint.pt` works), OUT/model.onnx and
OUT/prune.json. With --study DIR the top-k feasible Pareto trials of a search are pruned into
DIR/compressed/<trial>.<tag>/ with a candidate.json each; --then-int8 also quantizes each pruned
variant (ONNX Runtime static INT8, quantize's defaults) into DIR/compressed/<trial>.<tag>_int8/,
--then-qat EPOCHS does so after EPOCHS of quantization-aware fine-tuning (<trial>.<tag>_int8qat/);
the quantize.json names the pruned variant it came from, so `validate` re-applies the chain
(prune, fine-tune, INT8 or QAT) to the fully trained parent.

Deploy at a smaller input: --input-size D (a multiple of 32, below the parent's deployment size
--latency-size, default 256) instead of a pruning target fine-tunes the checkpoint for input D,
at the same fraction of its own training size (a 96-px CPU training deployed at 192 of 256 is
fine-tuned at 72 px: compress.scaled_size), evaluates it with Dice at the reference resolution
(segmentation.REFERENCE_SIZE; predictions resized back) and times the parent at --latency-size
against it at D in one alternating loop: OUT/checkpoint.pt, OUT/model.onnx, OUT/resize.json.

Importance criteria: l1, l2, group-norm, bn-scale, fpgm, taylor (needs data), random, and
NNI 3.0's masks as scores (nni-l1, nni-fpgm, nni-taylor; needs `pip install nni==3.0`).

Examples:
  rtseg-nas prune --checkpoint runs/paper/checkpoint.pt --ratio 0.3 --out runs/paper.p30
  rtseg-nas prune --checkpoint runs/paper/checkpoint.pt --target-macs 0.5 --round-to 8 \\
      --importance taylor --finetune-epochs 5 --out runs/paper.pm50
  rtseg-nas prune --study runs/study1 --top-k 3 --ratio 0.3 --finetune-epochs 3
  rtseg-nas prune --study runs/study1 --top-k 1 --target-macs 0.5 --finetune-epochs 3 --then-int8
  rtseg-nas prune --checkpoint runs/paper/checkpoint.pt --input-size 192 --finetune-epochs 3 --out runs/paper.in192
"""

from __future__ import annotations

import argparse

from rtseg_core import DEPLOYMENT_SIZE
from rtseg_nas.cli._args import (
    BATCH,
    COUNT,
    COUNT0,
    FRACTION_OPEN,
    LEARNING_RATE,
    OPSET,
    POSITIVE,
    SIZE,
    THREADS,
    add_device,
    add_json_out,
    check_file_outputs,
    emit,
    int_in,
    overwrite_help,
    timing_defaults,
)
from rtseg_nas.cli._choices import IMPORTANCES


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="CKPT", help="a trained checkpoint (from train, prune or search)")
    src.add_argument("--study", metavar="DIR", help="prune the top-k feasible Pareto trials of this search")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (required with --checkpoint): new, empty or an earlier prune output; replaced atomically",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=overwrite_help("--out"),
    )
    p.add_argument("--top-k", type=COUNT, default=3, help="with --study: how many front members (default: 3)")
    then = p.add_mutually_exclusive_group()
    then.add_argument(
        "--then-int8",
        action="store_true",
        help="with --study: also quantize each pruned variant to ONNX Runtime static INT8 (a second variant, "
        "<trial>.<tag>_int8, recorded as a prune-then-INT8 chain that validate re-applies)",
    )
    then.add_argument(
        "--then-qat",
        type=COUNT,
        metavar="EPOCHS",
        default=None,
        help="with --study: like --then-int8 but with EPOCHS of quantization-aware fine-tuning first "
        "(<trial>.<tag>_int8qat; quantize --qat's recipe, re-applied by validate as prune -> QAT)",
    )
    p.add_argument(
        "--input-size", type=SIZE, default=None, metavar="D",
        help="deploy at this smaller input (a multiple of 32) instead of pruning: fine-tune there (scaled to the "
        "checkpoint's training size), Dice at the reference resolution; --checkpoint only",
    )  # fmt: skip
    p.add_argument(
        "--latency-size", type=SIZE, default=DEPLOYMENT_SIZE,
        help="with --input-size: the parent's deployment size, where it is timed (default: 256)",
    )  # fmt: skip
    target = p.add_mutually_exclusive_group()
    target.add_argument("--ratio", type=FRACTION_OPEN, help="channel ratio to remove, in (0, 1)")
    target.add_argument("--target-macs", type=FRACTION_OPEN, metavar="FRACTION", help="reach this fraction of the MACs")
    target.add_argument("--target-latency-ms", type=POSITIVE, metavar="MS", help="reach this measured latency")
    p.add_argument("--importance", default="l1", choices=IMPORTANCES, help="criterion (default: l1)")
    p.add_argument("--global", dest="global_pruning", action="store_true", help="rank channels network-wide")
    p.add_argument(
        "--round-to", type=int_in(1, 256), default=None, help="keep widths multiples of N (8 for GPUs/TensorRT)"
    )
    p.add_argument("--steps", type=int_in(1, 1000), default=1, help="increments for --ratio (default: 1)")
    p.add_argument("--step-ratio", type=FRACTION_OPEN, default=0.05, help="increment for MACs/latency targets")
    p.add_argument(
        "--max-ratio", type=FRACTION_OPEN, default=0.9, help="never remove more than this ratio (default: 0.9)"
    )
    p.add_argument("--no-shift-aware", action="store_true", help="prune TMP widths by score only (not recommended)")
    p.add_argument("--ignore", action="append", default=[], metavar="MODULE", help="keep this module's outputs")
    p.add_argument("--calibration-batches", type=COUNT, default=4, help="training batches for taylor (default: 4)")
    p.add_argument("--latency-backend", choices=["onnxruntime", "pytorch"], default="onnxruntime")
    p.add_argument(
        "--latency-target",
        default="local",
        help="where --target-latency-ms is judged: local (measured with --latency-backend) or predict:TABLE "
        "(the kernel-level predictor on a table built on the device, e.g. a Jetson) (default: %(default)s)",
    )
    p.add_argument("--threads", type=THREADS, default=1, help="threads for latency and its targets (default: 1)")
    p.add_argument(
        "--rounds",
        type=COUNT,
        default=timing_defaults().rounds,
        help="alternating rounds timing the unpruned vs the pruned graph (default: %(default)s)",
    )
    p.add_argument("--no-latency", action="store_true", help="skip timing the unpruned vs the pruned graph")
    p.add_argument("--finetune-epochs", type=COUNT0, default=0, help="fine-tuning epochs after pruning (default: 0)")
    p.add_argument("--finetune-per-step", type=COUNT0, default=0, help="epochs between increments (iterative)")
    p.add_argument("--lr", type=LEARNING_RATE, default=3e-4, help="fine-tuning learning rate (default: 3e-4)")
    p.add_argument("--batch-size", type=BATCH, default=8, help="fine-tuning batch size (default: 8)")
    p.add_argument("--steps-per-epoch", type=COUNT, default=None, help="cap fine-tuning steps per epoch")
    p.add_argument("--data", default=None, help="dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--size", type=SIZE, default=None, help="input size (default: the training size)")
    p.add_argument("--no-eval", action="store_true", help="skip Dice evaluation")
    p.add_argument("--opset", type=OPSET, default=17, help="ONNX opset of model.onnx (13 for Jetson TensorRT)")
    add_device(p)
    add_json_out(p, "the report")


def run(args: argparse.Namespace) -> int:
    from compress import FinetuneSpec, PruneSpec, QuantSpec, compress_study, prune_checkpoint
    from profiling import TimingOptions
    from rtseg_core import ConfigError

    then = "--then-int8" if args.then_int8 else "--then-qat" if args.then_qat is not None else None
    if then and not args.study:
        raise ConfigError(
            f"{then}: only with --study; for one checkpoint run `rtseg-nas quantize --checkpoint "
            f"OUT/checkpoint.pt {'--qat ' if args.then_qat is not None else ''}--out DIR` on the pruned output"
        )
    check_file_outputs(args, {"--json": args.json}, "checkpoint", "data", "study", "latency_target")
    has_target = any(v is not None for v in (args.ratio, args.target_macs, args.target_latency_ms))
    if args.input_size is not None:
        return _resize(args, has_target)
    if not has_target:
        raise ConfigError("prune: give one target (--ratio, --target-macs or --target-latency-ms) or --input-size")
    spec = PruneSpec(
        ratio=args.ratio,
        target_macs=args.target_macs,
        target_latency_ms=args.target_latency_ms,
        importance=args.importance,
        global_pruning=args.global_pruning,
        round_to=args.round_to,
        steps=args.steps,
        step_ratio=args.step_ratio,
        max_ratio=args.max_ratio,
        shift_aware=not args.no_shift_aware,
        ignored=tuple(args.ignore),
        finetune_epochs_per_step=args.finetune_per_step,
        calibration_batches=args.calibration_batches,
        size=args.size,
        latency_backend=_latency_backend(args),
        latency_threads=args.threads,
    )
    ft = FinetuneSpec(
        epochs=args.finetune_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch,
        device=args.device,
    )
    if args.study:
        records = compress_study(
            args.study,
            top_k=args.top_k,
            prune=spec,
            quantize=(
                QuantSpec(format="int8-static")
                if args.then_int8
                else QuantSpec(format="int8-qat", qat_epochs=args.then_qat)
                if args.then_qat is not None
                else None
            ),
            finetune_spec=ft,
            data=args.data,
            progress=args.progress,
            overwrite=args.overwrite,
        )
        for r in records:
            print(
                f"{r.name}: Dice {r.dice:.4f}, {r.params:,} params, {r.latency_ms:.2f} ms at {r.height}x{r.width} "
                f"{r.precision} ({r.recipe})"
            )
        return 0
    if not args.out:
        raise ConfigError("--out: required with --checkpoint (the folder for checkpoint.pt, model.onnx, prune.json)")
    report = prune_checkpoint(
        args.checkpoint,
        spec,
        args.out,
        data=args.data,
        size=args.size,
        finetune_spec=ft,
        evaluate=not args.no_eval,
        opset=args.opset,
        progress=args.progress,
        overwrite=args.overwrite,
        timing=None if args.no_latency else TimingOptions(threads=args.threads, rounds=args.rounds),
    )

    def show() -> None:
        r = report.result
        print(
            f"{report.recipe}: {r.params_before:,} -> {r.params_after:,} params, "
            f"{r.macs_before / 1e9:.3f} -> {r.macs_after / 1e9:.3f} GMACs (fvcore, {r.spec['size']} px), "
            f"{r.increments} increment(s), last ratio {r.ratio:.3f}"
        )
        if r.latency_after_ms is not None:
            print(
                f"latency target steps ({spec.latency_backend}, one model at a time): {r.latency_before_ms:.2f} -> "
                f"{r.latency_after_ms:.2f} ms"
            )
        if report.latency is not None:
            print(f"latency: {report.latency.describe('unpruned', 'pruned')}")
        if report.dice_before is not None:
            print(
                f"Dice ({report.split}): {report.dice_before:.4f} unpruned, {report.dice_pruned:.4f} pruned, "
                f"{report.dice_after:.4f} after fine-tuning"
            )
        if report.onnx_max_abs_diff is not None:
            print(f"ONNX Runtime vs PyTorch max |diff| {report.onnx_max_abs_diff:.2e}")
        print(f"written: {args.out}/checkpoint.pt, model.onnx, prune.json")

    emit(args.json, report.to_dict(), show)
    return 0


def _resize(args: argparse.Namespace, has_target: bool) -> int:
    """``--input-size``: the checkpoint fine-tuned and deployed at a smaller input (compress.resize_checkpoint)."""
    from compress import FinetuneSpec, check_input_size, compress_study, resize_checkpoint
    from profiling import TimingOptions
    from rtseg_core import ConfigError

    if has_target:
        raise ConfigError(
            f"--input-size {args.input_size}: not with a pruning target yet; prune first and give the pruned "
            "checkpoint.pt to `prune --input-size`"
        )
    check_input_size(args.input_size)
    check_input_size(args.latency_size, option="--latency-size")
    ft = FinetuneSpec(
        epochs=args.finetune_epochs, lr=args.lr, batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch,
        device=args.device,
    )  # fmt: skip
    if args.study:  # the parents' own latency size (their records' height) is the one resized from
        records = compress_study(
            args.study, top_k=args.top_k, resize=args.input_size, finetune_spec=ft, data=args.data,
            progress=args.progress, overwrite=args.overwrite,
        )  # fmt: skip
        for r in records:
            print(f"{r.name}: Dice {r.dice:.4f}, {r.latency_ms:.2f} ms at {r.height}x{r.width} ({r.recipe})")
        return 0
    if not args.out:
        raise ConfigError("--out: required with --checkpoint (the folder for checkpoint.pt, model.onnx, resize.json)")
    report = resize_checkpoint(
        args.checkpoint, args.input_size, args.out, latency_size=args.latency_size, data=args.data, finetune_spec=ft,
        evaluate=not args.no_eval, opset=args.opset, progress=args.progress, overwrite=args.overwrite,
        timing=None if args.no_latency else TimingOptions(threads=args.threads, rounds=args.rounds),
    )  # fmt: skip

    def show() -> None:
        r = report
        print(
            f"{r.recipe}: deployed at {r.deploy_size}x{r.deploy_size} (parent at {r.latency_size}), fine-tuned and "
            f"evaluated at {r.input_size}x{r.input_size} (parent trained at {r.parent_size})"
        )
        if r.latency is not None:
            print(f"latency: {r.latency.describe(f'parent at {r.latency_size}', f'this at {r.deploy_size}')}")
        if r.dice_after is not None:
            print(
                f"Dice ({r.split}, at the reference {r.reference_size}x{r.reference_size}): {r.dice_parent:.4f} "
                f"parent at {r.parent_size}, {r.dice_resized:.4f} at {r.input_size} before fine-tuning, "
                f"{r.dice_after:.4f} after"
            )
        print(f"written: {args.out}/checkpoint.pt, model.onnx, resize.json")

    emit(args.json, report.to_dict(), show)
    return 0


def _latency_backend(args: argparse.Namespace) -> str:
    from profiling import check_target
    from rtseg_core import ConfigError

    if args.latency_target == "local":
        return args.latency_backend
    if check_target(args.latency_target) != "predict":
        raise ConfigError(f"--latency-target {args.latency_target!r}: use local or predict:TABLE")
    return args.latency_target
