"""Validate re-applies compressed variants to their validated parents and takes latency on the study's target.

Real searches, real pruning and INT8 quantization, real ONNX Runtime sessions, a real kill, a
real sshd on loopback playing the device (tests/profiling/conftest.py).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from profiling import TimingOptions
from rtseg_core import CandidateRecord, SearchError, StudyDir, atomic_write_json, read_json
from validate._config import ValidateConfig
from validate._queue import run_validate
from validate._variants import find_variants

REPO = Path(__file__).resolve().parents[2]
TIMING = TimingOptions(rounds=3, warmup=1)
OPTIONS = {"epochs": 1, "size": 32, "batch_size": 4, "latency_size": 32, "timing": TIMING, "top_k": 1,
           "heartbeat_interval": 1}  # fmt: skip
CLI = ["--epochs", "1", "--size", "32", "--batch-size", "4", "--latency-size", "32", "--rounds", "3", "--warmup", "1",
       "--top-k", "1", "--heartbeat-interval", "1", "--grace-period", "2"]  # fmt: skip


def set_max_latency(study: Path, ms: float) -> None:
    settings = read_json(study / "study.json")
    settings["constraints"] = {**(settings.get("constraints") or {}), "max_latency_ms": ms}
    atomic_write_json(study / "study.json", settings)


def variant_names(study: Path) -> tuple[str, str, str]:
    """(parent, pruned variant, pruned + INT8 variant) of the template's compression."""
    plans = {p.name: p for p in find_variants(study)}
    (pruned,) = [n for n, p in plans.items() if p.quant is None]
    (quant,) = [n for n, p in plans.items() if p.quant is not None]
    assert plans[quant].via == pruned  # prune-then-quantize: the chain goes through the pruned variant
    return plans[pruned].parent, pruned, quant


@pytest.fixture(scope="module")
def validated_study(compressed_study_template, tmp_path_factory):
    """The template validated once with the study's own target (jetson-nano-estimate), 2 fine-tune epochs."""
    study = tmp_path_factory.mktemp("validated") / "nas"
    shutil.copytree(compressed_study_template, study)
    set_max_latency(study, 1e9)  # a latency limit every estimated candidate meets
    summary = run_validate(ValidateConfig(study_dir=study, finetune_epochs=2, **OPTIONS))
    return study, summary


def test_compressed_variants_are_reapplied_to_the_validated_parent(validated_study):
    from compress._quantize import ort_predict
    from segmentation import evaluate

    study, summary = validated_study
    parent, pruned_name, quant_name = variant_names(study)
    records = {r.name: r for r in summary.records}
    assert {parent, pruned_name, quant_name, "paper"} <= set(records) and summary.not_validated == ()
    pruned, quant = records[pruned_name], records[quant_name]
    for r in (pruned, quant):
        assert (r.source, r.split, r.parent, r.trial) == ("validated", "test", parent, records[parent].trial)
        # the stated fine-tune budget (2 epochs), not the variant's own (1)
        assert r.recipe.startswith("re-applied to the validated parent: prune-l1-r0.5-x8 + fine-tune 2 epoch(s)")
    assert (pruned.precision, quant.precision) == ("fp32", "int8") and "then ort-int8-qdq-minmax" in quant.recipe
    # pruned from the fully trained parent, not from the proxy-trained trial compress used
    ckpt = torch.load(study / "validated" / pruned_name / "checkpoint.pt", weights_only=True)
    assert Path(ckpt["meta"]["parent"]) == study / "validated" / parent / "checkpoint.pt"
    assert len(read_json(study / "validated" / pruned_name / "reapplied.json")["finetune"]) == 2
    # the chain: the INT8 variant quantized the re-applied pruned variant's checkpoint
    quantized_from = read_json(study / "validated" / quant_name / "quantize.json")["parent"]
    assert Path(quantized_from) == study / "validated" / pruned_name / "checkpoint.pt"
    # the same stored spec gives the same widths as compress's variant
    assert pruned.params == read_json(study / "compressed" / pruned_name / "candidate.json")["params"]
    assert pruned.params < records[parent].params
    # Dice: ONNX Runtime on the variant's own quantized graph, test split
    graph = study / "validated" / quant_name / "model.onnx"
    dice = evaluate(ort_predict(graph), read_json(study / "study.json")["data"], split="test", size=32, seed=0,
                    progress=False).dice  # fmt: skip
    assert quant.dice == pytest.approx(dice)


