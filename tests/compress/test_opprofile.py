"""ORT's per-operator profile (compress/_opprofile.py) on real sessions of small FP32 and INT8 graphs.

Times are never compared with a number; what is checked is which nodes ran, how they are grouped
and classified, and that the shares add up.
"""

from __future__ import annotations

from collections import Counter

import onnx
import onnxruntime as ort
import pytest

from compress import QuantSpec, quantize_onnx
from compress._opprofile import profile_graph, profile_ops, summarize_ops
from rtseg_core import CompressionError


@pytest.fixture(scope="module")
def graphs(tools, tmp_path_factory):
    """``(fp32.onnx, int8.onnx)`` of the small paper-like model at 32 px."""
    from profiling._export import ExportConfig, export_onnx

    folder = tmp_path_factory.mktemp("opprofile")
    fp32 = folder / "fp32.onnx"
    export_onnx(tools.random_model(tools.small_config()), fp32, ExportConfig(height=32, width=32))
    spec = QuantSpec(calibration_images=2)
    quantize_onnx(fp32, spec, folder / "int8", data=tools.DATA, evaluate=False, measure=False)
    return fp32, folder / "int8" / "model.onnx"


def _optimized_op_counts(path, tmp_path) -> Counter:
    """Op types of the graph ONNX Runtime actually runs (the same optimisation level as profile_graph)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    return Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)


def test_every_node_of_the_optimized_graph_is_counted_once_under_its_op_type(graphs, tmp_path):
    fp32, _ = graphs
    profile = profile_graph(fp32, runs=3, warmup=2)
    assert {r.op_type: r.nodes for r in profile.by_op} == dict(_optimized_op_counts(fp32, tmp_path))


def test_shares_add_up_and_rows_come_largest_first(graphs):
    fp32, _ = graphs
    profile = profile_graph(fp32, runs=3, warmup=1)
    assert sum(r.share for r in profile.by_op) == pytest.approx(1.0)
    assert profile.total_ms == pytest.approx(sum(r.ms_per_run for r in profile.by_op))
    assert sum(ms for _, ms in profile.by_stage) == pytest.approx(profile.total_ms)
    times = [r.ms_per_run for r in profile.by_op]
    assert times == sorted(times, reverse=True)


def test_stages_are_the_models_modules(graphs, tools):
    fp32, _ = graphs
    stages = {name for name, _ in profile_graph(fp32, runs=2, warmup=0).by_stage}
    modules = {name for name, _ in tools.random_model(tools.small_config()).named_children()}
    assert {"enc1", "enc2", "enc3", "tok4", "fuse1"} <= stages
    ops = {r.op_type for r in profile_ops(fp32, runs=2, warmup=0)}
    assert stages <= modules | ops  # a node ORT fused or inserted keeps its op name


def test_an_fp32_graph_is_all_float_and_an_int8_graph_shows_int8_and_conversions(graphs):
    fp32, int8 = graphs
    assert {r.kind for r in profile_ops(fp32, runs=2, warmup=0)} == {"float"}
    rows = profile_ops(int8, runs=2, warmup=0)
    kinds = {r.op_type: r.kind for r in rows}
    assert kinds["QLinearConv"] == "int8" and kinds["QuantizeLinear"] == kinds["DequantizeLinear"] == "convert"


def test_summary_line_gives_time_by_kind_then_the_top_ops(graphs):
    _, int8 = graphs
    rows = profile_ops(int8, runs=2, warmup=0)
    kinds, ops = summarize_ops(rows, top=2).split(" || ")
    assert {part.split()[0] for part in kinds.split(" | ")} == {r.kind for r in rows}
    assert ops == ", ".join(f"{r.op_type} {r.share:.0%} ({r.ms_per_run:.2f} ms, {r.kind})" for r in rows[:2])
    shares = [float(part.split()[1].rstrip("%")) for part in kinds.split(" | ")]
    assert sum(shares) == pytest.approx(100, abs=len(shares))  # whole percents, rounded each
    assert shares == sorted(shares, reverse=True)


def test_a_file_onnx_runtime_cannot_load_is_named(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CompressionError, match="broken.onnx: ONNX Runtime cannot load the model"):
        profile_graph(bad, runs=1, warmup=0)
