"""The one-shot strategy: a tiny supernet trains and survives SIGKILL, its search writes what `report` reads,
and an extracted subnet is an ordinary checkpoint (weights_only, prune, quantize, evaluate)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from models import load_model
from rtseg_core import StudyDir, read_supernet_training
from search_spaces import (
    SandwichConfig,
    SearchSpace,
    SupernetSearchConfig,
    extract_subnet,
    largest_config,
    load_supernet,
    run_supernet_search,
    smallest_config,
    train_supernet,
)
from segmentation import TrainConfig
from tests.search_spaces.conftest import TINY_SPACE

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"data": "synthetic:24", "size": 32, "batch_size": 4, "steps_per_epoch": 2, "seed": 0, "device": "cpu"}
SANDWICH = SandwichConfig(random_subnets=1, bn_batches=2)
ESTIMATE = "jetson-nano-estimate"


@pytest.fixture(scope="module")
def space():
    return SearchSpace.from_dict(TINY_SPACE)


@pytest.fixture(scope="module")
def trained(space, tmp_path_factory):
    out = tmp_path_factory.mktemp("supernet")
    train_supernet(space, TrainConfig(**TRAIN, epochs=2), out, sandwich=SANDWICH, progress=False)
    return out / "supernet.pt"


def test_the_container_and_the_sandwich_ends_come_from_the_space(space):
    big, small = largest_config(space), smallest_config(space)
    assert big.conv_widths + big.token_widths == (16, 24, 32, 48, 64)
    assert (big.enc_depths, big.dec_depths, big.mlp_ratio) == ((1, 1), (1, 1), 2.0)
    assert small.conv_widths + small.token_widths == (8, 16, 24, 32, 48)
    assert (small.enc_depths, small.dec_depths, small.mlp_ratio) == ((0, 0), (0, 0), 1.0)
    assert big.shift_size == small.shift_size == 5  # the paper's, a choice of the space


def test_a_tiny_supernet_trains_and_its_checkpoint_is_plain_data(trained, space):
    data = torch.load(trained, map_location="cpu", weights_only=True)
    assert data["format"] == "rtseg-nas/supernet" and data["epoch"] == 2 and len(data["history"]) == 2
    sn = load_supernet(trained.parent)  # the folder works too
    assert sn.space == space and sn.sandwich == SANDWICH and sn.train == TrainConfig(**TRAIN, epochs=2)
    assert all(0.0 <= e["val_dice_smallest"] <= 1.0 for e in sn.history)
    # Its training record has its own name (metrics.json is the trainer's schema).
    record = read_supernet_training(trained.parent)
    assert (trained.parent / "supernet.json").is_file() and not (trained.parent / "metrics.json").exists()
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and record["sandwich"] == dataclasses.asdict(SANDWICH)
    # CPU seconds per epoch and in total (what report --compare counts as the supernet's compute)
    assert all(e["cpu_s"] > 0 for e in record["epochs"]) and record["cpu_s"] == pytest.approx(
        sum(e["cpu_s"] for e in record["epochs"])
    )
    assert all(e["cpu_s"] > 0 for e in sn.history)
    with pytest.raises(Exception, match="exists; pass --resume"):
        train_supernet(space, TrainConfig(**TRAIN, epochs=2), trained.parent, sandwich=SANDWICH, progress=False)
    with pytest.raises(Exception, match=r"different training settings than the checkpoint's: \['lr'\]"):
        cfg = TrainConfig(**{**TRAIN, "lr": 0.5}, epochs=2)
        train_supernet(space, cfg, trained.parent, sandwich=SANDWICH, resume=True, progress=False)


_CHILD = """
import sys
from search_spaces import SandwichConfig, SearchSpace, train_supernet
from segmentation import TrainConfig
from tests.search_spaces.conftest import TINY_SPACE
train_supernet(SearchSpace.from_dict(TINY_SPACE), TrainConfig(**{train}, epochs={epochs}), sys.argv[1],
               sandwich=SandwichConfig(random_subnets=1, bn_batches=2), progress=False)
