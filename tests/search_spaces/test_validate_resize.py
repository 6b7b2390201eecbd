"""A deploy-at-a-smaller-input variant: made by ``compress --study``, re-applied by ``validate`` at its own sizes.

Real search, real fine-tunes, real ONNX Runtime timing. The template study was timed at 32 px; its
trial records are re-labelled as timed at 64 px so that a 32-px deployment is a smaller input
(a multiple of 32), trained at 16 px (32 px training size x 32 / 64).
"""

from __future__ import annotations

import shutil

import pytest

from compress import FinetuneSpec, compress_study
from profiling import TimingOptions, read_onnx_input
from rtseg_core import StudyDir, atomic_write_json, read_json
from validate._config import ValidateConfig
from validate._queue import run_validate
from validate._variants import find_variants


@pytest.fixture(scope="module")
def resized_study(compressed_study_template, tmp_path_factory):
    study = tmp_path_factory.mktemp("resize") / "nas"
    shutil.copytree(compressed_study_template, study)
    shutil.rmtree(study / "compressed")  # only the resize variant, to keep the test short
    for record_path in (study / "trials").glob("*/candidate.json"):
        record = read_json(record_path)
        atomic_write_json(record_path, {**record, "height": 64, "width": 64})
    (record,) = compress_study(
        study, top_k=1, resize=32, finetune_spec=FinetuneSpec(epochs=1, steps_per_epoch=1, batch_size=4),
        runs=3, progress=False,
    )  # fmt: skip
    return study, record


def test_compress_records_the_variant_at_its_deployment_size(resized_study) -> None:
    study, record = resized_study
    assert record.name.endswith(".in32") and (record.height, record.width) == (32, 32)
    assert record.recipe == "in32+ft1" and "scored at the reference 256px" in record.notes
    folder = StudyDir(study).compressed(record.name)
    assert read_onnx_input(folder / "model.onnx").shape[2:] == (16, 16)  # 32 px of a 64-px deployment at 32 px
    (plan,) = find_variants(study)
    assert (plan.deploy_size, plan.latency_size, plan.finetune_epochs) == (32, 64, 1)


def test_validate_trains_and_times_the_variant_at_its_own_size(resized_study) -> None:
    study, compressed = resized_study
    summary = run_validate(
        ValidateConfig(
            study_dir=study, epochs=1, size=32, batch_size=4, latency_size=64, latency_target="local",
            timing=TimingOptions(rounds=3, warmup=1), top_k=1, heartbeat_interval=1, finetune_epochs=1,
        )
    )  # fmt: skip
    records = {r.name: r for r in summary.records}
    variant, parent = records[compressed.name], records[compressed.parent]
    assert (parent.height, variant.height, variant.width) == (64, 32, 32)
    assert variant.latency_ms > 0 and parent.latency_ms > 0 and variant.latency_kind == "measured"
    assert "deploy at 32x32 (of 64): fine-tune 1 epoch(s) at 16x16" in variant.recipe
    assert "reference 256x256" in variant.notes and "reference 256x256" in parent.notes
    work = StudyDir(study).validated(compressed.name, None)
    assert read_onnx_input(work / "model.onnx").shape[2:] == (16, 16)
    reapplied = read_json(work / "reapplied.json")
    assert reapplied["test"]["reference_size"] == 256
    assert reapplied["budget"]["resize"] == {"deploy_size": 32, "latency_size": 64}
