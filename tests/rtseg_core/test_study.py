"""The study folder's owner: paths, round trips of every file, and errors that name the file."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rtseg_core import (
    CandidateRecord,
    ConfigError,
    StudyDir,
    read_candidate,
    read_training_metrics,
    read_validation,
    study_objectives,
    write_candidate,
    write_training_metrics,
    write_validation,
)

RECORD = CandidateRecord(
    name="trial-3", source="trial", dataset="synthetic", split="val", dice=0.8, dice_ps=0.79, dice_fh=0.81,
    delta_aop_deg=None, params=123_456, macs=7_000_000, latency_ms=4.5, fps=222.2, latency_kind="measured",
    target="local", device="cpu", backend="onnxruntime", precision="fp32", threads=1, height=96, width=96,
    trial=3, config={"conv_widths": [8, 16, 24]},
)  # fmt: skip


def test_layout(tmp_path):
    s = StudyDir(tmp_path)
    assert s.study_json == tmp_path / "study.json" and s.reference_json == tmp_path / "reference.json"
    assert s.trial_dir(3) == tmp_path / "trials" / "3"
    assert s.compressed("trial-3.p50") == tmp_path / "compressed" / "trial-3.p50"
    assert s.validated("trial-3") == tmp_path / "validated" / "trial-3"
    assert s.report_dir == tmp_path / "report" and s.history_csv == tmp_path / "history.csv"
    for bad in ("..", "a/b", ""):
        with pytest.raises(ConfigError, match="not usable as a folder name"):
            s.compressed(bad)


def test_settings_reference_and_environment_round_trip(tmp_path):
    s = StudyDir(tmp_path)
    assert s.read_settings() == {} and s.read_reference() == {} and s.read_environment() == {}
    settings = {"objectives": [["dice", "maximize"], ["params", "minimize"]], "constraints": {"max_params": 10}}
    s.write_settings(settings)
    s.write_reference({"name": "paper (fully trained)", "train_wall_s": 12.5})
    s.write_environment({"hostname": "h"})
    assert s.read_settings() == settings
    assert study_objectives(s.read_settings()) == (("dice", "maximize"), ("params", "minimize"))
    assert s.read_reference() == {"name": "paper (fully trained)", "train_wall_s": 12.5}
    assert s.read_environment() == {"hostname": "h"}


@pytest.mark.parametrize(("attr", "what"), [("study_json", "read_settings"), ("reference_json", "read_reference")])
def test_study_files_that_are_not_objects_name_the_file(tmp_path, attr, what):
    s = StudyDir(tmp_path)
    getattr(s, attr).write_text("[1, 2]")
    with pytest.raises(ConfigError, match=rf"{getattr(s, attr).name}: expected a JSON object"):
        getattr(s, what)()
    getattr(s, attr).write_text("{not json")
    with pytest.raises(ConfigError, match=rf"{getattr(s, attr).name}: not valid JSON"):
        getattr(s, what)()


def test_candidates_round_trip_with_their_folders(tmp_path):
    s = StudyDir(tmp_path)
    write_candidate(s.trial_dir(3), RECORD)
    variant = replace(RECORD, name="trial-3.int8", source="compressed", parent="trial-3", precision="int8")
    write_candidate(s.compressed(variant.name), variant)
    assert read_candidate(s.trial_dir(3) / "candidate.json") == RECORD
    assert s.read_candidates() == [(RECORD, s.trial_dir(3)), (variant, s.compressed(variant.name))]
    assert s.read_candidates(("trials",)) == [(RECORD, s.trial_dir(3))]
    assert s.read_candidates(("validated",)) == []


def test_broken_and_duplicate_candidates_name_the_file(tmp_path):
    s = StudyDir(tmp_path)
    write_candidate(s.trial_dir(3), RECORD)
    bad = s.trial_dir(4) / "candidate.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps({"name": "x", "bogus": 1}))
    with pytest.raises(ConfigError, match=r"trials/4/candidate.json.*bogus"):
        s.read_candidates()
    partial = {k: v for k, v in RECORD.to_dict().items() if k != "params"}
    bad.write_text(json.dumps(partial))
    with pytest.raises(ConfigError, match=r"trials/4/candidate.json: not a complete CandidateRecord"):
        s.read_candidates()
    write_candidate(bad.parent, RECORD)
    with pytest.raises(ConfigError, match=r"trials/4/candidate.json: candidate name 'trial-3' is already used"):
        s.read_candidates()


def test_existing_names_a_missing_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"nope: study directory not found"):
        StudyDir.existing(tmp_path / "nope")


def test_metrics_and_validation_are_two_files_with_one_schema_each(tmp_path):
    epochs = [{"epoch": 1, "loss": 0.5, "val_dice": 0.4}]
    write_training_metrics(
        tmp_path, train={"lr": 0.001}, epochs=epochs, wall_s=1.5, val_dice=0.4, stopped_early=False, device="cpu"
    )
    write_validation(tmp_path, split="val", size=96, summary={"mean": {"dice": 0.41}})
    metrics = read_training_metrics(tmp_path)
    assert metrics["epochs"] == epochs and metrics["wall_s"] == 1.5 and metrics["device"] == "cpu"
    assert read_validation(tmp_path) == {"split": "val", "size": 96, "summary": {"mean": {"dice": 0.41}}}
    # A metrics.json in the old merged trial form ({"training": ..., "val": ...}) is refused, naming it.
    (tmp_path / "metrics.json").write_text(json.dumps({"training": metrics, "val": None}))
    with pytest.raises(ConfigError, match=r"metrics.json: not a training-metrics file \(missing \['train'"):
        read_training_metrics(tmp_path)
    with pytest.raises(ConfigError, match=r"validation.json: file not found"):
        read_validation(tmp_path / "elsewhere")


def test_remeasured_round_trip_and_absence(tmp_path):
    s = StudyDir(tmp_path)
    assert s.remeasured_json == tmp_path / "remeasured.json" and s.read_remeasured() is None
    data = {"kind": "predicted vs measured", "rows": [{"name": "trial-3", "predicted_ms": 4.5, "measured_ms": 5.0}]}
    assert s.write_remeasured(data) == s.remeasured_json and s.read_remeasured() == data
    s.remeasured_json.write_text(json.dumps({"rows": [{"name": "trial-3", "predicted_ms": 4.5, "measured_ms": "5"}]}))
    with pytest.raises(ConfigError, match=r"remeasured.json: rows\[0\] \(trial-3\): 'measured_ms'"):
        s.read_remeasured()
