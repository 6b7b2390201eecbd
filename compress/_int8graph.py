"""What of a quantized graph ONNX Runtime actually runs on integers, and why the rest stays float.

A QDQ file says which tensors are quantized; what runs as integer kernels is decided by ONNX
Runtime's graph optimiser when the session is made (it folds ``DQ -> Conv -> Q`` into
``QLinearConv``, drops Q/DQ around data movement, ...), and it declines silently. So the report
counts the graph ORT executes: a session with the suite's options (``profiling.make_session``:
ORT_ENABLE_ALL, the level every timing uses) writes its optimised graph
(``optimized_model_filepath``), and that file is read here. Times per op class come from ORT's
profiler (:mod:`compress._opprofile`) on the same options.

Reasons a compute node stays float (the first that applies, checked on the executed graph):

- its op type has no integer kernel in ORT's CPU provider (HardSwish, LayerNormalization, ...);
- no Q/DQ around it: one of its inputs is a float tensor that no DequantizeLinear produced;
- its output is not quantized (not consumed by QuantizeLinear alone);
- it is fed by a QuantizeLinear -> DequantizeLinear pair whose Q (or DQ) has several consumers:
  ORT's QDQ selectors folded none of them;
- otherwise: between DQ and Q but not folded (ORT has no rule for this combination).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtseg_core import CompressionError, ProfilingError, Record, scratch_dir

INT8_GRAPH_JSON = "int8_graph.json"

# Integer kernels of ORT's CPU provider that a QDQ graph can be folded into (any domain).
_INTEGER_OPS = {"ConvInteger", "MatMulInteger", "QGemm", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
# Op types ORT can run as an integer kernel when the node sits between DQ and Q.
HAS_INTEGER_KERNEL = frozenset(
    {
        "Conv",
        "FusedConv",
        "MatMul",
        "Gemm",
        "Add",
        "Mul",
        "Concat",
        "Sigmoid",
        "LeakyRelu",
        "AveragePool",
        "GlobalAveragePool",
        "Softmax",
        "Where",
    }
)
# Data movement: ORT runs these on whatever arrives (int8 when Q/DQ around them were dropped).
DATA_MOVEMENT = frozenset(
    {
        "Resize",
        "MaxPool",
        "Slice",
        "Reshape",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Flatten",
        "Gather",
        "Split",
        "Pad",
        "Identity",
        "DepthToSpace",
        "SpaceToDepth",
        "ReorderInput",
        "ReorderOutput",
        "NhwcMaxPool",
        "Upsample",
    }
)
CONVERT = frozenset({"QuantizeLinear", "DequantizeLinear", "Cast"})


def is_integer_op(op_type: str) -> bool:
    return op_type.startswith("QLinear") or op_type in _INTEGER_OPS


def is_conv(op_type: str) -> bool:
    return "Conv" in op_type and "Transpose" not in op_type


@dataclass(frozen=True)
class FloatNode:
    """A compute node of the executed graph that runs in float, and why."""

    name: str
    op_type: str
    reason: str


@dataclass(frozen=True)
class OpClassTime:
    """Time per run (ms) of one class of ops: ``int8`` kernels, ``convert`` (Q/DQ/Cast) or ``float``."""

    kind: str
    ms_per_run: float
    share: float


@dataclass(frozen=True)
class Int8GraphReport(Record):
    """The INT8 graph report of one ONNX file (module docstring): counts on the graph ORT executes.

    ``conv_total`` = ``conv_integer`` + ``conv_float``; ``qdq_pairs``: QuantizeLinear -> DequantizeLinear
    edges left in the executed graph (each one a float round trip); ``float_reasons``: how many
    float compute nodes for each reason; ``op_times``: ORT profiler per op type (empty when not profiled).
    """

    onnx: str
    optimization: str  # the session options the counts were taken under
    onnxruntime: str
    conv_total: int
    conv_integer: int
    conv_float: int
    quantize_nodes: int
    dequantize_nodes: int
    qdq_pairs: int
    integer_ops: dict[str, int]
    float_ops: dict[str, int]  # compute op types running in float (no data movement, no Q/DQ)
    float_reasons: dict[str, int]
    float_nodes: list[FloatNode] = field(default_factory=list)
    op_classes: list[OpClassTime] = field(default_factory=list)
    op_times: list[dict[str, Any]] = field(default_factory=list)
    profile_runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["float_nodes"] = [dataclasses.asdict(f) for f in self.float_nodes]
        out["op_classes"] = [dataclasses.asdict(c) for c in self.op_classes]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Int8GraphReport:
        data = dict(data)
        data["float_nodes"] = [FloatNode(**f) for f in data.get("float_nodes", [])]
        data["op_classes"] = [OpClassTime(**c) for c in data.get("op_classes", [])]
        return super().from_dict(data)

    def summary(self) -> str:
        """A few lines for ``quantize``'s output."""
        lines = [
            f"INT8 graph (as ONNX Runtime {self.onnxruntime} executes it, {self.optimization}): "
            f"{self.conv_integer}/{self.conv_total} Conv as integer kernels, {self.qdq_pairs} Q->DQ pairs left, "
            f"{self.quantize_nodes} Q / {self.dequantize_nodes} DQ nodes",
        ]
        if self.float_reasons:
            top = sorted(self.float_reasons.items(), key=lambda kv: -kv[1])[:5]
            lines.append("  stays float: " + "; ".join(f"{n}x {r}" for r, n in top))
        if self.op_classes:
            lines.append(
                f"  time per run by op class ({self.profile_runs} profiled runs): "
                + ", ".join(f"{c.kind} {c.ms_per_run:.2f} ms ({c.share:.0%})" for c in self.op_classes)
            )
        return "\n".join(lines)


