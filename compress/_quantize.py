"""``rtseg-nas quantize``: INT8 / FP16 ONNX models and DSConv low-bit fine-tuning, each evaluated.

Formats (:class:`QuantFormat`):

- ``int8-static``: ONNX Runtime static quantization, QDQ, per-channel INT8 weights and UINT8
  activations, calibrated on TRAINING images through a ``CalibrationDataReader`` (MinMax,
  Entropy or Percentile); ORT's ``quant_pre_process`` (shape inference + optimisation) first.
- ``int8-qat``: ``int8-static`` after a fine-tune under fake quantization that simulates it
  (quantization-aware training, :mod:`compress._qat`), optionally distilled from the FP32 model.
- ``int8-dynamic``: weights INT8 ahead of time, activations quantized per run. Offered for
  completeness: on convnets ORT runs it as ConvInteger, which is *slower* than FP32 here.
- ``fp16``: FP16 weights and compute, FP32 inputs/outputs (for TensorRT on a Jetson's GPU; ONNX
  Runtime on a CPU gains little or nothing from it).
- ``dsconv``: DSConv's own b-bit VQK/KDS weight quantization (``RTSegConfig.dsconv_bits``),
  fine-tuned a few epochs from the trained weights, then frozen into plain float convs.

Every result is evaluated on the validation split with ONNX Runtime, beside the FP32 model:
Dice change (a fraction, like Dice), latency (median, this machine), speed-up and logits difference.

Output folder (written to a temporary sibling, renamed at the end)::

    OUT/model.onnx        the quantized model      OUT/model_fp32.onnx  the FP32 reference
    OUT/quantize.json     settings and results     OUT/checkpoint.pt    (dsconv, int8-qat: the weights)
    OUT/int8_graph.json   INT8 formats: what ONNX Runtime runs as integer kernels (compress._int8graph)
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import io
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from compress._files import output_dir
from compress._int8graph import INT8_GRAPH_JSON
from profiling import TimingOptions
from rtseg_core import (
    CompressionError,
    CompressionOptionError,
    ProfilingError,
    Record,
    atomic_write_json,
    check_output_dir,
    dataset_path,
    scratch_dir,
)

log = logging.getLogger(__name__)


class QuantFormat(str, enum.Enum):
    INT8_STATIC = "int8-static"
    INT8_QAT = "int8-qat"
    INT8_DYNAMIC = "int8-dynamic"
    FP16 = "fp16"
    DSCONV = "dsconv"

    def __str__(self) -> str:
        return self.value


CALIBRATIONS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")  # static INT8 activations: U8S8 or S8S8 with INT8 weights
GRAPH_FORMATS = ("qdq", "qoperator")  # ONNX Runtime's two quantized graph formats

# Where the model will run; the reason travels with every refusal.
TARGETS: dict[str, str] = {
    "cpu": "this machine's CPU with ONNX Runtime",
    "jetson-nano-cpu": "a Jetson Nano's Cortex-A57 CPU with ONNX Runtime",
    "jetson-nano-gpu": "a Jetson Nano's Maxwell GPU with TensorRT 8.0/8.2",
    "gpu": "a recent NVIDIA GPU with TensorRT (INT8 via explicit QDQ)",
}
NANO_GPU_INT8 = (
    "INT8 on the Jetson Nano's GPU is not applicable: its Maxwell GPU (compute capability 5.3) has no "
    "fast INT8 path in TensorRT (--int8 gives no gain there). Use --format fp16 for its GPU, or "
    "--for jetson-nano-cpu to run INT8 with ONNX Runtime on its CPU"
)
FP16_DEVICE_NOTE = (
    "FP16 ONNX with FP32 inputs/outputs for TensorRT (trtexec --fp16) on the device; the latency measured "
    "here is ONNX Runtime on this CPU, not the device's: time model.onnx there (rtseg-nas profile --onnx ... )"
)
CONVINTEGER_NOTE = (
    "dynamic INT8 runs convolutions as ConvInteger, which ONNX Runtime executes far slower than FP32 "
    "Conv on CPUs (measured here 3-5x slower on this family); use int8-static for speed"
)
FP16_CPU_NOTE = (
    "FP16 is meant for TensorRT on a GPU (Jetson); ONNX Runtime on a CPU runs most FP16 ops by casting, "
    "so CPU latency here says little about the Jetson"
)


@dataclass(frozen=True)
class QuantSpec(Record):
    """One quantization recipe (see the module docstring for the formats).

    ``calibration``/``percentile``/``calibration_images``/``per_channel``/``op_types``/
    ``activations`` (uint8: U8S8, int8: S8S8)/``graph_format`` (qdq or qoperator)/``dedicated_qdq``
    (one Q/DQ pair per consumer of a quantized tensor, ORT's ``DedicatedQDQPair``): static INT8
    only (``op_types`` empty = ONNX Runtime's default set). ``target`` is where the model
    will run (:data:`TARGETS`); INT8 for ``jetson-nano-gpu`` is refused. ``opset`` defaults to
    13 for Jetson targets (TensorRT 8.0/8.2 parsers) and 17 otherwise. ``dsconv_bits``: 2-8.
    ``int8-qat``: the static INT8 recipe above after ``qat_epochs`` of fake-quantized fine-tuning
    (:mod:`compress._qat`); ``distill``: with the unquantized model as teacher.
    """

    format: str = "int8-static"
    calibration: str = "minmax"
    percentile: float = 99.999
    calibration_images: int = 32
    per_channel: bool = True
    op_types: tuple[str, ...] = ()
    activations: str = "uint8"
    graph_format: str = "qdq"
    dedicated_qdq: bool = False
    preprocess: bool = True
    target: str = "cpu"
    opset: int | None = None
    dsconv_bits: int = 4
    qat_epochs: int = 2
    distill: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.op_types, list):
            object.__setattr__(self, "op_types", tuple(self.op_types))
        if isinstance(self.format, QuantFormat):
            object.__setattr__(self, "format", self.format.value)

        def fail(name: str, rule: str) -> NoReturn:
            raise CompressionOptionError(f"QuantSpec.{name}: {rule}, got {getattr(self, name)!r}")

        if self.format not in FORMATS:
            fail("format", f"must be one of {', '.join(FORMATS)}")
        if self.calibration not in CALIBRATIONS:
            fail("calibration", f"must be one of {', '.join(CALIBRATIONS)}")
        if self.activations not in ACTIVATION_TYPES:
            fail("activations", f"must be one of {', '.join(ACTIVATION_TYPES)}")
        if self.graph_format not in GRAPH_FORMATS:
            fail("graph_format", f"must be one of {', '.join(GRAPH_FORMATS)}")
        if not isinstance(self.percentile, (int, float)) or not 90.0 <= self.percentile < 100.0:
            fail("percentile", "must be in [90, 100)")
        if not isinstance(self.calibration_images, int) or self.calibration_images < 1:
            fail("calibration_images", "must be an integer >= 1")
        if self.target not in TARGETS:
            fail("target", f"must be one of {', '.join(TARGETS)}")
        if self.opset is not None and not 13 <= self.opset <= 20:
            fail("opset", "must be in 13..20 (QDQ per-channel needs >= 13)")
        if not isinstance(self.qat_epochs, int) or isinstance(self.qat_epochs, bool) or self.qat_epochs < 1:
            fail("qat_epochs", "must be an integer >= 1 (QAT without a fine-tune is --format int8-static)")
        if self.distill and self.format != "int8-qat":
            fail("distill", "is an option of int8-qat (distillation from the unquantized model during QAT)")
        if not isinstance(self.dsconv_bits, int) or not 2 <= self.dsconv_bits <= 8:
            fail("dsconv_bits", "must be an integer from 2 to 8")
        if self.format.startswith("int8") and self.target == "jetson-nano-gpu":
            raise CompressionOptionError(f"QuantSpec.target: {NANO_GPU_INT8}")

    @property
    def export_opset(self) -> int:
        return self.opset or (13 if self.target.startswith("jetson") else 17)

    @property
    def info(self) -> FormatInfo:
        """This format's row of :data:`FORMATS`."""
        return FORMATS[self.format]

    def label(self) -> str:
        """Recipe name, e.g. ``ort-int8-qdq-minmax``, ``ort-int8-dynamic``, ``fp16``, ``dsconv4``."""
        return self.info.label(self)

    def tag(self) -> str:
        """Short name in a compressed variant's folder, e.g. ``int8``, ``int8dyn``, ``fp16``, ``ds4``."""
        return self.info.tag(self)

    def graph_spec(self) -> QuantSpec:
        """The ONNX-to-ONNX recipe that gives this format's graph from a float graph of its weights:
        ``int8-qat`` -> its ``int8-static`` settings (QAT changes the weights, not the graph), others itself."""
        if self.format == QuantFormat.INT8_QAT.value:
            return dataclasses.replace(self, format=QuantFormat.INT8_STATIC.value, distill=False)
        return self

    @property
    def precision(self) -> str:
        """Precision of the written graph's arithmetic (``int8``, ``fp16``, ``fp32``), as latency records say it."""
        return self.info.precision


@dataclass(frozen=True)
class QuantReport(Record):
    """What ``quantize_*`` wrote and measured. Dice and ``dice_change`` are fractions in [0, 1]."""

    onnx: str  # file names inside the output folder
    onnx_fp32: str
    format: str
    recipe: str
    spec: dict[str, Any]
    parent: str
    data: str
    split: str
    size: int
    dice_fp32: float | None
    dice_quant: float | None
    dice_change: float | None  # dice_quant - dice_fp32
    latency_fp32_ms: float | None  # medians of one alternating loop of both graphs (profiling.time_graphs)
    latency_quant_ms: float | None
    speedup: float | None  # latency_fp32_ms / latency_quant_ms, same loop
    threads: int
    max_abs_diff: float | None  # quantized vs FP32 logits (ONNX Runtime) over the evaluated images
    pixel_agreement: float | None  # share of pixels whose argmax class agrees with FP32
    op_counts: dict[str, int] = field(default_factory=dict)  # op types in the quantized graph
    checkpoint: str | None = None  # dsconv: the frozen checkpoint
    finetune: list[dict] = field(default_factory=list)
    notes: str = ""
    speedup_ci95_low: float | None = None  # percentile bootstrap over the paired alternating rounds
    speedup_ci95_high: float | None = None
    int8_graph: str | None = None  # INT8 formats: int8_graph.json (compress._int8graph) beside model.onnx
    conv_integer: int | None = None  # Conv nodes ONNX Runtime runs as integer kernels / all Conv nodes
    conv_total: int | None = None


# -- calibration -------------------------------------------------------------------------------


def calibration_images(data: str, *, size: int, seed: int, count: int, channels: int) -> list[torch.Tensor]:
    """The first ``count`` TRAINING images (no augmentation): what static INT8 and QAT calibrate on."""
    from segmentation import load_split

    ds = load_split(data, "train", size=size, seed=seed, augment=False)
    if ds.in_channels != channels:
        raise CompressionError(f"calibration data {data}: {ds.in_channels} channel(s), the model takes {channels}")
    return [ds[i]["image"] for i in range(min(count, len(ds)))]


def calibration_reader(data: str, *, size: int, seed: int, count: int, input_name: str, channels: int):
    """A ``CalibrationDataReader`` over :func:`calibration_images`, batch 1."""
    from onnxruntime.quantization import CalibrationDataReader

    images = calibration_images(data, size=size, seed=seed, count=count, channels=channels)

    class _TrainingImages(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self):
            if self.i >= len(images):
                return None
            self.i += 1
            return {input_name: images[self.i - 1][None].numpy().astype(np.float32)}

        def rewind(self) -> None:
            self.i = 0

    return _TrainingImages()


# -- graph conversions -------------------------------------------------------------------------


def check_onnx_file(path: Path) -> None:
    """The ONNX checker on a file; a failure is a CompressionError naming it."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # ValidationError, InferenceError, DecodeError, OSError
        raise CompressionError(f"{path}: the ONNX checker rejects this file ({str(exc).strip()[:300]})") from None


def _input_info(path: Path) -> tuple[str, list]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise CompressionError(f"{path}: expected one image input, found {len(inputs)}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise CompressionError(f"{path}: expected a 4-D (N, C, H, W) input, found shape {dims}")
    return inputs[0].name, dims


def convert(fp32: Path, out: Path, spec: QuantSpec, *, data: str | None, size: int, seed: int, work: Path) -> str:
    """Write the ``spec.format`` version of ``fp32`` to ``out``; returns notes for the report.

    ``work`` holds intermediate files (the pre-processed graph).
    """
    converter = spec.info.convert
    if converter is None:
        raise CompressionError(f"--format {spec.format}: not an ONNX-to-ONNX conversion (it needs the checkpoint)")
    return converter(fp32, out, spec, data=data, size=size, seed=seed, work=work)


def _convert_fp16(fp32: Path, out: Path, spec: QuantSpec, **_: Any) -> str:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # onnxconverter_common is not a dependency; ORT ships the same converter.
    model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    # The converter appends its input/output Casts at the end of the node list; the ONNX
    # checker (and TensorRT's parser) want nodes in topological order.
    _topological_sort(model.graph)
    onnx.save(model, str(out))
    return FP16_CPU_NOTE if spec.target == "cpu" else FP16_DEVICE_NOTE


def _preprocessed(fp32: Path, spec: QuantSpec, work: Path, notes: list[str]) -> Path:
    """ORT's ``quant_pre_process`` output (shape inference + optimisation), or ``fp32`` when off or failing."""
    if not spec.preprocess:
        return fp32
    from onnxruntime import quantization as q

    pre = work / "preprocessed.onnx"
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress lines
            q.quant_pre_process(str(fp32), str(pre))
        return pre
    except Exception as exc:  # its symbolic shape inference fails on some graphs; quantization still works
        log.warning("quant_pre_process failed (%s); quantizing the graph as exported", str(exc)[:160])
        notes.append("quant_pre_process failed; graph quantized as exported")
        return fp32


def _convert_int8_dynamic(fp32: Path, out: Path, spec: QuantSpec, *, work: Path, **_: Any) -> str:
    from onnxruntime import quantization as q

    notes: list[str] = []
    source = _preprocessed(fp32, spec, work, notes)
    op_types = _op_types(fp32, spec)
    with quiet_ort_quantizer():
        q.quantize_dynamic(
            str(source),
            str(out),
            per_channel=spec.per_channel,
            weight_type=q.QuantType.QInt8,
            op_types_to_quantize=op_types,
        )
    _require_quantized(out, op_types)
    return "; ".join([*notes, CONVINTEGER_NOTE])


def _convert_int8_static(
    fp32: Path, out: Path, spec: QuantSpec, *, data: str | None, size: int, seed: int, work: Path
) -> str:
    from onnxruntime import quantization as q

    if data is None:
        raise CompressionError("static INT8 needs calibration images: give --data (training images are used)")
    notes: list[str] = []
    source = _preprocessed(fp32, spec, work, notes)
    op_types = _op_types(fp32, spec)
    name, dims = _input_info(source)
    reader = calibration_reader(
        data, size=size, seed=seed, count=spec.calibration_images, input_name=name, channels=dims[1]
    )
    method = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }[spec.calibration]
    extra: dict[str, Any] = {"CalibPercentile": float(spec.percentile)} if spec.calibration == "percentile" else {}
    if spec.dedicated_qdq:
        extra["DedicatedQDQPair"] = True
    qdq = spec.graph_format == "qdq"
    with quiet_ort_quantizer(), contextlib.redirect_stdout(io.StringIO()):  # entropy/percentile print bins
        q.quantize_static(
            str(source),
            str(out),
            reader,
            quant_format=q.QuantFormat.QDQ if qdq else q.QuantFormat.QOperator,
            per_channel=spec.per_channel,
            activation_type=q.QuantType.QUInt8 if spec.activations == "uint8" else q.QuantType.QInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=method,
            op_types_to_quantize=op_types,
            extra_options=extra,
        )
    _require_quantized(out, op_types)
    notes.append(
        f"static {'QDQ' if qdq else 'QOperator'}{', a Q/DQ pair per consumer' if spec.dedicated_qdq and qdq else ''}, "
        f"{'per-channel' if spec.per_channel else 'per-tensor'} INT8 weights, {spec.activations.upper()} activations, "
        f"{spec.calibration} calibration on {min(spec.calibration_images, _count(reader))} training images"
    )
    return "; ".join(notes)


@dataclass(frozen=True)
class FormatInfo:
    """One quantization format: its recipe label, graph precision, folder tag and ONNX converter.

    ``convert(fp32, out, spec, *, data, size, seed, work) -> notes`` turns an FP32 ONNX file into
    this format; ``None`` for formats made from the checkpoint's weights (``dsconv``).
    """

    format: QuantFormat
    precision: str
    label: Callable[[QuantSpec], str]
    tag: Callable[[QuantSpec], str]
    convert: Callable[..., str] | None


#: Every format, in the order the CLI lists them. A new format is one row here.
FORMATS: dict[str, FormatInfo] = {
    info.format.value: info
    for info in (
        FormatInfo(
            QuantFormat.INT8_STATIC,
            "int8",
            lambda s: f"ort-int8-{_int8_variant(s)}-{s.calibration}",
            lambda s: "int8",
            _convert_int8_static,
        ),
        # Fine-tuned under fake quantization from the checkpoint's weights, then the static converter.
        FormatInfo(
            QuantFormat.INT8_QAT,
            "int8",
            lambda s: f"ort-int8-qat{s.qat_epochs}{'-kd' if s.distill else ''}-{_int8_variant(s)}-{s.calibration}",
            lambda s: "int8qat",
            None,
        ),
        FormatInfo(
            QuantFormat.INT8_DYNAMIC, "int8", lambda s: "ort-int8-dynamic", lambda s: "int8dyn", _convert_int8_dynamic
        ),
        FormatInfo(QuantFormat.FP16, "fp16", lambda s: "fp16", lambda s: "fp16", _convert_fp16),
        # Frozen DSConv weights lie on a b-bit grid but are stored and computed as float convs.
        FormatInfo(
            QuantFormat.DSCONV, "fp32", lambda s: f"dsconv{s.dsconv_bits}", lambda s: f"ds{s.dsconv_bits}", None
        ),
    )
}


def _int8_variant(spec: QuantSpec) -> str:
    """``qdq``, ``qdq-s8s8``, ``qdq-dedicated``, ``qop``..., the graph choices in a recipe label."""
    parts = ["qdq" if spec.graph_format == "qdq" else "qop"]
    if spec.activations == "int8":
        parts.append("s8s8")
    if spec.dedicated_qdq and spec.graph_format == "qdq":
        parts.append("dedicated")
    if not spec.per_channel:
        parts.append("pt")
    return "-".join(parts)


INT8_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}
)


