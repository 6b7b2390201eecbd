"""validate's latency seam: typed records from the one timer, never a made-up kind (tiny real graphs)."""

from __future__ import annotations

import json

import pytest

from models import create_config
from profiling import ESTIMATED, MEASURED, TimingOptions
from rtseg_core import ConfigError
from validate import LatencyRun, TimedGraph, TimingEntry, time_entries

SIZE = 32
NARROW = {"conv_widths": (8, 16, 16), "token_widths": (16, 32), "enc_depths": (1, 0), "dec_depths": (0, 0)}
WIDE = {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 0), "dec_depths": (0, 0)}


def _entries() -> list[TimingEntry]:
    return [
        TimingEntry("narrow", create_config("paper", **NARROW).to_dict()),
        TimingEntry("wide", create_config("paper", **WIDE).to_dict()),
    ]


def test_local_latency_is_one_alternating_loop_with_typed_records():
    timing = TimingOptions(rounds=3, warmup=1, runs=2)
    timed, conditions = time_entries(_entries(), LatencyRun(target="local", size=SIZE, timing=timing))
    assert list(timed) == ["narrow", "wide"]
    for name, g in timed.items():
        assert isinstance(g, TimedGraph) and g.latency is not None
        rec = g.latency
        assert (g.kind, rec.kind, g.target, g.backend) == (MEASURED, MEASURED, "local", "onnxruntime")
        assert (rec.runs, rec.warmup, rec.threads, rec.height) == (6, 1, 1, SIZE) and rec.model == name
        assert g.median_ms == rec.median_ms > 0 and g.params > 0 and g.macs > 0 and g.graph == "fresh build"
        assert "one alternating loop" in g.how
    assert timed["narrow"].params < timed["wide"].params
    assert (conditions["kind"], conditions["rounds"], conditions["runs_per_round"]) == (MEASURED, 3, 2)
    # validated/latency.json keeps each graph flat, numbers and conditions side by side
    row = json.loads(json.dumps(timed["wide"].to_dict()))
    assert (row["kind"], row["runs"], row["warmup"], row["threads"]) == (MEASURED, 6, 1, 1)


def test_an_estimate_target_labels_every_graph_estimated():
    timed, conditions = time_entries(
        _entries(), LatencyRun(target="jetson-nano-estimate", size=SIZE, timing=TimingOptions())
    )
    assert conditions["kind"] == ESTIMATED
    assert all(g.kind == ESTIMATED == g.latency.kind and g.latency.p90_ms is None for g in timed.values())


def test_a_timed_graph_without_a_known_kind_is_refused():
    with pytest.raises(ConfigError, match="latency kind '' is not one of measured"):
        TimedGraph("x", 1, 1, "fp32", "", kind="", target="local", backend="onnxruntime", device="d", how="",
                   latency=None, skipped="why")  # fmt: skip
    with pytest.raises(ConfigError, match="no latency and no reason"):
        TimedGraph("x", 1, 1, "fp32", "", kind=MEASURED, target="local", backend="onnxruntime", device="d", how="",
                   latency=None)  # fmt: skip
