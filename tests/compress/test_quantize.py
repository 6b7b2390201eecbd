"""Quantization: static QDQ / dynamic / FP16 ONNX run in ONNX Runtime near FP32; DSConv QAT; refusals."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from compress import QuantFormat, QuantSpec, quantize_checkpoint, quantize_onnx
from compress._quantize import FORMATS, calibration_reader, quiet_ort_quantizer
from models import DSConv2d, dsconv_quantize, load_model
from rtseg_core import CompressionError
from rtseg_nas.cli import main
from segmentation import load_split


def _run(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize(
    "spec, ops, tolerance",
    [
        (QuantSpec(format="int8-static", calibration="minmax", calibration_images=4), {"QuantizeLinear"}, 0.25),
        (QuantSpec(format="int8-dynamic"), {"ConvInteger", "DynamicQuantizeLinear"}, 0.25),
        (QuantSpec(format="fp16"), {"Cast"}, 0.01),
    ],
    ids=["qdq-minmax", "dynamic", "fp16"],
)
def test_quantized_models_run_in_onnxruntime_close_to_fp32(small_checkpoint, tmp_path, spec, ops, tolerance):
    out = tmp_path / "q"
    report = quantize_checkpoint(small_checkpoint, spec, out, rounds=3, progress=False)
    graph = ["int8_graph.json"] if spec.precision == "int8" else []
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".rtseg-output.json", "model.onnx", "model_fp32.onnx", "quantize.json", *graph]
    )
    assert ops <= set(report.op_counts)
    onnx.checker.check_model(str(out / "model.onnx"))
    x = load_split("synthetic:24", "val", size=32)[0]["image"][None].numpy()
    ref, got = _run(out / "model_fp32.onnx", x), _run(out / "model.onnx", x)
    assert got.dtype == np.float32 and got.shape == ref.shape == (1, 3, 32, 32)
    # close relative to the logits' range (int8 steps are ~1/255 of each tensor's range)
    assert np.abs(got - ref).max() <= tolerance * np.abs(ref).max()
    assert report.dice_fp32 is not None and report.dice_quant is not None and report.pixel_agreement > 0.9
    assert report.latency_fp32_ms > 0 and report.latency_quant_ms > 0 and report.speedup > 0
    # both graphs in one alternating loop: the printed ratio is the ratio of its medians, with its interval
    assert report.speedup == pytest.approx(report.latency_fp32_ms / report.latency_quant_ms)
    assert report.speedup_ci95_low <= report.speedup_ci95_high and "3 rounds in an order rotated" in report.notes
    if spec.format == "int8-dynamic":
        assert "ConvInteger" in report.notes


def test_calibration_reads_training_images(small_checkpoint):
    reader = calibration_reader("synthetic:24", size=32, seed=0, count=3, input_name="input", channels=1)
    train = load_split("synthetic:24", "train", size=32, seed=0, augment=False)
    got = []
    while (item := reader.get_next()) is not None:
        got.append(item["input"])
    assert len(got) == 3 and all(np.array_equal(g[0], train[i]["image"].numpy()) for i, g in enumerate(got))
    reader.rewind()
    assert np.array_equal(reader.get_next()["input"], got[0])


def test_dsconv_qat_freezes_and_exports_without_quantizer_ops(small_checkpoint, tmp_path):
    from compress import FinetuneSpec

    out = tmp_path / "ds"
    ft = FinetuneSpec(epochs=1, steps_per_epoch=2, batch_size=4, device="cpu")
    report = quantize_checkpoint(
        small_checkpoint,
        QuantSpec(format="dsconv", dsconv_bits=3),
        out,
        finetune_spec=ft,
        measure=False,
        evaluate=False,
        progress=False,
    )
    assert len(report.finetune) == 1 and report.checkpoint == "checkpoint.pt"
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert not ops & {"ArgMax", "Round", "GatherElements", "Clip"} and "Conv" in ops
    model, ckpt = load_model(out / "checkpoint.pt")
    assert ckpt.meta["dsconv"] == {"bits": 3, "block_size": 32, "frozen": True}
    for m in model.modules():
        if isinstance(m, DSConv2d):
            assert m.bits is None  # frozen
            # the frozen weight lies on the 3-bit grid: quantizing it again changes nothing
            assert torch.allclose(dsconv_quantize(m.weight, 3, 32), m.weight, atol=1e-6)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert np.abs(_run(out / "model.onnx", x.numpy()) - model(x).numpy()).max() < 1e-4


def test_int8_for_the_jetson_nano_gpu_is_refused_with_the_reason(small_checkpoint, tmp_path, capsys):
    with pytest.raises(CompressionError, match=r"compute capability 5\.3.*no fast INT8.*jetson-nano-cpu"):
        QuantSpec(format="int8-static", target="jetson-nano-gpu")
    QuantSpec(format="fp16", target="jetson-nano-gpu")  # FP16 is the Nano GPU's format
    assert QuantSpec(format="int8-static", target="jetson-nano-cpu").export_opset == 13
    rc = main(
        [
            "quantize",
            "--checkpoint",
            str(small_checkpoint),
            "--for",
            "jetson-nano-gpu",
            "--int8",
            "--out",
            str(tmp_path / "nano"),
        ]
    )
    assert rc == 2 and "compute capability 5.3" in capsys.readouterr().err
    assert not (tmp_path / "nano").exists()


def test_onnx_file_failing_the_checker_is_named_and_nothing_is_written(tmp_path):
    from onnx import TensorProto, helper

    # a Conv whose weight input is never defined: the checker rejects the graph
    node = helper.make_node("Conv", ["input", "missing_weight"], ["logits"])
    graph = helper.make_graph(
        [node],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    bad = tmp_path / "broken.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(bad))
    with pytest.raises(CompressionError, match=r"broken\.onnx: the ONNX checker rejects this file"):
        quantize_onnx(bad, QuantSpec(format="int8-dynamic"), tmp_path / "out", data="synthetic:24")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    with pytest.raises(CompressionError, match="not found"):
        quantize_onnx(tmp_path / "nope.onnx", QuantSpec(), tmp_path / "out")


def test_quantize_an_existing_onnx_file_with_percentile_calibration(small_checkpoint, tmp_path):
    from profiling import ExportConfig, export_onnx

    model, _ = load_model(small_checkpoint)
    export_onnx(model, tmp_path / "m.onnx", ExportConfig(height=32, width=32))
    spec = QuantSpec(calibration="percentile", percentile=99.9, calibration_images=2)
    report = quantize_onnx(tmp_path / "m.onnx", spec, tmp_path / "q", data="synthetic:24", measure=False)
    assert report.size == 32 and "QuantizeLinear" in report.op_counts and report.dice_quant is not None


def test_every_quant_format_has_one_row_and_distinct_folder_tags():
    assert list(FORMATS) == [f.value for f in QuantFormat]
    rows = {f: (s.label(), s.tag(), s.precision) for f in FORMATS for s in [QuantSpec(format=f, dsconv_bits=3)]}
    assert rows == {
        "int8-static": ("ort-int8-qdq-minmax", "int8", "int8"),
        "int8-qat": ("ort-int8-qat2-qdq-minmax", "int8qat", "int8"),
        "int8-dynamic": ("ort-int8-dynamic", "int8dyn", "int8"),
        "fp16": ("fp16", "fp16", "fp16"),
        "dsconv": ("dsconv3", "ds3", "fp32"),
    }
    assert QuantSpec(format="int8-static", calibration="entropy").label() == "ort-int8-qdq-entropy"
    s8 = QuantSpec(format="int8-static", activations="int8", dedicated_qdq=True, per_channel=False)
    assert s8.label() == "ort-int8-qdq-s8s8-dedicated-pt-minmax"
    assert QuantSpec(format="int8-qat", qat_epochs=3, graph_format="qoperator").label() == "ort-int8-qat3-qop-minmax"


def test_an_unknown_format_names_the_known_ones():
    known = "int8-static, int8-qat, int8-dynamic, fp16"
    with pytest.raises(CompressionError, match=f"QuantSpec.format: must be one of {known}"):
        QuantSpec(format="int4")


def test_quieting_the_ort_quantizer_changes_no_level_and_keeps_other_records():
    import onnxruntime.quantization.qdq_quantizer as qdq

    root = logging.getLogger()
    seen: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: seen.append(record.getMessage())
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)

    def ort_record(level: int, text: str) -> logging.LogRecord:
        # what ORT's `logging.warning(...)` calls produce: records of the root logger from ORT's files
        return root.makeRecord("root", level, qdq.__file__, 1, text, None, None)

    try:
        with quiet_ort_quantizer():
            assert root.level == logging.INFO
            root.handle(ort_record(logging.WARNING, "Axis 1 is out-of-range"))
            root.handle(ort_record(logging.ERROR, "ORT error"))
            logging.getLogger("compress.test").warning("our own warning")
            logging.warning("another library's root warning")
        root.handle(ort_record(logging.WARNING, "after the block"))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert seen == ["ORT error", "our own warning", "another library's root warning", "after the block"]
    assert not any(isinstance(f, logging.Filter) and "Ort" in type(f).__name__ for f in root.filters)
