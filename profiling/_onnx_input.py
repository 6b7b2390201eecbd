"""The one reader of an ONNX file's image input: name, shape, element type, precision.

Every place that needs to know what a graph expects (local timing, the remote profiler's
argument checks, ``profile_model``'s size resolution, quantization checks) asks here, so the
rules (initializers are not inputs, a symbolic or zero dim is dynamic, external weights are
refused) live once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtseg_core import ConfigError, InputFileError

# Operators that mark a model as already quantized (ONNX Runtime INT8 runs these).
QUANT_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "DynamicQuantizeLinear",
    }
)
# ONNX TensorProto element types this suite feeds, with the numpy dtype name of the input.
_ELEM_TYPES = {1: "float32", 10: "float16", 11: "float64", 2: "uint8", 3: "int8"}


@dataclass(frozen=True)
class OnnxInputInfo:
    """The model's single image input.

    ``shape`` has ``None`` for a symbolic dimension; ``dtype`` is the numpy dtype name to feed;
    ``quantized`` says the graph holds quantize/QLinear operators.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    quantized: bool

    @property
    def dynamic(self) -> bool:
        return any(d is None for d in self.shape)

    @property
    def precision(self) -> str:
        """``int8`` for a quantized graph, ``fp16`` for a float16 input, else ``fp32``."""
        if self.quantized:
            return "int8"
        return "fp16" if self.dtype == "float16" else "fp32"


def read_onnx_input(path: str | Path) -> OnnxInputInfo:
    """Read the input signature of an ONNX file; :class:`ConfigError` naming the file otherwise."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for a bad file
        raise InputFileError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ConfigError(
                f"{path}: weights are stored in external data files; only a self-contained .onnx is supported "
                "(re-export without external data)"
            )
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ConfigError(f"{path}: {len(inputs)} graph inputs ({[i.name for i in inputs]}); one image input expected")
    tensor = inputs[0].type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    dtype = _ELEM_TYPES.get(tensor.elem_type)
    if dtype is None:
        raise ConfigError(f"{path}: input {inputs[0].name!r} has ONNX element type {tensor.elem_type}, not an image")
    quantized = any(node.op_type in QUANT_OPS for node in model.graph.node)
    return OnnxInputInfo(name=inputs[0].name, shape=shape, dtype=dtype, quantized=quantized)


def onnx_image_size(path: Path, size: int | None, width: int | None) -> tuple[int, int, int]:
    """(height, width, channels) for an ONNX file: its fixed dims, or ``size`` where they are dynamic."""
    from rtseg_core import ProfilingError

    info = read_onnx_input(path)
    if len(info.shape) != 4:
        raise ProfilingError(f"{path}: expected a 4-D (N, C, H, W) input, the graph declares {len(info.shape)} dims")
    _, c, h, w = info.shape
    if c is None:
        raise ProfilingError(f"{path}: the input channel axis is dynamic; cannot choose an input")
    height = h if h is not None else (size or 256)
    wid = w if w is not None else (width or size or 256)
    if size is not None and h is not None and size != h:
        raise ProfilingError(
            f"{path}: the model's input is fixed at {h}x{w}, but --size {size} was asked for "
            f"(use --size {h}, or export with --dynamic size)"
        )
    return height, wid, c
