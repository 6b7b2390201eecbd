"""A model as the kernels its runtime executes: decomposition of an ONNX graph into timeable pieces.

The exported graph is first canonicalised the way ONNX Runtime itself starts (its *basic*
optimisations: constant folding of the shape arithmetic, BN-into-Conv, MatMul+Add into Gemm,
the transpose optimiser), so every shape is static and every node is a standard ONNX operator
that TensorRT parses as well. The nodes are then grouped into kernels the way the runtimes fuse
them:

- an element-wise node (activation, or arithmetic whose other operand is a constant or already
  in the group) joins the group its inputs come from: Conv + bias + activation, Gemm + GELU's
  Div/Erf/Add/Mul/Mul chain, HardSigmoid + Mul (HardSwish), the EFF gate's Sigmoid/Mul/Add;
- data-movement nodes (Pad, Split, Slice, Concat, Reshape, Transpose, (Un)Squeeze) join a group
  of data movement, so the tokenized MLP's shift (pad, split, roll as slice + concat, crop) is one
  kernel, as is each token-to-image reshape;
- everything else (Conv, Gemm/MatMul, LayerNormalization, MaxPool, Resize, reductions, a residual
  Add of two activations) starts a kernel.

Each kernel has a canonical *signature* (operators, attributes, input/output shapes, the values of
integer constants such as slice bounds and pads; float weights by shape only) whose hash keys the
latency table, the numeric *features* the regressor uses for kernels the table has not seen, and,
on request, a small self-contained ONNX graph that runs just that kernel with the original weights.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtseg_core import ProfilingError, scratch_dir

# element-wise operators that fuse into the kernel producing their input
ELEMENTWISE = frozenset(
    {
        "Relu",
        "Sigmoid",
        "Tanh",
        "HardSigmoid",
        "HardSwish",
        "LeakyRelu",
        "Clip",
        "Erf",
        "Sqrt",
        "Exp",
        "Neg",
        "Abs",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Gelu",
    }
)
# operators that only move or view data
DATA_MOVEMENT = frozenset(
    {"Pad", "Split", "Slice", "Concat", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity"}
)
# friendly kernel names for the common op sequences of the family
_NAMES = {
    ("Div", "Erf", "Add", "Mul", "Mul"): "GELU",
    ("HardSigmoid", "Mul"): "HardSwish",
}
_ELEM_SIZE = {1: 4, 10: 2, 11: 8, 7: 8, 6: 4, 2: 1, 3: 1, 9: 1}


@dataclass(frozen=True)
class Kernel:
    """One kernel of a model: its table key, readable type, where it sits, its shape and features."""

    key: str  # sha1 of the signature (16 hex digits)
    op: str  # e.g. "Conv+Relu", "GELU", "shift(Pad+Split+Slice+Concat...)"
    module: str  # the PyTorch module path the nodes came from, e.g. "tok4.blocks.0.mlp"
    signature: str  # canonical text the key hashes
    features: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "op": self.op,
            "module": self.module,
            "signature": self.signature,
            "features": self.features,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Kernel:
        """The inverse of :meth:`to_dict` (a cached decomposition's kernels); raises KeyError/TypeError/ValueError."""
        features = {str(k): float(v) for k, v in dict(d["features"]).items()}
        return cls(str(d["key"]), str(d["op"]), str(d["module"]), str(d["signature"]), features)


@dataclass(frozen=True)
class KernelGraph:
    """A kernel as a runnable ONNX model (serialised) and the shapes of its inputs."""

    key: str
    model: bytes
    inputs: tuple[tuple[str, tuple[int, ...], str], ...]  # (name, shape, numpy dtype)


@dataclass(frozen=True)
class Decomposition:
    """A model's kernels in execution order, and (when asked) a runnable graph per distinct kernel."""

    source: str
    opset: int
    input_shape: tuple[int, ...]
    kernels: tuple[Kernel, ...]
    graphs: dict[str, KernelGraph] = field(default_factory=dict)

    def distinct(self) -> dict[str, Kernel]:
        out: dict[str, Kernel] = {}
        for k in self.kernels:
            out.setdefault(k.key, k)
        return out


def canonical_model(onnx_path: str | Path):
    """The graph after ONNX Runtime's basic (standard-operator) optimisations, shapes inferred."""
    import onnx
    import onnxruntime as ort

    onnx_path = Path(onnx_path)
    with scratch_dir("kernels") as tmp:
        out = Path(tmp) / "basic.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(out)
        opts.log_severity_level = 3
        try:
            ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT's own exception types
            raise ProfilingError(f"{onnx_path}: ONNX Runtime cannot load the model ({str(exc)[:300]})") from None
        model = onnx.load(str(out))
    _fill_default_attributes(model)
    return onnx.shape_inference.infer_shapes(model, strict_mode=False)


def _fill_default_attributes(model) -> int:
    """Write every attribute the operator's schema defaults and the node leaves out; how many were added.

    ONNX Runtime writes them itself into a graph its optimiser changed (every whole model of the
    family), but not into one it left as it was (a lone Conv, a segment of a model:
    :mod:`profiling._segment_kernels`); a kernel's signature must not depend on which happened.
    """
    import onnx
    from onnx import defs

    opset = {o.domain or "": o.version for o in model.opset_import}
    added = 0
    for node in model.graph.node:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx"):
            continue
        try:
            schema = defs.get_schema(node.op_type, opset.get(domain, opset.get("", 0)), domain)
        except defs.SchemaError:
            continue
        have = {a.name for a in node.attribute}
        for name, attr in schema.attributes.items():
            default = attr.default_value
            if name in have or default is None or not default.name:
                continue
            filled = onnx.AttributeProto()
            filled.CopyFrom(default)
            filled.name = name
            node.attribute.append(filled)
            added += 1
    return added


def _tensor_types(model) -> dict[str, tuple[tuple[int, ...], int]]:
    """name -> (static shape, element type) for every typed value of the graph."""
    out = {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        dims = []
        for d in t.shape.dim:
            if not d.HasField("dim_value"):
                dims = None
                break
            dims.append(d.dim_value)
        if dims is not None and t.HasField("shape"):
            out[vi.name] = (tuple(dims), t.elem_type)
    return out


def _attr_text(node) -> str:
    from onnx import helper

    parts = []
    for a in sorted(node.attribute, key=lambda a: a.name):
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list):
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        parts.append(f"{a.name}={value}")
    return ",".join(parts)


def _const_text(init) -> str:
    from onnx import numpy_helper

    arr = numpy_helper.to_array(init)
    text = f"{arr.dtype}{list(arr.shape)}"
    if arr.dtype.kind in "iub":  # slice bounds, pads, axes, shapes: they change the work done
        text += "=" + ",".join(str(int(v)) for v in arr.reshape(-1)[:64])
    elif arr.size <= 1:
        text += "=scalar"
    return text


def _module_of(names: list[str]) -> str:
    paths = [n.strip("/").split("/")[:-1] for n in names if n.startswith("/")]
    if not paths:
        return ""
    common = paths[0]
    for p in paths[1:]:
        i = 0
        while i < min(len(common), len(p)) and common[i] == p[i]:
            i += 1
        common = common[:i]
    return ".".join(common)


def _group_nodes(model, consts: set[str]) -> list[list[int]]:
    """Node indices of the graph grouped into kernels (see the module docstring)."""
    nodes = list(model.graph.node)
    producer_group: dict[str, int] = {}  # tensor -> group index
    groups: list[list[int]] = []
    externals: list[set[str]] = []
    movement: list[bool] = []
    for i, node in enumerate(nodes):
        data_inputs = [t for t in node.input if t and t not in consts]
        sources = {producer_group[t] for t in data_inputs if t in producer_group}
        target = None
        is_elem = node.op_type in ELEMENTWISE
        is_move = node.op_type in DATA_MOVEMENT
        if (is_elem or is_move) and data_inputs:
            candidates = sources or set()
            for g in sorted(candidates, reverse=True):
                if all(producer_group.get(t) == g or t in externals[g] for t in data_inputs) and (
                    is_elem or movement[g]
                ):
                    target = g
                    break
        if target is None:
            groups.append([i])
            externals.append(set(data_inputs))
            movement.append(is_move)
            target = len(groups) - 1
        else:
            groups[target].append(i)
            movement[target] = movement[target] and is_move
        for t in node.output:
            if t:
                producer_group[t] = target
    return groups


def _flops(node, types) -> float:
    out = types.get(node.output[0]) if node.output else None
    out_elems = math.prod(out[0]) if out else 0
    if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in types:
        w = types[node.input[1]][0]
        return 2.0 * out_elems * math.prod(w[1:])
    if node.op_type in ("Gemm", "MatMul") and len(node.input) > 1 and node.input[0] in types:
        k = types[node.input[0]][0][-1]
        return 2.0 * out_elems * k
    return float(out_elems)


def _bytes(shape_type) -> float:
    shape, elem = shape_type
    return float(math.prod(shape) * _ELEM_SIZE.get(elem, 4))


def decompose_onnx(onnx_path: str | Path, *, graphs: bool = False, inputs: int = 1) -> Decomposition:
    """The kernels of the ONNX model at ``onnx_path`` (static input shape), optionally with graphs.

    ``inputs``: how many data inputs the graph takes (a whole model one image; a segment of a model,
    :mod:`profiling._segment_kernels`, the tensors its module receives); ``input_shape`` is the first's.
    """
    model = canonical_model(onnx_path)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consts = set(inits)
    types = _tensor_types(model)
    for name, init in inits.items():
        types[name] = (tuple(init.dims), init.data_type)
    graph_inputs = [i for i in g.input if i.name not in consts]
    if len(graph_inputs) != inputs or any(i.name not in types for i in graph_inputs):
        what = "one image input" if inputs == 1 else f"{inputs} inputs"
        raise ProfilingError(f"{onnx_path}: the kernel decomposition needs {what} with a static shape")
    input_shape = types[graph_inputs[0].name][0]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    nodes = list(g.node)
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in n.input:
            consumers.setdefault(t, []).append(i)
    graph_outputs = {o.name for o in g.output}
    kernels: list[Kernel] = []
    built: dict[str, KernelGraph] = {}
    for members in _group_nodes(model, consts):
        member_set = set(members)
        produced: dict[str, str] = {}
        ext: list[str] = []
        lines = []
        used_inits: list[str] = []
        for j, idx in enumerate(members):
            node = nodes[idx]
            refs = []
            for t in node.input:
                if not t:
                    refs.append("-")
                elif t in produced:
                    refs.append(produced[t])
                elif t in inits:
                    refs.append("c:" + _const_text(inits[t]))
                    if t not in used_inits:
                        used_inits.append(t)
                else:
                    if t not in ext:
                        ext.append(t)
                    refs.append(f"in{ext.index(t)}")
            for k, t in enumerate(node.output):
                if t:
                    produced[t] = f"n{j}.{k}"
            lines.append(f"{node.domain or 'ai.onnx'}::{node.op_type}({_attr_text(node)})[{' '.join(refs)}]")
        outs = [
            t
            for idx in members
            for t in nodes[idx].output
            if t and (t in graph_outputs or any(c not in member_set for c in consumers.get(t, [])))
        ]
        missing = [t for t in ext + outs if t not in types]
        if missing:
            raise ProfilingError(f"{onnx_path}: no static shape for {missing[0]!r}; cannot describe the kernel")
        sig = "\n".join(
            [f"opset {opset}"]
            + [f"in{i}: {types[t][1]}{list(types[t][0])}" for i, t in enumerate(ext)]
            + lines
            + [f"out: {produced[t]} {types[t][1]}{list(types[t][0])}" for t in outs]
        )
        key = hashlib.sha1(sig.encode("utf-8")).hexdigest()[:16]
        ops = tuple(nodes[i].op_type for i in members)
        feats = {
            "flops": sum(_flops(nodes[i], types) for i in members),
            "in_bytes": sum(_bytes(types[t]) for t in ext),
            "out_bytes": sum(_bytes(types[t]) for t in outs),
            "param_bytes": sum(_bytes(types[t]) for t in used_inits),
            "nodes": float(len(members)),
            "inputs": float(len(ext)),
            "outputs": float(len(outs)),
        }
        first = nodes[members[0]]
        if first.op_type == "Conv" and len(first.input) > 1:
            w = types[first.input[1]][0]
            group_attr = next((a.i for a in first.attribute if a.name == "group"), 1)
            stride = next((max(a.ints) for a in first.attribute if a.name == "strides"), 1)
            feats.update({"kernel_hw": float(math.prod(w[2:])), "groups": float(group_attr), "stride": float(stride)})
        kernels.append(
            Kernel(
                key=key,
                op=_op_name(ops),
                module=_module_of([nodes[i].name for i in members]),
                signature=sig,
                features=feats,
            )
        )
        if graphs and key not in built:
            built[key] = _kernel_graph(model, key, [nodes[i] for i in members], ext, outs, used_inits, types)
    return Decomposition(str(onnx_path), opset, tuple(input_shape), tuple(kernels), built)


def _op_name(ops: tuple[str, ...]) -> str:
    named = list(ops)
    for pattern, name in _NAMES.items():  # GELU's five nodes, HardSwish's two: say what they are
        n = len(pattern)
        i = 0
        while i + n <= len(named):
            if tuple(named[i : i + n]) == pattern:
                named[i : i + n] = [name]
            i += 1
    ops = tuple(named)
    if len(ops) > 4 and all(o in DATA_MOVEMENT for o in ops):
        if "Pad" in ops and "Concat" in ops:
            return f"shift({len(ops)} pad/split/slice/concat)"
        return f"data-movement({len(ops)})"
    return "+".join(ops[:4]) + ("+..." if len(ops) > 4 else "")


def _kernel_graph(model, key, members, ext, outs, used_inits, types) -> KernelGraph:
    import onnx
    from onnx import helper

    np_types = {1: "float32", 10: "float16", 11: "float64", 7: "int64", 6: "int32", 9: "bool"}
    inits = {i.name: i for i in model.graph.initializer}
    inputs = [helper.make_tensor_value_info(t, types[t][1], list(types[t][0])) for t in ext]
    outputs = [helper.make_tensor_value_info(t, types[t][1], list(types[t][0])) for t in outs]
    graph = helper.make_graph(list(members), f"kernel_{key}", inputs, outputs, [inits[t] for t in used_inits])
    kmodel = helper.make_model(graph, opset_imports=list(model.opset_import))
    kmodel.ir_version = model.ir_version
    onnx.checker.check_model(kmodel)
    return KernelGraph(
        key=key,
        model=kmodel.SerializeToString(),
        inputs=tuple((t, tuple(types[t][0]), np_types.get(types[t][1], "float32")) for t in ext),
    )


def baseline_graph(opset: int) -> KernelGraph:
    """The cheapest possible run (one Add on one float): the per-call cost every kernel timing includes."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["y"])],
        "baseline",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.ones(1, np.float32), "c")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return KernelGraph(key="__baseline__", model=model.SerializeToString(), inputs=(("x", (1,), "float32"),))