def executed_graph(onnx_path: str | Path, out_path: str | Path, *, threads: int = 1) -> None:
    """Write to ``out_path`` the graph ONNX Runtime executes for ``onnx_path`` with the suite's session options."""
    from profiling import make_session

    try:
        make_session(onnx_path, threads=threads, providers=["CPUExecutionProvider"], optimized_path=out_path)
    except ProfilingError as exc:
        raise CompressionError(str(exc)) from None
    if not Path(out_path).is_file():
        raise CompressionError(f"{onnx_path}: ONNX Runtime wrote no optimised graph to {out_path}")


def int8_graph_report(
    onnx_path: str | Path, *, threads: int = 1, profile_runs: int = 10, keep_executed: str | Path | None = None
) -> Int8GraphReport:
    """Count integer/float Conv, Q/DQ and float ops on the graph ORT executes, and profile op classes.

    ``profile_runs`` = 0 skips the profiler. ``keep_executed``: also keep the executed graph there.
    """
    import onnx
    import onnxruntime as ort

    with scratch_dir("int-graph") as tmp:
        executed = Path(keep_executed) if keep_executed else Path(tmp) / "executed.onnx"
        executed_graph(onnx_path, executed, threads=threads)
        graph = onnx.load(str(executed), load_external_data=False).graph
    counts = count_graph(graph)
    classes: list[OpClassTime] = []
    times: list[dict[str, Any]] = []
    if profile_runs:
        from compress._opprofile import profile_ops

        rows = profile_ops(onnx_path, threads=threads, runs=profile_runs, warmup=3)
        by_kind: dict[str, float] = defaultdict(float)
        for r in rows:
            by_kind[r.kind] += r.ms_per_run
        total = sum(by_kind.values()) or 1.0
        classes = [OpClassTime(k, ms, ms / total) for k, ms in sorted(by_kind.items(), key=lambda kv: -kv[1])]
        times = [
            {"op_type": r.op_type, "kind": r.kind, "ms_per_run": r.ms_per_run, "share": r.share, "nodes": r.nodes}
            for r in rows
        ]
    return Int8GraphReport(
        onnx=Path(onnx_path).name,
        optimization="ORT_ENABLE_ALL, CPUExecutionProvider, the session options of every timing",
        onnxruntime=ort.__version__,
        op_classes=classes,
        op_times=times,
        profile_runs=profile_runs,
        **counts,
    )


def count_graph(graph) -> dict[str, Any]:
    """The counts of :class:`Int8GraphReport` for one (executed) ``onnx.GraphProto``."""
    producers: dict[str, Any] = {}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for name in node.output:
            producers[name] = node
        for name in node.input:
            if name:
                consumers[name].append(node)
    constants = {i.name for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    ops = Counter(n.op_type for n in graph.node)
    convs = [n for n in graph.node if is_conv(n.op_type)]
    conv_integer = sum(is_integer_op(n.op_type) for n in convs)
    quantizers = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    pairs = sum(c.op_type == "DequantizeLinear" for q in quantizers for c in consumers[q.output[0]])
    float_nodes = []
    for node in graph.node:
        op = node.op_type
        if is_integer_op(op) or op in CONVERT or op in DATA_MOVEMENT or op in ("Constant", "Shape"):
            continue
        float_nodes.append(FloatNode(node.name, op, _float_reason(node, producers, consumers, constants, outputs)))
    return {
        "conv_total": len(convs),
        "conv_integer": conv_integer,
        "conv_float": len(convs) - conv_integer,
        "quantize_nodes": ops.get("QuantizeLinear", 0),
        "dequantize_nodes": ops.get("DequantizeLinear", 0),
        "qdq_pairs": pairs,
        "integer_ops": dict(sorted((k, v) for k, v in ops.items() if is_integer_op(k))),
        "float_ops": dict(sorted(Counter(f.op_type for f in float_nodes).items())),
        "float_reasons": dict(Counter(f.reason for f in float_nodes).most_common()),
        "float_nodes": float_nodes,
    }


def _float_reason(node, producers, consumers, constants, outputs) -> str:
    op = node.op_type
    if op not in HAS_INTEGER_KERNEL:
        return f"{op} has no integer kernel in ONNX Runtime's CPU provider"
    data = [i for i in node.input if i and i not in constants]
    for name in data:
        src = producers.get(name)
        if src is None or src.op_type != "DequantizeLinear":
            origin = "the graph input" if src is None else f"{src.op_type} (float)"
            return f"no Q/DQ around it: an input comes from {origin}"
    outs = [c for o in node.output for c in consumers[o]]
    if any(o in outputs for o in node.output) or not outs or any(c.op_type != "QuantizeLinear" for c in outs):
        return "output not quantized (not consumed by QuantizeLinear alone)"
    for name in data:
        dq = producers[name]
        if len(consumers[dq.output[0]]) > 1:
            return f"{op} fed by a DequantizeLinear with {len(consumers[dq.output[0]])} consumers: not folded"
        q = producers.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear" and len(consumers[q.output[0]]) > 1:
            return f"{op} fed by a QuantizeLinear with {len(consumers[q.output[0]])} consumers: not folded"
    return f"{op} between DQ and Q but not folded (no ONNX Runtime rule for this case)"


def write_int8_graph(report: Int8GraphReport, folder: Path) -> Path:
    from rtseg_core import atomic_write_json

    path = folder / INT8_GRAPH_JSON
    atomic_write_json(path, report.to_dict())
    return path
