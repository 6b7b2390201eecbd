"""The Jetson Nano roofline estimate and its calibration against measurements."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models import build_model, create_config
from profiling import (
    JETSON_NANO,
    CalibratedEstimator,
    LatencyRecord,
    estimate_latency,
    estimate_roofline,
)
from rtseg_core import ProfilingError

# Small members of the family that differ in cost (widths, depths), for calibration.
CONFIGS = [
    {"conv_widths": (4, 8, 16), "token_widths": (16, 24), "enc_depths": (0, 0), "dec_depths": (0, 0)},
    {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (0, 0), "dec_depths": (0, 0)},
    {"conv_widths": (16, 32, 64), "token_widths": (64, 96), "enc_depths": (0, 0), "dec_depths": (0, 0)},
    {"conv_widths": (24, 48, 96), "token_widths": (96, 128), "enc_depths": (0, 0), "dec_depths": (0, 0)},
    {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 0), "dec_depths": (0, 0)},
    {"conv_widths": (16, 32, 128), "token_widths": (160, 256), "enc_depths": (1, 1), "dec_depths": (1, 1)},
]


def _model(i: int) -> torch.nn.Module:
    torch.manual_seed(i)
    return build_model(create_config("paper", **CONFIGS[i])).eval()


@pytest.fixture(scope="module")
def rooflines():
    return [estimate_roofline(_model(i), height=64) for i in range(len(CONFIGS))]


def test_estimate_is_labelled_as_an_estimate():
    rec = estimate_latency(_model(1), height=64, model_name="small")
    assert (rec.kind, rec.backend, rec.target) == ("estimated", "roofline", "jetson-nano-estimate")
    assert rec.notes.startswith("ESTIMATE, not a measurement")
    for assumption in ("235.9 GFLOP/s", "25.6 GB/s", "launch overhead", "efficiency"):
        assert assumption in rec.notes
    assert "(estimate)" in rec.device
    assert rec.runs == 0 and rec.threads is None
    assert rec.p90_ms is None and rec.iqr_ms is None  # one computed number: no dispersion to show


def test_roofline_adds_up_and_fp16_is_faster(rooflines):
    est = rooflines[5]
    assert math.isclose(est.total_ms, sum(k.time_ms for k in est.kernels))
    overhead = JETSON_NANO.launch_overhead_us / 1000
    for k in est.kernels:
        assert math.isclose(k.time_ms, max(k.compute_ms, k.memory_ms) + overhead)
    fp16 = estimate_roofline(_model(5), height=64, precision="fp16")
    assert fp16.total_ms < est.total_ms
    assert len(fp16.kernels) == len(est.kernels)
    # BN is folded, as TensorRT does: no batch_norm kernel is charged
    assert not any("batch_norm" in k.op for k in est.kernels)
    # bigger models cost more
    assert rooflines[0].total_ms < rooflines[1].total_ms < rooflines[2].total_ms < rooflines[3].total_ms


def test_no_int8_estimate_for_the_nano_gpu():
    with pytest.raises(ProfilingError, match="no fast INT8"):
        estimate_roofline(_model(0), height=32, precision="int8")


def test_power_calibration_recovers_a_known_transform(rooflines):
    rng = np.random.default_rng(0)
    a, b = 2.5, 0.9
    measured = [a * e.total_ms**b * math.exp(rng.normal(0, 0.02)) for e in rooflines]
    cal = CalibratedEstimator().fit(list(zip(rooflines, measured)))
    assert cal.coef[0] == pytest.approx(a, rel=0.1)
    assert cal.coef[1] == pytest.approx(b, abs=0.05)
    assert cal.mape_holdout is not None and cal.mape_holdout < 5.0
    assert len(cal.holdout_errors) == len(rooflines)
    rec = cal.predict(rooflines[2], model_name="m2")
    assert rec.kind == "estimated" and "CALIBRATED ESTIMATE" in rec.notes and "leave-one-out MAPE" in rec.notes
    assert rec.median_ms == pytest.approx(a * rooflines[2].total_ms ** b, rel=0.05)


def test_terms_calibration_recovers_per_kernel_coefficients(rooflines):
    truth = np.array([1.5, 3.0, 0.05])
    measured = [float(e.terms() @ truth) for e in rooflines]
    cal = CalibratedEstimator(method="terms").fit(list(zip(rooflines, measured)))
    np.testing.assert_allclose(cal.coef, truth, rtol=1e-6)
    assert cal.mape_holdout < 1e-6


def test_calibration_needs_enough_pairs(rooflines):
    with pytest.raises(ProfilingError, match="at least 2"):
        CalibratedEstimator().fit([(rooflines[0], 3.0)])
    cal = CalibratedEstimator().fit([(rooflines[0], 3.0), (rooflines[1], 5.0)])
    assert cal.mape_holdout is None  # nothing left to hold out


def _record(ms: float, name: str) -> LatencyRecord:
    """A measured record with fixed numbers: the fit is tested on data, not on this machine's load."""
    return LatencyRecord(
        model=name,
        target="local",
        kind="measured",
        backend="onnxruntime",
        provider="CPUExecutionProvider",
        precision="fp32",
        device="test CPU (2 cores)",
        batch=1,
        channels=1,
        height=64,
        width=64,
        threads=1,
        warmup=2,
        runs=10,
        median_ms=ms,
        p90_ms=ms * 1.1,
        iqr_ms=ms * 0.05,
        mean_ms=ms,
        min_ms=ms * 0.9,
        fps=1000.0 / ms,
    )