def _require_quantized(path: Path, op_types: list[str] | None) -> None:
    """Never label a float graph INT8: ONNX Runtime silently quantizes nothing when no listed op qualifies."""
    found = INT8_OPS & set(op_counts(path))
    if not found:
        path.unlink(missing_ok=True)
        which = f"--op-types {','.join(op_types)}" if op_types else "ONNX Runtime's default operator set"
        error = CompressionOptionError if op_types else CompressionError  # the option's choice, or a failure
        raise error(
            f"INT8 quantization produced no quantized operator with {which}: the result would be the float model "
            "labelled INT8, so nothing is written; list ops ONNX Runtime quantizes (Conv, MatMul, Gemm, ...)"
        )


def _op_types(fp32: Path, spec: QuantSpec) -> list[str] | None:
    """``spec.op_types`` checked against the graph (a typo would otherwise quantize nothing), or None."""
    op_types = list(spec.op_types) or None
    if op_types:
        present = set(op_counts(fp32))
        missing = [op for op in op_types if op not in present]
        if missing:
            raise CompressionOptionError(
                f"--op-types: {', '.join(missing)} match(es) no operator of {fp32.name} (its operators: "
                f"{', '.join(sorted(present))}); names are ONNX op types and case-sensitive, e.g. Conv,MatMul"
            )
    return op_types


