"""``run.py prune`` end to end, all-or-nothing output folders, and compressing a study's Pareto front."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest
import torch

from compress import PruneReport, PruneResult, PruneSpec, compress_study, prune_checkpoint
from models import count_parameters, load_model
from rtseg_core import MANIFEST, CandidateRecord, CompressionError, atomic_write_json, mark_output
from rtseg_nas.cli import main
from segmentation import EvalSummary, evaluate_checkpoint


@pytest.fixture(scope="module")
def pruned_by_cli(small_checkpoint, tmp_path_factory):
    """``run.py prune`` once (50% channels, widths x8, one short fine-tune epoch); its output folder."""
    out = tmp_path_factory.mktemp("cli") / "pruned"
    argv = ["prune", "--checkpoint", str(small_checkpoint), "--ratio", "0.5", "--round-to", "8",
            "--finetune-epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "--device", "cpu",
            "--rounds", "3", "--out", str(out)]  # fmt: skip
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(argv)
    assert rc == 0, stderr.getvalue()
    (out.parent / "stdout.txt").write_text(stdout.getvalue())  # beside the output folder, not in it
    return out


def test_prune_cli_writes_exactly_the_checkpoint_the_onnx_graph_and_the_report(pruned_by_cli):
    names = sorted(p.name for p in pruned_by_cli.iterdir())
    assert names == [".rtseg-output.json", "checkpoint.pt", "model.onnx", "prune.json"]  # + the output manifest


def test_prune_report_reads_back_with_a_typed_result(pruned_by_cli):
    report = PruneReport.from_dict(json.loads((pruned_by_cli / "prune.json").read_text()))
    assert isinstance(report.result, PruneResult)
    assert report.recipe == "prune-l1-r0.5-x8+ft1" and report.onnx_max_abs_diff < 1e-4
    assert report.result.params_after < report.result.params_before
    assert PruneReport.from_dict(report.to_dict()) == report


def test_prune_prints_the_speed_up_of_one_alternating_loop(pruned_by_cli):
    report = PruneReport.from_dict(json.loads((pruned_by_cli / "prune.json").read_text()))
    lat = report.latency
    assert lat is not None and lat.rounds == 3 and lat.threads == 1
    assert lat.speedup == pytest.approx(lat.reference_ms / lat.variant_ms)
    assert lat.speedup_ci95_low <= lat.speedup_ci95_high and "rotated per round" in lat.method
    printed = (pruned_by_cli.parent / "stdout.txt").read_text()
    assert f"latency: unpruned {lat.reference_ms:.2f} ms, pruned {lat.variant_ms:.2f} ms: {lat.speedup:.2f}x" in printed
    assert "3 paired alternating rounds" in printed


def test_dice_before_and_after_are_those_evaluate_measures(small_checkpoint, pruned_by_cli):
    report = json.loads((pruned_by_cli / "prune.json").read_text())
    before = evaluate_checkpoint(small_checkpoint, split="val", device="cpu", progress=False)
    after = evaluate_checkpoint(pruned_by_cli / "checkpoint.pt", split="val", device="cpu", progress=False)
    assert report["dice_before"] == pytest.approx(before.dice)
    assert report["dice_after"] == pytest.approx(after.dice)


def test_pruned_checkpoint_keeps_its_spec_and_parent_and_runs(small_checkpoint, pruned_by_cli):
    model, ckpt = load_model(pruned_by_cli / "checkpoint.pt")
    assert ckpt.pruning["spec"]["round_to"] == 8 and ckpt.meta["parent"] == str(small_checkpoint)
    assert all(m.out_channels % 8 == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 1
               and m.out_channels != 3)  # fmt: skip
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_evaluate_cli_reads_the_pruned_checkpoint(pruned_by_cli, capsys):
    assert main(["evaluate", "--checkpoint", str(pruned_by_cli / "checkpoint.pt"), "--split", "val"]) == 0
    summary = EvalSummary.from_dict(json.loads((pruned_by_cli / "evaluation_val.json").read_text()))
    report = json.loads((pruned_by_cli / "prune.json").read_text())
    assert summary.dice == pytest.approx(report["dice_after"])
    assert f"{summary.dice:.4f}" in capsys.readouterr().out


def test_a_failed_run_leaves_the_old_folder_and_no_partial_files(small_checkpoint, tmp_path):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "old.txt").write_text("previous result")
    mark_output(out, verb="quantize", files=["old.txt"])  # another verb's output: --overwrite may replace it
    with pytest.raises(CompressionError, match=r"target_macs: 0\.01 .*unreachable.*max_ratio 0\.2"):
        prune_checkpoint(
            small_checkpoint,
            PruneSpec(target_macs=0.01, max_ratio=0.2, step_ratio=0.2),
            out,
            evaluate=False,
            progress=False,
            overwrite=True,  # old.txt is not prune's; the run is allowed to replace it, and fails first
        )
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]  # no hidden temp folder left behind


def _trial(study, n, ckpt, *, dice, latency, feasible=True):
    folder = study / "trials" / str(n)
    folder.mkdir(parents=True)
    shutil.copyfile(ckpt, folder / "checkpoint.pt")
    record = CandidateRecord(
        name=f"trial-{n}",
        source="trial",
        dataset="synthetic",
        split="val",
        dice=dice,
        dice_ps=dice,
        dice_fh=dice,
        delta_aop_deg=None,
        params=1,
        macs=1,
        latency_ms=latency,
        fps=1000 / latency,
        latency_kind="measured",
        target="local",
        device="cpu",
        backend="onnxruntime",
        precision="fp32",
        threads=1,
        height=32,
        width=32,
        feasible=feasible,
        trial=n,
    )
    atomic_write_json(folder / "candidate.json", record.to_dict())


def test_study_front_members_are_compressed_and_linked_to_their_parent(small_checkpoint, tmp_path):
    study = tmp_path / "study"
    _trial(study, 0, small_checkpoint, dice=0.80, latency=5.0)  # on the front, best Dice
    _trial(study, 1, small_checkpoint, dice=0.70, latency=6.0)  # dominated by trial-0
    _trial(study, 2, small_checkpoint, dice=0.90, latency=1.0, feasible=False)  # infeasible
    _trial(study, 3, small_checkpoint, dice=0.60, latency=2.0)  # on the front
    records = compress_study(study, top_k=1, prune=PruneSpec(ratio=0.5), runs=3, progress=False)
    assert [r.name for r in records] == ["trial-0.p50"]
    folder = study / "compressed" / "trial-0.p50"
    assert {"candidate.json", "checkpoint.pt", "model.onnx", "prune.json"} <= {p.name for p in folder.iterdir()}
    saved = CandidateRecord.from_dict(json.loads((folder / "candidate.json").read_text()))
    assert saved == records[0]
    assert saved.source == "compressed" and saved.parent == "trial-0" and saved.recipe == "prune-l1-r0.5"
    assert saved.latency_kind == "measured" and saved.latency_ms > 0 and saved.dice is not None
    assert saved.params < count_parameters(load_model(small_checkpoint)[0])
