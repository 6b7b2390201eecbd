"""``python run.py search``: its help, its errors and one real run measured with ONNX Runtime on this CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtseg_core import CandidateRecord
from rtseg_nas.cli import main

REPO = Path(__file__).resolve().parents[2]
TINY_SPACE = {
    "conv_widths": [[8, 16], [16, 24], [24, 32]],
    "token_widths": [[32, 48], [48, 64]],
    "enc_depths": [0, 1],
    "dec_depths": [0, 1],
    "mlp_ratio": [1, 2],
    "shift_size": [3, 5],
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_help_explains_every_option():
    out = subprocess.run(
        [sys.executable, "run.py", "search", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    for flag in (
        "--data", "--study", "--trials", "--storage", "--target", "--objectives", "--min-fps", "--max-latency-ms",
        "--max-params", "--sampler", "--seed", "--size", "--epochs", "--steps-per-epoch", "--batch-size",
        "--early-stop", "--no-early-stop", "--threads", "--space", "--heartbeat-interval", "--grace-period",
    ):  # fmt: skip
        assert flag in out, flag
    for words in ("jetson-nano-estimate", "ssh://", "postgresql://", "Resume", "history.csv", "candidate.json"):
        assert words in out, words


def test_cli_defaults_are_the_config_defaults():
    from rtseg_nas.cli._main import build_parser
    from rtseg_nas.cli.search import search_config
    from search_spaces import SearchConfig, SearchSpace

    parser, _ = build_parser("search")
    args = parser.parse_args(["search", "--study", "s"])
    assert search_config(args, SearchSpace()) == SearchConfig(study_dir="s")
    args = parser.parse_args(["search", "--study", "s", "--trials", "3", "--min-fps", "24", "--no-early-stop"])
    config = search_config(args, SearchSpace())
    assert (config.study.trials, config.objectives.min_fps, config.strategy.early_stop) == (3, 24.0, False)


@pytest.mark.parametrize("verb", ["search", "supernet"])
def test_the_search_parser_is_built_without_torch_or_optuna(verb):
    # `search --help` reads the defaults from search_spaces._config (`supernet` from _supernet_config), kept light.
    code = (
        f"import sys; from rtseg_nas.cli._main import build_parser; build_parser({verb!r}); "
        "print(sorted(m for m in ('torch', 'optuna', 'onnxruntime', 'segmentation', 'profiling') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_show_space_prints_the_table(capsys):
    assert main(["search", "--study", "unused", "--show-space", "--dsconv-bits", "none,8"]) == 0
    out = capsys.readouterr().out
    assert "conv_widths.2" in out and "64-160 step 8" in out and "conv_widths.2.inc" in out
    assert "dsconv_bits" in out and "none, 8" in out


def test_input_sizes_are_a_searched_parameter_and_a_bad_one_is_one_error_line(capsys):
    assert main(["search", "--study", "unused", "--show-space", "--input-sizes", "256,192,160"]) == 0
    out = capsys.readouterr().out
    assert "input_size" in out and "256, 192, 160" in out
    assert main(["search", "--study", "unused", "--show-space", "--input-sizes", "256,100"]) == 2
    assert "error: --input-sizes: SearchSpace.input_sizes 100: a deployment input size must be a multiple of 32" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--objectives", "dice,latncy"], "did you mean 'latency'"),
        (["--target", "jetson"], "--target"),
        (["--data", "synthetic:0"], "--data"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main(["search", "--study", str(tmp_path / "s"), "--trials", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_a_cli_search_measures_locally_and_prints_the_front(tmp_path, capsys, monkeypatch):
    # Progress bars are for terminals only (test_cli_rules.py); pretend stderr is one to see the display.
    monkeypatch.setattr("rtseg_nas.cli._main.show_progress", lambda args, stream=None: True)
    space = tmp_path / "space.json"
    space.write_text(json.dumps(TINY_SPACE))
    study = tmp_path / "cli"
    argv = [
        "search", "--data", "synthetic:24", "--study", str(study), "--trials", "1", "--size", "32", "--epochs", "1",
        "--steps-per-epoch", "1", "--batch-size", "4", "--latency-runs", "3", "--latency-warmup", "1",
        "--latency-size", "32", "--space", str(space),
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "1/1 finished (1 complete" in captured.out
    assert "feasible Pareto front" in captured.out and "C16/32/128/160/256" in captured.out
    assert "the reference" not in captured.out  # the paper completed, so a verdict is printed
    assert "beats paper" in captured.out or "beat paper" in captured.out
    assert "front=1" in captured.err  # the live progress display
    record = CandidateRecord.from_dict(json.loads((study / "trials/0/candidate.json").read_text()))
    conditions = (record.latency_kind, record.backend, record.target, record.threads)
    assert conditions == ("measured", "onnxruntime", "local", 1)
    assert record.latency_ms > 0 and record.fps == pytest.approx(1000 / record.latency_ms, rel=1e-6)
    measurement = json.loads((study / "trials/0/measurement.json").read_text())
    assert measurement["latency"]["runs"] == 3 and measurement["costs"]["params"] == 1_906_507
