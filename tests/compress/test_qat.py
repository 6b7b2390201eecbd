"""QAT (compress/_qat.py): fake quantization that matches ONNX Runtime's, and an export ORT runs as integer kernels."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from onnxruntime.quantization.quant_utils import compute_scale_zp

from compress import FinetuneSpec, Int8GraphReport, QuantSpec, ort_predict, quantize_checkpoint
from compress._qat import ActivationRange, FakeQuant, _PerChannelWeight, calibrate_ranges, check_teacher_supported
from models import load_checkpoint, load_model
from rtseg_core import CompressionError, CompressionOptionError, read_json


@pytest.mark.parametrize("low, high, qmin, qmax", [(-1.0, 3.0, 0, 255), (0.5, 2.0, 0, 255), (-2.0, 0.7, -128, 127)])
def test_activation_grid_is_ort_minmax_grid(low, high, qmin, qmax):
    """The same scale and zero point ORT's quantizer computes from a MinMax range (range widened to 0)."""
    q = np.uint8 if qmin == 0 else np.int8
    zero, scale = compute_scale_zp(np.float32(low), np.float32(high), q(qmin), q(qmax), symmetric=False)
    r = ActivationRange(low, high, qmin, qmax)
    assert r.scale == pytest.approx(float(scale), rel=1e-6) and r.zero_point == int(zero)


def test_weight_fake_quant_is_symmetric_per_channel_int8_with_straight_through_gradient():
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    q = _PerChannelWeight()(w)
    scale = w.detach().abs().flatten(1).amax(1) / 127
    levels = q.detach() / scale[:, None, None, None]
    assert torch.allclose(levels, levels.round(), atol=1e-4) and levels.abs().max() <= 127 + 1e-4
    assert torch.allclose(q, w, atol=float(scale.max()) / 2 + 1e-6)
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # inside the range: the gradient passes unchanged


def test_fake_quant_hooks_change_the_output_and_leave_plain_float_weights(tools):
    model = tools.random_model(tools.small_config())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, 32, 32)
    ranges = calibrate_ranges(model, list(x), activations="uint8")
    with torch.no_grad():
        ref = model(x)
        fq = FakeQuant(model, ranges)
        quantized = model(x)
        fq.remove()
        after = model(x)
    assert fq.activations == len(ranges) > 0
    assert not torch.equal(ref, quantized) and torch.equal(ref, after)
    assert model.state_dict().keys() == before.keys()  # no parametrization left behind
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_qat_export_runs_in_onnxruntime_with_integer_conv(small_checkpoint, tmp_path):
    out = tmp_path / "qat"
    ft = FinetuneSpec(epochs=5, steps_per_epoch=2, batch_size=4, device="cpu")  # epochs: the spec's qat_epochs
    spec = QuantSpec(format="int8-qat", qat_epochs=1, calibration_images=2)
    report = quantize_checkpoint(
        small_checkpoint, spec, out, finetune_spec=ft, measure=False, evaluate=False, progress=False
    )
    assert report.recipe == "ort-int8-qat1-qdq-minmax" and len(report.finetune) == 1
    graph = Int8GraphReport.from_dict(read_json(out / report.int8_graph))
    assert graph.conv_total > 0 and graph.conv_integer == graph.conv_total == report.conv_integer
    logits = ort_predict(out / "model.onnx")(torch.randn(2, 1, 32, 32))  # ONNX Runtime runs the INT8 graph
    assert logits.shape == (2, 3, 32, 32) and torch.isfinite(logits).all()
    # the fine-tuned float weights are kept, without parametrization keys, and differ from the parent's
    tuned, parent = load_checkpoint(out / "checkpoint.pt"), load_checkpoint(small_checkpoint)
    assert tuned.state_dict.keys() == parent.state_dict.keys() and tuned.meta["qat"] == {"epochs": 1, "distill": False}
    assert any(not torch.equal(tuned.state_dict[k], parent.state_dict[k]) for k in parent.state_dict)
    load_model(out / "checkpoint.pt")
    assert read_json(out / "quantize.json")["spec"]["qat_epochs"] == 1


def test_distillation_is_refused_exactly_when_finetune_takes_no_teacher():
    from compress import finetune

    supported = "teacher" in inspect.signature(finetune).parameters
    if supported:
        check_teacher_supported()
    else:
        with pytest.raises(CompressionOptionError, match="QuantSpec.distill: .* no teacher"):
            check_teacher_supported()
    with pytest.raises(CompressionOptionError, match="QuantSpec.distill: is an option of int8-qat"):
        QuantSpec(format="int8-static", distill=True)
    with pytest.raises(CompressionOptionError, match="QuantSpec.qat_epochs: must be an integer >= 1"):
        QuantSpec(format="int8-qat", qat_epochs=0)


def test_a_qat_variants_graph_is_rebuilt_with_its_static_recipe(small_checkpoint, tmp_path):
    """Graphs rebuilt to time a variant at another size (compress --study, validate) use graph_spec():
    for int8-qat its int8-static settings, so the rebuilt graph is INT8, not the float weights."""
    from compress import quantize_onnx
    from profiling import ExportConfig, export_onnx

    qat = QuantSpec(format="int8-qat", qat_epochs=3, activations="int8", calibration_images=2, distill=False)
    assert qat.graph_spec() == QuantSpec(format="int8-static", activations="int8", calibration_images=2, qat_epochs=3)
    assert QuantSpec(format="fp16").graph_spec() == QuantSpec(format="fp16")
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(load_model(small_checkpoint)[0], fp32, ExportConfig(height=64, width=64))
    with pytest.raises(CompressionError, match="int8-qat needs a checkpoint's weights"):
        quantize_onnx(fp32, qat, tmp_path / "refused", data="synthetic:24", evaluate=False, measure=False)
    report = quantize_onnx(fp32, qat.graph_spec(), tmp_path / "q", data="synthetic:24", evaluate=False, measure=False)
    assert report.conv_integer and report.conv_integer <= report.conv_total
