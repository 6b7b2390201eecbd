"""Members' kernels from their config (each distinct segment exported once) and on-demand kernel timing.

Real exports, real ONNX Runtime decompositions and a real table built on this CPU; no timing
assertions (the machine is shared).
"""

from __future__ import annotations

import random

import pytest
import torch

from models import PRESETS, build_model, count_parameters, create_config, forward_segments, traced_segments
from profiling._counts import _fvcore
from profiling._kernels import decompose_onnx
from profiling._predictor import export_for_table
from profiling._segment_kernels import SegmentKernels
from profiling._subnet_latency import SubnetLatency
from profiling._table import LatencyTable
from profiling._table_build import LocalTimer, build_table
from search_spaces import SearchSpace
from search_spaces._supernet import random_config
from tests.search_spaces.conftest import TINY_SPACE

SIZE = 32


def _members() -> list:
    rng = random.Random(3)
    space = SearchSpace.from_dict(TINY_SPACE)
    sampled = [random_config(space, rng) for _ in range(3)]
    # the released network, UNeXt (additive skips, plain convs, ReLU) and an adaptive gate kernel
    return [PRESETS["paper"], PRESETS["unext"].replace(dec_depths=(0, 2)), *sampled,
            PRESETS["paper"].replace(eff_gate_kernel=0, shift_size=3, mlp_ratio=2.0)]  # fmt: skip


def test_the_segment_arithmetic_is_the_forward_pass():
    for cfg in _members():
        for size in (SIZE, 37):  # an odd side: floors in the pooling and the stride-2 embedding
            model = build_model(cfg).eval()
            traced = traced_segments(model, torch.zeros(1, cfg.in_channels, size, size))
            shapes = [(n, tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))) for n, args, _ in traced]
            planned = forward_segments(cfg, size)
            # a module's first segment (a token stage's enter) receives what the module receives
            firsts = [(s.name, s.inputs) for i, s in enumerate(planned) if i == 0 or planned[i - 1].name != s.name]
            assert firsts == shapes
            for name in {s.name for s in planned if s.kind == "TokenEnter"}:
                blocks = [s for s in planned if s.name == name and s.kind == "TMPBlock"]
                assert len(blocks) == len(getattr(model, name).blocks)


def test_config_derived_kernels_and_macs_equal_the_whole_exported_graphs(tmp_path):
    segments = SegmentKernels(opset=17)
    for i, cfg in enumerate(_members()[1:3]):  # both fusions, activations and conv kinds (seconds each)
        member = segments.member(cfg, SIZE)
        path = export_for_table(build_model(cfg), tmp_path / f"m{i}.onnx", size=SIZE, opset=17)
        whole = decompose_onnx(path)
        assert [k.signature for k in member.kernels] == [k.signature for k in whole.kernels]
        assert [k.key for k in member.kernels] == [k.key for k in whole.kernels]
        model = build_model(cfg).eval()
        assert member.macs == _fvcore(model, torch.zeros(1, cfg.in_channels, SIZE, SIZE))[0]  # count_costs's
        assert member.params == count_parameters(model)
    # opset 13 (TensorRT 8 tables): LayerNorm's element-wise nodes group across segment borders, so
    # the member is exported whole there; its kernels are the whole graph's all the same
    cfg = _members()[2]
    path = export_for_table(build_model(cfg), tmp_path / "m13.onnx", size=SIZE, opset=13)
    whole = [k.key for k in decompose_onnx(path).kernels]
    assert [k.key for k in SegmentKernels(opset=13).member(cfg, SIZE).kernels] == whole
    exported = segments.exports
    segments.member(PRESETS["unext"].replace(dec_depths=(0, 0)), SIZE)  # every segment seen before
    assert segments.exports == exported


CONFIGS = {
    "a": {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 0), "dec_depths": (0, 1)},
    "b": {"conv_widths": (8, 16, 24), "token_widths": (24, 32), "enc_depths": (0, 1), "dec_depths": (1, 0)},
    "c": {"conv_widths": (16, 16, 32), "token_widths": (32, 32), "enc_depths": (1, 1), "dec_depths": (0, 0)},
}
UNSEEN = create_config("paper", conv_widths=(8, 24, 40), token_widths=(40, 56), enc_depths=(1, 0), dec_depths=(0, 0))


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("table") / "table.json"
    models = [(name, build_model(create_config("paper", **cfg)).eval()) for name, cfg in CONFIGS.items()]
    build_table(out, models, size=SIZE, threads=1, calibrate=3, rounds=1, runs=1, batch_size=40)
    return out


class _StopAfter(LocalTimer):
    """The real ONNX Runtime timer, interrupted (as by Ctrl-C) when the given batch starts."""

    def __init__(self, stop_at: int, **kw) -> None:
        super().__init__(**kw)
        self.batches, self.stop_at = 0, stop_at

    def time_graphs(self, graphs):
        self.batches += 1
        if self.batches == self.stop_at:
            raise KeyboardInterrupt
        return super().time_graphs(graphs)


