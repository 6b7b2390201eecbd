"""Deploy at a smaller input (``prune --input-size``): the size rule, the fine-tune, the record, the refusals."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch

from compress import ResizeReport, check_input_size
from models import load_checkpoint
from profiling import read_onnx_input
from rtseg_core import CompressionOptionError, scaled_size
from rtseg_nas.cli import main
from segmentation import evaluate_checkpoint


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def parent64(tools, tmp_path_factory):
    """The small model's checkpoint as if trained at 64 px (deployed at 256, the latency size)."""
    folder = tmp_path_factory.mktemp("parent64")
    return tools.write_checkpoint(folder / "checkpoint.pt", tools.random_model(tools.small_config()), size=64)


@pytest.fixture(scope="module")
def resized(parent64, tmp_path_factory):
    out = tmp_path_factory.mktemp("resize") / "in192"
    rc, stdout, stderr = _run(
        ["prune", "--checkpoint", str(parent64), "--input-size", "192", "--finetune-epochs", "1",
         "--steps-per-epoch", "1", "--batch-size", "4", "--device", "cpu", "--rounds", "3", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0, stderr
    return out, stdout


def test_the_network_runs_at_sizes_that_are_not_multiples_of_32(tools) -> None:
    model = tools.random_model(tools.small_config())
    with torch.no_grad():
        for size in (16, 33, 48, 60, 72):
            assert model(torch.zeros(1, 1, size, size)).shape == (1, 3, size, size)


def test_the_training_size_scales_with_the_deployment_size() -> None:
    assert scaled_size(96, 192, 256) == 72
    assert scaled_size(96, 160, 256) == 60
    assert scaled_size(256, 192, 256) == 192  # trained at the latency size: fine-tuned at the deployment size
    assert scaled_size(32, 64, 256) == 16  # never below the data's 16 px
    assert check_input_size(192) == 192
    for bad in (100, 16, 0, True, "192"):
        with pytest.raises(CompressionOptionError, match="multiple of 32"):
            check_input_size(bad)


def test_resize_fine_tunes_at_the_scaled_size_and_records_both_sizes(resized) -> None:
    out, stdout = resized
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "checkpoint.pt",
        "model.onnx",
        "resize.json",
    ]
    report = ResizeReport.from_dict(json.loads((out / "resize.json").read_text()))
    # parent trained at 64 for 256: 192 of 256 is 48 px of 64
    assert (report.parent_size, report.input_size, report.deploy_size, report.latency_size) == (64, 48, 192, 256)
    assert report.reference_size == 256 and report.recipe == "in192+ft1" and len(report.finetune) == 1
    assert read_onnx_input(out / "model.onnx").shape[2:] == (48, 48)
    meta = load_checkpoint(out / "checkpoint.pt").meta
    assert (meta["input_size"], meta["deploy_size"]) == (48, 192)
    # evaluate --checkpoint runs it at its input size and scores at the reference size: the report's number
    again = evaluate_checkpoint(out / "checkpoint.pt", split="val", device="cpu", progress=False)
    assert (again.size, again.reference_size) == (48, 256)
    assert again.dice == pytest.approx(report.dice_after, abs=1e-9)
    # the speed-up: parent graph at 256 vs this one at 192, one alternating loop
    assert report.latency is not None and report.latency.rounds == 3
    assert "deployed at 192x192 (parent at 256)" in stdout and "latency: parent at 256" in stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input-size", "200"], "multiple of 32"),
        (["--input-size", "256"], "not smaller than the parent's deployment size 256"),
        (["--input-size", "192", "--ratio", "0.3"], "not with a pruning target"),
        ([], "give one target"),
    ],
)
def test_bad_resize_options_are_one_error_line_before_work(parent64, tmp_path, extra, message) -> None:
    out = tmp_path / "out"
    rc, _, stderr = _run(["prune", "--checkpoint", str(parent64), "--out", str(out), *extra])
    assert rc != 0 and message in stderr and "error:" in stderr
    assert not out.exists()
