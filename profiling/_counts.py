"""Parameters, MACs and peak activation memory of one model, each stating how it was counted.

**Parameters.** ``params`` is the true count, the sum of ``p.numel()`` over trainable parameters.
``params_paper_convention`` reproduces the "1.86M" printed in the RTSeg-Net paper, which came
from thop on the released code. thop (0.1.x) only counts modules that are *leaves* and that it
has a rule for: the custom DSConv layer has no rule, so its weights (41,616 for ``paper``) were
skipped, and the EFF's scalars a, b and its channel gate were parameters owned by the EFF module
itself (not by a leaf), so they were skipped too (24). The released eval forward also ran the
four aux heads, so those leaf convs (1,008) were counted. We compute the convention as thop's
rule applied statically: the parameters of every leaf module whose type has a thop rule,
whether the eval forward calls it or not. (Plain thop on our eval graph would print 1,863,859,
because our eval forward skips the aux heads and the installed thop counts only called modules.)

**MACs** (multiply-accumulates, not FLOPs; 1 MAC = 2 FLOPs) of one forward pass at batch 1
on the eval graph (aux heads off unless ``include_aux``):

- ``macs_fvcore``: fvcore's ``FlopCountAnalysis`` (it counts one per MAC for conv/linear/matmul
  and adds its own small counts for batch/layer norm and bilinear upsampling; the ops it has no
  handle for, mostly elementwise, are listed in ``fvcore_skipped``).
- ``macs_thop``: thop with a rule for ``DSConv2d`` (output elements * in/groups * k * k).
- ``macs_thop_paper_convention``: thop without that rule, as the paper's number was made.

**Peak activation memory**: on CPU, the largest total size of the tensors created during one
forward pass and alive at the same time, tracked op by op (see :mod:`profiling._trace`);
weights, the input and a kernel's internal scratch memory are not included. On CUDA,
``torch.cuda.max_memory_allocated`` over the pass minus what was allocated before it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models import count_parameters
from rtseg_core import ProfilingError, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CostRecord(Record):
    """What a model costs, independent of where it runs. MACs are multiply-accumulates."""

    model: str
    params: int  # true count: sum of p.numel() over trainable parameters
    params_paper_convention: int  # thop's rule on the released code (see module docstring)
    macs_fvcore: int  # fvcore FlopCountAnalysis total (MACs)
    macs_thop: int  # thop with a DSConv2d rule (MACs)
    macs_thop_paper_convention: int  # thop without the DSConv2d rule (MACs): the paper's convention
    fvcore_skipped: str  # ops fvcore has no handle for, "op xN, ..." (counted as 0)
    thop_skipped: str  # leaf module types thop has no rule for, with their parameter counts
    peak_activation_bytes: int
    peak_activation_method: str
    channels: int
    height: int
    width: int
    batch: int = 1
    include_aux: bool = False
    notes: str = ""


class _WithAux(nn.Module):
    """The eval graph plus the four deep-supervision heads, as the released code ran it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, aux = self.model.forward_with_aux(x)
        return (logits, *aux)