def _topological_sort(graph) -> None:
    """Reorder ``graph.node`` in place so every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        progressed = False
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            raise CompressionError(f"FP16 conversion produced a cyclic or dangling graph (first stuck: {rest[0].name})")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


class _DropOrtQuantizerNotices(logging.Filter):
    """Drops records below ERROR that ORT's quantization package logs (through the root logger)."""

    def __init__(self) -> None:
        super().__init__()
        import onnxruntime.quantization

        self.prefix = str(Path(onnxruntime.quantization.__file__).parent)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.pathname.startswith(self.prefix)


@contextlib.contextmanager
def quiet_ort_quantizer() -> Iterator[None]:
    """Hide ORT quantizer warnings (expected here) for the block, changing no logger's level.

    ORT's quantizer logs with ``logging.warning(...)`` on the root logger (e.g. one "Axis 1 is
    out-of-range" per LayerNorm weight with per-channel on); those would drown the CLI output. A
    filter on the root logger sees only records logged *to* it, so other libraries' and our own
    records (which propagate from named loggers) pass untouched, and every level stays as it was.
    """
    root = logging.getLogger()
    drop = _DropOrtQuantizerNotices()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _count(reader) -> int:
    reader.rewind()
    n = 0
    while reader.get_next() is not None:
        n += 1
    return n


