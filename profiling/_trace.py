"""One forward pass, seen op by op: the kernels it launches, their MACs and bytes, and the live memory.

Tracing runs under a ``TorchDispatchMode``, so it sees every ATen op after autograd has been
stripped away, including the functional ops (``F.interpolate``, the EFF gate, the token shifts)
that module hooks miss. Each op that produces new storage is one "kernel"; an op whose outputs
all alias an input's storage (``view``, ``transpose``, ``slice`` ...) moves no data and is kept
with ``is_view=True``.

Live memory is tracked by storage: each new storage is added when an op creates it and
subtracted when the last tensor pointing to it is freed (a weak-reference finalizer per tensor).
Tensors that exist before the forward (weights, the input) are not counted, nor is scratch
memory a kernel allocates and frees inside itself.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

_aten = torch.ops.aten

# Ops whose MACs are counted (the multiply-accumulates of convolutions and matrix products);
# everything else is charged one FLOP per output element (elementwise) or per input element
# (reductions), which is what a roofline needs and no more.
_REDUCTIONS = {"mean", "amax", "amin", "sum", "max", "min", "native_layer_norm", "var_mean"}


@dataclass(frozen=True)
class TracedOp:
    """One ATen op of the forward pass.

    ``macs``: multiply-accumulates (convolution, mm/addmm/bmm/linear only). ``flops``: 2 * macs
    plus one per output element of elementwise ops (one per input element of reductions).
    ``read_bytes``: bytes of the tensor inputs (weights included); ``write_bytes``: bytes of
    the outputs. ``param_bytes``: the part of ``read_bytes`` that is module parameters or buffers.
    """

    index: int
    op: str  # e.g. "aten.convolution.default"
    module: str  # dotted path of the innermost module running it ("" for the top level)
    macs: int
    flops: int
    read_bytes: int
    write_bytes: int
    param_bytes: int
    is_view: bool
    out_shape: tuple[int, ...]


@dataclass(frozen=True)
class ForwardTrace:
    """The ops of one forward pass and the peak of live memory it created (bytes)."""

    ops: tuple[TracedOp, ...]
    peak_live_bytes: int  # max over the pass of bytes in storages created during it
    output_bytes: int  # bytes of the storages still alive at the end (the outputs)

    @property
    def kernels(self) -> tuple[TracedOp, ...]:
        """The ops that launch work (views excluded)."""
        return tuple(op for op in self.ops if not op.is_view)

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)


def _numel(shape: Iterable[int]) -> int:
    return math.prod(int(s) for s in shape)


def _macs(func, args, outs: list[torch.Tensor]) -> int:
    # Under inference_mode the mode sees composite ops (conv2d, linear) as well as their
    # decompositions (convolution, addmm) depending on the path taken: handle both.
    name = func.overloadpacket.__name__
    if name in ("conv1d", "conv2d", "conv3d", "convolution", "_convolution"):
        x, w = args[0], args[1]
        transposed = name in ("convolution", "_convolution") and len(args) > 6 and bool(args[6])
        if transposed:  # weight (in, out/groups, k...): every input element meets out/groups * k^2 weights
            return x.numel() * w.shape[1] * _numel(w.shape[2:])
        return outs[0].numel() * w.shape[1] * _numel(w.shape[2:])
    if name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        x, w = args[0], args[1]
        return x.numel() * w.shape[1] * _numel(w.shape[2:])
    if name in ("mm", "addmm"):
        a, b = (args[1], args[2]) if name == "addmm" else (args[0], args[1])
        return a.shape[0] * a.shape[1] * b.shape[1]
    if name in ("bmm", "baddbmm"):
        a, b = (args[1], args[2]) if name == "baddbmm" else (args[0], args[1])
        return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    if name == "linear":
        return outs[0].numel() * args[1].shape[1]
    if name == "matmul":
        a, b = args[0], args[1]
        return outs[0].numel() * a.shape[-1]
    return 0


class _Tracer(TorchDispatchMode):
    def __init__(self, param_ptrs: set[int], preexisting_ptrs: set[int], module_stack: list[str]) -> None:
        super().__init__()
        self.param_ptrs = param_ptrs
        self.preexisting = preexisting_ptrs | param_ptrs
        self.module_stack = module_stack
        self.ops: list[TracedOp] = []
        self.refcount: dict[int, int] = {}
        self.storage_bytes: dict[int, int] = {}
        self.live = 0
        self.peak = 0

    def _release(self, ptr: int) -> None:
        self.refcount[ptr] -= 1
        if self.refcount[ptr] == 0:
            self.live -= self.storage_bytes.pop(ptr)
            del self.refcount[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        ins = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        outs = [t for t in tree_flatten(result)[0] if isinstance(t, torch.Tensor)]
        in_ptrs = {t.untyped_storage().data_ptr() for t in ins}
        # An output sharing an input's storage is a view (no work) unless the op writes in place (add_, relu_).
        mutates = getattr(getattr(func, "_schema", None), "is_mutable", False)
        is_view = not mutates and bool(outs) and all(t.untyped_storage().data_ptr() in in_ptrs for t in outs)
        for t in outs:
            ptr = t.untyped_storage().data_ptr()
            if ptr in self.preexisting or ptr == 0:
                continue
            if ptr not in self.refcount:
                if ptr in in_ptrs:  # a view of a tensor that existed before the forward
                    continue
                self.refcount[ptr] = 0
                self.storage_bytes[ptr] = t.untyped_storage().nbytes()
                self.live += self.storage_bytes[ptr]
                self.peak = max(self.peak, self.live)
            self.refcount[ptr] += 1
            weakref.finalize(t, self._release, ptr)
        name = func.overloadpacket.__name__
        macs = 0 if is_view else _macs(func, args, outs)
        out_elems = sum(t.numel() for t in outs)
        in_elems = sum(t.numel() for t in ins)
        extra = 0 if is_view else (in_elems if name in _REDUCTIONS else out_elems)
        self.ops.append(
            TracedOp(
                index=len(self.ops),
                op=str(func),
                module=self.module_stack[-1] if self.module_stack else "",
                macs=int(macs),
                flops=int(2 * macs + (0 if macs else extra)),
                read_bytes=0 if is_view else sum(t.numel() * t.element_size() for t in ins),
                write_bytes=0 if is_view else sum(t.numel() * t.element_size() for t in outs),
                param_bytes=0
                if is_view
                else sum(
                    t.numel() * t.element_size() for t in ins if t.untyped_storage().data_ptr() in self.param_ptrs
                ),
                is_view=is_view,
                out_shape=tuple(outs[0].shape) if outs else (),
            )
        )
        return result


def trace_forward(model: nn.Module, x: torch.Tensor) -> ForwardTrace:
    """Run ``model(x)`` once under ``torch.inference_mode`` and record every ATen op.

    The model is used as given (call ``.eval()`` first for the deployed graph). Module paths come
    from forward pre/post hooks that are removed afterwards.
    """
    stack: list[str] = []

    def enter(name: str):
        def hook(module, args) -> None:
            stack.append(name)

        return hook

    def leave(module, args, output) -> None:  # must return None, or it would replace the output
        stack.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave))
    param_ptrs = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    # The input existed before the pass, like the weights: neither counts as live activation memory.
    tracer = _Tracer(param_ptrs, {x.untyped_storage().data_ptr()}, stack)
    try:
        with torch.inference_mode(), tracer:
            out = model(x)
        output_bytes = tracer.live
        peak = tracer.peak
        del out
    finally:
        for h in handles:
            h.remove()
    return ForwardTrace(ops=tuple(tracer.ops), peak_live_bytes=int(peak), output_bytes=int(output_bytes))
