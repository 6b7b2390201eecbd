"""Each verb's defaults are its config dataclass's: a default changed in one place changes the CLI.

``train`` reads TrainConfig directly (it imports no torch). The compression and profiling verbs
keep literal defaults so that ``--help`` imports nothing heavy (test_cli_rules.py); this test is
what keeps those literals equal to the dataclasses'. ``supernet search`` builds a whole config from
its options: with every option left out it must equal the config's defaults (``search``'s is in
test_search_cli.py).
"""

from __future__ import annotations

import dataclasses

import pytest

from compress import FinetuneSpec, PruneSpec, QuantSpec
from profiling import BenchConfig, ExportConfig, TimingOptions
from rtseg_core import DEPLOYMENT_SIZE
from rtseg_nas.cli._main import build_parser
from rtseg_nas.pipeline import DemoConfig
from search_spaces import ProfilingOptions
from segmentation import TrainConfig
from validate._config import ValidateConfig

# verb -> argv that satisfies its required options, then (option dest, dataclass, field) to compare
CASES = {
    "train": (["--out", "x"], [(d, TrainConfig, d) for d in (
        "data", "size", "epochs", "batch_size", "lr", "weight_decay", "optimizer", "aux_weight", "frames",
        "workers", "seed", "device")]),
    "prune": (["--checkpoint", "c", "--ratio", "0.3"], [
        ("importance", PruneSpec, "importance"), ("round_to", PruneSpec, "round_to"), ("steps", PruneSpec, "steps"),
        ("step_ratio", PruneSpec, "step_ratio"), ("max_ratio", PruneSpec, "max_ratio"),
        ("calibration_batches", PruneSpec, "calibration_batches"), ("latency_backend", PruneSpec, "latency_backend"),
        ("threads", PruneSpec, "latency_threads"), ("finetune_per_step", PruneSpec, "finetune_epochs_per_step"),
        ("finetune_epochs", FinetuneSpec, "epochs"), ("finetune_budget", FinetuneSpec, "budget"),
        ("kd", FinetuneSpec, "distill"), ("lr", FinetuneSpec, "lr"),
        ("batch_size", FinetuneSpec, "batch_size"), ("steps_per_epoch", FinetuneSpec, "steps_per_epoch"),
        ("device", FinetuneSpec, "device"), ("rounds", TimingOptions, "rounds")]),
    "quantize": (["--checkpoint", "c"], [
        ("target", QuantSpec, "target"), ("calibration", QuantSpec, "calibration"),
        ("percentile", QuantSpec, "percentile"), ("calibration_images", QuantSpec, "calibration_images"),
        ("opset", QuantSpec, "opset"), ("bits", QuantSpec, "dsconv_bits"), ("lr", FinetuneSpec, "lr"),
        ("batch_size", FinetuneSpec, "batch_size"), ("device", FinetuneSpec, "device"),
        ("rounds", TimingOptions, "rounds")]),
    # bench --rounds has no default of its own (None = not given: 30, or 10 with --latency-predictor)
    "bench": ([], [(d, BenchConfig, d) for d in ("size", "batch", "opset")]
              + [(d, TimingOptions, d) for d in ("threads", "warmup", "runs", "seed")]),
    "export": (["--out", "x.onnx"], [
        ("opset", ExportConfig, "opset"), ("dynamic", ExportConfig, "dynamic"), ("batch", ExportConfig, "batch"),
        ("size", ExportConfig, "height"), ("atol", ExportConfig, "atol"), ("seed", ExportConfig, "seed")]),
    "validate": (["--study", "s"], [(d, ValidateConfig, d) for d in (
        "top_k", "epochs", "size", "batch_size", "lr", "seed", "data", "device", "latency_size", "latency_target",
        "threads", "remote_backend", "finetune_epochs", "heartbeat_interval", "grace_period", "storage",
        "study_name")] + [(d, TimingOptions, d) for d in ("rounds", "warmup", "device_rounds", "device_runs")]),
    "search": (["--study", "s"], [(d, ProfilingOptions, d) for d in (
        "target", "latency_size", "threads", "latency_runs", "latency_warmup")]),
    "demo": ([], [(d, DemoConfig, d) for d in (
        "data", "seed", "size", "epochs", "trials", "search_size", "search_epochs", "top_k", "prune_macs",
        "profile_size", "threads", "train_threads", "validate_top_k", "validate_epochs", "validate_seeds",
        "validate_lr")]),
}  # fmt: skip


def _default(cls, name):
    value = {f.name: f.default for f in dataclasses.fields(cls)}[name]
    assert value is not dataclasses.MISSING, f"{cls.__name__}.{name} has no default"
    return value


@pytest.mark.parametrize("verb", sorted(CASES))
def test_cli_defaults_are_the_config_dataclasses_defaults(verb):
    argv, fields = CASES[verb]
    parser, _ = build_parser(verb)
    args = parser.parse_args([verb, *argv])
    wrong = {dest: (getattr(args, dest), _default(cls, name)) for dest, cls, name in fields
             if getattr(args, dest) != _default(cls, name)}  # fmt: skip
    assert wrong == {}, f"{verb}: CLI default != dataclass default: {wrong}"


def test_search_and_validate_time_at_the_one_deployment_size():
    """``--min-fps 24`` means the same in search and validate: both time at DEPLOYMENT_SIZE unless told."""
    for verb, argv in (("search", ["--study", "s", "--size", "96"]), ("validate", ["--study", "s"])):
        parser, subparsers = build_parser(verb)
        assert parser.parse_args([verb, *argv]).latency_size == DEPLOYMENT_SIZE == 256, verb
        assert "default: 256" in " ".join(subparsers[verb].format_help().split()), verb
    assert DemoConfig().profile_size == DEPLOYMENT_SIZE


def test_supernet_search_without_options_builds_the_default_supernet_search_config():
    from rtseg_nas.cli.supernet import supernet_search_config
    from search_spaces import SupernetSearchConfig

    parser, _ = build_parser("supernet")
    args = parser.parse_args(["supernet", "search", "--supernet", "S", "--study", "D"])
    default = SupernetSearchConfig(study_dir="D", supernet="S")
    assert supernet_search_config(args) == default
    # This strategy's own defaults reach the CLI (a subnet is cheap: more of them, fewer timed runs each).
    assert (args.trials, args.population_size, args.latency_runs, args.latency_warmup) == (200, 16, 10, 3)
    assert default.study.trials == 200 and default.sampling.population_size == 16
