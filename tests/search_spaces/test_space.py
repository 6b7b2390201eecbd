"""The search space: ranges, define-by-run sampling with real Optuna trials, round trips, rejections."""

from __future__ import annotations

import dataclasses
import json

import optuna
import pytest

from models import PRESETS, RTSegConfig, build_model, count_parameters
from rtseg_core import ConfigError
from search_spaces import (
    SearchSpace,
    check_config,
    config_from_params,
    params_from_config,
    suggest_config,
    summarize_config,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_default_space_has_the_issue_ranges_around_paper():
    space = SearchSpace()
    params = space.parameters()
    # C1 directly, C2..C5 as increments above the smallest width allowed after the previous stage
    assert params["conv_widths.0"] == ("int", (8, 24, 8))
    assert params["conv_widths.1.inc"] == ("int", (0, 32, 8))
    assert params["conv_widths.2.inc"] == ("int", (0, 96, 8))
    assert params["token_widths.0.inc"] == ("int", (0, 96, 8))
    assert params["token_widths.1.inc"] == ("int", (0, 192, 8))
    assert space.width_ranges() == [(8, 24), (16, 48), (64, 160), (96, 192), (128, 320)]
    assert params["enc_depths.0"] == params["enc_depths.1"] == ("int", (0, 3, 1))
    assert params["dec_depths.0"] == params["dec_depths.1"] == ("int", (0, 2, 1))
    assert params["mlp_ratio"] == ("int", (1, 4, 1))
    assert params["shift_size"] == ("int", (3, 7, 2))
    assert "dsconv_bits" not in params  # fixed at None unless asked for
    assert space.contains(PRESETS["paper"])
    # the non-decreasing width tuples (counted below by brute force), 4^2 * 3^2 depths, 4 ratios, 3 shifts
    assert space.size() == len(_valid_width_tuples(space)) * 16 * 9 * 4 * 3
    assert SearchSpace(increasing_widths=False).size() == 3 * 5 * 13 * 13 * 25 * 16 * 9 * 4 * 3


def _valid_width_tuples(space):
    import itertools

    axes = [range(lo, hi + 1, space.width_step) for lo, hi in space.width_ranges()]
    return {w for w in itertools.product(*axes) if all(a <= b for a, b in zip(w, w[1:]))}


def test_increments_reach_exactly_the_non_decreasing_widths():
    import itertools

    space = SearchSpace()
    params = space.parameters()
    names = [n for n in params if n.startswith(("conv_widths", "token_widths"))]
    axes = [range(params[n][1][0], params[n][1][1] + 1, params[n][1][2]) for n in names]
    base = params_from_config(PRESETS["paper"], space)
    reached = set()
    for values in itertools.product(*axes):
        cfg = config_from_params({**base, **dict(zip(names, values))}, space)
        assert check_config(cfg, space) is None  # no proposal is invalid
        reached.add(cfg.conv_widths + cfg.token_widths)
    assert reached == _valid_width_tuples(space)


def test_every_sampled_proposal_is_valid_with_nsga2_and_random():
    space = SearchSpace()
    for sampler in (optuna.samplers.NSGAIISampler(population_size=4, seed=1), optuna.samplers.RandomSampler(seed=2)):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        for n in range(40):
            trial = study.ask()
            cfg = suggest_config(trial, space)  # raises ConfigError on a rejected proposal
            assert space.contains(cfg) and config_from_params(trial.params, space) == cfg
            study.tell(trial, [float(n % 7), float(sum(cfg.conv_widths + cfg.token_widths))])


def test_parameter_names_map_back_to_config_fields():
    fields = {f.name for f in dataclasses.fields(RTSegConfig)}
    for name in SearchSpace(dsconv_bits=(None, 8)).parameters():
        assert name.split(".")[0] in fields


def test_paper_round_trips_through_params():
    space = SearchSpace()
    params = params_from_config(PRESETS["paper"], space)
    # paper: C = 16/32/128/160/256 -> C1 16, then 32-16, 128-64, 160-128, 256-160
    assert params["conv_widths.0"] == 16 and params["conv_widths.1.inc"] == 16 and params["conv_widths.2.inc"] == 64
    assert params["token_widths.0.inc"] == 32 and params["token_widths.1.inc"] == 96 and params["shift_size"] == 5
    assert config_from_params(params, space) == PRESETS["paper"]
    assert space.contains(PRESETS["paper"])
    legacy = SearchSpace(increasing_widths=False)
    assert config_from_params(params_from_config(PRESETS["paper"], legacy), legacy) == PRESETS["paper"]


def test_suggest_config_with_real_trials_stays_in_space_and_is_buildable():
    space = SearchSpace(increasing_widths=False)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(6):
        trial = study.ask()
        cfg = suggest_config(trial, space)
        assert space.contains(cfg)
        assert set(trial.params) == set(space.parameters())
        assert config_from_params(trial.params, space) == cfg
        assert all(w % 8 == 0 for w in cfg.conv_widths + cfg.token_widths)
        seen.add(cfg)
        study.tell(trial, [0.5, 1.0])
    assert len(seen) > 1
    # the architecture builds and has the parameters its config says
    assert count_parameters(build_model(cfg)) > 0


def test_enqueued_paper_is_what_suggest_config_returns():
    space = SearchSpace()
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(params_from_config(PRESETS["paper"], space), user_attrs={"reference": "paper"})
    trial = study.ask()
    assert suggest_config(trial, space) == PRESETS["paper"]
    assert trial.user_attrs["reference"] == "paper"


def test_decreasing_widths_are_rejected_with_the_reason():
    space = SearchSpace()
    cfg = PRESETS["paper"].replace(conv_widths=(16, 32, 160), token_widths=(128, 256))
    reason = check_config(cfg, space)
    assert reason is not None and "C3=160 > C4=128" in reason
    assert check_config(cfg, SearchSpace(increasing_widths=False)) is None
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(params_from_config(cfg, space))
    with pytest.raises(ConfigError, match="C3=160 > C4=128"):
        suggest_config(study.ask(), space)


def test_dsconv_bits_are_searched_as_a_categorical_with_none():
    space = SearchSpace(dsconv_bits=(None, 8, 4))
    assert space.parameters()["dsconv_bits"] == ("categorical", (None, 8, 4))
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial({**params_from_config(PRESETS["paper"], space), "dsconv_bits": 4})
    cfg = suggest_config(study.ask(), space)
    assert cfg.dsconv_bits == 4 and "b4" in summarize_config(cfg)


def test_fixed_ranges_are_not_suggested():
    space = SearchSpace(enc_depths=(1, 1), mlp_ratio=(2, 2), shift_size=(5,), increasing_widths=False)
    names = set(space.parameters())
    assert not {"enc_depths.0", "enc_depths.1", "mlp_ratio", "shift_size"} & names
    cfg = suggest_config(optuna.create_study(directions=["maximize"]).ask(), space)
    assert cfg.enc_depths == (1, 1) and cfg.mlp_ratio == 2.0 and cfg.shift_size == 5


def test_smallest_config_is_the_lower_bound_of_params():
    space = SearchSpace()
    smallest = space.smallest_config()
    assert smallest.conv_widths == (8, 16, 64) and smallest.token_widths == (96, 128)
    assert count_parameters(build_model(smallest)) < count_parameters(build_model(PRESETS["paper"]))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"conv_widths": ((8, 20), (16, 48), (64, 160))}, "multiples of width_step"),
        ({"token_widths": ((96, 192),)}, "needs 2"),
        ({"shift_size": (3, 4)}, "odd"),
        ({"dsconv_bits": (None, 9)}, "2 to 8"),
        ({"enc_depths": (2, 1)}, "low <= high"),
        ({"base": "nope"}, "preset"),
        ({"base": "unext", "dsconv_bits": (None, 8)}, "plain convs"),
        ({"conv_widths": ((8, 24), (16, 48), (64, 160)), "token_widths": ((96, 152), (128, 320))}, "C4"),
    ],
)
def test_invalid_spaces_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        SearchSpace(**changes)


def test_space_json_round_trip_and_unknown_field():
    space = SearchSpace(conv_widths=((8, 16), (16, 32), (64, 64)), dsconv_bits=(None, 8))
    data = json.loads(json.dumps(space.to_dict()))
    assert SearchSpace.from_dict(data) == space
    with pytest.raises(ConfigError, match="unknown SearchSpace field"):
        SearchSpace.from_dict({"widths": []}, source="space.json")


def test_describe_lists_every_parameter_with_paper_value():
    space = SearchSpace(token_widths=((96, 192), (256, 256)))
    text = space.describe()
    for name in space.parameters():
        assert name in text
    assert "fixed 256" in text  # token_widths.1 is fixed
    assert f"{space.size():,} combinations" in text
