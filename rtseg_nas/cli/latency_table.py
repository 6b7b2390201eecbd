"""Build or inspect a kernel latency table: the measurements behind `--target predict:TABLE`.

`build` decomposes models of the RTSeg-Net family into the kernels the runtime executes after its
fusions (Conv+bias+activation, the tokenized MLP's LayerNorm, Gemm, depthwise conv, GELU and
pad/split/slice/concat shift, the EFF gate, resize, heads, ...), writes each distinct kernel as
a small ONNX graph and times it on --target: this machine with ONNX Runtime (--threads), or a
device over SSH through the device profiler (ONNX Runtime, or trtexec in fp32/fp16), --batch-size
kernels per connection. The first --calibrate models are also timed whole, for the per-model
overhead, with the suite's one timer and its defaults (profiling/_timing.py: here one alternating
loop; on a device rotated rounds of one remote call per model). --remote-backend auto builds an
fp16 table with trtexec and an fp32 one with ONNX Runtime; an explicit onnxruntime with
--precision fp16 is refused (ONNX Runtime kernel tables are fp32), never replaced. The models:
`paper`, --models samples of the search space (--space, as the search will use it; --seed) and
one pruned `paper`, plus every --arch given.

The table (JSON) is keyed by target, device, runtime, precision, threads, opset, batch and library
versions; it is saved after every batch, so running the same command again resumes an interrupted
build (and adds new models' kernels to a finished one); a table of another key is refused with the
fields that differ. Predictions from it are labelled PREDICTED: `profile`, `search` and `prune`
take `--target predict:TABLE` (prune: `--latency-target`).

Examples:
  rtseg-nas latency-table build --target local --threads 1 --out tables/cpu-1t.json
  rtseg-nas latency-table build --target ssh://nano@192.168.1.20 --key ~/.ssh/id_ed25519 \\
      --remote-backend trtexec --precision fp16 --out tables/nano-fp16.json
  rtseg-nas latency-table show tables/cpu-1t.json
  rtseg-nas profile --arch paper --target predict:tables/cpu-1t.json
  rtseg-nas latency-table remeasure --study runs/s1   # a predict:TABLE search's front, measured

`remeasure` measures the feasible (Dice, latency) front of a search run with --target predict:TABLE
on --target (local by default) and writes STUDY/remeasured.json, predicted beside measured; the
study's report (`rtseg-nas report --study DIR`) then shows them side by side, with the table's key.
"""

from __future__ import annotations

import argparse
import sys

from rtseg_nas.cli._args import (
    BATCH,
    COUNT,
    COUNT0,
    OPSET,
    SIZE,
    SSH_FILES,
    THREADS,
    add_seed,
    add_ssh,
    check_file_outputs,
    int_in,
    ssh_options_from,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("build", "show", "remeasure"), help="build (or resume), show, remeasure")
    p.add_argument("table", nargs="?", metavar="TABLE", help="with show: the table file")
    p.add_argument("--out", metavar="TABLE", help="with build: the table file (resumed when it exists)")
    p.add_argument("--study", metavar="DIR", help="with remeasure: the study folder of a predict:TABLE search")
    p.add_argument("--target", default="local", help="local or ssh://user@host[:port] (default: %(default)s)")
    p.add_argument(
        "--threads", type=THREADS, default=None, help="intra-op threads (default: 1 locally, the runtime's remotely)"
    )
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="(default: %(default)s)")
    p.add_argument("--size", type=SIZE, default=256, help="input height and width (default: %(default)s)")
    p.add_argument("--models", type=COUNT0, default=10, help="search-space samples to take kernels from (default: 10)")
    p.add_argument("--arch", action="append", default=[], help="also this preset or config JSON (repeatable)")
    p.add_argument(
        "--space",
        metavar="JSON",
        help="sample from this search space (as `search --space`; default: the default space)",
    )
    p.add_argument(
        "--calibrate",
        type=int_in(0, 10_000),
        default=6,
        help="models also timed whole, for the per-model overhead fit; predictions need at least 3 "
        "(default: %(default)s)",
    )
    p.add_argument("--batch-size", type=BATCH, default=64, help="kernels per batch / SSH run (default: %(default)s)")
    p.add_argument(
        "--rounds", type=COUNT, default=5, help="alternating rounds per batch of kernels (default: %(default)s)"
    )
    p.add_argument("--runs", type=COUNT, default=5, help="timed runs per kernel and round (default: %(default)s)")
    p.add_argument("--opset", type=OPSET, default=None, help="ONNX opset (default: 17 locally, 13 over SSH)")
    add_seed(p)
    add_ssh(p)


