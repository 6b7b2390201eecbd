from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from reports import CANDIDATE_COLUMNS, load_candidates, load_history, study_constraints, study_objectives
from rtseg_core import ConfigError, atomic_write_json

from .conftest import SETTINGS, STUDY_SETTINGS, cand, tiny_records, write_study


def test_candidates_one_column_per_field_in_source_order(tiny_study):
    df = load_candidates(tiny_study)
    assert tuple(df.columns) == CANDIDATE_COLUMNS
    assert list(df["name"]) == ["paper", "trial-1", "trial-2", "trial-3", "trial-4", "trial-5", "paper.int8"]
    assert np.isnan(df.loc[df.name == "trial-5", "dice"].iloc[0])
    assert pd.isna(df.loc[df.name == "trial-4", "threads"].iloc[0])
    assert str(df["params"].dtype) == "Int64"
    assert df.loc[df.name == "paper.int8", "parent"].iloc[0] == "paper"
    assert df.loc[df.name == "paper", "parent"].iloc[0] is None
    assert df.loc[df.name == "paper", "config"].iloc[0] == {"widths": [8, 16, 32], "act": "gelu"}
    # Values survive the trip through JSON unchanged.
    rec = {r.name: r for r in tiny_records()}["trial-4"]
    row = df[df.name == "trial-4"].iloc[0]
    for field in ("dice", "latency_ms", "fps", "latency_kind", "target", "backend", "params", "macs", "trial"):
        assert row[field] == getattr(rec, field), field


def test_broken_and_duplicate_candidates_name_the_file(tmp_path):
    root = write_study(tmp_path / "s", [cand("paper")], settings=SETTINGS)
    bad = root / "trials" / "9" / "candidate.json"
    atomic_write_json(bad, {"name": "x", "bogus": 1})
    with pytest.raises(ConfigError, match=r"trials/9/candidate.json.*bogus"):
        load_candidates(root)
    atomic_write_json(bad, cand("paper", trial=9).to_dict())
    with pytest.raises(ConfigError, match="already used"):
        load_candidates(root)
    with pytest.raises(ConfigError, match="study directory not found"):
        load_candidates(tmp_path / "nope")


def test_settings_helpers(tiny_study):
    from reports import load_study_settings

    settings = load_study_settings(tiny_study)
    assert settings == STUDY_SETTINGS
    assert study_objectives(settings) == (("dice", "maximize"), ("latency_ms", "minimize"))
    assert study_objectives(None) == (("dice", "maximize"), ("latency_ms", "minimize"))
    assert study_constraints(settings) == {"min_fps": 10, "max_latency_ms": None, "max_params": None}
    assert study_constraints(None) == {"min_fps": None, "max_latency_ms": None, "max_params": None}
    atomic_write_json(tiny_study / "study.json", {**SETTINGS, "objectives": [["dice", "best"]]})
    with pytest.raises(ConfigError, match=r"study.json: 'objectives\[0\]' direction .*'best'"):
        load_study_settings(tiny_study)
    atomic_write_json(tiny_study / "study.json", {**SETTINGS, "constraints": {"max_params": "2M"}})
    with pytest.raises(ConfigError, match="study.json: constraints.max_params"):
        load_study_settings(tiny_study)


def test_history_from_candidates_when_no_csv(tiny_study):
    h = load_history(tiny_study, SETTINGS["objectives"])
    assert list(h["number"]) == [0, 1, 2, 3, 4, 5]
    assert list(h["feasible"]) == [True, True, True, False, True, True]
    assert h.loc[1, "latency_ms"] == 25.0 and np.isnan(h.loc[5, "dice"])


def test_history_csv_in_optuna_layout(tiny_study):
    csv = (
        "number,state,values_0,values_1,feasible\n"
        "0,TrialState.COMPLETE,0.9,50,True\n1,TrialState.FAIL,,,\n2,COMPLETE,0.8,20,False\n"
    )
    (tiny_study / "history.csv").write_text(csv)
    h = load_history(tiny_study, SETTINGS["objectives"])
    assert list(h["state"]) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert list(h["feasible"]) == [True, False, False]
    assert list(h["dice"].fillna(-1)) == [0.9, -1, 0.8]
    (tiny_study / "history.csv").write_text("number,dice\n0,0.9\n")
    with pytest.raises(ConfigError, match=r"history.csv: no column for objective 'latency_ms'"):
        load_history(tiny_study, SETTINGS["objectives"])


def test_study_json_must_be_an_object(tmp_path):
    root = write_study(tmp_path / "s", [cand("paper")])
    (root / "study.json").write_text(json.dumps([1, 2]))
    from reports import load_study_settings

    with pytest.raises(ConfigError, match="study.json: expected a JSON object"):
        load_study_settings(root)
