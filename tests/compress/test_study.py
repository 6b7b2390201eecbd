"""Which trials a study compresses and whether a variant is feasible: the suite's one sort and one check."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from compress import pareto_parents
from compress._study import _feasible, study_limits
from rtseg_core import CandidateRecord, ConfigError, Constraints, StudyDir, read_candidate, write_candidate

PARENT = CandidateRecord(
    name="trial-1", source="trial", dataset="synthetic", split="val", dice=0.8, dice_ps=0.8, dice_fh=0.8,
    delta_aop_deg=None, params=1000, macs=10, latency_ms=10.0, fps=100.0, latency_kind="measured", target="local",
    device="cpu", backend="onnxruntime", precision="fp32", threads=1, height=32, width=32, trial=1,
)  # fmt: skip


def test_parents_are_the_feasible_front_best_dice_first():
    records = [
        replace(PARENT, name="a", dice=0.80, latency_ms=5.0),  # front
        replace(PARENT, name="b", dice=0.70, latency_ms=6.0),  # dominated by a
        replace(PARENT, name="c", dice=0.90, latency_ms=1.0, feasible=False),  # infeasible
        replace(PARENT, name="d", dice=0.60, latency_ms=2.0),  # front
        replace(PARENT, name="e", dice=None, latency_ms=0.5),  # no Dice: cannot take part
        replace(PARENT, name="f", dice=0.80, latency_ms=5.0),  # a duplicate of a: both on the front
    ]
    assert [r.name for r in pareto_parents(records, top_k=5)] == ["a", "f", "d"]
    assert [r.name for r in pareto_parents(records, top_k=1)] == ["a"]


def test_study_limits_come_from_study_json_and_name_it(tmp_path):
    from search_spaces import SearchConfig

    assert study_limits(tmp_path) == Constraints()  # no study.json: no limits
    cfg = SearchConfig.from_options(tmp_path, min_fps=50, max_params=2000)
    StudyDir(tmp_path).write_settings(cfg.settings(f"sqlite:///{tmp_path / 'study.db'}"))  # as the search writes it
    assert study_limits(tmp_path) == Constraints(min_fps=50, max_params=2000)
    data = json.loads(StudyDir(tmp_path).study_json.read_text())
    StudyDir(tmp_path).study_json.write_text(json.dumps({**data, "constraints": {"max_params": "2k"}}))
    with pytest.raises(ConfigError, match=r"study.json: constraints.max_params"):
        study_limits(tmp_path)


@pytest.mark.parametrize(
    ("parent", "latency", "params", "feasible"),
    [
        (PARENT, 15.0, 1000, True),  # 66.7 fps >= 50, params at the limit
        (PARENT, 25.0, 1000, False),  # 40 fps < 50
        (PARENT, 15.0, 2001, False),  # over max_params
        # Timed elsewhere: this machine's latency says nothing about the limit; the parent's verdict stands.
        (replace(PARENT, target="ssh://nano@jetson"), 25.0, 1000, True),
        (replace(PARENT, target="ssh://nano@jetson", feasible=False), 1.0, 1000, False),
        (replace(PARENT, target="ssh://nano@jetson"), 1.0, 2001, False),  # params are the same everywhere
    ],
)
def test_variant_feasibility(parent, latency, params, feasible):
    limits = Constraints(min_fps=50, max_params=2000)
    assert _feasible(parent, limits, latency, params) is feasible


def test_a_study_timed_at_another_size_prunes_then_int8_from_the_cli(tmp_path, tools, capsys):
    """A search trained at 32 px and timed at 48 px (``--size 32 --latency-size 48``): Dice is measured
    at 32 px on model.onnx, latency at 48 px on a 48 px graph, and ``--then-int8`` records the chain
    the way validate re-applies it (quantize.json names the pruned variant's checkpoint)."""
    import onnx

    from rtseg_nas.cli import main
    from validate import find_variants

    study = StudyDir(tmp_path / "study")
    trial = study.trial_dir(1)
    trial.mkdir(parents=True)
    model = tools.random_model(tools.small_config())
    tools.write_checkpoint(trial / "checkpoint.pt", model, size=32)
    from models import count_parameters

    parent = replace(PARENT, params=count_parameters(model), height=48, width=48, latency_ms=5.0)
    write_candidate(trial, parent)
    argv = ["prune", "--study", str(study.root), "--top-k", "1", "--ratio", "0.5", "--round-to", "8", "--then-int8"]
    assert main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "trial-1.p50: Dice" in out and "trial-1.p50_int8: Dice" in out and "at 48x48 int8" in out
    for name, precision in (("trial-1.p50", "fp32"), ("trial-1.p50_int8", "int8")):
        folder = study.compressed(name)
        record = read_candidate(folder / "candidate.json")
        assert (record.height, record.width, record.precision) == (48, 48, precision)
        assert record.dice is not None and record.latency_ms > 0 and "input size 32x32" in record.notes
        assert "reference 256px" in record.notes
        for graph, side in (("model.onnx", 32), ("model_48px.onnx", 48)):
            dims = onnx.load(str(folder / graph)).graph.input[0].type.tensor_type.shape.dim
            assert [d.dim_value for d in dims][2:] == [side, side], (name, graph)
    chain = {p.name: p for p in find_variants(study.root)}
    assert chain["trial-1.p50_int8"].via == "trial-1.p50" and chain["trial-1.p50_int8"].prune is not None
    assert chain["trial-1.p50_int8"].quant["format"] == "int8-static"


def test_then_int8_needs_a_study(tmp_path, small_checkpoint, capsys):
    from rtseg_nas.cli import main

    argv = ["prune", "--checkpoint", str(small_checkpoint), "--ratio", "0.5", "--out", str(tmp_path / "o")]
    assert main([*argv, "--then-int8"]) == 2
    assert "--then-int8: only with --study" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