def run(args: argparse.Namespace) -> int:
    from profiling import LatencyTable
    from rtseg_core import ConfigError

    if args.action == "show":
        if not args.table:
            raise ConfigError("latency-table show: give the table file")
        table = LatencyTable.load(args.table)
        print(_describe(table))
        return 0
    if args.action == "remeasure":
        return _remeasure(args)
    if not args.out:
        raise ConfigError("latency-table build: --out TABLE is required")
    remote_backend = _table_backend(args)  # before building any model: a refusal costs nothing
    from profiling import MIN_CALIBRATION

    if args.calibrate < MIN_CALIBRATION:
        raise ConfigError(
            f"--calibrate {args.calibrate}: a table needs at least {MIN_CALIBRATION} models timed whole for the "
            f"per-model overhead fit, else `--target predict:TABLE` refuses it; give --calibrate {MIN_CALIBRATION} "
            "or more"
        )
    check_file_outputs(args, {"--out": args.out}, "arch", "space", *SSH_FILES)
    from models import build_model, create_config
    from profiling import build_table
    from rtseg_nas.benches.latency_models import training_models

    models = [("paper", build_model(create_config("paper")).eval())]
    models += [(a, build_model(create_config(a)).eval()) for a in args.arch if a != "paper"]
    from rtseg_core import read_json
    from search_spaces import SearchSpace

    space = SearchSpace.from_dict(read_json(args.space), source=args.space) if args.space else SearchSpace()
    models += training_models(args.models, seed=args.seed + 10_000, space=space) if args.models > 0 else []
    if len(models) < MIN_CALIBRATION:  # only these can be timed whole, whatever --calibrate says
        raise ConfigError(
            f"--models {args.models}: {len(models)} model(s) in all (paper, --arch, --models), and the overhead "
            f"fit needs {MIN_CALIBRATION} timed whole; give --models {MIN_CALIBRATION - len(models) + args.models} "
            "or more"
        )
    result = build_table(
        args.out,
        models,
        target=args.target,
        size=args.size,
        precision=args.precision,
        threads=args.threads if args.threads is not None else (1 if args.target == "local" else None),
        opset=args.opset,
        batch_size=args.batch_size,
        calibrate=args.calibrate,
        rounds=args.rounds,
        runs=args.runs,
        ssh_options=ssh_options_from(args),
        remote_backend=remote_backend,
        on_batch=(lambda done, total: print(f"kernels timed: {done}/{total}", file=sys.stderr, flush=True))
        if getattr(args, "progress", False)
        else None,
    )
    print(
        f"{args.out}: {result.kernels_measured} of {result.kernels_total} kernels timed now "
        f"({result.kernels_total - result.kernels_measured} were in the table), {result.calibrated} models "
        f"timed whole, {result.seconds:.0f} s"
    )
    print(_describe(result.table))
    return 0


def _table_backend(args: argparse.Namespace) -> str:
    """The device runtime of an SSH table: --remote-backend as given; ``auto`` = trtexec for fp16 (ONNX
    Runtime tables are fp32), onnxruntime for fp32. An explicit choice that cannot build the table is
    refused before any work, never replaced."""
    from rtseg_core import ConfigError

    if args.remote_backend == "auto":
        return "trtexec" if args.precision == "fp16" else "onnxruntime"
    if str(args.target).startswith("ssh://") and args.remote_backend == "onnxruntime" and args.precision != "fp32":
        raise ConfigError(
            f"--remote-backend onnxruntime with --precision {args.precision}: ONNX Runtime kernel tables are fp32; "
            "use --remote-backend trtexec (or auto) for fp16"
        )
    return args.remote_backend


def _describe(table) -> str:
    from collections import Counter

    k = table.key
    ops = Counter(e.op.split("(")[0] for e in table.kernels.values()).most_common(8)
    lines = [
        f"table {table.path}: built on {k.target}",
        f"  key: {k.describe()}",
        f"  {len(table.kernels)} kernels ({', '.join(f'{op} {n}' for op, n in ops)}, ...)",
        f"  empty-graph call: {table.call_ms if table.call_ms is not None else float('nan'):.4f} ms; "
        f"{len(table.calibration)} models timed whole: "
        + ", ".join(f"{c.model} {c.measured_ms:.2f} ms" for c in table.calibration),
        f"  created {table.created}, updated {table.updated}",
    ]
    return "\n".join(lines)


def _remeasure(args: argparse.Namespace) -> int:
    from rtseg_core import ConfigError
    from validate import remeasure_front

    if not args.study:
        raise ConfigError("latency-table remeasure: --study DIR is required")
    rows = remeasure_front(
        args.study,
        target=args.target,
        threads=args.threads if args.threads is not None else (1 if args.target == "local" else None),
        runs=args.runs * args.rounds,
        ssh_options=ssh_options_from(args),
        remote_backend=args.remote_backend,
    )
    print(f"feasible front of {args.study}: PREDICTED vs MEASURED on {args.target} (median ms)")
    print(f"  {'candidate':<14} {'Dice':>6} {'predicted':>10} {'measured':>9} {'error':>7}")
    for r in rows:
        print(
            f"  {r['name']:<14} {r['dice']:6.3f} {r['predicted_ms']:10.2f} {r['measured_ms']:9.2f} "
            f"{r['error_percent']:+6.1f}%"
        )
    print(f"written: {args.study}/remeasured.json")
    return 0