def test_latency_on_the_studys_estimate_target_is_labelled_estimated(validated_study):
    study, summary = validated_study
    parent, pruned_name, quant_name = variant_names(study)
    records = {r.name: r for r in summary.records}
    assert summary.latency_target == "jetson-nano-estimate" and summary.latency_kind == "estimated"
    for name in (parent, pruned_name, "paper"):
        r = records[name]
        assert (r.latency_kind, r.target, r.backend) == ("estimated", "jetson-nano-estimate", "roofline")
        assert r.latency_ms > 0 and "ESTIMATED" in r.notes and "MEASURED" not in r.notes and r.feasible
    # The Nano roofline does not estimate INT8: no number, the reason, and a latency limit it cannot be shown to meet.
    quant = records[quant_name]
    assert quant.latency_ms is None and "'int8' is not estimated" in quant.notes
    assert not quant.feasible and "no latency on jetson-nano-estimate" in quant.notes
    assert read_json(study / "validated" / "latency.json")["kind"] == "estimated"


def test_report_shows_validated_variants(validated_study):
    from reports import build_report, compute_report

    study, _ = validated_study
    parent, _, quant_name = variant_names(study)
    rows = compute_report(study).validated.comparison().set_index("name")
    assert (rows.loc[quant_name, "variant of"], rows.loc[quant_name, "precision"]) == (parent, "int8")
    assert rows.loc[parent, "variant of"] == ""
    html = build_report(study).read_text()
    section = html[html.index('id="validated"') :]
    assert f"<td>{quant_name}</td>" in section and "<td>int8</td>" in section
    assert '<span class="kind estimated">ESTIMATED</span>' in section.split("</p>")[0]


def test_killed_validation_resumes_and_skips_finished_variants(compressed_study_template, tmp_path):
    study = tmp_path / "nas"
    shutil.copytree(compressed_study_template, study)
    parent, pruned_name, quant_name = variant_names(study)
    set_max_latency(study, 1e-9)  # meant for the study's Jetson estimate: a local override cannot judge it
    root = study / "validated"
    cmd = [sys.executable, "run.py", "validate", "--study", str(study), *CLI, "--latency-target", "local"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and not (root / pruned_name / "reapplied.json").exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / quant_name / "reapplied.json").exists(), "the kill should land before the INT8 variant"
    stamps = {p: p.stat().st_mtime_ns for p in (root / parent / "trained.json", root / pruned_name / "reapplied.json")}

    # resumed in this process (the CLI path was just exercised): the killed claim is freed after the grace period
    summary = run_validate(ValidateConfig(study_dir=study, latency_target="local", grace_period=2, **OPTIONS))
    # neither the parent's training nor the finished pruned variant ran again; the INT8 variant was made now
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert quant_name in summary.trained_now and pruned_name not in summary.trained_now
    quant = next(r for r in summary.records if r.name == quant_name)
    assert quant == CandidateRecord.from_dict(read_json(root / quant_name / "candidate.json"))
    assert (quant.parent, quant.precision, quant.latency_kind, quant.target) == (parent, "int8", "measured", "local")
    assert quant.latency_ms > 0 and "its own model.onnx" in quant.notes
    assert all(r.feasible and "NOT judged: the latency was taken on local" in r.notes for r in summary.records)
    # a different fine-tune budget is refused, like a different training budget
    with pytest.raises(SearchError, match="budget"):
        run_validate(ValidateConfig(study_dir=study, finetune_epochs=3, latency_target="local", **OPTIONS))


def test_latency_on_an_ssh_device_in_alternating_rounds(validated_study, sshd, tmp_path):
    study = tmp_path / "nas"
    shutil.copytree(validated_study[0], study)
    parent, pruned_name, quant_name = variant_names(study)
    set_max_latency(study, 1e-9)  # a limit for the study's Jetson estimate: not judged on another target
    summary = run_validate(
        ValidateConfig(
            study_dir=study,
            finetune_epochs=2,
            latency_target=sshd.url,
            ssh_options=sshd.options(tmp_path),
            remote_backend="onnxruntime",
            **{**OPTIONS, "timing": TimingOptions(rounds=3, warmup=1, device_rounds=2, device_runs=3)},
        )  # fmt: skip
    )
    assert summary.trained_now == ()  # everything was validated before: only the latency is taken again
    records = {r.name: r for r in summary.records}
    assert set(records) == {parent, pruned_name, quant_name, "paper"}
    for r in records.values():
        assert (r.latency_kind, r.target, r.backend) == ("measured", sshd.url, "onnxruntime")
        assert r.latency_ms > 0 and r.feasible and "NOT judged" in r.notes and "over SSH" in r.notes
    latency = read_json(study / "validated" / "latency.json")
    assert latency["target"] == sshd.url and latency["rounds"] == 2
    assert all(len(c["round_medians_ms"]) == 2 for c in latency["candidates"].values())
    # The device runs opset 13: the variants' own graphs (opset 17) are rebuilt and re-quantized for it.
    quant = records[quant_name]
    assert quant.precision == "int8" and "rebuilt here" in quant.notes and "re-quantized" in quant.notes