def _dsconv_rule(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
    # thop hook signature; MACs = output elements * (in_channels / groups) * kh * kw, as for Conv2d.
    ks = module.kernel_size
    taps = ks * ks if isinstance(ks, int) else ks[0] * ks[1]
    groups = getattr(module, "groups", 1)
    module.total_ops += torch.DoubleTensor([output.numel() * (module.in_channels // groups) * taps])


def _thop_rules() -> dict[type, Any]:
    from thop.profile import register_hooks

    return register_hooks


def count_parameters_paper_convention(model: nn.Module) -> int:
    """Parameters thop would have printed for the released code (see the module docstring).

    Every leaf module whose type has a thop rule contributes all its parameters, called or not;
    modules without a rule (DSConv2d) and parameters owned directly by non-leaf modules (the
    EFF's a, b and gate) contribute nothing. Equals the true count minus DSConv weights minus
    parameters owned by non-leaf modules.
    """
    rules = _thop_rules()
    total = 0
    for module in model.modules():
        if next(module.children(), None) is not None:
            continue  # non-leaf: thop reads neither its rule nor its own parameters
        if type(module) in rules:
            total += sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total


def _thop_unruled(model: nn.Module, custom: tuple[type, ...]) -> str:
    rules = _thop_rules()
    counts: dict[str, list[int]] = {}
    for module in model.modules():
        if next(module.children(), None) is not None or type(module) in rules:
            continue
        entry = counts.setdefault(type(module).__name__, [0, 0])
        entry[0] += 1
        entry[1] += sum(p.numel() for p in module.parameters())
    owned = sum(
        p.numel() for m in model.modules() if next(m.children(), None) is not None for p in m.parameters(recurse=False)
    )
    custom_names = {t.__name__ for t in custom}
    parts = []
    for name, (n, params) in sorted(counts.items()):
        how = "; counted by our rule in macs_thop only" if name in custom_names else ""
        parts.append(f"{name} x{n} ({params:,} params{how})")
    if owned:
        parts.append(f"parameters owned by non-leaf modules ({owned:,})")
    parts.append("functional ops (F.*, torch.*) called outside leaf modules")
    return ", ".join(parts)


def _thop_macs(model: nn.Module, x: torch.Tensor, custom_ops: dict | None) -> int:
    import thop

    # thop leaves total_ops/total_params buffers on modules without a rule: use a copy.
    probe = copy.deepcopy(model)
    with contextlib.redirect_stdout(io.StringIO()):
        macs, _ = thop.profile(probe, inputs=(x,), custom_ops=custom_ops or {}, verbose=False)
    return int(round(macs))


def _fvcore(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    total = int(analysis.total())
    skipped = ", ".join(f"{op.replace('aten::', '')} x{n}" for op, n in sorted(analysis.unsupported_ops().items()))
    return total, skipped


def peak_activation_memory(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """Peak bytes of activations during one forward pass of ``model(x)``, and how it was measured."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        before = torch.cuda.memory_allocated(x.device)
        with torch.inference_mode():
            out = model(x)
        torch.cuda.synchronize(x.device)
        peak = torch.cuda.max_memory_allocated(x.device) - before
        del out
        return int(peak), "cuda: torch.cuda.max_memory_allocated during one forward minus memory allocated before it"
    from profiling._trace import trace_forward

    trace = trace_forward(model, x)
    return trace.peak_live_bytes, (
        "cpu: peak total size of tensors created during one forward and alive together, tracked per ATen op "
        "(weights, input and kernel scratch memory excluded)"
    )


def count_costs(
    model: nn.Module,
    *,
    height: int = 256,
    width: int | None = None,
    channels: int | None = None,
    include_aux: bool = False,
    model_name: str = "model",
    device: str | torch.device = "cpu",
) -> CostRecord:
    """Count parameters, MACs and peak activation memory of ``model`` for one (1, C, H, W) input.

    The model is not modified (counting runs on a copy in eval mode). ``include_aux`` counts the
    deep-supervision heads too (the training graph minus the loss). ``channels`` defaults to the
    model config's ``in_channels``. ``device``: where the peak activation memory is measured
    (``cuda`` uses the CUDA allocator's peak; MACs and parameters are counted on the CPU).
    Raises :class:`ProfilingError` when the model cannot be run.
    """
    width = height if width is None else width
    if channels is None:
        cfg = getattr(model, "config", None)
        if cfg is None:
            raise ProfilingError(f"{model_name}: the model has no .config; pass channels= explicitly")
        channels = cfg.in_channels
    if height < 1 or width < 1:
        raise ProfilingError(f"{model_name}: input size must be positive, got {height}x{width}")
    work = copy.deepcopy(model).cpu().eval()  # fvcore and thop trace on the CPU
    if include_aux:
        if not hasattr(work, "forward_with_aux"):
            raise ProfilingError(f"{model_name}: include_aux=True needs a model with forward_with_aux()")
        work = _WithAux(work).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, height, width, generator=gen)
    from models import DSConv2d

    log.debug(
        "counting %s: parameters, MACs (fvcore, thop) and peak activation memory at %dx%d", model_name, height, width
    )
    try:
        macs_fvcore, fv_skipped = _fvcore(work, x)
        macs_thop = _thop_macs(work, x, {DSConv2d: _dsconv_rule})
        macs_thop_paper = _thop_macs(work, x, None)
        dev = torch.device(device)
        peak_model = work.to(dev) if dev.type == "cuda" else work
        peak, method = peak_activation_memory(peak_model, x.to(dev))
    except RuntimeError as exc:
        raise ProfilingError(
            f"{model_name}: cannot run a forward pass at 1x{channels}x{height}x{width} ({str(exc)[:300]})"
        ) from None
    # Both conventions read the architecture as deployed, not the aux-wrapper.
    base = work.model if include_aux else work
    record = CostRecord(
        model=model_name,
        params=count_parameters(base),
        params_paper_convention=count_parameters_paper_convention(base),
        macs_fvcore=macs_fvcore,
        macs_thop=macs_thop,
        macs_thop_paper_convention=macs_thop_paper,
        fvcore_skipped=fv_skipped,
        thop_skipped=_thop_unruled(work, (DSConv2d,)),
        peak_activation_bytes=peak,
        peak_activation_method=method,
        channels=channels,
        height=height,
        width=width,
        include_aux=include_aux,
        notes="MACs = multiply-accumulates of one forward pass at batch 1; "
        + ("aux heads included" if include_aux else "eval graph, aux heads off"),
    )
    log.debug("costs of %s: %s", model_name, record)
    return record