# -- evaluation --------------------------------------------------------------------------------


def ort_predict(path: Path, *, threads: int = 1):
    """``predict(images) -> logits`` over an ONNX file, one image per run (works for batch-1 graphs)."""
    from profiling import make_session, session_input

    try:
        session = make_session(path, threads=threads, providers=["CPUExecutionProvider"])
    except ProfilingError as exc:
        raise CompressionError(str(exc)) from None
    name, dtype = session_input(session)

    def predict(images: torch.Tensor) -> torch.Tensor:
        outs = [session.run(None, {name: img[None].numpy().astype(dtype)})[0] for img in images]
        return torch.from_numpy(np.concatenate(outs).astype(np.float32))

    return predict


def compare_onnx(fp32: Path, quant: Path, *, data: str, split: str, size: int, seed: int, threads: int) -> dict:
    """Dice of both graphs on ``split`` (ONNX Runtime) plus logits difference and argmax agreement."""
    from segmentation import evaluate

    p32, pq = ort_predict(fp32, threads=threads), ort_predict(quant, threads=threads)
    stats = {"max_abs_diff": 0.0, "agree": 0, "pixels": 0}

    def tracked(images: torch.Tensor) -> torch.Tensor:
        a, b = p32(images), pq(images)
        stats["max_abs_diff"] = max(stats["max_abs_diff"], float((a - b).abs().max()))
        stats["agree"] += int((a.argmax(1) == b.argmax(1)).sum())
        stats["pixels"] += int(a.argmax(1).numel())
        return b

    kw = {"split": split, "size": size, "seed": seed, "progress": False}
    d32 = evaluate(p32, data, **kw).dice
    dq = evaluate(tracked, data, **kw).dice
    return {
        "dice_fp32": d32,
        "dice_quant": dq,
        "max_abs_diff": stats["max_abs_diff"],
        "pixel_agreement": stats["agree"] / max(stats["pixels"], 1),
    }


