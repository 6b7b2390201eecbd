"""The kernel-level latency predictor on a tiny table built for real with ONNX Runtime (and over real SSH).

No accuracy or timing assertions: the machine is shared. The tests check what the predictor is
made of (kernels, keys, the table's structure), that it refuses a table of another key, that an
interrupted build resumes, and that predictions are labelled PREDICTED with the table's key.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models import build_model, create_config
from profiling import TimingOptions, profile_model
from profiling._backends import check_target, resolve_backends
from profiling._kernels import decompose_onnx
from profiling._predictor import LatencyPredictor, export_for_table
from profiling._records import PREDICTED
from profiling._table import LatencyTable
from profiling._table_build import LocalTimer, build_table
from rtseg_core import ConfigError

SIZE = 32
CONFIGS = {
    "a": {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 0), "dec_depths": (0, 1)},
    "b": {"conv_widths": (8, 16, 24), "token_widths": (24, 32), "enc_depths": (0, 1), "dec_depths": (1, 0)},
    "c": {"conv_widths": (16, 16, 32), "token_widths": (32, 32), "enc_depths": (1, 1), "dec_depths": (0, 0)},
}
UNSEEN = {"conv_widths": (8, 24, 40), "token_widths": (40, 56), "enc_depths": (1, 0), "dec_depths": (0, 0)}


def _model(overrides: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(create_config("paper", **overrides)).eval()


@pytest.fixture(scope="module")
def models():
    return [(name, _model(cfg)) for name, cfg in CONFIGS.items()]


@pytest.fixture(scope="module")
def table_path(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("table") / "table.json"
    build_table(out, models, size=SIZE, threads=1, calibrate=3, rounds=1, runs=2, batch_size=40)
    return out


def test_decomposition_names_the_family_kernels(tmp_path):
    path = export_for_table(_model(CONFIGS["a"]), tmp_path / "a.onnx", size=SIZE, opset=17)
    d = decompose_onnx(path, graphs=True)
    ops = {k.op for k in d.kernels}
    assert {"Reshape+GELU", "LayerNormalization", "MaxPool+HardSwish", "Gemm"} <= ops  # fused groups, named
    assert any(op.startswith("shift(") for op in ops)  # the tokenized MLP's pad/split/slice/concat in one kernel
    assert any(op.startswith("Conv") for op in ops) and any(op.startswith("Resize") for op in ops)
    assert d.input_shape == (1, 1, SIZE, SIZE) and d.opset == 17
    # every distinct kernel has a runnable graph, and keys are stable across decompositions
    assert set(d.graphs) == set(d.distinct())
    again = decompose_onnx(path)
    assert [k.key for k in again.kernels] == [k.key for k in d.kernels]
    conv = next(k for k in d.kernels if k.op.startswith("Conv"))
    assert conv.features["flops"] > 0 and "kernel_hw" in conv.features and conv.module


def test_a_pruned_member_decomposes_with_its_narrower_kernels(tmp_path):
    from compress import PruneSpec, prune_model

    model = _model(CONFIGS["a"])
    full = decompose_onnx(export_for_table(model, tmp_path / "full.onnx", size=SIZE, opset=17))
    prune_model(model, PruneSpec(ratio=0.5, size=SIZE))
    pruned = decompose_onnx(export_for_table(model, tmp_path / "pruned.onnx", size=SIZE, opset=17))
    assert len(pruned.kernels) == len(full.kernels)  # the same structure ...
    assert sum(k.features["flops"] for k in pruned.kernels) < sum(k.features["flops"] for k in full.kernels)
    assert {k.key for k in pruned.kernels} != {k.key for k in full.kernels}  # ... with other shapes


def test_table_file_structure_and_key(table_path, models):
    import onnxruntime

    data = json.loads(table_path.read_text())
    assert data["kind"] == "rtseg-nas kernel latency table" and data["schema"] == 1
    key = data["key"]
    assert (key["target"], key["precision"], key["threads"], key["opset"], key["batch"]) == ("local", "fp32", 1, 17, 1)
    assert key["runtime"] == "onnxruntime CPUExecutionProvider"
    assert key["libraries"]["onnxruntime"] == onnxruntime.__version__ and "cores" in key["device"]
    table = LatencyTable.load(table_path)
    assert table.call_ms > 0 and table.call_cpu_ms is not None
    assert [c.model for c in table.calibration] == ["a", "b", "c"]
    assert all(c.measured_ms > 0 and c.measured_cpu_ms > 0 for c in table.calibration)
    for entry in table.kernels.values():
        assert entry.median_ms > 0 and entry.runs == 2 and entry.signature.startswith("opset 17")
    # every kernel of every model is in the table, and each calibration row lists that model's kernels
    for (name, _), row in zip(models, table.calibration):
        assert row.model == name and set(row.kernels) <= set(table.kernels)


def test_prediction_is_labelled_predicted_with_the_table_key(table_path):
    rep = profile_model(
        create_config("paper", **UNSEEN), target=f"predict:{table_path}", size=SIZE, count=False, model_name="unseen"
    )
    (rec,) = rep.latency
    assert rec.kind == PREDICTED and rec.backend == "kernel-predictor"
    assert rec.target == f"predict:{table_path}" and rec.runs == 0
    assert rec.environment["table_key"]["target"] == "local" and rec.environment["table"] == str(table_path)
    env = rec.environment
    assert env["kernels"] == env["kernels_from_table"] + env["kernels_regressed"]
    assert env["kernels_regressed"] > 0  # other widths: some kernels come from the regressor
    assert rec.median_ms > 0 and rec.p90_ms is None and rec.iqr_ms is None
    assert "PREDICTED, not a measurement" in rec.notes
    assert (
        env["clock"] == "cpu" and "thread CPU times" in rec.notes
    )  # a 1-thread local table predicts idle-core latency
    row = [line for line in rep.format_table().splitlines() if "kernel-predictor" in line][0]
    assert " - " in row  # no dispersion shown for a prediction
    # a model made only of table kernels is predicted from the table alone
    seen = profile_model(create_config("paper", **CONFIGS["b"]), target=f"predict:{table_path}", size=SIZE, count=False)
    assert seen.latency[0].environment["kernels_regressed"] == 0


def test_a_table_of_another_key_is_refused(table_path, models):
    with pytest.raises(ConfigError, match=r"threads: table 1 vs 2"):
        build_table(table_path, models[:1], size=SIZE, threads=2, rounds=1, runs=1)
    with pytest.raises(ConfigError, match=r"precision: table 'fp32' vs 'fp16'"):
        profile_model(
            create_config("paper", **CONFIGS["a"]),
            target=f"predict:{table_path}",
            size=SIZE,
            count=False,
            precision="fp16",
        )
    with pytest.raises(ConfigError, match=r"threads: table 1 vs 4"):
        profile_model(
            create_config("paper", **CONFIGS["a"]), target=f"predict:{table_path}", size=SIZE, count=False, threads=4
        )
    with pytest.raises(ConfigError, match="opset-17 kernels"):
        profile_model(
            create_config("paper", **CONFIGS["a"]), target=f"predict:{table_path}", size=SIZE, count=False, opset=13
        )


def test_targets_come_from_one_table(tmp_path, table_path):
    assert [b.name for b in resolve_backends("local")] == ["onnxruntime", "pytorch"]
    assert [b.name for b in resolve_backends("jetson-nano-estimate")] == ["roofline"]
    assert [b.name for b in resolve_backends(f"predict:{table_path}")] == ["kernel-predictor"]
    assert check_target(f"predict:{table_path}") == "predict"
    with pytest.raises(ConfigError, match="file not found"):
        check_target(f"predict:{tmp_path / 'missing.json'}")
    (tmp_path / "other.json").write_text('{"kind": "something else"}')
    with pytest.raises(ConfigError, match="not a kernel latency table"):
        check_target(f"predict:{tmp_path / 'other.json'}")
    with pytest.raises(ConfigError, match="predict:TABLE"):
        check_target("nano")


class _StopAfter(LocalTimer):
    """The real ONNX Runtime timer, interrupted (as by Ctrl-C) when the given batch starts."""

    def __init__(self, stop_at: int, **kw) -> None:
        super().__init__(**kw)
        self.batches, self.stop_at = 0, stop_at

    def time_graphs(self, graphs):
        if graphs and graphs[0].key != "__baseline__":
            self.batches += 1
            if self.batches == self.stop_at:
                raise KeyboardInterrupt
        return super().time_graphs(graphs)


def test_an_interrupted_build_resumes_where_it_stopped(models, tmp_path):
    out = tmp_path / "resume.json"
    with pytest.raises(KeyboardInterrupt):
        build_table(out, models[:2], size=SIZE, calibrate=0, batch_size=10, timer=_StopAfter(3, rounds=1, runs=1))
    kept = LatencyTable.load(out)
    assert len(kept.kernels) == 20  # two finished batches were saved
    timer = _StopAfter(0, rounds=1, runs=1)
    result = build_table(out, models[:2], size=SIZE, calibrate=0, batch_size=10, timer=timer)
    assert result.kernels_measured == result.kernels_total - 20  # only what was missing
    table = LatencyTable.load(out)
    assert len(table.kernels) == result.kernels_total
    for key, entry in kept.kernels.items():
        assert table.kernels[key].median_ms == entry.median_ms  # measured once, not again


def test_predictor_needs_calibrated_models(models, tmp_path):
    out = tmp_path / "nocal.json"
    build_table(out, models[:1], size=SIZE, calibrate=0, rounds=1, runs=1)
    with pytest.raises(Exception, match="overhead fit needs 3"):
        LatencyPredictor.load(out).predict_model(models[0][1], size=SIZE)


@pytest.fixture(scope="module")
def ssh_table(sshd, models, tmp_path_factory):
    """A table built once on the loopback SSH device: (build result, read-only path); tests copy the file."""
    folder = tmp_path_factory.mktemp("ssh-table")
    out = folder / "ssh-table.json"
    result = build_table(
        out,
        models,
        target=sshd.url,
        ssh_options=sshd.options(folder),
        remote_backend="onnxruntime",
        size=SIZE,
        threads=1,
        calibrate=3,
        rounds=1,
        runs=2,
        batch_size=60,
        timing=TimingOptions(device_rounds=2, device_runs=2),  # whole models: rotated device rounds
    )
    return result, out


def test_table_built_on_the_loopback_ssh_device(sshd, ssh_table, models, tmp_path):
    result, built = ssh_table
    out = tmp_path / "ssh-table.json"
    shutil.copyfile(built, out)
    table = result.table
    assert table.key.target == sshd.url and table.key.opset == 13  # TensorRT-era opset over SSH
    assert table.key.libraries["python"] and "CPUs" in table.key.device
    assert len(table.kernels) == result.kernels_total and len(table.calibration) == 3
    assert LatencyTable.load(out).kernels.keys() == table.kernels.keys()  # what was saved is what was built
    rep = profile_model(create_config("paper", **UNSEEN), target=f"predict:{out}", size=SIZE, count=False)
    assert rep.latency[0].kind == PREDICTED and rep.latency[0].environment["table_key"]["target"] == sshd.url
    # the same file cannot take measurements from this machine's ONNX Runtime
    with pytest.raises(ConfigError, match="target: table"):
        build_table(out, models[:1], size=SIZE, opset=13, rounds=1, runs=1)


def test_predictor_bench_against_the_loopback_ssh_device(sshd, ssh_table, models, tmp_path):
    from profiling import bench_predictor

    # The bench resumes the device's table (its key: target, device, opset 13, threads): every kernel of the
    # training models is in it, so here only the whole models and the held-out models' missing kernels are
    # timed over SSH (building the table from nothing over SSH is the test above). A table of another key
    # would be refused, not reused.
    shutil.copyfile(ssh_table[1], tmp_path / "t.json")
    kernels = set(LatencyTable.load(tmp_path / "t.json").kernels)
    opts = sshd.options(tmp_path)
    held = [("unseen", _model(UNSEEN)), ("b-again", _model(CONFIGS["b"]))]
    result = bench_predictor(
        models,
        held,
        size=SIZE,
        timing=TimingOptions(rounds=1, runs=2, device_rounds=1, device_runs=2),
        target=sshd.url,
        ssh_options=opts,
        table=tmp_path / "t.json",
    )
    assert result.conditions["target"] == sshd.url and "CPUs" in result.conditions["device"]
    assert set(result.measured_ms) == {"unseen", "b-again"} and all(v > 0 for v in result.measured_ms.values())
    assert {s.clock for s in result.scores} == {"wall"}  # a device gives wall-clock latency only
    assert {s.method for s in result.scores} >= {"roofline + calibration", "FLOPs-only linear"}
    assert LatencyTable.load(tmp_path / "t.json").key.target == sshd.url
    assert kernels <= set(LatencyTable.load(tmp_path / "t.json").kernels)  # resumed and grown, not replaced
    assert "kernel predictor" in result.format_table()


def test_the_predictor_is_loaded_once_per_version_of_the_table(table_path, tmp_path):
    import os
    import shutil

    copy = tmp_path / "cached.json"
    shutil.copy(table_path, copy)
    # two trials of a predict:TABLE search each resolve the target's backends and ask for the predictor
    first, second = (resolve_backends(f"predict:{copy}")[0] for _ in range(2))
    assert first is not second and first._predictor() is second._predictor()
    predictor = first._predictor()
    predictor.predict_model(_model(CONFIGS["b"]), size=SIZE)  # fits the overhead once ...
    assert resolve_backends(f"predict:{copy}")[0]._predictor()._overhead is not None  # ... and keeps it
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the table was rebuilt: read it again
    assert first._predictor() is not predictor
    with pytest.raises(ConfigError, match="file not found"):
        resolve_backends(f"predict:{tmp_path / 'gone.json'}")[0]._predictor()


def _kernel(field, value):
    def change(data):
        data["kernels"][next(iter(data["kernels"]))][field] = value

    return change


def _set(*path, value):
    def change(data):
        target = data
        for name in path[:-1]:
            target = target[name]
        target[path[-1]] = value

    return change


TIME = "must be a positive finite number <= 60000"
# (case, change, the error after "TABLE: "; {k} is the first kernel's key)
HOSTILE_TABLES = [
    ("negative", _kernel("median_ms", -3.1), f"'kernels['{{k}}'].median_ms' {TIME}, got -3.1"),
    ("zero", _kernel("median_ms", 0.0), f"'kernels['{{k}}'].median_ms' {TIME}, got 0.0"),
    ("huge", _kernel("median_ms", 1e300), f"'kernels['{{k}}'].median_ms' {TIME}, got 1e+300"),
    ("nan", _kernel("cpu_ms", float("nan")), f"'kernels['{{k}}'].cpu_ms' {TIME}, got nan"),
    ("inf", _kernel("median_ms", float("inf")), f"'kernels['{{k}}'].median_ms' {TIME}, got inf"),
    ("text", _kernel("median_ms", "fast"), f"'kernels['{{k}}'].median_ms' {TIME}, got 'fast'"),
    ("runs", _kernel("runs", 2.5), "'kernels['{k}'].runs' must be an integer in [1, 10000000], got 2.5"),
    ("features", _kernel("features", {"flops": -1}), "'kernels['{k}'].features.flops' must be a finite number in"),
    ("no runs", lambda d: d["kernels"][next(iter(d["kernels"]))].pop("runs"), "missing field 'kernels['{k}'].runs'"),
    ("kernels list", _set("kernels", value=[]), "'kernels' must be a JSON object, got []"),
    ("call", _set("call_ms", value=-1), f"'call_ms' {TIME}, got -1"),
    ("threads", _set("key", "threads", value="one"), "'key.threads' must be an integer in [1, 4096], got 'one'"),
    ("calibration", _set("calibration", 0, "measured_ms", value=0), f"'calibration[0].measured_ms' {TIME}, got 0"),
    ("unknown kernel", _set("calibration", 0, "kernels", 0, value="nope"), "'calibration[0].kernels[0]' must be a"),
    ("unknown field", _set("speedup", value=2), "unknown field(s) ['speedup'] in the file"),
]


@pytest.mark.parametrize(("change", "says"), [c[1:] for c in HOSTILE_TABLES], ids=[c[0] for c in HOSTILE_TABLES])
def test_a_hostile_table_is_one_error_naming_its_field(table_path, tmp_path, change, says):
    data = json.loads(table_path.read_text())
    first = next(iter(data["kernels"]))
    change(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))  # NaN and Infinity as Python's json writes them
    with pytest.raises(ConfigError) as info:
        LatencyTable.load(bad)
    assert str(info.value).startswith(f"{bad}: {says.format(k=first)}"), str(info.value)


def test_a_hostile_table_is_refused_before_a_search_or_a_profile_uses_it(table_path, tmp_path, capsys):
    from rtseg_nas.cli import main

    data = json.loads(table_path.read_text())
    for entry in data["kernels"].values():
        entry["median_ms"] = entry["cpu_ms"] = -entry["median_ms"]  # predicted -50 ms, "feasible" before
    bad = tmp_path / "negative.json"
    bad.write_text(json.dumps(data))
    arch = tmp_path / "a.json"
    arch.write_text(json.dumps(CONFIGS["a"]))
    for argv in (
        ["latency-table", "show", str(bad)],
        ["profile", "--arch", str(arch), "--size", str(SIZE), "--no-count", "--target", f"predict:{bad}"],
        ["search", "--study", str(tmp_path / "s"), "--target", f"predict:{bad}", "--max-latency-ms", "5"],
    ):
        assert main(argv) == 1  # the run failed on a damaged input file
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("error:") == 1, err
        assert f"error: {bad}: 'kernels[" in err and TIME in err
    assert not (tmp_path / "s").exists()  # refused before the study folder was made


def test_a_search_records_its_table_as_an_absolute_path(table_path, monkeypatch):
    # study.json keeps the target; `validate` run from another folder could not find "predict:table.json".
    from search_spaces import ProfilingOptions

    monkeypatch.chdir(table_path.parent)
    options = ProfilingOptions(target=f"predict:{table_path.name}")
    assert options.target == f"predict:{table_path}" and Path(options.target.partition(":")[2]).is_absolute()


def test_a_fit_that_gives_a_model_nothing_predicts_its_lower_bound_and_says_so(table_path, tmp_path, caplog):
    import numpy as np

    path = export_for_table(_model(UNSEEN), tmp_path / "m.onnx", size=SIZE, opset=17)
    d = decompose_onnx(path)
    predictor = LatencyPredictor.load(table_path)
    assert not predictor.predict_decomposition(d, model_name="m").floored  # the fitted table: no bound needed
    # the weights a loaded machine gave a tiny model in the xdist runs: nothing on its kernels' families,
    # the kernel count or the constant (positive least squares on larger models), so 0 ms
    coef, _ = predictor._fit_overhead()
    predictor._overhead = (np.zeros_like(coef), 0.0)
    pred = predictor.predict_decomposition(d, model_name="m")
    call = predictor._call_ms()
    assert pred.floored and pred.predicted_ms == pytest.approx(pred.kernel_sum_ms + call) and pred.predicted_ms > 0
    assert "predicts 0 ms for m" in caplog.text and "lower bound" in caplog.text
    assert "lower bound (net kernel time + one call)" in predictor.to_record(pred, d.input_shape).notes