"""


def test_training_resumes_after_sigkill_exactly_as_an_uninterrupted_run(space, tmp_path):
    epochs = 5
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    code = _CHILD.format(train=repr(TRAIN), epochs=epochs)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(killed_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    ckpt = killed_dir / "supernet.pt"
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ckpt.exists(), f"no checkpoint before the worker ended:\n{proc.communicate()[0].decode()[-3000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    at_kill = load_supernet(ckpt).epoch  # whatever the last atomic write left: a whole checkpoint
    assert 1 <= at_kill < epochs, "the worker finished before it could be killed; the test proves nothing"

    cfg = TrainConfig(**TRAIN, epochs=epochs)
    resumed = train_supernet(space, cfg, killed_dir, sandwich=SANDWICH, resume=True, progress=False)
    assert [e.epoch for e in resumed.epochs] == list(range(1, epochs + 1))
    train_supernet(space, cfg, clean_dir, sandwich=SANDWICH, progress=False)
    a, b = load_supernet(ckpt), load_supernet(clean_dir)
    assert a.epoch == b.epoch == epochs
    for key, value in b.net.net.state_dict().items():
        assert torch.allclose(a.net.net.state_dict()[key], value, atol=1e-6), key


def test_a_supernet_search_writes_candidates_the_report_reads_and_resumes(trained, tmp_path):
    from reports import compute_report
    from reports._plot_info import conditions_subtitle

    study = tmp_path / "oneshot"
    options = {"target": "jetson-nano-estimate", "population_size": 2, "bn_batches": 2, "progress": False}
    summary = run_supernet_search(SupernetSearchConfig.from_options(study, trained, trials=3, **options))
    assert summary.counts["complete"] == 3 and summary.front
    settings = json.loads((study / "study.json").read_text())
    assert settings["strategy"] == "supernet" and settings["evaluation"]["recipe"] == "supernet-inherited"
    assert settings["reference"] is None  # paper is wider than this tiny supernet
    read = StudyDir(study).read_settings()  # the one reader takes what the one writer wrote
    assert read.strategy == "supernet" and read.search.bn_batches == 2 and read.search.path == str(trained)
    # Resume: the same command with more trials runs only the missing ones.
    summary = run_supernet_search(SupernetSearchConfig.from_options(study, trained, trials=5, **options))
    assert summary.counts["complete"] == 5 and summary.trials_run == 2
    report = compute_report(study)
    df = report.candidates
    assert len(df) == 5 and set(df["recipe"]) == {"supernet-inherited"} and set(df["split"]) == {"val"}
    assert df["dice"].between(0, 1).all() and (df["latency_kind"] == "estimated").all()
    assert "inherited supernet weights" in df["notes"].iloc[0]
    assert len(report.front.front) >= 1
    assert "val split (inherited supernet weights)" in conditions_subtitle(df, latency=True)
    assert json.loads((study / "trials" / "0" / "validation.json").read_text())["split"] == "val"
    history = (study / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 5
    rows = list(csv.DictReader(history))
    assert all(float(r["cpu_s"]) > 0 for r in rows)  # each subnet's CPU seconds (BN recalibration, eval, profiling)


def test_a_changed_supernet_is_not_mixed_into_an_existing_study(trained, tmp_path):
    from rtseg_core import SuiteError

    study = tmp_path / "s"
    options = {"population_size": 2, "bn_batches": 2, "progress": False}
    run_supernet_search(SupernetSearchConfig.from_options(study, trained, trials=1, target=ESTIMATE, **options))
    with pytest.raises(SuiteError, match="target"):
        run_supernet_search(SupernetSearchConfig.from_options(study, trained, trials=2, target="local", **options))


def test_the_supernet_search_teaches_rejected_subnets_to_nsga2_as_the_multi_trial_search_does(
    trained, space, tmp_path, capsys
):
    import optuna

    from models import count_parameters
    from rtseg_nas.cli import main
    from search_spaces import params_from_config
    from search_spaces._dashboard import RejectionAwareNSGAIISampler, is_rejected

    sn = load_supernet(trained)
    small, big = (count_parameters(sn.net.extract(c(space))) for c in (smallest_config, largest_config))
    limit = (small + big) // 2
    study_dir = tmp_path / "rejecting"
    options = {"target": ESTIMATE, "population_size": 2, "bn_batches": 2, "progress": False, "max_params": limit}
    run_supernet_search(SupernetSearchConfig.from_options(study_dir, trained, trials=0, **options))  # the study only
    url = f"sqlite:///{study_dir / 'study.db'}"
    container = params_from_config(largest_config(space), space)
    for _ in range(2):  # over the limit: rejected before evaluation
        optuna.load_study(study_name="rejecting", storage=url).enqueue_trial(container)
    argv = ["supernet", "search", "--supernet", str(trained), "--study", str(study_dir), "--trials", "4",
            "--target", ESTIMATE, "--population-size", "2", "--bn-batches", "2",
            "--max-params", str(limit)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^4 subnets evaluated \([2-9]\d* rejected, 0 failed\)", out, re.M)
    assert "beats ref" in out  # the front's table

    trials = optuna.load_study(study_name="rejecting", storage=url).trials
    rejected = [t for t in trials if is_rejected(t)]
    assert rejected[:2] == trials[:2] and all(t.constraints["max_params"] > 0 for t in rejected)
    # Rejected subnets fill their NSGA-II generation as infeasible members (population 2); Optuna's own
    # NSGA-II would leave them out, and a generation holding one would have 3 members.
    key = RejectionAwareNSGAIISampler(population_size=2)._get_generation_key()
    generations: dict[int, list] = {}
    for t in trials:
        if key in t.system_attrs:  # the enqueued ones were not sampled
            generations.setdefault(t.system_attrs[key], []).append(t)
    last = max(generations)
    assert any(is_rejected(t) for g, members in generations.items() if g < last for t in members)
    assert all(len(members) == 2 for g, members in generations.items() if g < last)


def test_an_extracted_subnet_is_an_ordinary_checkpoint_that_prunes_and_quantizes(trained, space, tmp_path):
    from compress import PruneSpec, QuantSpec, prune_model, quantize_checkpoint

    sn = load_supernet(trained)
    cfg = largest_config(space).replace(conv_widths=(16, 16, 32), enc_depths=(1, 0), shift_size=3)
    path = extract_subnet(sn, cfg, tmp_path / "sub", bn_batches=2)
    data = torch.load(path, map_location="cpu", weights_only=True)
    assert data["format"] == "rtseg-nas/checkpoint" and data["epoch"] == 0
    model, ckpt = load_model(path)
    assert ckpt.config == cfg and ckpt.meta["train"]["size"] == 32
    assert json.loads((tmp_path / "sub" / "config.json").read_text()) == cfg.to_dict()
    # The weights are the supernet's slices (BatchNorm aside, which was recalibrated).
    big = sn.net.net.state_dict()
    for key, value in model.state_dict().items():
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, big[key][tuple(slice(0, s) for s in value.shape)]), key
    assert not torch.equal(model.enc1.bn.running_mean, big["enc1.bn.running_mean"][:16])

    result = prune_model(model, PruneSpec(ratio=0.3, size=32))
    assert result.params_after < result.params_before
    report = quantize_checkpoint(
        path, QuantSpec(format="fp16"), tmp_path / "q", rounds=2, evaluate=False, progress=False
    )
    assert (tmp_path / "q" / "model.onnx").is_file() and report is not None


def test_the_supernet_verb_extracts_a_search_trial(trained, tmp_path, capsys):
    from rtseg_nas.cli import main

    study = tmp_path / "study"
    options = {"target": ESTIMATE, "population_size": 2, "bn_batches": 2, "progress": False}
    run_supernet_search(SupernetSearchConfig.from_options(study, trained, trials=1, **options))
    out = tmp_path / "x"
    assert (
        main(
            [
                "supernet",
                "extract",
                "--supernet",
                str(trained),
                "--trial",
                str(study / "trials" / "0"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    model, ckpt = load_model(out / "checkpoint.pt")
    assert ckpt.config.to_dict() == json.loads((study / "trials" / "0" / "config.json").read_text())
    # Once fine-tuned there (files extract did not write), OUT is not replaced by a second extract.
    (out / "metrics.json").write_text("{}")
    trial = str(study / "trials" / "0")
    again = ["supernet", "extract", "--supernet", str(trained), "--trial", trial, "--out", str(out)]
    assert main(again) != 0 and "metrics.json" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == "{}"
    # paper is wider than this supernet: one error line naming the supernet file and the field.
    argv = ["supernet", "extract", "--supernet", str(trained), "--arch", "paper", "--out", str(tmp_path / "p")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert f"error: {trained}: cannot extract" in err and "conv_widths[1]: 32 exceeds the supernet's 24" in err


def test_search_with_the_supernet_strategy_is_the_supernet_search(trained, tmp_path):
    from rtseg_nas.cli import main
    from rtseg_nas.cli._main import strategy_alias

    assert strategy_alias(["-q", "search", "--strategy", "supernet", "--study", "s"]) == [
        "-q", "supernet", "search", "--study", "s"
    ]  # fmt: skip
    assert strategy_alias(["search", "--strategy=multi-trial", "--study", "s"]) == ["search", "--study", "s"]
    assert strategy_alias(["search", "--strategy", "other"]) == ["search", "--strategy", "other"]  # refused later
    assert strategy_alias(["supernet", "search", "--strategy", "supernet"])[:2] == ["supernet", "search"]
    study = tmp_path / "study"
    argv = ["search", "--strategy", "supernet", "--supernet", str(trained), "--study", str(study), "--trials", "1",
            "--target", ESTIMATE, "--population-size", "2", "--bn-batches", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((study / "study.json").read_text())["strategy"] == "supernet"


@pytest.mark.parametrize(
    "argv", [["-q", "supernet", "search"], ["supernet", "-q", "search"], ["supernet", "search", "--quiet"]]
)
def test_the_common_options_work_before_or_after_the_action(argv):
    from rtseg_nas.cli._main import build_parser, show_progress

    parser, _ = build_parser("supernet")
    args = parser.parse_args([*argv, "--supernet", "S", "--study", "D"])
    assert args.quiet and args.action == "search" and not show_progress(args)


def _crafted(trained: Path, folder: Path, name: str, change) -> Path:
    """A copy of the trained supernet.pt with ``change(data)`` applied, saved as ``folder/name``."""
    data = torch.load(trained, map_location="cpu", weights_only=True)
    change(data)
    torch.save(data, folder / name)
    return folder / name


def _set(**fields):
    return lambda data: data.update(fields)


def _nan_weight(data):
    name = next(k for k, v in data["state_dict"].items() if v.is_floating_point())
    data["state_dict"][name] = torch.full_like(data["state_dict"][name], float("nan"))


# name: (change, what the error line says)
CRAFTED = {
    "epoch_text": (_set(epoch="x"), "'epoch' must be an integer in [0, 2], got 'x'"),
    "epoch_float": (_set(epoch=1.5), "'epoch' must be an integer in [0, 2], got 1.5"),
    "no_space": (lambda d: d.pop("space"), "missing field 'space'"),
    "weights_list": (_set(state_dict=[1, 2]), "'state_dict' must be a JSON object, got [1, 2]"),
    "weight_text": (
        lambda d: d["state_dict"].update({"enc1.bn.weight": "w"}),
        "'state_dict' entry 'enc1.bn.weight' must be a tensor, got 'w'",
    ),
    "train_unknown": (lambda d: d["train"].update(turbo=True), "unknown field(s) ['turbo'] in 'train'"),
    "train_missing": (lambda d: d["train"].pop("lr"), "'train.lr' is missing"),
    "train_bad": (
        lambda d: d["train"].update(size="big"),
        "'train': --size: must be an integer from 16 to 4096, got 'big'",
    ),
    "sandwich_text": (lambda d: d["sandwich"].update(kd_weight="half"), "--kd-weight: must be a number"),
    "sandwich_huge": (lambda d: d["sandwich"].update(random_subnets=10**6), "--random-subnets: must be an integer"),
    "history_junk": (_set(history=[1, 2]), "'history[0]' must be a JSON object, got 1"),
    "history_short": (_set(history=[]), "'history' must hold one entry per finished epoch (2); it holds 0"),
    "optimizer_list": (_set(optimizer=[1]), "'optimizer' must be a JSON object, got [1]"),
    "config_other": (
        lambda d: d["config"].update(conv_widths=[8, 16, 24]),
        "'config' must be the container of the supernet's space",
    ),
    "deep_config": (lambda d: d["config"].update(conv_widths=_deep(5000)), "RTSegConfig.conv_widths: needs 3 integers"),
    "big_int": (_set(epoch=10**500), "'epoch' must be an integer in [0, 2], got an integer of about 501 digits"),
    "huge_int": (_set(epoch=10**5000), "refused: the supernet checkpoint is not plain data (pickle opcode LONG4"),
    "nan_weight": (_nan_weight, "'state_dict' tensor 'enc1.conv.weight' holds NaN or infinite values"),
}


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture(scope="module")
def crafted(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # torch.save pickles the 5,000-deep list recursively
    try:
        paths = {name: _crafted(trained, folder, f"{name}.pt", change) for name, (change, _) in CRAFTED.items()}
    finally:
        sys.setrecursionlimit(limit)

    class Code:
        def __reduce__(self):
            return (os.system, (f"touch {folder / 'code-ran'}",))

    paths["code"] = _crafted(trained, folder, "code.pt", _set(history=Code()))
    return folder, paths


USAGE, FAILED = 2, 1  # exit statuses: a command line that cannot work; a run that failed on its input


def _one_error_line(argv, capsys, status: int = FAILED) -> str:
    from rtseg_nas.cli import main

    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == status and "Traceback" not in err, (rc, err)
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_crafted_supernets_are_one_error_line_per_field(crafted, tmp_path, capsys):
    folder, paths = crafted
    for name, (_, says) in CRAFTED.items():
        line = _one_error_line(
            ["supernet", "extract", "--supernet", paths[name], "--arch", "x", "--out", tmp_path], capsys
        )
        assert line.startswith(f"error: {paths[name]}: ") and says in line, (name, line)
    assert list(tmp_path.iterdir()) == []
    # the same reader for --resume and search
    train = ["--data", "synthetic:24", "--size", "32", "--batch-size", "4", "--steps-per-epoch", "2", "--epochs", "3"]
    resumed = tmp_path / "resume"
    resumed.mkdir()
    (resumed / "supernet.pt").write_bytes(paths["train_unknown"].read_bytes())
    line = _one_error_line(["supernet", "train", "--out", resumed, *train, "--random-subnets", "1", "--resume"], capsys)
    assert "unknown field(s) ['turbo'] in 'train'" in line
    line = _one_error_line(["supernet", "search", "--supernet", paths["epoch_text"], "--study", tmp_path / "s"], capsys)
    assert "'epoch' must be an integer in [0, 2], got 'x'" in line


def test_a_supernet_holding_code_is_refused_without_advice_to_load_it_unsafely(crafted, tmp_path, capsys):
    folder, paths = crafted
    line = _one_error_line(
        ["supernet", "extract", "--supernet", paths["code"], "--arch", "x", "--out", tmp_path], capsys
    )
    assert "refused: the supernet checkpoint holds Python objects (posix.system)" in line
    assert "weights_only" not in line and "False" not in line, line
    assert not (folder / "code-ran").exists()


def test_only_members_of_the_supernets_space_are_extracted(trained, space, tmp_path, capsys):
    base = largest_config(space)
    for name, cfg, says in [
        ("shift9", base.replace(shift_size=9), "shift_size: 9 is not one of the space's [3, 5]"),
        ("offgrid", base.replace(conv_widths=(12, 16, 24)), "conv_widths[0]: 12 is not a width of the space (8 to 16"),
        ("narrowing", base.replace(conv_widths=(16, 16, 24), token_widths=(32, 48)), None),
        ("depth", base.replace(enc_depths=(0, 0), dec_depths=(1, 0)), None),
    ]:
        arch = tmp_path / f"{name}.json"
        arch.write_text(json.dumps(cfg.to_dict()))
        argv = ["supernet", "extract", "--supernet", trained, "--arch", arch, "--out", tmp_path / name]
        if says is None:  # members of the space extract
            from rtseg_nas.cli import main

            assert main([str(a) for a in argv]) == 0 and (tmp_path / name / "checkpoint.pt").is_file()
            capsys.readouterr()
            continue
        line = _one_error_line(argv, capsys, USAGE)
        assert f"error: {trained}: cannot extract" in line and says in line, line
        assert "trained only the members of its space" in line and not (tmp_path / name).exists()


def test_random_subnets_are_bounded_before_any_work(tmp_path, capsys):
    argv = ["supernet", "train", "--out", tmp_path / "o", "--random-subnets", "1000000", "--size", "32"]
    line = _one_error_line(argv, capsys, USAGE)
    assert "--random-subnets: must be an integer from 0 to 16" in line and "1000000" in line
    assert not (tmp_path / "o").exists()
