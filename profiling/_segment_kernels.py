"""A family member's kernels and MACs from its config, each distinct segment exported once.

Exporting and decomposing a whole subnet costs seconds (the ONNX export, ONNX Runtime's
optimisation pass, fvcore and thop); a one-shot search asks for thousands of subnets that share
most of their blocks. :class:`SegmentKernels` splits a member into its top-level module calls
(:func:`models.forward_segments`, arithmetic on the config), and decomposes each *distinct*
segment once: the segment's module is exported alone (DSConv frozen and BatchNorm folded as in
:func:`profiling.export_onnx`) with the inputs it receives in the real forward pass, and cut into
kernels by :func:`profiling.decompose_onnx`; its MACs are counted once with fvcore on the unfolded
module (the convention of :func:`profiling.count_costs`). A member whose segments were all seen
costs dictionary look-ups.

The segments' kernels are those of the whole exported model: every segment boundary is a kernel
boundary (a segment starts with a Conv, a data-movement node after a non-movement group, a
LayerNormalization or an Add of two activations, none of which joins a group of the previous
segment), so the signatures, and with them the table keys, are the same. The tests check this on
sampled members against :func:`profiling.decompose_onnx` of the whole export, and the MACs
against :func:`profiling.count_costs`.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models import RTSegConfig, build_model, forward_segments, traced_segments
from profiling._export import prepare_for_export
from profiling._kernels import Kernel, KernelGraph, decompose_onnx
from rtseg_core import ProfilingError, scratch_dir

log = logging.getLogger(__name__)

_MEMBERS = 100_000  # members remembered (kernel keys and MACs: a few kB each)


@dataclass(frozen=True)
class SegmentDecomposition:
    """One distinct segment: its kernels (in order), a runnable graph per distinct kernel, its MACs."""

    kernels: tuple[Kernel, ...]
    graphs: dict[str, KernelGraph] = field(repr=False)
    macs: int


@dataclass(frozen=True)
class MemberKernels:
    """A member's kernels at one input size (in forward order), its MACs (fvcore) and parameters."""

    kernels: tuple[Kernel, ...]
    macs: int
    params: int
    input_shape: tuple[int, ...]


class SegmentKernels:
    """Kernels and MACs of family members at ``opset``, each distinct segment decomposed once (module docstring).

    ``exports`` counts the segments exported so far (what the cache saved is the rest), ``export_cpu_s``
    the CPU seconds they took.
    """

    def __init__(self, *, opset: int, seed: int = 0) -> None:
        self.opset = opset
        self.seed = seed
        self.segments: dict[tuple[Any, ...], SegmentDecomposition] = {}
        self._members: OrderedDict[tuple[RTSegConfig, int], MemberKernels] = OrderedDict()
        self.exports = 0
        self.export_cpu_s = 0.0  # CPU seconds spent exporting and counting segments (time.process_time)

    def member(self, cfg: RTSegConfig, size: int) -> MemberKernels:
        """The kernels, MACs and parameters of ``cfg`` at ``size`` x ``size``, batch 1."""
        found = self._members.get((cfg, size))
        if found is not None:
            return found
        segments = forward_segments(cfg, size)
        missing = [s for s in segments if s.key not in self.segments]
        if missing:
            cpu0 = time.process_time()
            self._decompose(cfg, size, {s.name: s for s in missing})
            self.export_cpu_s += time.process_time() - cpu0
        parts = [self.segments[s.key] for s in segments]
        got = MemberKernels(
            kernels=tuple(k for p in parts for k in p.kernels),
            macs=sum(p.macs for p in parts),
            params=cfg.estimated_parameters(),  # exact (tested against the built models)
            input_shape=(1, cfg.in_channels, size, size),
        )
        self._members[(cfg, size)] = got
        while len(self._members) > _MEMBERS:
            self._members.popitem(last=False)
        return got

    def graphs(self, cfg: RTSegConfig, size: int) -> dict[str, KernelGraph]:
        """A runnable graph for each distinct kernel of ``cfg`` (to time the ones a table lacks)."""
        self.member(cfg, size)
        out: dict[str, KernelGraph] = {}
        for s in forward_segments(cfg, size):
            for key, graph in self.segments[s.key].graphs.items():
                out.setdefault(key, graph)
        return out

    def _decompose(self, cfg: RTSegConfig, size: int, missing: dict[str, Any]) -> None:
        torch.manual_seed(self.seed)
        model = build_model(cfg).eval()
        deployable, _ = prepare_for_export(model)
        x = torch.randn(1, cfg.in_channels, size, size, generator=torch.Generator().manual_seed(self.seed))
        raw_calls = {name: (args, kwargs) for name, args, kwargs in traced_segments(model, x)}
        calls = {name: (args, kwargs) for name, args, kwargs in traced_segments(deployable, x)}
        for name, seg in missing.items():
            if name not in calls:
                raise ProfilingError(f"segments of {cfg}: {name} is not called in the forward pass")
            args, kwargs = calls[name]
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if tuple(tuple(t.shape) for t in tensors) != seg.inputs:
                raise ProfilingError(
                    f"segments of {cfg}: {name} receives {[tuple(t.shape) for t in tensors]}, the arithmetic "
                    f"says {list(seg.inputs)} (models.forward_segments is out of date)"
                )
            kernels, graphs = self._export(getattr(deployable, name), args, kwargs, name)
            raw_args, raw_kwargs = raw_calls[name]
            macs = _fvcore_macs(getattr(model, name), raw_args, raw_kwargs)
            self.segments[seg.key] = SegmentDecomposition(kernels, graphs, macs)
            self.exports += 1

    def _export(self, module: nn.Module, args: tuple, kwargs: dict, name: str):
        wrapper = _Call(module, args, kwargs).eval()
        tensors = tuple(a for a in args if isinstance(a, torch.Tensor))
        buf = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarnings about shape-derived ints, as in export_onnx
                torch.onnx.export(
                    wrapper, tensors, buf, dynamo=False, opset_version=self.opset, do_constant_folding=True
                )
        except Exception as exc:  # the exporter raises many types
            raise ProfilingError(
                f"segment {name}: ONNX export failed ({type(exc).__name__}: {str(exc)[:300]})"
            ) from None
        with scratch_dir("segment") as tmp:
            path = Path(tmp) / f"{name}.onnx"
            path.write_bytes(buf.getvalue())
            d = decompose_onnx(path, graphs=True, inputs=len(tensors))
        module_prefix = name
        kernels = tuple(
            Kernel(k.key, k.op, f"{module_prefix}.{k.module}" if k.module else module_prefix, k.signature, k.features)
            for k in d.kernels
        )
        return kernels, d.graphs


class _Call(nn.Module):
    """``module(*tensors)`` with the call's other arguments (a resize size, ``with_aux``) fixed; its
    first output only (EFF returns ``(out, aux)``, aux None in the deployed graph)."""

    def __init__(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        super().__init__()
        self.module = module
        self.args = args
        self.kwargs = kwargs

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        it = iter(tensors)
        args = [next(it) if isinstance(a, torch.Tensor) else a for a in self.args]
        out = self.module(*args, **self.kwargs)
        return out[0] if isinstance(out, tuple) else out


def _fvcore_macs(module: nn.Module, args: tuple, kwargs: dict) -> int:
    from fvcore.nn import FlopCountAnalysis

    wrapper = _Call(module, args, kwargs).eval()
    tensors = tuple(a for a in args if isinstance(a, torch.Tensor))
    analysis = FlopCountAnalysis(wrapper, tensors).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total())
