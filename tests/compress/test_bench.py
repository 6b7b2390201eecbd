"""``bench --compression`` (compress/_bench.py): real INT8 and pruned graphs timed and compared in ONNX Runtime.

No assertion depends on how fast anything ran: speed-ups are checked against the medians the
benchmark itself recorded, verdicts against targets set so that they must pass or must fail.
"""

from __future__ import annotations

import dataclasses

import onnx
import pytest

from compress import CompressionBenchConfig, FinetuneSpec, PruneSpec, QuantSpec, format_comparisons
from compress._bench import FP32_NAME, INT8_NAME, PRUNED_NAME, build_compression_artifacts, compare_variants
from profiling import BenchConfig, TimingOptions, run_bench, speedup_interval

SIZE = 32


@pytest.fixture(scope="module")
def bench(small_checkpoint, tmp_path_factory):
    """Artifacts (INT8 + pruned ONNX, Dice with ORT) and one alternating benchmark of all variants."""
    config = CompressionBenchConfig(
        quant=QuantSpec(calibration_images=4),
        prune=PruneSpec(target_macs=0.6),
        finetune=FinetuneSpec(epochs=0),
        profile_runs=2,
    )
    work = tmp_path_factory.mktemp("bench")
    artifacts = build_compression_artifacts(small_checkpoint, work, config, size=SIZE, threads=1, progress=False)
    result = run_bench(
        str(small_checkpoint),
        BenchConfig(size=SIZE, timing=TimingOptions(rounds=3, warmup=1, runs=2)),
        extra_variants=artifacts.variants,
    )
    return config, artifacts, result


def _graph_ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_artifacts_are_an_int8_graph_and_a_smaller_pruned_graph(bench):
    _, artifacts, _ = bench
    assert "QuantizeLinear" in _graph_ops(artifacts.int8_onnx) and "QuantizeLinear" not in _graph_ops(
        artifacts.fp32_onnx
    )
    pruned = artifacts.prune_report.result
    assert pruned.macs_after <= 0.6 * pruned.macs_before and pruned.params_after < pruned.params_before


def test_both_variants_are_scored_against_the_same_fp32_dice(bench):
    _, artifacts, _ = bench
    int8, pruned = artifacts.accuracy[INT8_NAME], artifacts.accuracy[PRUNED_NAME]
    assert int8["dice_fp32"] == pruned["dice_fp32"]  # one reference graph, one split
    assert 0.0 < int8["pixel_agreement"] <= 1.0 and int8["max_abs_diff"] > 0.0  # INT8 does change the logits


def test_every_variant_ran_in_the_one_alternating_loop(bench):
    _, _, result = bench
    assert [v.name for v in result.variants] == ["PyTorch eager", FP32_NAME, INT8_NAME, PRUNED_NAME]
    # 3 rounds of 2 timed runs each (after an untimed one), kept per round so speed-ups pair whole rounds
    assert all(v.runs == 6 and [len(row) for row in v.times_ms] == [2, 2, 2] for v in result.variants)
    assert {v.name: v.precision for v in result.variants}[INT8_NAME] == "int8"


def test_speedups_and_dice_changes_come_from_the_recorded_medians_and_scores(bench):
    config, artifacts, result = bench
    comparisons = {c.name: c for c in compare_variants(result, artifacts, config)}
    assert set(comparisons) == {INT8_NAME, PRUNED_NAME}
    for name, c in comparisons.items():
        assert c.reference == FP32_NAME
        assert c.speedup == result.get(FP32_NAME).median_ms / result.get(name).median_ms
        acc = artifacts.accuracy[name]
        assert c.dice_change == pytest.approx(acc["dice_quant"] - acc["dice_fp32"])
        assert c.met == (c.speedup >= c.target_speedup and -c.dice_change <= c.target_max_loss)
        # the interval is of this ratio (vs ORT FP32), not of the benchmark's baseline (PyTorch eager)
        low, high = speedup_interval(result.get(FP32_NAME).times_ms, result.get(name).times_ms)
        assert (c.speedup_ci95_low, c.speedup_ci95_high) == (low, high)
    assert comparisons[PRUNED_NAME].details["recipe"] == artifacts.prune_report.recipe


def test_targets_that_cannot_be_met_are_explained_from_the_op_profile(bench):
    config, artifacts, result = bench
    impossible = dataclasses.replace(config, int8_speedup=1e9, pruned_speedup=1e9)
    comparisons = {c.name: c for c in compare_variants(result, artifacts, impossible)}
    for c in comparisons.values():
        assert c.met is False
        assert f"{c.speedup:.2f}x < 1e+09x" in c.explanation
        ops = {row["op_type"] for row in c.details["profile_fp32"]}
        assert ops & {"Conv", "FusedConv"}
    assert "QLinearConv" in {row["op_type"] for row in comparisons[INT8_NAME].details["profile_variant"]}
    assert "Convolutions alone went" in comparisons[INT8_NAME].explanation
    assert "MACs fell to" in comparisons[PRUNED_NAME].explanation


def test_a_dice_loss_beyond_the_limit_misses_the_target_whatever_the_speed(bench):
    config, artifacts, result = bench
    strict = dataclasses.replace(config, int8_speedup=0.0, int8_max_loss=-1.0)  # "must gain a whole Dice"
    c = next(c for c in compare_variants(result, artifacts, strict) if c.name == INT8_NAME)
    assert c.met is False and c.explanation.startswith("Dice lost") and "profile_fp32" not in c.details


def test_targets_met_need_no_explanation_and_the_verdict_is_printed(bench):
    config, artifacts, result = bench
    lenient = dataclasses.replace(config, int8_speedup=0.0, pruned_speedup=0.0, int8_max_loss=1.0, pruned_max_loss=1.0)
    comparisons = compare_variants(result, artifacts, lenient)
    assert all(c.met is True and c.explanation == "" for c in comparisons)
    lines = format_comparisons(comparisons).splitlines()
    assert len(lines) == 2 and all(line.endswith("target met") for line in lines)
    assert lines[0].startswith(f"{INT8_NAME} vs {FP32_NAME}: {comparisons[0].speedup:.2f}x faster")


def test_without_evaluation_no_verdict_is_given(bench):
    config, artifacts, result = bench
    unevaluated = dataclasses.replace(artifacts, accuracy={})
    comparisons = compare_variants(result, unevaluated, config)
    assert all(c.met is None and c.dice_change is None for c in comparisons)
    verdicts = [line for line in format_comparisons(comparisons).splitlines() if not line.startswith("  why:")]
    assert len(verdicts) == 2 and all(line.endswith("Dice lost): target not judged") for line in verdicts)
    assert all("Dice not evaluated" in line for line in verdicts)
