"""Where an ONNX Runtime session spends its time, per operator type (ORT's built-in profiler).

Used to explain a missed speed-up: which ops stay in float, which run in INT8, what dominates.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtseg_core import CompressionError, check_threads, scratch_dir

INT8_OPS = {
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "QLinearAdd",
    "QLinearMul",
    "QLinearConcat",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
    "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QGemm",
}
CONVERT_OPS = {"QuantizeLinear", "DequantizeLinear", "Cast"}


@dataclass(frozen=True)
class OpTime:
    """Total time of one operator type (of one kind) over the profiled runs, per run (ms), and its share.

    An op type that runs on 8-bit and on float tensors (a Transpose) gives one row per kind.
    """

    op_type: str
    ms_per_run: float
    share: float  # of all node time
    nodes: int  # distinct nodes of this type that ran
    kind: str  # "int8", "convert" (Q/DQ/Cast), "int8-move" (Transpose, Resize... on 8-bit data), "float"


@dataclass(frozen=True)
class GraphProfile:
    """Node time per run grouped by op type and by model stage (the first part of the node name)."""

    by_op: list[OpTime]
    by_stage: list[tuple[str, float]]  # (stage, ms per run), largest first; fused nodes keep their own name
    total_ms: float


def profile_graph(
    onnx_path: str | Path, *, threads: int = 1, runs: int = 20, warmup: int = 5, seed: int = 0
) -> GraphProfile:
    """Run ``onnx_path`` ``warmup + runs`` times with ``enable_profiling`` and sum node times per run.

    Only the timed runs count (the profile's first ``warmup`` runs are dropped). Node names come
    from the exporter (``/enc1/conv/Conv``), so a stage is ``enc1``, ``fuse4``, ...; nodes that
    ONNX Runtime fused or inserted keep their own name (e.g. ``SkipLayerNormalization``).
    """
    import onnxruntime as ort

    path = Path(onnx_path)
    check_threads(threads, source="onnxruntime intra-op threads")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    with scratch_dir("ortprof") as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise CompressionError(f"{path}: ONNX Runtime cannot load the model ({str(exc)[:300]})") from None
        inp = session.get_inputs()[0]
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
        for _ in range(warmup + runs):
            session.run(None, {inp.name: x})
        trace = json.loads(Path(session.end_profiling()).read_text())
    events = [e for e in trace if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
    n_runs = warmup + runs
    per_run = max(1, len(events) // n_runs)  # every run executes the same nodes in the same order
    timed = events[warmup * per_run :] or events
    by_op: dict[tuple[str, str], float] = defaultdict(float)
    by_stage: dict[str, float] = defaultdict(float)
    nodes: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in timed:
        name = e["name"][: -len("_kernel_time")]
        args = e.get("args", {})
        op = args.get("op_name", "?")
        ms = float(e.get("dur", 0)) / 1000.0 / runs
        key = (op, _kind(op, args.get("input_type_shape")))
        by_op[key] += ms
        nodes[key].add(name)
        by_stage[name.strip("/").split("/")[0] if name.startswith("/") else op] += ms
    total = sum(by_op.values()) or 1.0
    ops = [OpTime(op, ms, ms / total, len(nodes[(op, kind)]), kind) for (op, kind), ms in by_op.items()]
    return GraphProfile(
        by_op=sorted(ops, key=lambda r: r.ms_per_run, reverse=True),
        by_stage=sorted(by_stage.items(), key=lambda kv: kv[1], reverse=True),
        total_ms=sum(by_op.values()),
    )


def _kind(op: str, inputs) -> str:
    """``int8`` kernel, ``convert`` (Q/DQ/Cast), ``int8-move`` (data movement on an 8-bit tensor) or ``float``."""
    if op in INT8_OPS:
        return "int8"
    if op in CONVERT_OPS:
        return "convert"
    first = next(iter(inputs[0]), None) if inputs and isinstance(inputs[0], dict) else None
    return "int8-move" if first in ("int8", "uint8") else "float"


def profile_ops(onnx_path: str | Path, **kwargs) -> list[OpTime]:
    """:func:`profile_graph`'s per-op-type rows (largest first)."""
    return profile_graph(onnx_path, **kwargs).by_op


def summarize_ops(rows: list[OpTime], *, top: int = 6) -> str:
    """One line: time by kind, then the top op types, e.g. ``int8 41% | float 50% | convert 9% | Conv 30%, ...``."""
    by_kind: dict[str, float] = defaultdict(float)
    for r in rows:
        by_kind[r.kind] += r.share
    kinds = " | ".join(f"{k} {v:.0%}" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))
    ops = ", ".join(f"{r.op_type} {r.share:.0%} ({r.ms_per_run:.2f} ms, {r.kind})" for r in rows[:top])
    return f"{kinds} || {ops}"
