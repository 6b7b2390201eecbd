"""``search --input-sizes``: the deployment input as a searched parameter, timed at its size, trained scaled."""

from __future__ import annotations

import dataclasses

import pytest

from models import PRESETS
from rtseg_core import ConfigError, StudyDir, read_json
from search_spaces import SearchSpace, input_size_of, params_from_config, run_search


def test_input_sizes_are_one_categorical_parameter_and_paper_is_at_the_largest(tiny_space) -> None:
    space = dataclasses.replace(tiny_space, input_sizes=(160, 256, 192))
    assert space.parameters()["input_size"] == ("categorical", (256, 192, 160))
    assert space.size() == tiny_space.size() * 3
    assert params_from_config(PRESETS["paper"], space, check=False)["input_size"] == 256
    assert input_size_of({"input_size": 192}, space, 256) == 192
    assert input_size_of({}, tiny_space, 256) == 256  # not searched: the latency size
    assert "input_size" not in tiny_space.parameters()
    assert SearchSpace.from_dict(space.to_dict()) == space


@pytest.mark.parametrize(("sizes", "message"), [((256, 100), "multiple of 32"), ((192, 192), "duplicates")])
def test_bad_input_sizes_are_refused(tiny_space, sizes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(tiny_space, input_sizes=sizes)


def test_the_largest_input_size_must_be_the_latency_size(tiny_search, tiny_space, tmp_path) -> None:
    space = dataclasses.replace(tiny_space, input_sizes=(64, 32))
    with pytest.raises(ConfigError, match="largest must be the latency size"):
        tiny_search(tmp_path / "s", space=space, latency_size=32)


def test_each_trial_is_timed_at_its_input_size_and_trained_at_the_scaled_size(tiny_search, tiny_space, tmp_path):
    """The search records each trial at its size; validate then trains and times each candidate at its own."""
    from models import load_checkpoint
    from profiling import TimingOptions
    from validate._config import ValidateConfig
    from validate._queue import run_validate

    study = tmp_path / "s"
    space = dataclasses.replace(tiny_space, input_sizes=(64, 32))
    run_search(tiny_search(study, space=space, latency_size=64, trials=5, seed=1))
    seen = set()
    for record, folder in StudyDir(study).read_candidates(("trials",)):
        size = record.height
        assert size in (64, 32) and record.width == size
        train = 32 if size == 64 else 16  # --size 32 x size / 64
        assert read_json(folder / "validation.json")["size"] == train
        assert f"{train}x{train}" in record.notes and "reference 256x256" in record.notes
        seen.add(size)
    assert seen == {64, 32}  # the seeded random sampler draws both

    summary = run_validate(
        ValidateConfig(
            study_dir=study, epochs=1, size=32, batch_size=4, latency_size=64, timing=TimingOptions(rounds=2, warmup=0),
            heartbeat_interval=1,
        )
    )  # fmt: skip
    heights = {}
    for r in summary.records:
        heights[r.name] = r.height
        train = load_checkpoint(StudyDir(study).validated(r.name) / "checkpoint.pt").meta["train"]["size"]
        assert train == (16 if r.height == 32 else 32)
        if r.height == 32:
            assert "16x16 (the budget's 32 scaled to its deployment input 32)" in r.recipe
    assert heights["paper"] == 64 and 32 in heights.values()


def test_a_supernet_refuses_input_sizes_before_work(tiny_space, tmp_path) -> None:
    from search_spaces import train_supernet
    from segmentation import TrainConfig

    space = dataclasses.replace(tiny_space, input_sizes=(64, 32))
    with pytest.raises(ConfigError, match="a supernet trains and searches at one input size"):
        train_supernet(space, TrainConfig(data="synthetic:24", size=32, epochs=1), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