def latency_ms(path: Path, *, threads: int, runs: int, precision: str) -> float:
    from profiling import LatencyConfig, measure_onnxruntime

    name, dims = _input_info(path)
    config = LatencyConfig(
        height=dims[2] or 256, width=dims[3] or 256, threads=threads, runs=runs, warmup=max(5, runs // 5), ort_gpu=False
    )
    try:
        return measure_onnxruntime(path, config, precision=precision).median_ms
    except ProfilingError as exc:
        raise CompressionError(str(exc)) from None


def op_counts(path: Path) -> dict[str, int]:
    import onnx

    return dict(Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node))


# -- entry points ------------------------------------------------------------------------------


def quantize_checkpoint(
    checkpoint: str | Path,
    spec: QuantSpec,
    out_dir: str | Path,
    *,
    data: str | None = None,
    size: int | None = None,
    seed: int | None = None,
    finetune_spec=None,
    evaluate: bool = True,
    split: str = "val",
    measure: bool = True,
    threads: int = 1,
    rounds: int | None = None,
    overwrite: bool = False,
    stage: bool = True,
    progress: bool = True,
) -> QuantReport:
    """Quantize a checkpoint (pruned or not) with ``spec``; write ``out_dir`` (see the module docstring).

    ``data``/``size``/``seed`` default to those the checkpoint was trained with. For ``dsconv``,
    ``finetune_spec`` (:class:`~compress._finetune.FinetuneSpec`) sets the quantization-aware
    fine-tuning; ``None`` or 0 epochs freezes the quantized weights without it (post-training).
    ``measure``: time the FP32 and the quantized graph against each other with ONNX Runtime here
    (``threads``; ``rounds`` alternating rounds, None = ``profiling.TimingOptions``' default).
    """
    from compress._pipeline import _data_defaults, compression_inputs, load_for_compression

    if spec.distill:  # before any work: distillation needs compress.finetune's teacher
        from compress._qat import check_teacher_supported

        check_teacher_supported()
    model, ckpt = load_for_compression(checkpoint)
    inputs = compression_inputs(checkpoint, data, ckpt)
    if stage:  # before the work: a refused folder should cost nothing
        check_output_dir(out_dir, verb="quantize", inputs=inputs, overwrite=overwrite)
    data, size, seed = _data_defaults(ckpt, data, size, seed)
    with output_dir(out_dir, verb="quantize", inputs=inputs, stage=stage, overwrite=overwrite) as tmp:
        fp32 = tmp / "model_fp32.onnx"
        export_graph(model, fp32, size=size, opset=spec.export_opset)
        extra: dict[str, Any] = {}
        if spec.format == QuantFormat.INT8_QAT.value:
            with scratch_dir("qat") as scratch:
                notes, extra = _qat(
                    model, ckpt, spec, tmp, finetune_spec, data=data, size=size, seed=seed, progress=progress,
                    parent=str(checkpoint), work=Path(scratch),
                )  # fmt: skip
        elif spec.info.convert is None:  # made from the weights, not from an ONNX graph
            qmodel, logs, ckpt_path = _dsconv(
                model,
                ckpt,
                spec,
                tmp,
                finetune_spec,
                data=data,
                size=size,
                seed=seed,
                progress=progress,
                parent=str(checkpoint),
            )
            export_graph(qmodel, tmp / "model.onnx", size=size, opset=spec.export_opset)
            extra = {"checkpoint": ckpt_path.name, "finetune": logs}
            notes = (
                f"DSConv {spec.dsconv_bits}-bit VQK/KDS on the encoder convs, "
                + (f"{len(logs)} epoch(s) of quantization-aware fine-tuning, " if logs else "no fine-tuning, ")
                + "frozen into float convs (no quantizer ops in the graph)"
            )
        else:
            with scratch_dir("quant") as scratch:
                notes = convert(fp32, tmp / "model.onnx", spec, data=data, size=size, seed=seed, work=Path(scratch))
        report = _finish(
            tmp,
            spec,
            parent=str(checkpoint),
            data=data,
            split=split,
            size=size,
            seed=seed,
            evaluate=evaluate,
            measure=measure,
            threads=threads,
            rounds=rounds,
            notes=notes,
            **extra,
        )
    return report


