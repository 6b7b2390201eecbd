"""ONNX export that a Jetson can parse: DSConv frozen, BatchNorm folded, parity-checked against PyTorch.

Every export goes: deepcopy -> eval -> ``freeze_dsconv`` (so no quantizer ops reach the graph)
-> fold each Conv->BN pair into one conv -> ``torch.onnx.export(dynamo=False)`` (the legacy
exporter honours the opset; the dynamo one needs onnxscript and writes opset 18) ->
``onnx.checker`` -> an ONNX Runtime session whose output must match the unfolded PyTorch model
within ``atol`` -> atomic write. Opset 17 is the default; TensorRT 8.0/8.2 on a Jetson Nano
wants 13.
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from rtseg_core import ProfilingError, Record, atomic_write_bytes

log = logging.getLogger(__name__)

DYNAMIC_CHOICES = ("none", "batch", "size", "batch+size")
INPUT_NAME, OUTPUT_NAME = "input", "logits"

# Module type name -> (conv attribute, BN attribute) pairs whose forward applies the BN directly
# to the conv's output (checked against search_spaces' blocks: ConvStage conv->bn->maxpool,
# UpStage conv->bn->resize, EFF dec_conv->dec_bn and skip_conv->skip_bn).
_CONV_BN_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "ConvStage": (("conv", "bn"),),
    "UpStage": (("conv", "bn"),),
    "EFF": (("dec_conv", "dec_bn"), ("skip_conv", "skip_bn")),
}


@dataclass(frozen=True)
class ExportConfig:
    """How to export. ``dynamic``: which axes stay symbolic (``none``, ``batch``, ``size``, ``batch+size``).

    ``batch``/``height``/``width`` give the example input (a dynamic batch is traced with at
    least 2, since a batch of 1 gets specialised). ``atol``: the largest absolute difference
    between ONNX Runtime and PyTorch logits that passes. ``channels=None`` takes the model's.
    """

    opset: int = 17
    dynamic: str = "none"
    batch: int = 1
    height: int = 256
    width: int = 256
    channels: int | None = None
    atol: float = 1e-4
    fold_bn: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dynamic not in DYNAMIC_CHOICES:
            raise ProfilingError(f"export: dynamic must be one of {', '.join(DYNAMIC_CHOICES)}, got {self.dynamic!r}")
        if not 11 <= self.opset <= 20:
            raise ProfilingError(f"export: opset {self.opset} is outside 11..20 (17 default; 13 for TensorRT 8.x)")
        if self.batch < 1 or self.height < 1 or self.width < 1:
            raise ProfilingError(
                f"export: batch/height/width must be >= 1, got {self.batch}/{self.height}/{self.width}"
            )


@dataclass(frozen=True)
class ExportResult(Record):
    """What was written and how well it matched PyTorch."""

    model: str
    path: str
    opset: int
    dynamic: str
    batch: int  # example batch the graph was traced with
    channels: int
    height: int
    width: int
    max_abs_diff: float  # ONNX Runtime vs PyTorch (unfolded) logits, random N(0,1) input
    folded_bn: int  # Conv->BN pairs folded before export
    nodes: int
    op_types: str  # sorted, comma separated
    file_bytes: int
    torch_version: str = ""
    onnx_version: str = ""
    onnxruntime_version: str = ""


def dsconv_to_conv(module: nn.Module) -> nn.Conv2d:
    """A plain ``nn.Conv2d`` with a (frozen) DSConv2d's effective weight."""
    if getattr(module, "bits", None) is not None:
        module = copy.deepcopy(module)
        module.freeze()
    conv = nn.Conv2d(
        module.in_channels,
        module.out_channels,
        module.kernel_size,
        stride=module.stride,
        padding=module.padding,
        bias=module.bias is not None,
    )
    with torch.no_grad():
        conv.weight.copy_(module.weight)
        if module.bias is not None:
            conv.bias.copy_(module.bias)
    return conv.to(module.weight.device).train(module.training)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every Conv->BN pair of the family's blocks into one conv, in place (model in eval mode).

    DSConv layers are replaced by the equivalent ``nn.Conv2d`` first. The folded BN becomes
    ``nn.Identity``. Returns the number of pairs folded.
    """
    from models import DSConv2d

    if model.training:
        raise ProfilingError("fold_batchnorm: the model must be in eval mode (BN running statistics are folded)")
    folded = 0
    for module in model.modules():
        for conv_name, bn_name in _CONV_BN_PAIRS.get(type(module).__name__, ()):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if not isinstance(bn, nn.BatchNorm2d):
                continue  # e.g. UpStage without norm (up5)
            if isinstance(conv, DSConv2d):
                conv = dsconv_to_conv(conv)
            if not isinstance(conv, nn.Conv2d):
                continue
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    return folded


def prepare_for_export(model: nn.Module, *, fold_bn: bool = True) -> tuple[nn.Module, int]:
    """A deployable copy: eval mode, DSConv frozen, BN folded. Returns ``(copy, folded pairs)``."""
    from models import freeze_dsconv

    work = freeze_dsconv(copy.deepcopy(model).cpu().eval())
    folded = fold_batchnorm(work) if fold_bn else 0
    return work, folded


def check_onnx(model_or_path) -> None:
    """``onnx.checker.check_model``, its failure raised as :class:`ProfilingError` naming the file."""
    import onnx

    where = str(model_or_path) if isinstance(model_or_path, (str, Path)) else "<exported graph>"
    target = str(model_or_path) if isinstance(model_or_path, (str, Path)) else model_or_path
    try:
        onnx.checker.check_model(target, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ProfilingError(f"{where}: the ONNX checker rejects the graph ({str(exc).strip()[:400]})") from None


def export_onnx(
    model: nn.Module, path: str | Path, config: ExportConfig = ExportConfig(), *, model_name: str = "model"
) -> ExportResult:
    """Export ``model`` to ``path`` (see the module docstring for the steps) and return the result.

    Raises :class:`ProfilingError` when the export fails, the checker rejects the graph or the
    ONNX Runtime output differs from PyTorch by more than ``config.atol`` (the message gives the
    difference); nothing is written in those cases.
    """
    import onnx
    import onnxruntime

    path = Path(path)
    channels = config.channels or getattr(getattr(model, "config", None), "in_channels", None)
    if channels is None:
        raise ProfilingError(f"{model_name}: cannot tell the input channels; set ExportConfig.channels")
    reference = copy.deepcopy(model).cpu().eval()
    deployable, folded = prepare_for_export(model, fold_bn=config.fold_bn)
    dynamic_batch = config.dynamic in ("batch", "batch+size")
    dynamic_size = config.dynamic in ("size", "batch+size")
    batch = max(config.batch, 2) if dynamic_batch else config.batch
    gen = torch.Generator().manual_seed(config.seed)
    example = torch.randn(batch, channels, config.height, config.width, generator=gen)
    axes: dict[int, str] = {}
    if dynamic_batch:
        axes[0] = "batch"
    if dynamic_size:
        axes.update({2: "height", 3: "width"})
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about shape-derived ints are expected here
            torch.onnx.export(
                deployable,
                (example,),
                buf,
                dynamo=False,
                opset_version=config.opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if axes else None,
                do_constant_folding=True,
            )
    except Exception as exc:  # the exporter raises many types (RuntimeError, SymbolicValueError ...)
        raise ProfilingError(
            f"{model_name}: ONNX export at opset {config.opset} failed ({type(exc).__name__}: {str(exc)[:300]})"
        ) from None
    data = buf.getvalue()
    proto = onnx.load_from_string(data)
    check_onnx(proto)
    diff = _parity(reference, data, example)
    # A dynamic graph must also be right at a shape it was not traced with.
    if axes:
        other = torch.randn(
            batch + 1 if dynamic_batch else batch,
            channels,
            config.height + 16 if dynamic_size else config.height,
            config.width + 32 if dynamic_size else config.width,
            generator=gen,
        )
        diff = max(diff, _parity(reference, data, other))
    if not diff <= config.atol:
        raise ProfilingError(
            f"{model_name}: ONNX Runtime output differs from PyTorch by max |diff| {diff:.3g} > atol {config.atol:g} "
            f"(opset {config.opset}, dynamic={config.dynamic}); not written to {path}"
        )
    atomic_write_bytes(path, data)
    log.debug(
        "exported %s to %s (opset %d, %d BN folded, max |diff| %.2e)", model_name, path, config.opset, folded, diff
    )
    return ExportResult(
        model=model_name,
        path=str(path),
        opset=config.opset,
        dynamic=config.dynamic,
        batch=batch,
        channels=channels,
        height=config.height,
        width=config.width,
        max_abs_diff=float(diff),
        folded_bn=folded,
        nodes=len(proto.graph.node),
        op_types=",".join(sorted({n.op_type for n in proto.graph.node})),
        file_bytes=len(data),
        torch_version=torch.__version__,
        onnx_version=onnx.__version__,
        onnxruntime_version=onnxruntime.__version__,
    )


def export_model(
    source, path: str | Path, config: ExportConfig = ExportConfig(), *, seed: int = 0, model_name: str | None = None
) -> ExportResult:
    """:func:`export_onnx` for anything :func:`profiling.load_source` takes (preset, config JSON,
    checkpoint, ``RTSegConfig`` or module); presets and configs get seeded random weights."""
    from profiling._source import load_source

    src = load_source(source, seed=seed, name=model_name)
    if src.model is None:
        raise ProfilingError(f"{src.name}: already an ONNX file; export needs a preset, config or checkpoint")
    if config.channels is None and src.channels is not None:
        from dataclasses import replace

        config = replace(config, channels=src.channels)
    return export_onnx(src.model, path, config, model_name=src.name)


def _parity(reference: nn.Module, data: bytes, x: torch.Tensor) -> float:
    from profiling._ort import make_session

    session = make_session(data, threads=1, providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    with torch.inference_mode():
        want = reference(x).numpy()
    if got.shape != want.shape:
        raise ProfilingError(
            f"ONNX output shape {got.shape} differs from PyTorch's {want.shape} for input {tuple(x.shape)}"
        )
    return float(np.max(np.abs(got - want)))
