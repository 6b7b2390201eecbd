"""The one-shot search at predictor speed: accuracy predictor, NSGA-II on predictors, re-scored front.

A tiny supernet trained for real, a kernel table built for real on this CPU (kernels the table
lacks are timed on demand), real inherited-weight evaluations; no timing or accuracy assertions.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from models import RTSegConfig, build_model
from profiling import SubnetLatency
from profiling._table_build import build_table
from rtseg_core import ConfigError, StudyDir
from search_spaces import (
    PredictorOptions,
    SandwichConfig,
    SearchSpace,
    SupernetSearchConfig,
    fit_accuracy_predictor,
    holdout_mask,
    random_config,
    run_predictor_search,
    train_supernet,
)
from search_spaces._supernet_search import SubnetEvaluator
from segmentation import TrainConfig
from tests.search_spaces.conftest import TINY_SPACE

SIZE = 32


@pytest.fixture(scope="module")
def space():
    return SearchSpace.from_dict(TINY_SPACE)


def _configs(space, n: int, seed: int = 0) -> list[RTSegConfig]:
    rng = random.Random(seed)
    out: list[RTSegConfig] = []
    while len(out) < n:
        cfg = random_config(space, rng)
        if cfg not in out:
            out.append(cfg)
    return out


def test_the_holdout_split_is_deterministic_and_independent_of_order(space):
    configs = _configs(space, 40)
    mask = holdout_mask(configs, share=0.25, seed=0)
    assert mask.sum() == 10
    held = {c for c, m in zip(configs, mask) if m}
    shuffled = configs[::-1]
    assert {c for c, m in zip(shuffled, holdout_mask(shuffled, share=0.25, seed=0)) if m} == held
    assert {c for c, m in zip(configs, holdout_mask(configs, share=0.25, seed=1)) if m} != held
    with pytest.raises(ConfigError, match="--holdout"):
        holdout_mask(configs, share=1.0, seed=0)


def test_the_predictor_is_chosen_by_cross_validation_and_judged_on_held_out_subnets(space):
    configs = _configs(space, 60)
    # a Dice that grows with the widths: every candidate can rank it
    dice = [0.5 + sum(c.conv_widths + c.token_widths) / 1000 + 0.01 * c.enc_depths[0] for c in configs]
    first = fit_accuracy_predictor(configs, dice, space, seed=0)
    again = fit_accuracy_predictor(configs[::-1], dice[::-1], space, seed=0)
    assert first.name == again.name and first.n_holdout == 12 and first.n_train == 48
    assert set(first.cv_spearman) == {"ridge-onehot", "gbr-numeric", "gbr-onehot"}
    assert first.cv_spearman[first.name] == max(first.cv_spearman.values())
    assert np.allclose(first.predict(configs), again.predict(configs))
    assert first.holdout.spearman > 0.8 and first.rmse < 0.05  # a noiseless linear target
    assert first.to_dict()["holdout"]["n"] == 12
    with pytest.raises(ConfigError, match="at least 20"):
        fit_accuracy_predictor(configs[:10], dice[:10], space)


@pytest.fixture(scope="module")
def trained(space, tmp_path_factory):
    out = tmp_path_factory.mktemp("supernet")
    train = TrainConfig(data="synthetic:24", size=SIZE, batch_size=4, steps_per_epoch=2, seed=0, device="cpu", epochs=1)
    train_supernet(space, train, out, sandwich=SandwichConfig(random_subnets=1, bn_batches=2), progress=False)
    return out / "supernet.pt"


@pytest.fixture(scope="module")
def table(space, tmp_path_factory):
    out = tmp_path_factory.mktemp("table") / "table.json"
    models = [(f"m{i}", build_model(cfg).eval()) for i, cfg in enumerate(_configs(space, 3, seed=5))]
    build_table(out, models, size=SIZE, threads=1, calibrate=3, rounds=1, runs=1, batch_size=64)
    return out


def _config(study, trained, table) -> SupernetSearchConfig:
    return SupernetSearchConfig.from_options(
        study, trained, target=f"predict:{table}", latency_size=SIZE, bn_batches=2, progress=False
    )


def test_the_predictor_search_re_scores_its_front_as_supernet_search_does(trained, table, tmp_path):
    from reports import compute_report

    study = tmp_path / "study"
    options = PredictorOptions(samples=20, evaluations=12, population_size=4, rescore=3)
    result = run_predictor_search(_config(study, trained, table), options)
    assert result.samples_evaluated == 20 and result.search.scored > 0
    record = json.loads((study / "predictor.json").read_text())
    assert record["predictor"]["n_holdout"] == 4 and record["predictor"]["holdout"]["n"] == 4
    assert record["search"]["evaluations"] == result.search.scored
    assert 1 <= len(result.front) <= 3

    # every re-scored member is what supernet search computes for that subnet (same Dice, same latency)
    evaluator = SubnetEvaluator(_config(tmp_path / "other", trained, table))
    evaluator.check()
    latency = SubnetLatency(table, size=SIZE, time_missing=False)
    candidates = {c.trial: c for c, _ in StudyDir(study).read_candidates(("trials",))}
    for member in result.front:
        cand = candidates[member["trial"]]
        cfg = RTSegConfig.from_dict(cand.config)
        assert cand.dice == pytest.approx(evaluator.inherited_dice(cfg), abs=1e-9)
        assert cand.latency_ms == pytest.approx(latency.cost(cfg).latency_ms)
        assert cand.recipe == "supernet-inherited" and cand.latency_kind == "predicted"
    settings = json.loads((study / "study.json").read_text())
    assert settings["strategy"] == "supernet"
    assert len(compute_report(study).candidates) == len(candidates)

    # resumed: the samples file is kept, nothing is evaluated twice
    again = run_predictor_search(_config(study, trained, table), options)
    assert again.samples_evaluated == 0 and again.summary.trials_run == 0
    # the samples' CPU is kept per line, so the total survives the resume (report --compare counts it)
    lines = [json.loads(x) for x in (study / "predictor_samples.jsonl").read_text().splitlines()]
    resumed = json.loads((study / "predictor.json").read_text())["samples"]
    assert resumed["cpu_s_this_run"] == 0
    assert resumed["cpu_s"] == pytest.approx(sum(x["cpu_s"] for x in lines), abs=0.01)
    assert resumed["cpu_s"] == pytest.approx(record["samples"]["cpu_s"]) and resumed["cpu_s"] > 0


def test_the_predictor_search_needs_a_table_and_predictable_objectives(trained, table, tmp_path):
    options = PredictorOptions(samples=20, evaluations=10)
    estimate = SupernetSearchConfig.from_options(tmp_path / "a", trained, target="jetson-nano-estimate")
    with pytest.raises(ConfigError, match="predict:TABLE"):
        run_predictor_search(estimate, options)
    aop = SupernetSearchConfig.from_options(
        tmp_path / "b", trained, target=f"predict:{table}", objectives="dice,delta_aop,latency"
    )
    with pytest.raises(ConfigError, match="not delta_aop_deg"):
        run_predictor_search(aop, options)
