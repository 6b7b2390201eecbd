"""study.json as one typed record: a round trip per strategy, older files, and hostile files naming file and field."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from rtseg_core import (
    MULTI_FIDELITY,
    MULTI_TRIAL,
    SUPERNET,
    ConfigError,
    Constraints,
    MultiTrialSettings,
    ProxyTrainingSettings,
    StudyDir,
    StudySettings,
    SupernetSettings,
)

PROXY = ProxyTrainingSettings(epochs=4, steps_per_epoch=25, batch_size=8, lr=3e-3, val_batches=None, frames="ps+fh",
                              seed=0)  # fmt: skip
MULTI = StudySettings(
    objectives=(("dice", "maximize"), ("latency_ms", "minimize")),
    constraints=Constraints(min_fps=10, max_params=2_000_000),
    target="local",
    precision="fp32",
    threads=1,
    data="synthetic:24",
    size=32,
    latency_size=None,
    sampler="nsga2",
    population_size=16,
    seed=0,
    space={"base": "paper", "conv_widths": [[8, 16], [16, 24]]},
    trials_requested=20,
    storage="sqlite:///s/study.db",
    study_name="s",
    reference="paper",
    search=MultiTrialSettings(
        PROXY,
        early_stop=True,
        early_stop_rule={"after_epochs": 2, "margin": 0.1, "cost_tolerance": 0.1},
        budget_epochs=40,
    ),  # fmt: skip
)
FIDELITY = dataclasses.replace(
    MULTI,
    search=dataclasses.replace(MULTI.search, proxy_training=dataclasses.replace(PROXY, fidelity=(1, 2, 4), eta=2)),
)
ONESHOT = dataclasses.replace(
    MULTI,
    objectives=(("dice", "maximize"), ("params", "minimize")),
    target="jetson-nano-estimate",
    reference=None,
    search=SupernetSettings(
        path="/runs/sn/supernet.pt",
        epoch=3,
        container="conv 8-16-24 ...",
        train={"epochs": 3, "steps_per_epoch": 2},
        sandwich={"random_subnets": 2},
        recipe="supernet-inherited",
        bn_batches=4,
        val_batches=None,
    ),  # fmt: skip
)


@pytest.mark.parametrize(("settings", "strategy"), [(MULTI, MULTI_TRIAL), (FIDELITY, MULTI_FIDELITY),
                                                    (ONESHOT, SUPERNET)])  # fmt: skip
def test_round_trip_for_each_strategy(tmp_path, settings, strategy):
    study = StudyDir(tmp_path)
    study.write_settings(settings)
    data = json.loads(study.study_json.read_text())
    assert data["strategy"] == strategy == settings.strategy
    assert study.read_settings() == settings
    if strategy == SUPERNET:
        assert data["supernet"]["path"] == "/runs/sn/supernet.pt" and data["evaluation"]["bn_batches"] == 4
        assert "proxy_training" not in data
    else:
        # the layout a resumed study compares against: rungs only in a multi-fidelity study
        assert ("fidelity" in data["proxy_training"]) == (strategy == MULTI_FIDELITY)
        assert data["early_stop"] == {"enabled": True, "after_epochs": 2, "margin": 0.1, "cost_tolerance": 0.1}


def test_the_one_writer_takes_the_record_only(tmp_path):
    with pytest.raises(TypeError, match="StudySettings"):
        StudyDir(tmp_path).write_settings(MULTI.to_dict())


def test_a_study_from_an_older_version_states_the_default_it_took(tmp_path, caplog):
    # Before the epoch budget and the strategy field existed (e.g. a study of 2026-11-27).
    study = StudyDir(tmp_path)
    old = {k: v for k, v in MULTI.to_dict().items() if k not in ("budget_epochs", "strategy")}
    study.study_json.write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING):
        settings = study.read_settings()
    assert settings.strategy == MULTI_TRIAL and settings.search.budget_epochs is None
    assert settings.assumed == ("budget_epochs: null (no epoch budget; the file was written before searches had one)",)
    assert any("older version; assumed budget_epochs: null" in r.getMessage() for r in caplog.records)
    # Every other field has always been written: its absence is an error naming it.
    study.study_json.write_text(json.dumps({k: v for k, v in old.items() if k != "threads"}))
    with pytest.raises(ConfigError, match=r"study.json: missing field 'threads'$"):
        study.read_settings()


def _edited(**changes):
    data = MULTI.to_dict()
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            data[outer] = {**data[outer], inner: value}
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([MULTI.to_dict()], r"study.json: expected a JSON object, got \[\{"),
        (_edited(threads="4"), r"study.json: 'threads' must be an integer >= 1, got '4'"),
        (_edited(threads=True), r"study.json: 'threads' must be an integer >= 1, got True"),
        (_edited(threads=0), r"study.json: 'threads' must be an integer >= 1, got 0"),
        (_edited(objectives="dice,latency"), r"study.json: 'objectives' must be a JSON list, got 'dice,latency'"),
        (_edited(objectives=[["bogus", "maximize"]]), r"study.json: 'objectives\[0\]' names an unknown objective"),
        (_edited(objectives=[["dice", "best"]]), r"study.json: 'objectives\[0\]' direction must be"),
        (_edited(objectives=[["dice"]]), r"study.json: 'objectives\[0\]' must be a \[field, direction\] pair"),
        (_edited(objectives=[]), r"study.json: 'objectives' must list at least one objective"),
        (_edited(precision=16), r"study.json: 'precision' must be a non-empty string, got 16"),
        (_edited(**{"proxy_training.epochs": 0}), r"study.json: 'proxy_training.epochs' must be an integer >= 1"),
        (_edited(**{"proxy_training.lr": float("nan")}), r"study.json: 'proxy_training.lr' must be a positive"),
        (_edited(**{"constraints.max_params": "2M"}), r"study.json: constraints.max_params must be a positive"),
        (_edited(**{"early_stop.enabled": "yes"}), r"study.json: 'early_stop.enabled' must be true or false"),
        (_edited(strategy="supernet"), r"study.json: missing field 'supernet'"),
        (_edited(strategy="multi-fidelity"), r"study.json: 'strategy' does not match 'proxy_training'"),
        (_edited(strategy="grid"), r"study.json: 'strategy' must be one of multi-trial, multi-fidelity, supernet"),
        (_edited(space=[1, 2]), r"study.json: 'space' must be a JSON object"),
    ],
)
def test_a_hostile_study_json_is_one_error_naming_the_file_and_field(tmp_path, data, match):
    study = StudyDir(tmp_path)
    study.study_json.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=match):
        study.read_settings()


def test_a_hostile_supernet_part_names_its_field(tmp_path):
    study = StudyDir(tmp_path)
    data = ONESHOT.to_dict()
    data["supernet"]["sandwich"] = {"random_subnets": -1}
    study.study_json.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"'supernet.sandwich.random_subnets' must be an integer >= 0, got -1"):
        study.read_settings()
