"""ONNX export: parity with PyTorch, BN folding, DSConv freezing, dynamic axes, and failures."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from models import DSConv2d, build_model, create_config
from profiling import ExportConfig, check_onnx, export_onnx, fold_batchnorm
from rtseg_core import ProfilingError

# One TMP block (in token stage 4, width 32: shift groups 7,7,7,7,4, the case that once broke Slice
# bounds) keeps the graph small enough to export quickly.
SMALL = {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 0), "dec_depths": (0, 0)}
# No TMP blocks: a graph of ~200 nodes exports in about a second, for tests that need no token stage.
TINY = {**SMALL, "enc_depths": (0, 0), "dec_depths": (0, 0)}


def _model(base: dict = SMALL, **overrides) -> torch.nn.Module:
    """A small family member with non-trivial BN statistics, so that folding has something to fold."""
    torch.manual_seed(0)
    model = build_model(create_config("paper", **{**base, **overrides}))
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return model.eval()


def _ort_logits(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("opset", [17, 13])
def test_export_matches_pytorch_and_folds_every_batchnorm(tmp_path, opset):
    model = _model()
    path = tmp_path / f"m{opset}.onnx"
    result = export_onnx(model, path, ExportConfig(opset=opset, height=64, width=64), model_name="small")
    assert result.max_abs_diff <= 1e-4
    assert result.folded_bn == 3 + 4 + 8  # encoder convs, up1-up4, two per EFF
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version == opset
    assert "BatchNormalization" not in {n.op_type for n in graph.graph.node}
    # Independent check with a fresh input: ORT on the written file vs the unfolded PyTorch model.
    x = np.random.default_rng(5).standard_normal((1, 1, 64, 64)).astype(np.float32)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(_ort_logits(path, x) - want)) <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # atomic: no temp file left


def test_dynamic_batch_export_runs_at_batch_3(tmp_path):
    model = _model()
    path = tmp_path / "dyn.onnx"
    result = export_onnx(model, path, ExportConfig(dynamic="batch", height=64, width=64))
    assert result.batch >= 2  # a dynamic batch is traced with an example batch of at least 2
    x = np.random.default_rng(0).standard_normal((3, 1, 64, 64)).astype(np.float32)
    got = _ort_logits(path, x)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == (3, 3, 64, 64)
    assert np.max(np.abs(got - want)) <= 1e-4


def test_quantized_dsconv_is_frozen_before_export(tmp_path):
    model = _model(TINY, dsconv_bits=4)
    path = tmp_path / "q.onnx"
    result = export_onnx(model, path, ExportConfig(height=64, width=64))
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert not ops & {"ArgMax", "Round", "GatherElements", "Clip", "BatchNormalization"}
    assert result.max_abs_diff <= 1e-4  # the frozen graph computes what the fake-quantized model does
    # the caller's model still fake-quantizes (export worked on a copy)
    assert all(m.bits == 4 for m in model.modules() if isinstance(m, DSConv2d))


def test_fold_batchnorm_needs_eval_mode():
    with pytest.raises(ProfilingError, match="eval mode"):
        fold_batchnorm(_model(TINY).train())


def test_checker_failure_is_a_profiling_error_naming_the_file(tmp_path):
    path = tmp_path / "ok.onnx"
    export_onnx(_model(TINY), path, ExportConfig(height=32, width=32))
    check_onnx(path)  # the written file passes
    broken = onnx.load(str(path))
    broken.graph.node[0].input[0] = "tensor_that_does_not_exist"
    bad = tmp_path / "broken.onnx"
    onnx.save(broken, str(bad))
    with pytest.raises(ProfilingError, match="broken.onnx.*checker"):
        check_onnx(bad)


def test_parity_failure_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "never.onnx"
    with pytest.raises(ProfilingError, match=r"differs from PyTorch by max \|diff\|"):
        export_onnx(_model(TINY), path, ExportConfig(height=32, width=32, atol=1e-15))
    assert not path.exists()
