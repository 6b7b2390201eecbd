"""Quantization-aware training for ONNX Runtime's static INT8: fake quantization that simulates what ORT will do.

What ORT's static quantizer does to a Conv/Gemm (``compress._quantize``, QDQ, MinMax calibration)
and how it is simulated here during fine-tuning:

- weights: INT8 per output channel, symmetric (scale = max|w| / 127, zero point 0) -> the weight of
  every Conv2d, DSConv2d and Linear goes through ``torch.fake_quantize_per_channel_affine`` with
  that scale, recomputed from the current weights each forward (a parametrization). Scaling a
  channel commutes with symmetric per-channel rounding, so this equals quantizing the
  BatchNorm-folded weight ORT sees after export;
- activations: the tensor entering each of those layers is quantized per tensor with the range
  ORT's MinMax calibration would give (min/max over the same calibration images, widened to
  include 0; UINT8 asymmetric or INT8 asymmetric as the spec's ``activations``) ->
  ``torch.fake_quantize_per_tensor_affine`` in a forward pre-hook, ranges fixed before the
  fine-tune. Both fake-quant ops pass gradients straight through inside the range (zero outside).

Not simulated: the Q/DQ ORT puts around Add/Mul/Concat/Sigmoid outputs that feed no Conv, and the
drift of activation ranges during the fine-tune (the exported model is re-calibrated by ORT on the
same images, so its ranges are the fine-tuned model's).

After the fine-tune the fake quantization is removed (the float weights stay), the model is
exported and quantized by the same ONNX Runtime converter as post-training quantization: its
weight rounding is the one the fine-tune saw.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from rtseg_core import CompressionError, CompressionOptionError

WEIGHT_QMIN, WEIGHT_QMAX = -127, 127  # ORT: symmetric INT8 weights use [-127, 127]
ACTIVATION_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}


class _PerChannelWeight(nn.Module):
    """INT8 symmetric per-output-channel fake quantization of a weight (axis 0), straight-through gradient."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
        scale = (amax / WEIGHT_QMAX).float()
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, WEIGHT_QMIN, WEIGHT_QMAX)


@dataclass(frozen=True)
class ActivationRange:
    """The range calibration saw at one layer's input, and the affine grid ORT derives from it."""

    low: float
    high: float
    qmin: int
    qmax: int

    @property
    def scale(self) -> float:
        lo, hi = min(self.low, 0.0), max(self.high, 0.0)  # ORT widens the range to include zero
        return max(hi - lo, 1e-8) / (self.qmax - self.qmin)

    @property
    def zero_point(self) -> int:
        lo = min(self.low, 0.0)
        return int(min(max(round(self.qmin - lo / self.scale), self.qmin), self.qmax))


def quantized_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers ORT quantizes as integer Conv/Gemm: Conv2d, DSConv2d and Linear, by module name."""
    from models import DSConv2d

    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear, DSConv2d))}


@torch.no_grad()
def calibrate_ranges(model: nn.Module, images: list[torch.Tensor], *, activations: str) -> dict[str, ActivationRange]:
    """Min/max of every quantized layer's input over ``images`` (eval mode, one image per run, as ORT calibrates)."""
    if activations not in ACTIVATION_RANGE:
        raise CompressionOptionError(f"activations: must be one of {', '.join(ACTIVATION_RANGE)}, got {activations!r}")
    qmin, qmax = ACTIVATION_RANGE[activations]
    seen: dict[str, list[float]] = {}
    handles = []

    def observe(name: str):
        def hook(_module, args):
            x = args[0]
            lo, hi = float(x.min()), float(x.max())
            old = seen.get(name)
            seen[name] = [lo, hi] if old is None else [min(old[0], lo), max(old[1], hi)]

        return hook

    for name, layer in quantized_layers(model).items():
        handles.append(layer.register_forward_pre_hook(observe(name)))
    was_training = model.training
    model.eval()
    try:
        for img in images:
            model(img[None] if img.dim() == 3 else img)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: ActivationRange(lo, hi, qmin, qmax) for name, (lo, hi) in seen.items()}


class FakeQuant:
    """Fake quantization installed on a model (weights and layer inputs); :meth:`remove` leaves float weights."""

    def __init__(self, model: nn.Module, ranges: dict[str, ActivationRange]) -> None:
        self.model = model
        self.layers = quantized_layers(model)
        self.handles = []
        for name, layer in self.layers.items():
            parametrize.register_parametrization(layer, "weight", _PerChannelWeight())
            r = ranges.get(name)
            if r is not None:  # layers calibration never reached (deep-supervision heads) are not exported
                self.handles.append(layer.register_forward_pre_hook(_input_quantizer(r)))
        self.activations = len(self.handles)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        for layer in self.layers.values():
            if parametrize.is_parametrized(layer, "weight"):
                parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
        self.handles = []


def _input_quantizer(r: ActivationRange):
    scale, zero = r.scale, r.zero_point

    def hook(_module, args):
        x = torch.fake_quantize_per_tensor_affine(args[0], scale, zero, r.qmin, r.qmax)
        return (x, *args[1:])

    return hook


def check_teacher_supported() -> None:
    """Distillation needs ``compress.finetune(..., teacher=...)``; refuse before any work where it is missing."""
    from compress._finetune import finetune

    if "teacher" not in inspect.signature(finetune).parameters:
        raise CompressionOptionError(
            "QuantSpec.distill: this version's compress.finetune takes no teacher (distillation is not available); "
            "run QAT without distillation"
        )


def qat_finetune(
    model: nn.Module,
    cfg,
    images: list[torch.Tensor],
    *,
    activations: str,
    teacher: nn.Module | None = None,
    progress: bool = True,
) -> tuple[list[dict], int]:
    """Fine-tune ``model`` in place under fake quantization; returns the epoch logs and the quantized input count.

    ``cfg``: a ``segmentation.TrainConfig`` (compress.finetune's loop); ``images``: the calibration
    images (those ORT will calibrate on); ``teacher``: passed to compress.finetune for distillation
    (None: the task loss alone). The model ends in eval mode with plain float weights.
    """
    from compress._finetune import finetune

    layers = quantized_layers(model)
    if not layers:
        raise CompressionError(f"QAT: {type(model).__name__} has no Conv2d/Linear layer to quantize")
    if teacher is not None:
        check_teacher_supported()
    ranges = calibrate_ranges(model, images, activations=activations)
    fq = FakeQuant(model, ranges)
    try:
        kwargs = {"teacher": teacher} if teacher is not None else {}
        logs = finetune(model, cfg, progress=progress, **kwargs)
    finally:
        fq.remove()
    model.eval()
    return logs, fq.activations
