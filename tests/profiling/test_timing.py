"""The one timer (profiling/_timing.py) on real ONNX Runtime sessions of tiny exported family members.

No assertion depends on how fast anything ran: the tests check the method (warm-up, rotated
rounds, the untimed run, runs per round), the records' conditions, the paired speed-up and the
one owner of the defaults.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models import build_model, create_config
from profiling import (
    MEASURED,
    BenchConfig,
    ExportConfig,
    LatencyRequest,
    Samples,
    TimingOptions,
    export_onnx,
    make_session,
    resolve_backends,
    session_input,
    speedup,
    time_alternating,
    time_graphs,
)
from rtseg_core import ConfigError, ProfilingError

SIZE = 32
MEMBERS = {
    "narrow": {"conv_widths": (8, 16, 16), "token_widths": (16, 32), "enc_depths": (1, 0), "dec_depths": (0, 0)},
    "wide": {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 0), "dec_depths": (0, 0)},
    "deep": {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 1), "dec_depths": (1, 0)},
}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("timing")
    out = {}
    for name, overrides in MEMBERS.items():
        torch.manual_seed(0)
        model = build_model(create_config("paper", **overrides)).eval()
        out[name] = export_onnx(model, folder / f"{name}.onnx", ExportConfig(height=SIZE, width=SIZE), model_name=name)
    return {name: result.path for name, result in out.items()}


def _logging_runners(graphs, log: list[str]):
    """Each graph's real session run, noting its name in ``log`` on every call (the order the timer ran them)."""
    import numpy as np

    runners = {}
    for name, path in graphs.items():
        session = make_session(path, threads=1, providers=["CPUExecutionProvider"], spin=False)
        input_name, dtype = session_input(session)
        feed = {input_name: np.zeros((1, 1, SIZE, SIZE), dtype=dtype)}

        def run(name=name, session=session, feed=feed):
            log.append(name)
            return session.run(None, feed)

        runners[name] = run
    return runners


def test_warmup_then_rotated_rounds_of_an_untimed_run_and_timed_runs(graphs):
    log: list[str] = []
    options = TimingOptions(rounds=4, warmup=2, runs=3, untimed=1)
    samples = time_alternating(_logging_runners(graphs, log), options)
    names = list(graphs)
    n = len(names)
    warm = log[: options.warmup * n]
    assert warm == names * options.warmup  # warm-up: every model, alternating
    per_visit = options.untimed + options.runs
    visits = log[len(warm) :]
    assert len(visits) == options.rounds * n * per_visit
    for r in range(options.rounds):
        order = [visits[(r * n + k) * per_visit] for k in range(n)]
        assert order == names[r % n :] + names[: r % n]  # rotated by one model per round
        for k in range(n):  # a visit: the untimed run and the timed ones, all of the same model
            visit = visits[(r * n + k) * per_visit : (r * n + k + 1) * per_visit]
            assert visit == [order[k]] * per_visit
    firsts = {visits[r * n * per_visit] for r in range(options.rounds)}
    assert firsts == set(names)  # every model is first in some round
    for name in names:  # only the timed runs are kept, round by round
        assert samples[name].rounds == options.rounds
        assert all(len(row) == options.runs for row in samples[name].wall_ms)
        assert samples[name].cpu_ms is not None and len(samples[name].times("cpu")) == options.rounds * options.runs


def test_the_cold_method_times_one_run_right_after_the_other_model(graphs):
    log: list[str] = []
    cold = TimingOptions(rounds=3, warmup=0, runs=1, untimed=0)
    time_alternating(_logging_runners(graphs, log), cold)
    names = list(graphs)
    assert log == [m for r in range(3) for m in names[r:] + names[:r]]  # no untimed run in between


