"""The one place that builds Torch-Pruning's dependency graph for the RTSeg-Net family.

Pruning and replaying a saved pruning history must trace the model identically, or the history's
module names and channel indices would mean different things. Everything that makes tracing work
for this family lives here:

- DSConv2d is a custom module with a functional conv; Torch-Pruning would treat its weight as an
  unwrapped parameter and prune its *kernel* dimension. While the graph is built and used, each
  DSConv2d is swapped for :class:`_PrunableDSConv` (an ``nn.Conv2d`` subclass sharing the same weight
  Parameter, with the DSConv forward) and swapped back afterwards with the pruned weight.
- The EFF gate (alpha, beta, the functional 1-D channel gate) is passed as ignored parameters:
  their shapes do not follow the channel width.
- Torch-Pruning traces in eval mode, where the deep-supervision heads are not run; the forward
  function calls ``forward_with_aux`` so they are in the graph and pruned consistently.
- The final ``head`` and the aux convs keep their output channels (the classes).
- The TMP shift splits a width into channel groups, rolls each and concatenates them back in the
  same order: as a whole it keeps every channel at its index. Torch-Pruning 1.6 maps the concat's
  inputs in *reverse* order (measured here: root channel ``j`` of chunk ``g`` lands on chunk
  ``G-1-g`` of the next Linear's input), so pruning removed the wrong input columns of ``fc1`` /
  ``fc2``. :func:`_pass_through_shift` switches index mapping off on split/concat nodes so the
  indices pass through unchanged, which is exact for the shift.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from models._dsconv import DSConv2d, dsconv_quantize
from models._fusion import EFF
from models._tokens import TMPBlock
from rtseg_core import CompressionError

log = logging.getLogger(__name__)

# Tracing needs 5 halvings (enc1..tok5) to leave at least one pixel; 64 keeps it cheap and
# is large enough that no stage collapses to 1x1 (which would hide nothing, but is less typical).
TRACE_SIZE = 64


class _PrunableDSConv(nn.Conv2d):
    """A DSConv2d seen by Torch-Pruning as an ``nn.Conv2d`` (same weight, same forward)."""

    def __init__(self, src: DSConv2d) -> None:
        super().__init__(
            src.in_channels,
            src.out_channels,
            src.kernel_size,
            stride=src.stride,
            padding=src.padding,
            bias=src.bias is not None,
        )
        self.weight = src.weight
        if src.bias is not None:
            self.bias = src.bias
        self.block_size, self.bits = src.block_size, src.bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if self.bits is not None:
            wq = dsconv_quantize(w, self.bits, self.block_size)
            w = w + (wq - w).detach()
        return self._conv_forward(x, w, self.bias)

    def to_dsconv(self) -> DSConv2d:
        out = DSConv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size[0],
            stride=self.stride[0],
            padding=self.padding[0],
            bias=self.bias is not None,
            block_size=self.block_size,
            bits=self.bits,
        )
        out.weight = self.weight
        if self.bias is not None:
            out.bias = self.bias
        return out


def _swap(model: nn.Module, src_type: type, make) -> int:
    n = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is src_type:
                setattr(module, name, make(child))
                n += 1
    return n


@contextlib.contextmanager
def prunable_view(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every DSConv2d of ``model`` is a :class:`_PrunableDSConv` (in place).

    On exit they become DSConv2d again, carrying whatever pruning changed (the weight Parameter
    is shared, so optimizers and gradients see the same tensor throughout).
    """
    _swap(model, DSConv2d, _PrunableDSConv)
    try:
        yield model
    finally:
        _swap(model, _PrunableDSConv, lambda m: m.to_dsconv())


def restore_dsconv(model: nn.Module) -> int:
    """Turn every DSConv stand-in of a model left in the pruning view back into DSConv2d (in place).

    For copies taken inside :func:`prunable_view` (the view itself restores its own model on exit).
    Returns how many were restored.
    """
    return _swap(model, _PrunableDSConv, lambda m: m.to_dsconv())


