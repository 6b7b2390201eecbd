"""Gradual pruning towards a MACs target, the fine-tune budget split over the steps, the budget as a
fraction of the parent's training, and distillation from the unpruned parent (issue 20)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from compress import FinetuneSpec, PruneReport, PruneSpec, prune_checkpoint, split_budget
from models import Checkpoint, load_checkpoint, save_checkpoint
from rtseg_core import CompressionError, CompressionOptionError
from rtseg_nas.cli import main
from segmentation import Distillation

FT = {"steps_per_epoch": 1, "batch_size": 4, "device": "cpu"}


def test_split_budget_keeps_half_for_the_final_fine_tune_and_shares_the_rest_between_the_steps():
    assert split_budget(6, 3) == (1, 4) and split_budget(7, 3) == (1, 5) and split_budget(5, 1) == (0, 5)
    assert split_budget(12, 3) == (3, 6) and split_budget(8, 2) == (4, 4) and split_budget(4, 4) == (1, 1)
    assert split_budget(0, 4) == (0, 0)  # no fine-tune at all
    with pytest.raises(CompressionOptionError, match="--steps 4: .* at least one fine-tune epoch per step"):
        split_budget(3, 4)


def test_gradual_pruning_reaches_the_target_in_equal_macs_steps_and_splits_the_budget(small_checkpoint, tmp_path):
    spec = PruneSpec(target_macs=0.5, steps=3, round_to=None)
    ft = FinetuneSpec(epochs=5, distill=Distillation(0.5, 2.0), **FT)
    report = prune_checkpoint(small_checkpoint, spec, tmp_path / "out", finetune_spec=ft,
                              evaluate=False, export=False, progress=False)  # fmt: skip
    r = report.result
    assert r.macs_after <= 0.5 * r.macs_before
    # each step ended at (or below) its own MACs fraction: 5/6, 4/6, 3/6 of the unpruned MACs
    ends = {row["step"]: row["macs"] / r.macs_before for row in r.steps if "step" in row}
    assert sorted(ends) == [1, 2, 3]
    for k, fraction in ends.items():
        assert fraction <= 1 - 0.5 * k / 3 + 1e-9
    assert ends[1] > 0.5  # the first step stopped short of the target: the schedule is gradual
    # 5 epochs over 3 steps: 1 after step 1, 1 after step 2, the remaining 3 at the end (split_budget)
    assert [len(logs) for logs in report.finetune_steps] == [1, 1] and len(report.finetune) == 3
    assert [row.get("finetune_epochs") for row in r.steps if "step" in row] == [1, 1, None]
    assert report.finetune_epochs == 5 and report.finetune_budget is None
    # distilled from the unpruned parent in every fine-tune, and said so
    assert report.loss == "task+kd0.5-T2" and report.distill == Distillation(0.5, 2.0).to_dict()
    assert {e["loss_fn"] for logs in [*report.finetune_steps, report.finetune] for e in logs} == {"task+kd0.5-T2"}
    assert report.recipe == "prune-l1-macs0.5-s3+ft5-kd0.5-T2"
    stored = PruneReport.from_dict(json.loads((tmp_path / "out" / "prune.json").read_text()))
    fields = ("recipe", "loss", "distill", "finetune_epochs", "finetune_budget", "finetune_steps", "finetune")
    assert all(getattr(stored, f) == getattr(report, f) for f in fields)
    assert stored.result.spec["finetune_epochs_per_step"] == 1
    assert load_checkpoint(tmp_path / "out" / "checkpoint.pt").meta["finetune_loss"] == "task+kd0.5-T2"


@pytest.fixture(scope="module")
def trained_4_epochs(small_checkpoint, tmp_path_factory):
    """The small checkpoint, saying it was trained for 4 epochs."""
    ckpt = load_checkpoint(small_checkpoint)
    parent = tmp_path_factory.mktemp("parent") / "checkpoint.pt"
    meta = {**ckpt.meta, "train": {**ckpt.meta["train"], "epochs": 4}}
    save_checkpoint(Checkpoint(config=ckpt.config, state_dict=ckpt.state_dict, meta=meta), parent)
    return parent


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse's own refusals
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def test_finetune_budget_is_a_fraction_of_the_parents_training_epochs(small_checkpoint, trained_4_epochs, tmp_path):
    parent = trained_4_epochs
    ft = FinetuneSpec(budget=0.5, distill=None, **FT)
    report = prune_checkpoint(parent, PruneSpec(ratio=0.25), tmp_path / "out", finetune_spec=ft, evaluate=False,
                              export=False, progress=False)  # fmt: skip
    assert report.finetune_budget == 0.5 and report.finetune_epochs == len(report.finetune) == 2
    assert report.loss == "task" and report.distill is None and report.recipe == "prune-l1-r0.25+ft2"
    # a checkpoint that does not say how long it was trained cannot resolve a fraction of it
    with pytest.raises(CompressionError, match="records no training epochs"):
        prune_checkpoint(small_checkpoint, PruneSpec(ratio=0.25), tmp_path / "out2", finetune_spec=ft,
                         evaluate=False, export=False, progress=False)  # fmt: skip
    with pytest.raises(CompressionOptionError, match="give one of them"):
        FinetuneSpec(epochs=3, budget=0.5)


def test_gradual_options_that_cannot_work_are_refused_before_any_work():
    with pytest.raises(CompressionOptionError, match="needs steps > 1"):
        PruneSpec(target_macs=0.5, finetune_epochs_per_step=2)
    with pytest.raises(CompressionOptionError, match="not a latency target"):
        PruneSpec(target_latency_ms=3.0, steps=2)
    assert PruneSpec(target_macs=0.4, steps=3).milestones == pytest.approx((0.8, 0.6, 0.4))


def test_prune_cli_states_the_epochs_a_budget_resolved_to_and_the_loss(trained_4_epochs, tmp_path):
    out = tmp_path / "out"
    argv = ["prune", "--checkpoint", str(trained_4_epochs), "--ratio", "0.25", "--finetune-budget", "0.5",
            "--steps-per-epoch", "1", "--batch-size", "4", "--device", "cpu", "--no-eval", "--no-latency",
            "--kd-weight", "0.3", "--kd-temperature", "3", "--out", str(out)]  # fmt: skip
    rc, stdout, err = run_cli(argv)
    assert rc == 0, err
    assert "fine-tune: 2 epoch(s) from --finetune-budget 0.5 of the parent's training, loss task+kd0.3-T3" in stdout
    assert json.loads((out / "prune.json").read_text())["recipe"] == "prune-l1-r0.25+ft2-kd0.3-T3"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--finetune-epochs", "3", "--finetune-budget", "0.5"], "not allowed with argument --finetune-epochs"),
        (["--no-kd", "--kd-weight", "0.9"], "--no-kd: given with --kd-weight"),
        (["--parent", "paper"], "--parent/--tag: only with --study"),
        (["--steps", "4", "--finetune-epochs", "3"], "--steps 4: gradual pruning needs at least one fine-tune epoch"),
        (["--kd-weight", "1.5"], "--kd-weight"),
    ],
)
def test_prune_cli_refuses_fine_tune_options_that_cannot_work(trained_4_epochs, tmp_path, extra, message):
    rc, _, err = run_cli(["prune", "--checkpoint", str(trained_4_epochs), "--ratio", "0.25", "--no-eval",
                          "--out", str(tmp_path / "out"), *extra])  # fmt: skip
    assert rc != 0 and message in err and not (tmp_path / "out").exists()


def test_finetune_with_a_teacher_alone_distils_with_the_default_options(small_checkpoint):
    import copy

    from compress import finetune, load_for_compression

    model, _ = load_for_compression(small_checkpoint)
    cfg = FinetuneSpec(epochs=1, **FT).train_config(data="synthetic:24", size=32, seed=0)
    logs = finetune(model, cfg, progress=False, teacher=copy.deepcopy(model))
    assert [e["loss_fn"] for e in logs] == [f"task+{Distillation().label()}"]
    assert finetune(model, cfg, progress=False)[0]["loss_fn"] == "task"


def test_int8_qat_with_distill_learns_from_the_unquantized_model(small_checkpoint, tmp_path):
    """The QAT path (compress._qat) passes only teacher=; compress.finetune then distils with the defaults."""
    from compress import QuantSpec, quantize_checkpoint

    spec = QuantSpec(format="int8-qat", qat_epochs=1, calibration_images=2, distill=True)
    report = quantize_checkpoint(small_checkpoint, spec, tmp_path / "qat", finetune_spec=FinetuneSpec(epochs=1, **FT),
                                 measure=False, evaluate=False, progress=False)  # fmt: skip
    assert [e["loss_fn"] for e in report.finetune] == [f"task+{Distillation().label()}"]


def test_quantize_cli_takes_parent_only_with_a_study(trained_4_epochs, tmp_path):
    rc, _, err = run_cli(["quantize", "--checkpoint", str(trained_4_epochs), "--int8", "--no-eval", "--no-latency",
                          "--parent", "paper", "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 2 and "--parent: only with --study" in err and not (tmp_path / "out").exists()
