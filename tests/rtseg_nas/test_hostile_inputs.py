"""Bad inputs through the CLI, one test per class: each ends in one `error:` line naming the file,
field or option, with no traceback and the exit status of its kind: 2 for a usage error (an
option's value, a config file's fields, an output place), 1 when the run failed on an input
file (missing, unreadable or damaged) or later. Real files, real checkpoints, real models."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from models import Checkpoint, build_model, create_config, save_checkpoint
from rtseg_nas.cli import main

SMALL = {"conv_widths": (8, 16, 32), "token_widths": (32, 48)}
META = {"train": {"data": "synthetic:24", "size": 32, "seed": 0}}


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


USAGE, FAILED = 2, 1  # exit statuses (rtseg_core._errors)


def _ends_in_one_error_line(argv: list[str], capsys, status: int = USAGE) -> str:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == status, (argv, rc, err[-2000:])
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    return lines[0]


def _check(cases, capsys, status: int = USAGE):
    for argv, fragment, *expected in cases:
        line = _ends_in_one_error_line([str(a) for a in argv], capsys, expected[0] if expected else status)
        assert fragment in line, (argv, line)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    cfg = create_config("paper", **SMALL)
    torch.manual_seed(0)
    sd = {k: v.clone() for k, v in build_model(cfg).state_dict().items()}
    good = Checkpoint(config=cfg, state_dict=sd, meta=META)
    save_checkpoint(good, d / "good.pt")
    base = good.to_dict()

    def crafted(name, **changes):
        data = {k: v for k, v in base.items() if changes.get(k, 0) is not KeyError}
        data.update({k: v for k, v in changes.items() if v is not KeyError})
        torch.save(data, d / name)

    crafted("no_config.pt", config=KeyError)
    crafted("no_weights.pt", state_dict=KeyError)
    crafted("weights_list.pt", state_dict=[1, 2])
    crafted("epoch_text.pt", epoch="x")
    crafted("meta_list.pt", meta=[1])
    crafted("train_text.pt", meta={"train": "junk"})
    crafted("config_bool_text.pt", config={**cfg.to_dict(), "dsconv": "false"})
    crafted("pruning_junk.pt", pruning={"history": [["no.such.module", True, [1]]]})

    class Code:
        def __reduce__(self):
            return (os.system, (f"touch {d / 'code-ran'}",))

    crafted("code.pt", extra=Code())
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in sd.items()}
    save_checkpoint(Checkpoint(config=cfg, state_dict=nan, meta=META), d / "nan.pt")
    # finite weights whose outputs overflow: every weight scaled by 1e12 (squared in the norms: inf, then NaN)
    big = {k: v * 1e12 if v.is_floating_point() else v for k, v in sd.items()}
    save_checkpoint(Checkpoint(config=cfg, state_dict=big, meta=META), d / "overflow.pt")

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # torch.save pickles the 5,000-deep list recursively
    try:
        crafted("config_deep.pt", config={**cfg.to_dict(), "conv_widths": _deep(5000)})
    finally:
        sys.setrecursionlimit(limit)
    crafted("config_bigint.pt", config={**cfg.to_dict(), "mlp_ratio": 10**500})
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "bigint.json").write_text('{"conv_widths": [8, 16, ' + "9" * 5000 + "]}")
    huge = {"conv_widths": [4096] * 3, "token_widths": [4096] * 2, "enc_depths": [32, 32], "dec_depths": [32, 32]}
    (d / "huge_model.json").write_text(json.dumps({**huge, "mlp_ratio": 16}))
    (d / "wide.json").write_text('{"conv_widths": [1024, 1024, 1024], "token_widths": [1024, 1024]}')
    (d / "binary.json").write_bytes(bytes(range(256)))
    (d / "latin1.json").write_bytes('{"activation": "relu", "note": "é"}'.encode("latin-1"))
    (d / "bool_text.json").write_text('{"dsconv": "false"}')
    (d / "huge_width.json").write_text('{"conv_widths": [16, 32, 1000000]}')
    (d / "random.onnx").write_bytes(os.urandom(400))
    (d / "empty.onnx").write_bytes(b"")
    from profiling._export import ExportConfig, export_onnx

    export_onnx(build_model(cfg).eval(), d / "good.onnx", ExportConfig(height=32, width=32))
    whole = (d / "good.onnx").read_bytes()
    (d / "truncated.onnx").write_bytes(whole[: len(whole) // 2])
    (d / "a-file").write_text("not a folder")
    (d / "a-folder").mkdir()
    return d


def test_config_files_that_are_binary_mistyped_or_absurd(files, capsys):
    _check(
        [
            (["info", "--arch", files / "binary.json"], "binary.json: not UTF-8 text", FAILED),
            (["info", "--arch", files / "latin1.json"], "latin1.json: not UTF-8 text", FAILED),
            (["info", "--arch", files / "bool_text.json"], "RTSegConfig.dsconv: must be true or false"),
            (["info", "--arch", files / "huge_width.json"], "RTSegConfig.conv_widths: widths must be from 1 to 4096"),
            (["profile", "--arch", files / "binary.json", "--no-count"], "binary.json: not UTF-8 text", FAILED),
            (["info", "--arch", files / "missing.json"], "missing.json: file not found", FAILED),
        ],
        capsys,
    )


def test_config_json_too_deep_too_long_or_too_large_for_memory(files, tmp_path, capsys):
    _check(
        [
            (["info", "--arch", files / "deep.json"], "deep.json: JSON nested 100000 levels deep", FAILED),
            (["info", "--arch", files / "bigint.json"], "bigint.json: line 1: an integer of 5000 digits", FAILED),
            (["info", "--arch", files / "huge_model.json"], "RTSegConfig: 70,843,666,459 parameters (283.4 GB"),
            (
                ["evaluate", "--checkpoint", files / "config_deep.pt"],
                "RTSegConfig.conv_widths: needs 3 integers",
                FAILED,
            ),
            (["evaluate", "--checkpoint", files / "config_bigint.pt"], "got an integer of about 501 digits", FAILED),
            (
                ["train", "--arch", files / "wide.json", "--size", "4096", "--out", tmp_path / "t", "--epochs", "1"],
                "training this model at 4096x4096, batch 8 needs about",
            ),
            (["profile", "--arch", files / "wide.json", "--size", "4096", "--no-count"], "GiB of activations"),
        ],
        capsys,
    )
    assert not (tmp_path / "t").exists()  # refused before the output folder was made


def test_thread_counts_above_the_cores_from_any_source(monkeypatch, tmp_path, capsys):
    from rtseg_core import usable_cores

    over = str(usable_cores() + 1)
    _check(
        [
            (["profile", "--threads", over, "--size", "32", "--no-count"], f"--threads: {over} threads, but this"),
            (["train", "--threads", over, "--out", tmp_path / "t"], f"--threads: {over} threads, but this"),
            (["search", "--study", tmp_path / "s", "--threads", over], f"--threads: {over} threads, but this"),
        ],
        capsys,
    )
    monkeypatch.setenv("OMP_NUM_THREADS", "100000")
    _check([(["info"], "OMP_NUM_THREADS=100000: 100000 threads, but this process may run on")], capsys)
    assert not (tmp_path / "t").exists() and not (tmp_path / "s").exists()


def test_crafted_checkpoints_are_named_field_by_field(files, capsys):
    _check(
        [
            (["evaluate", "--checkpoint", files / name], fragment)
            for name, fragment in [
                ("no_config.pt", "field 'config' is missing"),
                ("no_weights.pt", "field 'state_dict' is missing"),
                ("weights_list.pt", "field 'state_dict' must map parameter names to tensors"),
                ("epoch_text.pt", "field 'epoch' must be an integer"),
                ("meta_list.pt", "field 'meta' must be a dict"),
                ("train_text.pt", "meta['train'] must be"),
                ("config_bool_text.pt", "RTSegConfig.dsconv: must be true or false"),
                ("pruning_junk.pt", "pruning history cannot be replayed"),
            ]
        ]  # fmt: skip
        + [(["quantize", "--checkpoint", files / "train_text.pt", "--out", files / "q"], "meta['train'] must be")]
        + [(["evaluate", "--checkpoint", files / "missing.pt"], "missing.pt: checkpoint not found")],
        capsys,
        FAILED,  # the run failed on a damaged input file; no option was wrong
    )


def test_a_checkpoint_holding_code_is_refused_without_advice_to_load_it_unsafely(files, capsys):
    line = _ends_in_one_error_line(["evaluate", "--checkpoint", str(files / "code.pt")], capsys, FAILED)
    assert "refused: the checkpoint holds Python objects (posix.system)" in line
    assert "weights_only" not in line and "False" not in line  # torch's advice to load it anyway
    assert not (files / "code-ran").exists()


def test_broken_weights_and_non_finite_outputs_are_reported_not_evaluated(files, capsys):
    _check(
        [
            (["evaluate", "--checkpoint", files / "nan.pt", "--split", "val"], "hold NaN or infinite values"),
            (["profile", "--checkpoint", files / "nan.pt", "--size", "32", "--runs", "1"], "hold NaN or infinite"),
            (["evaluate", "--checkpoint", files / "overflow.pt", "--split", "val"], "outputs are not finite"),
        ],
        capsys,
        FAILED,
    )


def test_corrupt_onnx_files(files, capsys):
    _check(
        [
            (["profile", "--onnx", files / "random.onnx", "--runs", "1"], "random.onnx: not a readable ONNX model"),
            (["profile", "--onnx", files / "truncated.onnx", "--runs", "1"], "truncated.onnx: not a readable ONNX"),
            (["profile", "--onnx", files / "empty.onnx", "--runs", "1"], "empty.onnx: not a usable ONNX model"),
        ],
        capsys,
        FAILED,
    )


def test_output_paths_that_cannot_be_written(files, capsys):
    quick = ["--no-count", "--runs", "1", "--warmup", "0", "--size", "32"]
    _check(
        [
            (["profile", *quick, "--json", files / "a-file" / "x.json"], "cannot write here (File exists"),
            (["profile", *quick, "--json", "/proc/rtseg/x.json"], "/proc/rtseg/x.json: cannot write here"),
            (["export", "--size", "32", "--out", files / "a-folder"], "a-folder: is a folder"),
            (["train", "--out", files / "a-file", "--data", "synthetic:8", "--size", "32"], "cannot create the output"),
            (["demo", "--out", "/proc/rtseg-demo"], "--out /proc/rtseg-demo: cannot create the folder"),
        ],
        capsys,
    )


def test_study_folders_and_databases_that_cannot_be_used(files, tmp_path, capsys):
    study = tmp_path / "study"
    assert main(["search", "--study", str(study), "--trials", "0", "--no-progress"]) == 0
    capsys.readouterr()
    read_only = f"sqlite:///file:{study / 'study.db'}?mode=ro&uri=true"
    tiny = ["--trials", "1", "--size", "32", "--latency-size", "32", "--epochs", "1", "--steps-per-epoch", "1"]
    tiny += ["--data", "synthetic:16"]
    _check(
        [
            (["search", "--study", files / "a-file", "--trials", "0"], "cannot create the study folder"),
            (["search", "--study", "/proc/rtseg-study", "--trials", "0"], "cannot create the study folder"),
            (["search", "--study", study, "--storage", read_only, *tiny, "--no-progress"], "refused a write"),
        ],
        capsys,
        FAILED,
    )


def test_numbers_that_make_no_sense_are_refused_before_any_work(capsys):
    _check(
        [
            (["profile", "--size", "0"], "argument --size: must be an integer from 8 to 4096, got 0"),
            (["profile", "--runs", "0"], "argument --runs"),
            (["profile", "--threads", "0"], "argument --threads"),
            (["profile", "--size", "1000000"], "argument --size"),
            (["train", "--out", "x", "--aux-weight", "-1"], "argument --aux-weight"),
            (["train", "--out", "x", "--lr", "nan"], "argument --lr: must be a finite number"),
            (["search", "--study", "x", "--min-fps", "-1"], "argument --min-fps"),
            (["search", "--study", "x", "--max-latency-ms", "inf"], "argument --max-latency-ms"),
            (["profile", "--target", "ssh://a@b", "--command-timeout", "inf"], "argument --command-timeout"),
            (["prune", "--checkpoint", "c.pt", "--ratio", "1", "--out", "o"], "argument --ratio"),
            (["train", "--out", "x", "--data", "synthetic:100000000"], "must be an integer from 1 to 100000"),
        ],
        capsys,
    )


def test_quantize_op_types_that_quantize_nothing_write_nothing(files, tmp_path, capsys):
    ckpt = files / "good.pt"
    _check(
        [
            (
                ["quantize", "--checkpoint", ckpt, "--out", tmp_path / "a", "--op-types", "Cnv"],
                "Cnv match(es) no operator",
            ),
            (
                ["quantize", "--checkpoint", ckpt, "--out", tmp_path / "b", "--op-types", "Constant", "--no-eval"],
                "no quantized operator",
            ),
        ],
        capsys,
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging folder left either


def test_hand_edited_study_files_are_one_error_naming_file_and_field(tmp_path, capsys):
    import json

    from rtseg_core import CandidateRecord, StudyDir, write_candidate

    study = tmp_path / "study"
    assert main(["search", "--study", str(study), "--trials", "0", "--no-progress"]) == 0  # a real, empty study
    capsys.readouterr()
    sd = StudyDir(study)
    good = json.loads(sd.study_json.read_text())
    record = CandidateRecord(
        name="paper", source="reference", dataset="synthetic", split="val", dice=0.5, dice_ps=0.5, dice_fh=0.5,
        delta_aop_deg=None, params=1000, macs=10, latency_ms=2.0, fps=500.0, latency_kind="measured",
        target="local", device="cpu", backend="onnxruntime", precision="fp32", threads=1, height=96, width=96, trial=0,
    )  # fmt: skip
    cand = write_candidate(sd.trial_dir(0), record)

    def settings(**changes):
        sd.study_json.write_text(json.dumps([good] if changes.get("top") else {**good, **changes}))

    def candidate(**changes):
        cand.write_text(json.dumps({**record.to_dict(), **changes}))

    cases = [
        (lambda: settings(threads="4"), "study.json: 'threads' must be an integer >= 1, got '4'"),
        (lambda: settings(objectives="dice"), "study.json: 'objectives' must be a JSON list, got 'dice'"),
        (lambda: settings(objectives=[["bogus", "maximize"]]), "study.json: 'objectives[0]' names an unknown"),
        (lambda: settings(top=True), "study.json: expected a JSON object, got [{"),
    ]
    for edit, fragment in cases:
        edit()
        for verb in ("report", "validate"):
            line = _ends_in_one_error_line([verb, "--study", str(study)], capsys)
            assert fragment in line, (verb, line)
    # More threads than this machine has: the report shows the study, validation refuses to time with them.
    settings(threads=10**9)
    line = _ends_in_one_error_line(["validate", "--study", str(study)], capsys)
    assert "study.json: 'threads' is 1000000000, more than the" in line and "--threads" in line
    settings()
    for changes, fragment in [
        ({"dice": "abc"}, "trials/0/candidate.json: 'dice' must be a finite number in [0, 1], got 'abc'"),
        ({"latency_ms": float("nan")}, "trials/0/candidate.json: 'latency_ms' must be a positive finite number"),
        ({"latency_ms": -1}, "trials/0/candidate.json: 'latency_ms' must be a positive finite number, got -1"),
        ({"params": 1e300}, "trials/0/candidate.json: 'params' must be an integer in [0, 9223372036854775807]"),
    ]:
        candidate(**changes)
        line = _ends_in_one_error_line(["report", "--study", str(study)], capsys)
        assert fragment in line, line
    candidate()
    assert main(["report", "--study", str(study)]) == 0  # the same study, unedited, reports
