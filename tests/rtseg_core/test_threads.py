"""The thread policy: explicit value, else OMP_NUM_THREADS, else half the usable cores (1..4)."""

from __future__ import annotations

import pytest
import torch

from rtseg_core import (
    ConfigError,
    check_threads,
    configure_process,
    default_threads,
    resolve_threads,
    torch_threads,
    usable_cores,
)


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (64, 4)])
def test_two_jobs_fit_on_the_cores_without_oversubscription(cores, expected):
    threads = default_threads({}, cores=cores)
    assert threads == expected
    assert 2 * threads <= max(cores, 2)  # two of the suite's jobs at once never exceed the cores (or 1 each)


def test_omp_num_threads_set_by_the_user_wins_over_the_core_count():
    assert default_threads({"OMP_NUM_THREADS": "3"}, cores=64) == 3


@pytest.mark.parametrize("raw", ["0", "two", "-1"])
def test_a_malformed_omp_num_threads_is_an_error_naming_it(raw):
    with pytest.raises(ConfigError, match="OMP_NUM_THREADS"):
        default_threads({"OMP_NUM_THREADS": raw}, cores=4)


def test_an_explicit_thread_count_is_checked_and_kept():
    assert resolve_threads(usable_cores()) == usable_cores()
    with pytest.raises(ConfigError, match="--train-threads: must be an integer >= 1"):
        resolve_threads(0, option="--train-threads")


def test_configure_process_fills_only_what_the_user_left_unset():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    configure_process(env)
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays
    assert int(env["OMP_NUM_THREADS"]) == default_threads({})
    fresh: dict[str, str] = {"OMP_NUM_THREADS": "2"}
    configure_process(fresh)
    assert fresh == {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}


def test_torch_threads_restores_the_previous_count_even_after_an_error():
    before = torch.get_num_threads()
    other = 1 if before != 1 else usable_cores()  # on one core there is no other count to set
    with pytest.raises(RuntimeError):
        with torch_threads(other):
            assert torch.get_num_threads() == other
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_threads_above_the_cores_are_an_error_naming_their_source_whatever_it_is():
    """A count of 100,000 (from study.json, --threads or OMP_NUM_THREADS) made OpenMP reserve 216 GB."""
    cores = usable_cores()
    with pytest.raises(ConfigError, match=rf"^--train-threads: {cores + 1} threads, but this process may run on"):
        resolve_threads(cores + 1, option="--train-threads")
    with pytest.raises(
        ConfigError, match=r"^OMP_NUM_THREADS=100000: 100000 threads, .* on 8 core\(s\); give at most 8"
    ):
        default_threads({"OMP_NUM_THREADS": "100000"}, cores=8)
    with pytest.raises(ConfigError, match=r"^OMP_NUM_THREADS='9999999999999'"):
        default_threads({"OMP_NUM_THREADS": "9" * 13}, cores=8)
    before = torch.get_num_threads()
    with pytest.raises(ConfigError, match=r"^study.json: threads: 100000 threads"):
        with torch_threads(100_000, source="study.json: threads"):
            pass
    assert torch.get_num_threads() == before  # refused before OpenMP saw the count
    assert check_threads(cores, source="x") == cores
