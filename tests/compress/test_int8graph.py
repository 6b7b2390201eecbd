"""The INT8 graph report (compress/_int8graph.py) on hand-built QDQ graphs whose answer is known."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress import Int8GraphReport, int8_graph_report
from compress._int8graph import count_graph

rng = np.random.default_rng(0)


def _scalar(name: str, value, dtype) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def _qconv(nodes, inits, x: str, name: str, *, out_q: bool) -> str:
    """``x`` (float, already DQ'd) -> Conv with an INT8 per-tensor weight (DQ) -> Q -> DQ (when ``out_q``)."""
    w = rng.integers(-100, 100, size=(4, 4, 3, 3)).astype(np.int8)
    inits += [numpy_helper.from_array(w, f"{name}_w"), _scalar(f"{name}_ws", 0.01, np.float32)]
    inits += [_scalar(f"{name}_wz", 0, np.int8)]
    nodes.append(helper.make_node("DequantizeLinear", [f"{name}_w", f"{name}_ws", f"{name}_wz"], [f"{name}_wf"]))
    nodes.append(helper.make_node("Conv", [x, f"{name}_wf"], [f"{name}_y"], name=name, pads=[1, 1, 1, 1]))
    if not out_q:
        return f"{name}_y"
    nodes.append(helper.make_node("QuantizeLinear", [f"{name}_y", "s", "z"], [f"{name}_q"]))
    nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", "s", "z"], [f"{name}_dq"]))
    return f"{name}_dq"


def _model(nodes, inits, out: str) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 4, 8, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.fixture
def chain(tmp_path):
    """x -Q/DQ-> conv_a -Q/DQ-> conv_b -Q/DQ-> Erf -> conv_c (float weights, no Q/DQ) -> y.

    Known answer: ORT folds conv_a and conv_b into QLinearConv (UINT8 activations, one consumer
    each); Erf has no integer kernel; conv_c's input is float, so it stays a float Conv.
    """
    inits = [_scalar("s", 0.02, np.float32), _scalar("z", 128, np.uint8)]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xdq"]),
    ]
    a = _qconv(nodes, inits, "xdq", "conv_a", out_q=True)
    b = _qconv(nodes, inits, a, "conv_b", out_q=True)
    nodes.append(helper.make_node("Erf", [b], ["e"], name="erf"))
    inits.append(numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), "conv_c_w"))
    nodes.append(helper.make_node("Conv", ["e", "conv_c_w"], ["y"], name="conv_c", pads=[1, 1, 1, 1]))
    path = tmp_path / "chain.onnx"
    onnx.save(_model(nodes, inits, "y"), str(path))
    return path


def test_counts_on_the_graph_onnx_runtime_executes(chain, tmp_path):
    report = int8_graph_report(chain, profile_runs=2, keep_executed=tmp_path / "executed.onnx")
    assert (report.conv_total, report.conv_integer, report.conv_float) == (3, 2, 1)
    assert report.integer_ops == {"QLinearConv": 2}
    # left: the input's Q (feeding the first QLinearConv) and conv_b's output DQ (feeding Erf); no Q->DQ pair
    assert (report.quantize_nodes, report.dequantize_nodes, report.qdq_pairs) == (1, 1, 0)
    reasons = {f.op_type: f.reason for f in report.float_nodes}
    assert reasons["Erf"] == "Erf has no integer kernel in ONNX Runtime's CPU provider"
    (conv,) = [f for f in report.float_nodes if "Conv" in f.op_type]
    assert conv.reason.startswith("no Q/DQ around it: an input comes from")
    # the executed graph really is what was counted
    executed = onnx.load(str(tmp_path / "executed.onnx")).graph
    assert sum(n.op_type == "QLinearConv" for n in executed.node) == 2
    # the profile's op classes cover the integer kernels and the float ones
    assert {c.kind for c in report.op_classes} >= {"int8", "float"}
    assert sum(c.share for c in report.op_classes) == pytest.approx(1.0)


def test_the_report_round_trips_through_json_and_summarises(chain):
    report = int8_graph_report(chain, profile_runs=0)
    back = Int8GraphReport.from_dict(report.to_dict())
    assert back == report and back.op_classes == [] and back.profile_runs == 0
    assert "2/3 Conv as integer kernels, 0 Q->DQ pairs left" in report.summary()


def test_reasons_on_a_graph_with_fan_out_and_an_unquantized_output():
    """count_graph on a QDQ graph as written (not executed): one Q feeding two DQ -> Conv pairs, and a
    Conv whose output is not quantized; every reason is the one the module docstring lists."""
    inits = [_scalar("s", 0.02, np.float32), _scalar("z", 0, np.int8)]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["d1"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["d2"]),
    ]
    left = _qconv(nodes, inits, "d1", "left", out_q=True)
    right = _qconv(nodes, inits, "d2", "right", out_q=True)
    nodes.append(helper.make_node("Add", [left, right], ["sum"], name="add"))
    nodes.append(helper.make_node("QuantizeLinear", ["sum", "s", "z"], ["sq"]))
    nodes.append(helper.make_node("DequantizeLinear", ["sq", "s", "z"], ["sdq"]))
    last = _qconv(nodes, inits, "sdq", "last", out_q=False)
    counts = count_graph(_model(nodes, inits, last).graph)
    assert (counts["conv_total"], counts["conv_integer"], counts["conv_float"]) == (3, 0, 3)
    assert (counts["quantize_nodes"], counts["qdq_pairs"]) == (4, 5)  # xq feeds 2 DQ; 3 more Q->DQ
    reasons = {f.name: f.reason for f in counts["float_nodes"]}
    assert reasons == {
        "left": "Conv fed by a QuantizeLinear with 2 consumers: not folded",
        "right": "Conv fed by a QuantizeLinear with 2 consumers: not folded",
        "add": "Add between DQ and Q but not folded (no ONNX Runtime rule for this case)",
        "last": "output not quantized (not consumed by QuantizeLinear alone)",
    }
    assert counts["float_reasons"]["Conv fed by a QuantizeLinear with 2 consumers: not folded"] == 2
