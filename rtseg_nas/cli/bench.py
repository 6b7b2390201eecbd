"""Compare runtimes of one model in one run: ONNX Runtime FP32 vs PyTorch eager, alternating rounds.

Every variant goes through the suite's one timer (profiling/_timing.py): a warm-up, then rounds
in an order rotated per round, each one untimed and --runs timed runs per variant, so load changes
hit all variants alike; medians are compared, and the speed-up is PyTorch's median divided by the
variant's.

With --compression (and a trained --checkpoint) it also builds a static INT8 model and a model
pruned to --prune-macs of its MACs and fine-tuned, times both beside ORT FP32 in the same loop,
evaluates their Dice on the validation split, and checks the targets (INT8 >= 2x faster with
losing <= 0.005 Dice; pruned >= 1.6x losing <= 0.01), profiling per op where one is missed. Every
speed-up comes with a 95 % bootstrap interval over the paired alternating rounds.

With --latency-predictor it judges the kernel-level latency predictor instead: --models held-out
architectures sampled from the search space plus `paper` and three pruned `paper` members, ONNX
Runtime on this CPU (--threads, --size), predicted vs measured medians (all models timed in one
alternating loop); MAPE, share within +-10 % and Spearman beside the roofline + calibration
estimator and a FLOPs-only linear fit, all fitted on --training-models other samples.

Examples:
  rtseg-nas bench
  rtseg-nas bench --latency-predictor --models 30 --json predictor-bench.json
  rtseg-nas bench --size 128 --threads 2 --rounds 50 --json bench.json
  rtseg-nas bench --checkpoint runs/paper/checkpoint.pt --compression --finetune-epochs 3
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import (
    BATCH,
    COUNT,
    COUNT0,
    FRACTION,
    OPSET,
    SIZE,
    SSH_FILES,
    THREADS,
    add_json_out,
    add_model_source,
    add_seed,
    add_ssh,
    check_file_outputs,
    emit,
    int_in,
    model_source,
    overwrite_help,
    ssh_options_from,
    timing_defaults,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_source(p, onnx=False)
    p.add_argument("--size", type=SIZE, default=256, help="input height and width (default: %(default)s)")
    p.add_argument("--batch", type=BATCH, default=1, help="batch size (default: %(default)s)")
    from profiling import PREDICTOR_BENCH_ROUNDS  # light: no torch or onnxruntime

    timing = timing_defaults()
    p.add_argument("--threads", type=THREADS, default=timing.threads, help="threads of every runtime (default: 1)")
    p.add_argument(
        "--rounds",
        type=COUNT,
        default=None,
        help=f"alternating rounds (default: {timing.rounds}; {PREDICTOR_BENCH_ROUNDS} with --latency-predictor)",
    )
    p.add_argument(
        "--runs", type=COUNT, default=timing.runs, help="timed runs per variant and round (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=COUNT0, default=timing.warmup, help="warm-up runs of each variant (default: %(default)s)"
    )
    p.add_argument("--opset", type=OPSET, default=17, help="ONNX opset of the exported model (default: %(default)s)")
    add_seed(p)
    add_json_out(p, "the benchmark")
    lp = p.add_argument_group("latency predictor accuracy (--latency-predictor)")
    lp.add_argument("--latency-predictor", action="store_true", help="judge the kernel-level latency predictor")
    lp.add_argument("--models", type=COUNT, default=30, help="held-out sampled architectures (default: %(default)s)")
    lp.add_argument(
        "--training-models", type=COUNT, default=10, help="sampled architectures to fit on (default: %(default)s)"
    )
    lp.add_argument("--table", metavar="FILE", help="keep the kernel table in FILE (default: a temporary file)")
    lp.add_argument(
        "--target",
        default="local",
        help="local, or ssh://user@host[:port] to judge the predictor on a device (default: %(default)s)",
    )
    add_ssh(p)
    c = p.add_argument_group("compression variants (--compression; needs --checkpoint)")
    c.add_argument("--compression", action="store_true", help="add INT8 and pruned+fine-tuned variants")
    c.add_argument("--prune-macs", type=FRACTION, default=0.5, help="pruning target, fraction of MACs (default: 0.5)")
    c.add_argument(
        "--round-to", type=int_in(1, 256), default=16, help="pruned widths multiple of N (16 suits AVX-512 ORT)"
    )
    c.add_argument("--finetune-epochs", type=COUNT0, default=2, help="fine-tuning after pruning (default: 2)")
    c.add_argument("--data", default=None, help="dataset for calibration/fine-tuning/Dice (default: the checkpoint's)")
    c.add_argument(
        "--keep", metavar="DIR", default=None, help="keep the built models in DIR (new, empty or an earlier --keep)"
    )
    c.add_argument("--overwrite", action="store_true", help=overwrite_help("--keep"))
    # issue 11: how well the search's proxies rank architectures (rtseg_nas.benches.proxy).
    q = p.add_argument_group("proxy fidelity (--proxy): proxies vs full-budget test Dice, resumable")
    q.add_argument("--proxy", action="store_true", help="rank agreement of each proxy with full training")
    q.add_argument("--proxy-out", default="runs/proxy-bench", help="output folder (default: %(default)s)")
    q.add_argument("--proxy-archs", type=COUNT, default=12, help="architectures besides paper (default: 12)")
    q.add_argument("--proxy-data", default="synthetic:300", help="dataset (default: %(default)s)")
    q.add_argument("--proxy-size", type=SIZE, default=64, help="training input size (default: %(default)s)")
    q.add_argument("--proxy-full-epochs", type=COUNT, default=12, help="full budget in epochs (default: 12)")


def _timing(args: argparse.Namespace, default_rounds: int | None = None):
    """The timing options of this run: every option as given; ``--rounds`` left out = ``default_rounds``
    (None: the suite's default)."""
    import dataclasses

    from profiling import TimingOptions

    options = TimingOptions(threads=args.threads, warmup=args.warmup, runs=args.runs, seed=args.seed,
                            progress=args.progress)  # fmt: skip
    rounds = args.rounds if args.rounds is not None else default_rounds
    return options if rounds is None else dataclasses.replace(options, rounds=rounds)


def run(args: argparse.Namespace) -> int:
    from profiling import BenchConfig, run_bench

    reads = ["arch", "checkpoint", "target", *SSH_FILES]
    if args.compression:
        reads.append("data")  # the dataset it fine-tunes on: --data or the checkpoint's
    if args.proxy:
        reads.append("proxy_data")
    check_file_outputs(args, {"--json": args.json, "--table": args.table}, *reads)
    config = BenchConfig(size=args.size, batch=args.batch, opset=args.opset, timing=_timing(args))
    if args.proxy:
        return _run_proxy(args)
    if args.latency_predictor:
        return _run_latency_predictor(args)
    if args.compression:
        return _run_compression(args, config)
    result = run_bench(model_source(args), config)
    emit(args.json, result.to_dict(), lambda: print(result.format_table()), what="benchmark")
    return 0


def _run_compression(args: argparse.Namespace, config) -> int:
    from compress import CompressionBenchConfig, FinetuneSpec, PruneSpec, bench_compression, format_comparisons
    from rtseg_core import ConfigError

    if not args.checkpoint:
        raise ConfigError("--compression: needs --checkpoint (a trained model; pruning and INT8 need its weights)")
    cconfig = CompressionBenchConfig(
        prune=PruneSpec(target_macs=args.prune_macs, round_to=args.round_to or None, size=args.size),
        finetune=FinetuneSpec(epochs=args.finetune_epochs),
        data=args.data,
    )
    result, comparisons = bench_compression(
        args.checkpoint, config, cconfig, keep_dir=args.keep, overwrite=args.overwrite
    )
    payload = {**result.to_dict(), "compression": [c.to_dict() for c in comparisons]}
    text = f"{result.format_table()}\n{format_comparisons(comparisons)}"
    emit(args.json, payload, lambda: print(text), what="benchmark")
    return 0


def _run_proxy(args: argparse.Namespace) -> int:
    from rtseg_nas.benches.proxy import ProxyBenchConfig, format_table, run_proxy_bench

    config = ProxyBenchConfig(
        out_dir=args.proxy_out,
        n_archs=args.proxy_archs,
        data=args.proxy_data,
        size=args.proxy_size,
        full_epochs=args.proxy_full_epochs,
        seed=args.seed,
    )
    result = run_proxy_bench(config, progress=None if args.json == "-" else print)
    text = f"{format_table(result)}\nwritten to {args.proxy_out}/proxy_bench.json"
    emit(args.json, result, lambda: print(text), what="proxy benchmark")
    return 0


def _run_latency_predictor(args: argparse.Namespace) -> int:
    import sys

    from profiling import PREDICTOR_BENCH_ROUNDS
    from rtseg_core import ConfigError
    from rtseg_nas.benches.latency_models import run_predictor_bench

    if args.models < 2 or args.training_models < 3:
        raise ConfigError("--models needs at least 2 and --training-models at least 3 (the fits have 2-3 parameters)")
    result = run_predictor_bench(
        heldout=args.models,
        training=args.training_models,
        seed=args.seed,
        size=args.size,
        timing=_timing(args, PREDICTOR_BENCH_ROUNDS),  # 30-odd models at 256 px: fewer rounds unless told
        table=args.table,
        target=args.target,
        ssh_options=ssh_options_from(args),
        remote_backend=args.remote_backend if args.remote_backend != "auto" else "onnxruntime",
        progress=(lambda msg: print(msg, file=sys.stderr, flush=True)) if args.progress else None,
    )
    emit(args.json, result.to_dict(), lambda: print(result.format_table()), what="benchmark")
    return 0