def quantize_onnx(
    onnx_path: str | Path,
    spec: QuantSpec,
    out_dir: str | Path,
    *,
    data: str | None = None,
    seed: int = 0,
    evaluate: bool = True,
    split: str = "val",
    measure: bool = True,
    threads: int = 1,
    rounds: int | None = None,
    overwrite: bool = False,
) -> QuantReport:
    """Quantize an existing FP32 ONNX file (batch-1 or dynamic, square input). No ``dsconv`` (needs weights)."""
    src = Path(onnx_path)
    if not src.is_file():
        raise CompressionError(f"{src}: ONNX file not found")
    if spec.info.convert is None:
        raise CompressionError(f"{src}: --format {spec.format} needs a checkpoint's weights (--checkpoint), not ONNX")
    check_onnx_file(src)
    _, dims = _input_info(src)
    size = dims[2] or 256
    if evaluate and data is None:
        raise CompressionError(f"{src}: evaluating needs --data (the dataset the model was trained on)")
    inputs = (src, dataset_path(data))
    check_output_dir(out_dir, verb="quantize", inputs=inputs, overwrite=overwrite)
    with output_dir(out_dir, verb="quantize", inputs=inputs, overwrite=overwrite) as tmp:
        fp32 = tmp / "model_fp32.onnx"
        shutil.copyfile(src, fp32)
        with scratch_dir("quant") as scratch:
            notes = convert(fp32, tmp / "model.onnx", spec, data=data, size=size, seed=seed, work=Path(scratch))
        report = _finish(
            tmp,
            spec,
            parent=str(src),
            data=data or "",
            split=split,
            size=size,
            seed=seed,
            evaluate=evaluate,
            measure=measure,
            threads=threads,
            rounds=rounds,
            notes=notes,
        )
    return report


