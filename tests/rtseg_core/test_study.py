"""The study folder's owner: paths, round trips of every file, and errors that name the file."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rtseg_core import (
    CandidateRecord,
    ConfigError,
    EvalMetrics,
    ReappliedResult,
    StudyDir,
    ValidatedLatency,
    ValidatedResult,
    ValidatedSummary,
    rank_agreement,
    read_candidate,
    read_supernet_training,
    read_training_metrics,
    read_validation,
    study_objectives,
    write_candidate,
    write_reapplied,
    write_supernet_training,
    write_trained,
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


def test_reference_and_environment_round_trip(tmp_path):
    s = StudyDir(tmp_path)
    assert s.read_settings() is None and s.read_reference() == {} and s.read_environment() == {}
    assert study_objectives(None) == (("dice", "maximize"), ("latency_ms", "minimize"))  # no study.json: default
    s.write_reference({"name": "paper (fully trained)", "train_wall_s": 12.5})
    s.write_environment({"hostname": "h"})
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


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"dice": "abc"}, r"'dice' must be a finite number in \[0, 1\], got 'abc'"),
        ({"dice": 1.5}, r"'dice' must be a finite number in \[0, 1\], got 1.5"),
        ({"latency_ms": float("nan")}, r"'latency_ms' must be a positive finite number, got nan"),
        ({"latency_ms": -1}, r"'latency_ms' must be a positive finite number, got -1"),
        ({"fps": 0}, r"'fps' must be a positive finite number, got 0"),
        ({"params": 1e300}, r"'params' must be an integer in \[0, 9223372036854775807\], got 1e\+300"),
        ({"params": 10**30}, r"'params' must be an integer in \[0, 9223372036854775807\]"),
        ({"latency_kind": "guessed"}, r"'latency_kind' must be one of measured, estimated, predicted, got 'guessed'"),
        ({"threads": "2"}, r"'threads' must be an integer >= 1, got '2'"),
        ({"feasible": "yes"}, r"'feasible' must be true or false, got 'yes'"),
        ({"name": ""}, r"'name' must be a non-empty string"),
    ],
)
def test_a_hostile_candidate_is_one_error_naming_the_file_and_field(tmp_path, changes, match):
    # Each of these once dropped a front member silently, put one on the front, or raised an OverflowError.
    path = tmp_path / "trials" / "3" / "candidate.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**RECORD.to_dict(), **changes}))
    with pytest.raises(ConfigError, match=rf"trials/3/candidate.json: {match}"):
        StudyDir(tmp_path).read_candidates()


def test_validated_stage_files_round_trip_through_the_study(tmp_path):
    s = StudyDir(tmp_path)
    assert s.trained_json("trial-3") == tmp_path / "validated" / "trial-3" / "trained.json"
    assert s.reapplied_json("trial-3.int8") == tmp_path / "validated" / "trial-3.int8" / "reapplied.json"
    assert s.validated_latency_json == tmp_path / "validated" / "latency.json"
    assert s.validated_summary_json == tmp_path / "validated" / "summary.json"
    assert s.read_trained("trial-3") is None and s.read_validated_summary() is None
    budget = {"epochs": 30, "size": 256, "batch_size": 8, "lr": 1e-3, "seed": 0, "data": "synthetic:400"}
    test = EvalMetrics(dice=0.91, dice_ps=0.9, dice_fh=0.92, delta_aop_deg=3.0)
    cand = {"candidate": "trial-3", "trial": 3, "config": {"conv_widths": [8, 16, 24]}, "source": "trial",
            "proxy_dice": 0.6, "proxy_latency_ms": 4.5, "proxy_values": {}}  # fmt: skip
    trained = ValidatedResult(cand, budget, 30, test, 0.88)
    write_trained(s.validated("trial-3"), trained)
    assert s.read_trained("trial-3") == trained and trained.name == "trial-3" and trained.proxy_dice == 0.6
    variant = {"name": "trial-3.int8", "parent": "trial-3", "precision": "int8", "proxy_dice": 0.58}
    vbudget = {"parent_budget": budget, "prune": None, "quantize": {"format": "qdq"}, "finetune_epochs": 0,
               "finetune": {"lr": 1e-4}}  # fmt: skip
    reapplied = ReappliedResult(variant, vbudget, ("ort-int8",), test, (), None)
    write_reapplied(s.validated("trial-3.int8"), reapplied)
    assert s.read_reapplied("trial-3.int8") == reapplied and reapplied.parent == "trial-3"
    latency = ValidatedLatency("measured", "local", {"threads": 1}, {"trial-3": {"median_ms": 4.0}})
    s.write_validated_latency(latency)
    assert s.read_validated_latency() == latency
    agreement = rank_agreement([0.1, 0.2, 0.3], [0.3, 0.2, 0.4], n_resamples=50)
    summary = ValidatedSummary(budget, ("trial-3",), ("trial-3.int8",), "local", {"trial-3": 0.6}, agreement)
    s.write_validated_summary(summary)
    assert s.read_validated_summary() == summary
    # A hand-edited result names its file and field.
    s.trained_json("trial-3").write_text(json.dumps({**trained.to_dict(), "test": {**test.to_dict(), "dice": 7}}))
    with pytest.raises(ConfigError, match=r"validated/trial-3/trained.json: 'test.dice' must be a finite number"):
        s.read_trained("trial-3")


def test_the_supernet_record_has_its_own_name_and_older_folders_still_read(tmp_path):
    record = {"train": {"epochs": 2}, "sandwich": {}, "space": {}, "largest": {}, "smallest": {},
              "epochs": [{"epoch": 1, "seconds": 1.5}], "wall_s_this_run": 1.5, "device": "cpu"}  # fmt: skip
    assert read_supernet_training(tmp_path) is None
    assert write_supernet_training(tmp_path / "new", record) == tmp_path / "new" / "supernet.json"
    assert read_supernet_training(tmp_path / "new") == record
    # A folder from before the record had its name keeps it as metrics.json: read when it is the supernet's.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(record))
    assert read_supernet_training(tmp_path / "old") == record
    # A trainer's metrics.json is not a supernet's record.
    write_training_metrics(tmp_path / "train", train={}, epochs=[], wall_s=1.0, val_dice=None, stopped_early=False,
                           device="cpu")  # fmt: skip
    with pytest.raises(ConfigError, match=r"train/metrics.json: not a supernet's training record \(missing"):
        read_supernet_training(tmp_path / "train")
    (tmp_path / "new" / "supernet.json").write_text(json.dumps({**record, "epochs": [{"seconds": "1.5"}]}))
    with pytest.raises(ConfigError, match=r"supernet.json: 'epochs\[0\].seconds' must be a finite number >= 0"):
        read_supernet_training(tmp_path / "new")
    (tmp_path / "new" / "supernet.json").write_text(json.dumps({**record, "epochs": [{"seconds": 1.5, "cpu_s": -1}]}))
    with pytest.raises(ConfigError, match=r"supernet.json: 'epochs\[0\].cpu_s' must be a finite number >= 0"):
        read_supernet_training(tmp_path / "new")