def test_graph_records_state_their_conditions(graphs):
    options = TimingOptions(rounds=3, warmup=1, runs=2)
    got = time_graphs(graphs, options)
    assert list(got) == list(graphs)
    for name, timed in got.items():
        rec = timed.record
        assert (rec.kind, rec.target, rec.backend, rec.provider) == (MEASURED, "local", "onnxruntime",
                                                                     "CPUExecutionProvider")  # fmt: skip
        assert (rec.model, rec.precision, rec.threads, rec.warmup, rec.runs) == (name, "fp32", 1, 1, 6)
        assert (rec.batch, rec.channels, rec.height, rec.width) == (1, 1, SIZE, SIZE)
        assert rec.median_ms == timed.samples.median_ms and rec.p90_ms >= rec.median_ms >= rec.min_ms > 0
        assert "3 rounds in an order rotated per round, each 1 untimed + 2 timed" in rec.notes
        assert "thread CPU time median" in rec.notes and timed.samples.cpu_median_ms > 0
    two = time_graphs(dict(list(graphs.items())[:2]), dataclasses.replace(options, threads=2))
    for timed in two.values():  # with a pool the caller's CPU time is not the work: not recorded
        assert timed.record.threads == 2 and timed.samples.cpu_ms is None and "thread CPU" not in timed.record.notes


def test_the_local_backend_times_many_graphs_through_the_same_timer(graphs):
    (backend,) = resolve_backends("local", ("onnxruntime",))
    requests = {
        n: LatencyRequest(name=n, target="local", onnx_path=p, height=SIZE, width=SIZE) for n, p in graphs.items()
    }
    backend.check(next(iter(requests.values())))
    got = backend.time_many(requests, TimingOptions(rounds=2, warmup=0, runs=1))
    assert set(got) == set(graphs) and all(t.samples.rounds == 2 and t.record.runs == 2 for t in got.values())
    assert backend.kind == MEASURED and backend.runs_any_opset


def test_speedup_pairs_whole_rounds():
    slow = Samples("slow", ((10.0, 12.0), (20.0, 22.0), (11.0, 13.0)))
    fast = Samples("fast", ((5.0, 6.0), (10.0, 11.0), (5.5, 6.5)))
    sp = speedup(slow, fast)
    assert sp.ratio == pytest.approx(2.0) and sp.rounds == 3 and sp.low == pytest.approx(2.0)
    assert sp.describe().startswith("fast is 2.00x faster than slow (95 % CI 2.00-2.00x, bootstrap over 3 paired")
    with pytest.raises(ProfilingError, match="not one alternating loop"):
        speedup(slow, Samples("other", ((1.0,),)))
    with pytest.raises(ProfilingError, match="no 'cpu' times"):
        speedup(slow, fast, clock="cpu")


def test_the_timing_defaults_have_one_owner(tmp_path):
    from validate import ValidateConfig

    assert BenchConfig().timing == TimingOptions() == ValidateConfig(study_dir=tmp_path).timing
    with pytest.raises(ConfigError, match="--device-rounds: must be an integer >= 1, got 0"):
        TimingOptions(device_rounds=0)
    with pytest.raises(ConfigError, match="--runs"):
        TimingOptions(runs=0)


def test_a_dynamic_input_needs_a_shape(tmp_path):
    torch.manual_seed(0)
    model = build_model(create_config("paper", **MEMBERS["narrow"])).eval()
    path = export_onnx(model, tmp_path / "dyn.onnx", ExportConfig(height=SIZE, width=SIZE, dynamic="size")).path
    with pytest.raises(ProfilingError, match="dynamic dimensions"):
        time_graphs({"dyn": path}, TimingOptions(rounds=1, warmup=0, runs=1))
    got = time_graphs({"dyn": path}, TimingOptions(rounds=1, warmup=0, runs=1), shape=(1, 1, SIZE, SIZE))
    assert got["dyn"].record.height == SIZE


def test_pytorch_eager_models_go_through_the_same_loop():
    (backend,) = resolve_backends("local", ("pytorch",))
    models = {}
    for name in ("narrow", "wide"):
        torch.manual_seed(0)
        models[name] = build_model(create_config("paper", **MEMBERS[name])).eval()
    requests = {
        n: LatencyRequest(name=n, target="local", model=m, height=SIZE, width=SIZE, device="cpu")
        for n, m in models.items()
    }
    before = torch.get_num_threads()
    got = backend.time_many(requests, TimingOptions(rounds=2, warmup=1, runs=2))
    assert torch.get_num_threads() == before
    for name, timed in got.items():
        rec = timed.record
        assert (rec.model, rec.kind, rec.backend, rec.provider) == (name, MEASURED, "pytorch", "eager (cpu)")
        assert (rec.runs, rec.warmup, rec.threads) == (4, 1, 1) and timed.samples.rounds == 2
        assert "2 rounds in an order rotated per round" in rec.notes