def export_graph(model: nn.Module, path: Path, *, size: int, opset: int) -> None:
    from profiling import ExportConfig, export_onnx

    try:
        export_onnx(model, path, ExportConfig(opset=opset, height=size, width=size))
    except ProfilingError as exc:
        raise CompressionError(f"cannot export the model to ONNX: {exc}") from None


def _qat(model, ckpt, spec: QuantSpec, tmp: Path, finetune_spec, *, data, size, seed, progress, parent, work):
    """Fine-tune under fake quantization (:mod:`compress._qat`), then the static INT8 converter on the result.

    Returns the notes and the report's extra fields (the fine-tuned float checkpoint, the epoch logs).
    """
    import copy

    from compress._finetune import FinetuneSpec
    from compress._qat import qat_finetune
    from models import Checkpoint, save_checkpoint

    ft = finetune_spec or FinetuneSpec()
    cfg = ft.train_config(data=data, size=size, seed=seed, epochs=spec.qat_epochs)
    images = calibration_images(
        data, size=size, seed=seed, count=spec.calibration_images, channels=ckpt.config.in_channels
    )
    teacher = copy.deepcopy(model).eval() if spec.distill else None
    logs, quantized_inputs = qat_finetune(
        model, cfg, images, activations=spec.activations, teacher=teacher, progress=progress
    )
    fine_tuned = work / "qat_fp32.onnx"
    export_graph(model, fine_tuned, size=size, opset=spec.export_opset)
    notes = convert(fine_tuned, tmp / "model.onnx", spec.graph_spec(), data=data, size=size, seed=seed, work=work)
    meta = dict(ckpt.meta or {})
    meta.update({"parent": parent, "recipe": spec.label(), "qat": {"epochs": len(logs), "distill": spec.distill}})
    weights = Checkpoint(ckpt.config, model.state_dict(), pruning=ckpt.pruning, epoch=ckpt.epoch, meta=meta)
    save_checkpoint(weights, tmp / "checkpoint.pt")
    notes = (
        f"QAT: {len(logs)} epoch(s) of fine-tuning with INT8 fake quantization (per-channel symmetric weights, "
        f"{quantized_inputs} layer inputs per tensor {spec.activations} from MinMax ranges), "
        f"{'distilled from the unquantized model' if spec.distill else 'task loss only'}, lr {cfg.lr:g}; then {notes}"
    )
    return notes, {"checkpoint": "checkpoint.pt", "finetune": logs}