def test_variants_trained_at_another_size_are_timed_on_rebuilt_graphs(validated_study, tmp_path):
    """The variants' own graphs have the training size's fixed input; the deployment size needs a rebuilt one."""
    study = tmp_path / "nas"
    shutil.copytree(validated_study[0], study)
    _, pruned_name, quant_name = variant_names(study)
    options = {**OPTIONS, "latency_size": 48}
    summary = run_validate(ValidateConfig(study_dir=study, finetune_epochs=2, latency_target="local", **options))
    records = {r.name: r for r in summary.records}
    for name in (pruned_name, quant_name):
        r = records[name]
        assert (r.height, r.latency_kind, r.target) == (48, "measured", "local") and r.latency_ms > 0
        assert "rebuilt here from its config + pruning history" in r.notes
    assert "re-quantized with its stored ort-int8-qdq-minmax spec" in records[quant_name].notes
    # the rebuilt pruned graph has the variant's widths: the same parameters as its trained checkpoint
    from models import count_parameters, load_model

    trained, _ = load_model(study / "validated" / pruned_name / "checkpoint.pt")
    assert records[pruned_name].params == count_parameters(trained)


def test_variants_of_a_second_seed_record_that_seed_and_a_rerun_resumes(compressed_study_template, tmp_path):
    # Regression: a variant re-applied to seed 1's parent recorded the data seed (0), so the next run
    # took it for another budget and refused the whole study.
    study = tmp_path / "nas"
    shutil.copytree(compressed_study_template, study)
    set_max_latency(study, 1e9)
    parent, pruned_name, quant_name = variant_names(study)
    config = ValidateConfig(study_dir=study, seeds=(0, 1), **OPTIONS)
    run_validate(config)
    sd = StudyDir(study)
    for name in (pruned_name, quant_name):
        assert [sd.read_reapplied(name, slot).train_seed for slot in (None, 1)] == [0, 1]
    again = run_validate(config)  # everything finished: nothing trained, nothing refused
    assert again.trained_now == ()


def test_prune_then_qat_from_the_cli_is_reapplied_to_the_validated_parent(validated_study, tmp_path):
    """`prune --study ... --then-qat 1` records a prune -> QAT chain; validate re-applies it (QAT with its
    spec's own epochs) on the re-applied pruned variant, and ORT runs the result's Conv as integer kernels."""
    from compress import Int8GraphReport
    from rtseg_nas.cli import main
    from validate._variants import reapply_variant

    study = tmp_path / "nas"
    shutil.copytree(validated_study[0], study)
    parent, pruned, _ = variant_names(study)
    args = ["prune", "--study", str(study), "--top-k", "1", "--ratio", "0.5", "--round-to", "8", "--finetune-epochs",
            "1", "--steps-per-epoch", "2", "--then-qat", "1", "--overwrite", "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(args) == 0
    (plan,) = [p for p in find_variants(study) if p.quant and p.quant["format"] == "int8-qat"]
    assert (plan.name, plan.via, plan.parent, plan.quant["qat_epochs"]) == (f"{pruned}_int8qat", pruned, parent, 1)
    budget = read_json(study / "validated" / pruned / "reapplied.json")["budget"]["parent_budget"]
    result = reapply_variant(plan, budget, study, finetune_epochs=2, device="cpu", threads=1)
    assert result.steps[-1] == "ort-int8-qat1-qdq-minmax" and result.test.dice is not None
    work = study / "validated" / plan.name
    assert Path(read_json(work / "quantize.json")["parent"]) == study / "validated" / pruned / "checkpoint.pt"
    assert len(read_json(work / "quantize.json")["finetune"]) == 1  # the spec's QAT epochs, not the prune's 2
    graph = Int8GraphReport.from_dict(read_json(work / "int8_graph.json"))
    assert graph.conv_total > 0 and graph.conv_integer == graph.conv_total