def replace_dsconv_standins(model: nn.Module, make: Callable[[nn.Conv2d], nn.Module]) -> int:
    """Replace every DSConv stand-in of the pruning view by ``make(stand_in)`` (in place); returns the count.

    For tools that know layers by class (NNI): they get a module of their own kind in its place.
    """
    return _swap(model, _PrunableDSConv, make)


def gate_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in model.modules() if isinstance(m, EFF) for p in m.gate_parameters()]


def class_layers(model: nn.Module) -> list[nn.Module]:
    """Layers whose output channels are the classes: the head and the EFF aux convs."""
    layers = [model.head] if hasattr(model, "head") else []
    layers += [m.aux for m in model.modules() if isinstance(m, EFF)]
    return layers


def resolve_modules(model: nn.Module, names: Sequence[str], *, field: str = "ignored") -> list[nn.Module]:
    modules = dict(model.named_modules())
    out = []
    for name in names:
        if name not in modules:
            raise CompressionError(
                f"PruneSpec.{field}: no module named {name!r} in the model (names look like 'enc3.conv', 'fuse2')"
            )
        out.append(modules[name])
    return out


def _forward_fn(module: nn.Module, x: torch.Tensor):
    return module.forward_with_aux(x)


def _output_transform(out: Any) -> list[torch.Tensor]:
    logits, aux = out
    return [logits, *aux]


def example_input(model: nn.Module, size: int = TRACE_SIZE) -> torch.Tensor:
    cfg = getattr(model, "config", None)
    if cfg is None:
        raise CompressionError("pruning needs an RTSeg-Net family model (built by search_spaces.build_model)")
    return torch.zeros(1, cfg.in_channels, size, size)


@contextlib.contextmanager
def _tracing(model: nn.Module) -> Iterator[None]:
    # Torch-Pruning traces with autograd, in eval mode (BN statistics must not move).
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            # The EFF gate parameters are reported as "unwrapped"; they are ignored on purpose.
            warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
            yield
    finally:
        model.train(was_training)


def _pass_through_shift(DG) -> None:
    """Identity index mapping across split/concat nodes (see the module docstring); call after building."""
    import torch_pruning as tp
    from torch_pruning.dependency.index_mapping import _ConcatIndexMapping, _SplitIndexMapping

    for node in DG.module2node.values():
        if node.type in (tp.ops.OPTYPE.SPLIT, tp.ops.OPTYPE.CONCAT):
            node.enable_index_mapping = False  # get_pruning_group re-runs the mapping update; keep it off
    for node in DG.module2node.values():
        for dep in node.dependencies:
            dep.index_mapping = [
                None if isinstance(m, (_ConcatIndexMapping, _SplitIndexMapping)) else m for m in dep.index_mapping
            ]


def _check_unwrapped(DG, model: nn.Module) -> None:
    allowed = {id(p) for p in gate_parameters(model)}
    names = {id(p): n for n, p in model.named_parameters()}
    strays = [names.get(id(u.parameters), "?") for u in DG.unwrapped_parameters if id(u.parameters) not in allowed]
    if strays:
        raise CompressionError(
            f"pruning: parameters outside any prunable layer would be pruned along a guessed dimension: {strays}. "
            "The model family gained a layer compress/_graph.py does not know; add it there."
        )


def build_pruner(
    model: nn.Module,
    importance,
    *,
    pruning_ratio: float,
    iterative_steps: int = 1,
    global_pruning: bool = False,
    round_to: int | None = None,
    ignored: Sequence[nn.Module] = (),
):
    """A Torch-Pruning ``BasePruner`` over ``model`` (which must be inside :func:`prunable_view`)."""
    import torch_pruning as tp

    with _tracing(model):
        pruner = tp.pruner.BasePruner(
            model,
            example_input(model),
            importance=importance,
            pruning_ratio=pruning_ratio,
            iterative_steps=iterative_steps,
            global_pruning=global_pruning,
            round_to=round_to,
            ignored_layers=[*class_layers(model), *ignored, *gate_parameters(model)],
            forward_fn=_forward_fn,
            output_transform=_output_transform,
        )
    _check_unwrapped(pruner.DG, model)
    _pass_through_shift(pruner.DG)
    return pruner


