"""Objectives and the one feasibility check (search, compression and reports all use it)."""

from __future__ import annotations

import math

import pytest

from rtseg_core import ConfigError, Constraints, default_objective_pairs, is_feasible, parse_objectives, violations


def test_objectives_accept_short_and_record_names():
    objs = parse_objectives("dice, latency")
    assert [(o.field, o.direction) for o in objs] == [("dice", "maximize"), ("latency_ms", "minimize")]
    assert [o.name for o in parse_objectives(["delta_aop_deg", "params", "macs"])] == ["delta_aop", "params", "macs"]
    with pytest.raises(ConfigError, match="did you mean 'latency'"):
        parse_objectives("dice,latncy")
    with pytest.raises(ConfigError, match="twice"):
        parse_objectives("dice,dice")


def test_default_objectives_in_study_form():
    assert default_objective_pairs() == (("dice", "maximize"), ("latency_ms", "minimize"))


def test_constraints_are_relative_violations():
    c = Constraints(min_fps=25, max_latency_ms=40, max_params=1_000_000)
    values = c.values(params=1_500_000, latency_ms=20.0, fps=50.0)
    assert values == pytest.approx({"min_fps": -1.0, "max_latency_ms": -0.5, "max_params": 0.5})
    assert violations(values) == ["max_params"] and not is_feasible(values)
    assert c.values(params=1, latency_ms=None, fps=None)["max_latency_ms"] > 0
    with pytest.raises(ConfigError, match="max-params"):
        Constraints(max_params=-5)


@pytest.mark.parametrize(
    ("numbers", "met"),
    [
        ({"params": 1_000_000, "latency_ms": 40.0, "fps": 25.0}, True),  # every limit met exactly
        ({"params": 1_000_001, "latency_ms": 40.0, "fps": 25.0}, False),
        ({"params": 1_000_000, "latency_ms": 40.001, "fps": 25.0}, False),
        ({"params": 1_000_000, "latency_ms": 40.0, "fps": 24.999}, False),
        ({"params": 1_000_000, "latency_ms": math.nan, "fps": 25.0}, False),  # unknown cannot show it meets it
        ({"params": None, "latency_ms": 40.0, "fps": 25.0}, False),
    ],
)
def test_met_by_is_the_boundary_of_the_relative_values(numbers, met):
    c = Constraints(min_fps=25, max_latency_ms=40, max_params=1_000_000)
    assert c.met_by(**numbers) is met


def test_no_limits_accept_anything_and_params_only_drops_latency():
    assert Constraints().met_by(params=None, latency_ms=None, fps=None)
    c = Constraints(min_fps=1000, max_params=10)
    assert c.params_only() == Constraints(max_params=10)
    assert c.params_only().met_by(params=10, latency_ms=None, fps=None)


def test_constraints_from_study_json_name_the_file_and_field():
    c = Constraints.from_dict({"min_fps": 10, "max_latency_ms": None}, source="runs/s/study.json")
    assert c.to_dict() == {"min_fps": 10, "max_latency_ms": None, "max_params": None}
    assert Constraints.from_dict(None) == Constraints()
    with pytest.raises(ConfigError, match=r"runs/s/study.json: constraints.max_params .* got '2M'"):
        Constraints.from_dict({"max_params": "2M"}, source="runs/s/study.json")
    with pytest.raises(ConfigError, match="study.json: 'constraints' must be an object"):
        Constraints.from_dict([1, 2])
