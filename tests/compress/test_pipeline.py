"""``run.py prune`` end to end, all-or-nothing output folders, and compressing a study's Pareto front."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from compress import PruneSpec, compress_study, prune_checkpoint
from models import count_parameters, load_model
from rtseg_core import CandidateRecord, CompressionError, atomic_write_json
from rtseg_nas.cli import main


def test_prune_cli_writes_a_checkpoint_that_evaluate_loads(small_checkpoint, tmp_path, capsys):
    out = tmp_path / "pruned"
    rc = main(
        [
            "prune",
            "--checkpoint",
            str(small_checkpoint),
            "--ratio",
            "0.5",
            "--round-to",
            "8",
            "--finetune-epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [".rtseg-output.json", "checkpoint.pt", "model.onnx", "prune.json"]
    report = json.loads((out / "prune.json").read_text())
    assert report["recipe"] == "prune-l1-r0.5-x8+ft1" and report["onnx_max_abs_diff"] < 1e-4
    assert report["result"]["params_after"] < report["result"]["params_before"]
    assert all(isinstance(d, float) for d in (report["dice_before"], report["dice_pruned"], report["dice_after"]))
    model, ckpt = load_model(out / "checkpoint.pt")
    assert ckpt.pruning["spec"]["round_to"] == 8 and ckpt.meta["parent"] == str(small_checkpoint)
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--split", "val"]) == 0
    assert "Dice" in capsys.readouterr().out


def test_a_failed_run_leaves_the_old_folder_and_no_partial_files(small_checkpoint, tmp_path):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "old.txt").write_text("previous result")
    with pytest.raises(CompressionError, match=r"target_macs: 0\.01 .*unreachable.*max_ratio 0\.2"):
        prune_checkpoint(
            small_checkpoint,
            PruneSpec(target_macs=0.01, max_ratio=0.2, step_ratio=0.2),
            out,
            evaluate=False,
            progress=False,
            overwrite=True,  # old.txt is not prune's; the run is allowed to replace it, and fails first
        )
    assert [p.name for p in out.iterdir()] == ["old.txt"]
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