def build_graph(model: nn.Module):
    """A bare dependency graph traced exactly as :func:`build_pruner` traces (for replay)."""
    import torch_pruning as tp

    with _tracing(model):
        DG = tp.DependencyGraph().build_dependency(
            model,
            example_inputs=example_input(model),
            forward_fn=_forward_fn,
            output_transform=_output_transform,
            ignored_params=gate_parameters(model),
        )
    _check_unwrapped(DG, model)
    _pass_through_shift(DG)
    return DG


def shifted_layers(model: nn.Module) -> dict[nn.Module, int]:
    """Layers whose output channels the TMP shift splits into groups, with the shift size.

    A block's LayerNorm output is shifted along H (the stage width) and its ``fc1`` output (the
    hidden width) is shifted along W after the depthwise conv.
    """
    out: dict[nn.Module, int] = {}
    for m in model.modules():
        if isinstance(m, TMPBlock):
            out[m.norm] = m.mlp.shift_size
            out[m.mlp.fc1] = m.mlp.shift_size
    return out


def history_to_data(history: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Torch-Pruning's history as plain lists of str/bool/int (loads with ``weights_only=True``)."""
    out = []
    for name, is_out, idxs in history:
        out.append([str(name), bool(is_out), [int(i) for i in idxs]])
    return out


def replay_history(model: nn.Module, history: Sequence[Sequence[Any]], *, source: str = "pruning") -> nn.Module:
    """Replay a pruning history on a freshly built model (in place); returns the model.

    ``history`` is a list of *increments*, each a Torch-Pruning history (a list of
    ``[module name, is_out_channel, [indices]]``). Each increment is replayed on a graph traced
    afresh, exactly as it was pruned (split/concat offsets are fixed when a graph is traced).
    """
    if not isinstance(history, (list, tuple)):
        raise CompressionError(f"{source}: 'history' must be a list of increments, got {type(history).__name__}")
    modules = dict(model.named_modules())
    for k, increment in enumerate(history):
        if not isinstance(increment, (list, tuple)):
            raise CompressionError(f"{source}: history increment {k} is not a list: {str(increment)[:120]}")
        for i, entry in enumerate(increment):
            ok = isinstance(entry, (list, tuple)) and len(entry) == 3 and isinstance(entry[2], (list, tuple))
            if not ok or entry[0] not in modules:
                raise CompressionError(
                    f"{source}: history increment {k}, entry {i} is not [module name, is_out_channel, [indices]] "
                    f"of this model: {str(entry)[:120]}"
                )
    for k, increment in enumerate(history):
        with prunable_view(model):
            try:
                # A history from another architecture can leave widths that no longer chain:
                # tracing the next increment then fails inside a layer.
                DG = build_graph(model)
                with torch.no_grad():
                    DG.load_pruning_history([list(e) for e in increment])
            except (AssertionError, IndexError, RuntimeError, KeyError, ValueError) as exc:
                raise CompressionError(
                    f"{source}: increment {k} of the pruning history does not fit this config "
                    f"({type(exc).__name__}: {str(exc)[:200]}); was it saved with a different architecture?"
                ) from None
    return model


def replay_pruning(model: nn.Module, pruning: dict) -> nn.Module:
    """Apply a checkpoint's ``pruning`` entry (``{"history": [...], "spec": {...}}``) to a fresh build.

    Returns the same model, pruned in place, ready for ``load_state_dict(strict=True)``.
    """
    if not isinstance(pruning, dict) or "history" not in pruning:
        raise CompressionError(
            f"checkpoint 'pruning': expected {{'history': [...], 'spec': {{...}}}}, got {str(pruning)[:120]}"
        )
    return replay_history(model, pruning["history"], source="checkpoint 'pruning'")