def _dsconv(
    model,
    ckpt,
    spec: QuantSpec,
    tmp: Path,
    finetune_spec,
    *,
    data: str,
    size: int,
    seed: int,
    progress: bool,
    parent: str,
):
    from compress._finetune import finetune
    from models import Checkpoint, build_model, freeze_dsconv, save_checkpoint

    if not ckpt.config.dsconv:
        raise CompressionError(
            f"{parent}: config has dsconv=false (plain encoder convs): DSConv quantization needs dsconv"
        )
    qcfg = ckpt.config.replace(dsconv_bits=spec.dsconv_bits)
    qmodel = build_model(qcfg)
    if ckpt.pruning:
        from compress._prune import replay_pruning

        qmodel = replay_pruning(qmodel, ckpt.pruning)
    qmodel.load_state_dict(model.state_dict(), strict=True)
    logs = []
    if finetune_spec is not None and finetune_spec.epochs:
        logs = finetune(qmodel, finetune_spec.train_config(data=data, size=size, seed=seed), progress=progress)
    freeze_dsconv(qmodel.eval())
    meta = dict(ckpt.meta or {})
    meta.update(
        {
            "parent": parent,
            "recipe": spec.label(),
            "dsconv": {"bits": spec.dsconv_bits, "block_size": qcfg.dsconv_block_size, "frozen": True},
        }
    )
    path = tmp / "checkpoint.pt"
    # Frozen weights already lie on the b-bit grid; the config says "float conv" so the checkpoint
    # rebuilds exactly the frozen network (meta["dsconv"] records how it was made).
    save_checkpoint(
        Checkpoint(
            config=ckpt.config.replace(dsconv_bits=None),
            state_dict=qmodel.state_dict(),
            pruning=ckpt.pruning,
            epoch=ckpt.epoch,
            meta=meta,
        ),
        path,
    )
    return qmodel, logs, path


def _finish(
    tmp: Path,
    spec: QuantSpec,
    *,
    parent: str,
    data: str,
    split: str,
    size: int,
    seed: int,
    evaluate: bool,
    measure: bool,
    threads: int,
    rounds: int | None,
    notes: str,
    checkpoint: str | None = None,
    finetune: list | None = None,
) -> QuantReport:
    from compress._measure import compare_latency

    quant, fp32 = tmp / "model.onnx", tmp / "model_fp32.onnx"
    check_onnx_file(quant)
    cmp = compare_onnx(fp32, quant, data=data, split=split, size=size, seed=seed, threads=threads) if evaluate else {}
    lat = None
    if measure:  # both graphs in one alternating loop: a load change lands on both, not on the one timed last
        timing = TimingOptions(threads=threads) if rounds is None else TimingOptions(threads=threads, rounds=rounds)
        lat = compare_latency(fp32, quant, timing, shape=(1, _input_info(fp32)[1][1] or 1, size, size))
    d32, dq = cmp.get("dice_fp32"), cmp.get("dice_quant")
    graph = None
    if spec.precision == "int8":  # what ONNX Runtime runs as integer kernels, and why the rest stays float
        from compress._int8graph import int8_graph_report, write_int8_graph

        graph = int8_graph_report(quant, threads=threads, profile_runs=10 if measure else 0)
        write_int8_graph(graph, tmp)
    report = QuantReport(
        onnx="model.onnx",
        onnx_fp32="model_fp32.onnx",
        format=spec.format,
        recipe=spec.label(),
        spec=spec.to_dict(),
        parent=parent,
        data=data,
        split=split,
        size=size,
        dice_fp32=d32,
        dice_quant=dq,
        dice_change=dq - d32 if d32 is not None and dq is not None else None,
        latency_fp32_ms=lat.reference_ms if lat else None,
        latency_quant_ms=lat.variant_ms if lat else None,
        speedup=lat.speedup if lat else None,
        speedup_ci95_low=lat.speedup_ci95_low if lat else None,
        speedup_ci95_high=lat.speedup_ci95_high if lat else None,
        threads=threads,
        max_abs_diff=cmp.get("max_abs_diff"),
        pixel_agreement=cmp.get("pixel_agreement"),
        op_counts=op_counts(quant),
        checkpoint=checkpoint,
        finetune=finetune or [],
        int8_graph=INT8_GRAPH_JSON if graph else None,
        conv_integer=graph.conv_integer if graph else None,
        conv_total=graph.conv_total if graph else None,
        notes="; ".join(
            n
            for n in (notes, f"latency: ONNX Runtime CPU, batch 1, {threads} thread(s), {lat.method}" if lat else "")
            if n
        ),
    )
    atomic_write_json(tmp / "quantize.json", report.to_dict())
    return report