def test_calibration_from_fixed_measured_records(rooflines):
    # measured = 3 * roofline^0.7 exactly, given as LatencyRecords (their shape drives the roofline)
    pairs = [(_model(i), _record(3.0 * rooflines[i].total_ms ** 0.7, f"m{i}")) for i in (0, 2, 3)]
    cal = CalibratedEstimator().fit(pairs)
    assert cal.n_pairs == 3 and cal.target == "local" and cal.device == "test CPU (2 cores)"
    assert cal.coef[0] == pytest.approx(3.0, rel=1e-6) and cal.coef[1] == pytest.approx(0.7, rel=1e-6)
    assert len(cal.holdout_errors) == 3 and cal.mape_holdout == pytest.approx(0.0, abs=1e-6)
    rec = cal.predict(_model(1), height=64, model_name="m1")
    assert rec.kind == "estimated" and "calibrated estimate" in rec.device
    assert rec.median_ms == pytest.approx(3.0 * rooflines[1].total_ms ** 0.7, rel=1e-6)
    assert rec.p90_ms is None and rec.iqr_ms is None and not rec.has_dispersion


def test_calibration_refuses_a_zero_measurement(rooflines):
    with pytest.raises(ProfilingError, match="positive number of ms"):
        CalibratedEstimator().fit([(rooflines[0], 3.0), (rooflines[1], 0.0)])


def test_power_fit_keeps_exponent_one_when_the_raw_estimates_barely_differ():
    """Two models the roofline rates 2.789 and 2.788 ms: the slope is not identifiable (it overflowed)."""
    from profiling._estimate import _apply, _fit

    raw = np.array([2.78941563, 2.78764538])
    measured = np.array([0.2443025, 0.5016995])
    coef = _fit("power", raw, np.zeros((2, 3)), measured)
    assert coef[1] == 1.0
    assert math.isclose(coef[0], math.exp(np.mean(np.log(measured / raw))))
    assert np.all(np.isfinite(_apply("power", coef, raw, np.zeros((2, 3)))))
    # with a real spread the exponent is fitted
    spread = _fit("power", np.array([1.0, 2.0, 4.0]), np.zeros((3, 3)), np.array([2.0, 8.0, 32.0]))
    assert math.isclose(spread[1], 2.0) and math.isclose(spread[0], 2.0)