def test_missing_kernels_are_timed_added_and_resume(table_path, tmp_path):
    path = tmp_path / "table.json"
    path.write_bytes(table_path.read_bytes())
    before = set(LatencyTable.load(path).kernels)
    unseen = {k.key for k in SegmentKernels(opset=17).member(UNSEEN, SIZE).kernels} - before
    assert len(unseen) > 4  # wider stages: kernels the table has not seen

    with pytest.raises(KeyboardInterrupt):
        SubnetLatency(path, size=SIZE, batch_size=2, timer=_StopAfter(3, rounds=1, runs=1)).cost(UNSEEN)
    kept = LatencyTable.load(path)
    assert len(set(kept.kernels) - before) == 4  # two finished batches were saved

    latency = SubnetLatency(path, size=SIZE, batch_size=2, timer=_StopAfter(0, rounds=1, runs=1))
    cost = latency.cost(UNSEEN)
    assert latency.timed == len(unseen) - 4  # only what was missing
    assert cost.from_table == cost.kernels and cost.latency_ms > 0
    table = LatencyTable.load(path)
    assert unseen <= set(table.kernels)
    for key in set(kept.kernels) - before:
        assert table.kernels[key].median_ms == kept.kernels[key].median_ms  # timed once, not again
    # the same prediction as the whole exported model's through the table
    again = SubnetLatency(path, size=SIZE, time_missing=False)
    whole = again.predictor.predict_model(build_model(UNSEEN), size=SIZE, model_name="unseen")
    assert again.cost(UNSEEN).latency_ms == pytest.approx(whole.median_ms)
    assert again.record(cost).kind == "predicted"


def test_kernels_are_not_timed_on_another_target_than_the_tables(table_path, tmp_path):
    import json

    path = tmp_path / "other.json"
    data = json.loads(table_path.read_text())
    data["key"]["device"] = "another CPU"
    path.write_text(json.dumps(data))
    with pytest.raises(Exception, match="another target than the table's: device"):
        SubnetLatency(path, size=SIZE).cost(UNSEEN)


def test_segments_are_kept_beside_the_table_and_a_new_process_reads_them(table_path, tmp_path, caplog):
    import json

    from profiling._segment_cache import segment_cache_path

    path = tmp_path / "table.json"
    path.write_bytes(table_path.read_bytes())
    first = SubnetLatency(path, size=SIZE, batch_size=8, timer=LocalTimer(rounds=1, runs=1))
    costs = {name: first.cost(create_config("paper", **cfg)) for name, cfg in CONFIGS.items()}
    cost = first.cost(UNSEEN)  # kernels the table lacks: timed, which needs the segments' graphs
    cache = segment_cache_path(path)
    assert cache.name == "table.segments.jsonl" and first.segments.exports > 0
    lines = cache.read_text().splitlines()
    head = json.loads(lines[0])
    assert head["opset"] == 17 and len(head["code"]) == 16 and len(lines) == 1 + first.segments.exports

    # a new object (as a new process): every segment read from the file, nothing exported, same answers
    second = SubnetLatency(path, size=SIZE, time_missing=False)
    for name, cfg in CONFIGS.items():
        again = second.cost(create_config("paper", **cfg))
        assert (again.latency_ms, again.macs, again.kernels) == (costs[name].latency_ms, costs[name].macs,
                                                                  costs[name].kernels)  # fmt: skip
    assert second.cost(UNSEEN).latency_ms == cost.latency_ms
    assert second.segments.exports == 0 and second.segments.loaded == len(lines) - 1
    # a kernel to time needs its graph, which the file does not keep: that segment is exported again
    graphs = second.segments.graphs(UNSEEN, SIZE)
    assert {k.key for k in second.segments.member(UNSEEN, SIZE).kernels} <= set(graphs)
    assert second.segments.exports > 0

    # a run killed mid-line leaves a cut-short last line: dropped with a warning, the rest is used
    cache.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    third = SubnetLatency(path, size=SIZE, time_missing=False)
    third.cost(UNSEEN)
    assert "cut short" in caplog.text and third.segments.exports == 1
    # a broken line inside the file is an error naming the file and the line
    cache.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(Exception, match=r"table\.segments\.jsonl: line 2 is not a cached segment"):
        SubnetLatency(path, size=SIZE)
    # written under another onnxruntime: not used (the log says why) and started again
    head = head | {"onnxruntime": "0.0.1"}
    cache.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    fourth = SubnetLatency(path, size=SIZE, time_missing=False)
    assert "onnxruntime 0.0.1" in caplog.text and fourth.segments.loaded == 0
    fourth.cost(UNSEEN)
    assert json.loads(cache.read_text().splitlines()[0])["onnxruntime"] != "0.0.1"
