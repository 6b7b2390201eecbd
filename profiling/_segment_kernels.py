"""A family member's kernels and MACs from its config, each distinct segment exported once.

Exporting and decomposing a whole subnet costs seconds (the ONNX export, ONNX Runtime's
optimisation pass, fvcore and thop); a one-shot search asks for thousands of subnets that share
most of their blocks. :class:`SegmentKernels` splits a member into its top-level module calls
(:func:`models.forward_segments`, arithmetic on the config), and decomposes each *distinct*
segment once: the segment's module (or token-stage part) is exported alone (DSConv frozen and
BatchNorm folded as in :func:`profiling.export_onnx`) with random inputs of the shapes it
receives, and cut into kernels by :func:`profiling.decompose_onnx`; its MACs are counted once with
fvcore on the unfolded module (the convention of :func:`profiling.count_costs`). A member whose segments were all seen
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

from models import RTSegConfig, Segment, build_model, forward_segments, segment_call
from profiling._export import prepare_for_export
from profiling._kernels import Kernel, KernelGraph, decompose_onnx
from profiling._segment_cache import CachedSegment, SegmentCache, cache_header, cache_key
from rtseg_core import ProfilingError, scratch_dir

log = logging.getLogger(__name__)

# Opsets at which a member's segments are tested to give the whole graph's kernels. At opset 13 (the
# TensorRT 8 tables) LayerNormalization is decomposed into element-wise nodes that group across a
# segment's border, so a member is exported whole there (slow, but the table's keys stay right).
SEGMENT_OPSETS = (17,)
_MEMBERS = 100_000  # members remembered (kernel keys and MACs: a few kB each)


@dataclass(frozen=True)
class SegmentDecomposition:
    """One distinct segment: its kernels (in order), a runnable graph per distinct kernel, its MACs."""

    kernels: tuple[Kernel, ...]
    graphs: dict[str, KernelGraph] | None = field(repr=False)  # None: read from the on-disk cache, not exported here
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
    the CPU seconds they took. With ``cache`` (a file, :mod:`profiling._segment_cache`) segments
    decomposed by earlier processes are read from it and new ones appended; ``loaded`` counts the
    segments taken from it.
    """

    def __init__(self, *, opset: int, seed: int = 0, cache: str | Path | None = None) -> None:
        self.opset = opset
        self.seed = seed
        self.segments: dict[tuple[Any, ...], SegmentDecomposition] = {}
        self.loaded = 0
        self._cache: SegmentCache | None = None
        self._cached: dict[str, CachedSegment] = {}
        if cache is not None and opset in SEGMENT_OPSETS:
            self._cache = SegmentCache(cache, cache_header(opset, seed))
            self._cached = self._cache.load()
            log.info("%d segment decompositions read from %s", len(self._cached), self._cache.path)
        self._members: OrderedDict[tuple[RTSegConfig, int], MemberKernels] = OrderedDict()
        self.exports = 0
        self._whole_graphs: dict[tuple[RTSegConfig, int], dict[str, KernelGraph]] = {}
        self.export_cpu_s = 0.0  # CPU seconds spent exporting and counting segments (time.process_time)

    def member(self, cfg: RTSegConfig, size: int) -> MemberKernels:
        """The kernels, MACs and parameters of ``cfg`` at ``size`` x ``size``, batch 1."""
        found = self._members.get((cfg, size))
        if found is not None:
            return found
        if self.opset not in SEGMENT_OPSETS:
            got = self._whole(cfg, size)
            self._members[(cfg, size)] = got
            return got
        segments = forward_segments(cfg, size)
        missing = [s for s in segments if s.key not in self.segments and not self._from_cache(s)]
        if missing:
            cpu0 = time.process_time()
            self._decompose(cfg, size, list({s.key: s for s in missing}.values()))
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

    def _whole(self, cfg: RTSegConfig, size: int) -> MemberKernels:
        """The member exported whole (opsets whose segments are not tested equal to the whole graph)."""
        from profiling._counts import _fvcore
        from profiling._predictor import export_for_table

        cpu0 = time.process_time()
        torch.manual_seed(self.seed)
        model = build_model(cfg).eval()
        with scratch_dir("member") as tmp:
            d = decompose_onnx(export_for_table(model, Path(tmp) / "m.onnx", size=size, opset=self.opset), graphs=True)
        self._whole_graphs = {(cfg, size): d.graphs}  # the last member's only: they hold its weights
        macs, _ = _fvcore(model, torch.zeros(1, cfg.in_channels, size, size))
        self.exports += 1
        self.export_cpu_s += time.process_time() - cpu0
        return MemberKernels(d.kernels, macs, cfg.estimated_parameters(), (1, cfg.in_channels, size, size))

    def graphs(self, cfg: RTSegConfig, size: int) -> dict[str, KernelGraph]:
        """A runnable graph for each distinct kernel of ``cfg`` (to time the ones a table lacks)."""
        if self.opset not in SEGMENT_OPSETS:
            if (cfg, size) not in self._whole_graphs:
                self._whole(cfg, size)
            return self._whole_graphs[(cfg, size)]
        self.member(cfg, size)
        segments = forward_segments(cfg, size)
        unexported = list({s.key: s for s in segments if self.segments[s.key].graphs is None}.values())
        if unexported:  # read from the cache, which keeps no graphs: export them now
            cpu0 = time.process_time()
            self._decompose(cfg, size, unexported)
            self.export_cpu_s += time.process_time() - cpu0
        out: dict[str, KernelGraph] = {}
        for s in segments:
            for key, graph in (self.segments[s.key].graphs or {}).items():
                out.setdefault(key, graph)
        return out

    def _from_cache(self, seg: Segment) -> bool:
        found = self._cached.get(cache_key(seg.key)) if self._cached else None
        if found is None:
            return False
        self.segments[seg.key] = SegmentDecomposition(found.kernels, None, found.macs)
        self.loaded += 1
        return True

    def _decompose(self, cfg: RTSegConfig, size: int, missing: list[Segment]) -> None:
        torch.manual_seed(self.seed)
        model = build_model(cfg).eval()
        deployable, _ = prepare_for_export(model)
        gen = torch.Generator().manual_seed(self.seed)
        for seg in missing:
            name = seg.name if seg.part is None else f"{seg.name}.{seg.part}"
            # random inputs of the segment's shapes: a graph's kernels depend on shapes, not on values
            tensors = tuple(torch.randn(shape, generator=gen) for shape in seg.inputs)
            kernels, graphs = self._export(_Call(deployable, seg), tensors, name)
            macs = _fvcore_macs(_Call(model, seg), tensors)
            self.segments[seg.key] = SegmentDecomposition(kernels, graphs, macs)
            self.exports += 1
            if self._cache is not None:
                key = cache_key(seg.key)
                if key not in self._cached:
                    self._cached[key] = CachedSegment(kernels, macs)
                    self._cache.append(key, self._cached[key])

    def _export(self, wrapper: nn.Module, tensors: tuple[torch.Tensor, ...], name: str):
        buf = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarnings about shape-derived ints, as in export_onnx
                torch.onnx.export(
                    wrapper.eval(), tensors, buf, dynamo=False, opset_version=self.opset, do_constant_folding=True
                )
        except Exception as exc:  # the exporter raises many types
            why = f"{type(exc).__name__}: {str(exc)[:300]}"
            raise ProfilingError(f"segment {name}: ONNX export failed ({why})") from None
        with scratch_dir("segment") as tmp:
            path = Path(tmp) / "segment.onnx"
            path.write_bytes(buf.getvalue())
            d = decompose_onnx(path, graphs=True, inputs=len(tensors))
        kernels = tuple(
            Kernel(k.key, k.op, f"{name}.{k.module}" if k.module else name, k.signature, k.features) for k in d.kernels
        )
        return kernels, d.graphs


class _Call(nn.Module):
    """One segment of ``model`` as a module: its top-level module registered (so its weights are the
    graph's parameters), :func:`models.segment_call` as the forward."""

    def __init__(self, model: nn.Module, segment) -> None:
        super().__init__()
        self.module = getattr(model, segment.name)
        self._call = segment_call(model, segment)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self._call(*tensors)


def _fvcore_macs(wrapper: nn.Module, tensors: tuple[torch.Tensor, ...]) -> int:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(wrapper.eval(), tensors).unsupported_ops_warnings(False)
    return int(analysis.uncalled_modules_warnings(False).total())
