"""Count a model's parameters, MACs and activation memory, and time it here, on a device, or by estimate.

Parameters are the true count with the paper's thop convention beside it; MACs come from fvcore
and from thop (with and without a DSConv rule). Latency is ONNX Runtime and PyTorch eager on
this machine (--target local), a device over SSH (--target ssh://user@host[:port]) or a
labelled roofline estimate for the Jetson Nano (--target jetson-nano-estimate), or a prediction
from a kernel latency table built on a target (--target predict:TABLE, labelled predicted).

Examples:
  rtseg-nas profile --arch paper --size 256
  rtseg-nas profile --checkpoint runs/best.pt --threads 2 --json profile.json
  rtseg-nas profile --onnx model_int8.onnx --backend onnxruntime
  rtseg-nas profile --arch paper --target jetson-nano-estimate --precision fp16
  rtseg-nas profile --arch paper --target ssh://nano@192.168.1.20 --key ~/.ssh/id_ed25519 --remote-backend trtexec
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import (
    BATCH,
    COUNT,
    COUNT0,
    OPSET,
    SIZE,
    THREADS,
    add_device,
    add_json_out,
    add_model_source,
    add_seed,
    add_ssh,
    emit,
    model_source,
    ssh_options_from,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_source(p)
    p.add_argument("--size", type=SIZE, help="input height and width (default: 256, or the ONNX file's fixed size)")
    p.add_argument("--batch", type=BATCH, default=1, help="batch size (default: %(default)s)")
    p.add_argument(
        "--target",
        default="local",
        help="local, ssh://user@host[:port], jetson-nano-estimate or predict:TABLE (kernel-level predictor on a "
        "table built by `rtseg-nas latency-table build`) (default: %(default)s)",
    )
    p.add_argument(
        "--backend",
        choices=("all", "onnxruntime", "pytorch"),
        default="all",
        help="local runtimes to time (default: %(default)s)",
    )
    p.add_argument("--threads", type=THREADS, help="intra-op threads (default: 1 locally; the runtime's own remotely)")
    p.add_argument(
        "--warmup", type=COUNT0, help="warm-up runs (default: 10 locally; remote: 20 runs or 200 ms trtexec)"
    )
    p.add_argument("--runs", type=COUNT, help="timed runs (default: 50 locally, 100 remotely)")
    p.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        help="precision (default: fp32 for models, read from the graph for --onnx)",
    )
    p.add_argument("--opset", type=OPSET, help="ONNX opset of the exported model (default: 17 locally, 13 over SSH)")
    p.add_argument("--include-aux", action="store_true", help="count the four deep-supervision heads too")
    p.add_argument("--no-count", action="store_true", help="skip parameter/MAC/memory counting")
    add_seed(p)
    add_device(p)
    add_ssh(p)
    add_json_out(p, "the report")


def run(args: argparse.Namespace) -> int:
    from profiling import profile_model

    ssh_options = ssh_options_from(args)
    report = profile_model(
        model_source(args),
        target=args.target,
        size=args.size,
        batch=args.batch,
        backends=("onnxruntime", "pytorch") if args.backend == "all" else (args.backend,),
        threads=args.threads,
        warmup=args.warmup,
        runs=args.runs,
        precision=args.precision,
        ssh_options=ssh_options,
        remote_backend=args.remote_backend,
        opset=args.opset,
        count=not args.no_count,
        include_aux=args.include_aux,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    emit(args.json, report.to_dict(), lambda: print(report.format_table()))
    return 0
