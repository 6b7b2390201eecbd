"""A member's forward pass as its top-level modules (segments), with their input shapes, from the config alone.

:class:`RTSegNet` calls each of its children once, in a fixed order (enc1..enc3, tok4, tok5, then
up/fuse/dtok per decoder level, up5, head). :func:`forward_segments` lists those calls for a
config and an input size by arithmetic: no model is built and nothing runs, so it costs
microseconds where a forward pass on the meta device cost about 0.1 s at 256 px.

A segment's ``key`` holds every field that decides its computation graph (block type, widths,
depth, MLP hidden width, shift, activation, fusion wiring, gate kernel, input shapes), so two
segments with equal keys export to the same graph: the one-shot search decomposes each distinct
segment once (:mod:`profiling._segment_kernels`) instead of exporting every subnet. Segments that
compute nothing (a decoder token stage of depth 0) are left out, as the exported graph has no node
for them; a token stage is three kinds of segment (its ``enter``, each TMP block, its ``leave``),
so that its depth adds blocks seen before. :func:`segment_call` runs one segment of a model;
:func:`traced_segments` runs the real forward with hooks, and the tests check it against this arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models._config import RTSegConfig

Shape = tuple[int, ...]
SEGMENTS_VERSION = 1  # in every key: a change of this arithmetic invalidates cached decompositions


@dataclass(frozen=True)
class Segment:
    """One call in :class:`RTSegNet`'s forward: ``name`` (the top-level attribute), ``part`` (a token
    stage's ``enter``, ``blocks.<i>`` or ``leave``; None for the whole module), the shapes of its tensor
    inputs, ``args`` (the call's other arguments after them: an UpStage's resize size, a TMP block's
    height and width, the stage's map shape for ``leave``) and the graph ``key``."""

    name: str
    kind: str  # ConvStage, TokenEnter, TMPBlock, TokenLeave, UpStage, EFF, AddFusion, Conv2d
    inputs: tuple[Shape, ...]
    args: tuple[Any, ...]
    key: tuple[Any, ...]
    part: str | None = None


def _pooled(side: int) -> int:
    return side // 2  # max-pool 2 (floor)


def _embedded(side: int) -> int:
    return (side - 1) // 2 + 1  # 3x3 conv, stride 2, padding 1


def forward_segments(cfg: RTSegConfig, height: int, width: int | None = None, *, batch: int = 1) -> tuple[Segment, ...]:
    """The segments of ``build_model(cfg)``'s ``forward`` on a (batch, in_channels, height, width) input."""
    width = height if width is None else width
    c1, c2, c3 = cfg.conv_widths
    c4, c5 = cfg.token_widths
    n = batch
    sides = [(height, width)]
    for _ in range(3):
        h, w = sides[-1]
        sides.append((_pooled(h), _pooled(w)))
    for _ in range(2):
        h, w = sides[-1]
        sides.append((_embedded(h), _embedded(w)))
    # sides: input, enc1, enc2, enc3, tok4, tok5 outputs
    out: list[Segment] = []

    def add(name: str, kind: str, inputs: list[Shape], args: tuple[Any, ...], *fields: Any, part=None) -> None:
        key = (SEGMENTS_VERSION, kind, tuple(inputs), args, *fields)
        out.append(Segment(name, kind, tuple(inputs), args, key, part))

    def shape(channels: int, side: tuple[int, int]) -> Shape:
        return (n, channels, *side)

    conv = (cfg.dsconv, cfg.dsconv_block_size, cfg.dsconv_bits, cfg.activation)
    for i, (cin, cout) in enumerate(((cfg.in_channels, c1), (c1, c2), (c2, c3))):
        add(f"enc{i + 1}", "ConvStage", [shape(cin, sides[i])], (), cin, cout, *conv)

    def tokens(name: str, cin: int, dim: int, depth: int, embed: bool, side: tuple[int, int]) -> None:
        # One segment per part (TokenStage.enter, each TMP block, leave): a stage's depth then adds
        # blocks seen before instead of making every (width, depth) pair a new segment.
        if not embed and depth == 0:
            return  # the identity: no node in the graph
        out_side = (_embedded(side[0]), _embedded(side[1])) if embed else side
        tokens_shape = (n, out_side[0] * out_side[1], dim)
        add(name, "TokenEnter", [shape(cin, side)], (), cin, dim, embed, part="enter")
        hidden = max(1, round(dim * cfg.mlp_ratio))
        for i in range(depth):
            add(name, "TMPBlock", [tokens_shape], out_side, dim, hidden, cfg.shift_size, part=f"blocks.{i}")
        add(name, "TokenLeave", [tokens_shape], (shape(dim, out_side),), dim, depth > 0, part="leave")

    tokens("tok4", c3, c4, cfg.enc_depths[0], True, sides[3])
    tokens("tok5", c4, c5, cfg.enc_depths[1], True, sides[4])
    levels = (
        ("up1", "fuse1", "dtok1", c5, c4, sides[5], sides[4], cfg.dec_depths[0]),
        ("up2", "fuse2", "dtok2", c4, c3, sides[4], sides[3], cfg.dec_depths[1]),
        ("up3", "fuse3", None, c3, c2, sides[3], sides[2], 0),
        ("up4", "fuse4", None, c2, c1, sides[2], sides[1], 0),
    )
    for up, fuse, dtok, cin, cout, side_in, side_out, depth in levels:
        add(up, "UpStage", [shape(cin, side_in)], (side_out,), cin, cout, True, cfg.activation)
        pair = [shape(cout, side_out), shape(cout, side_out)]
        if cfg.fusion == "add":
            add(fuse, "AddFusion", pair, ())
        else:
            eff = (cfg.num_classes, cfg.eff_dilation, cfg.gate_kernel_for(cout), cfg.eff_attn_input, cfg.eff_aux_input)
            add(fuse, "EFF", pair, (), cout, *eff)
        if dtok is not None:
            tokens(dtok, cout, cout, depth, False, side_out)
    add("up5", "UpStage", [shape(c1, sides[1])], (sides[0],), c1, c1, False, cfg.activation)
    add("head", "Conv2d", [shape(c1, sides[0])], (), c1, cfg.num_classes)
    return tuple(out)


def segment_call(model: nn.Module, segment: Segment):
    """``f(*tensors)``: the part of ``model`` (an :class:`RTSegNet`) that ``segment`` is, with its other
    arguments fixed; its first output only (EFF returns ``(out, aux)``, aux None in the deployed graph)."""
    module = getattr(model, segment.name)
    if segment.part == "enter":
        return lambda x: module.enter(x)[0]
    if segment.part == "leave":
        return lambda t: module.leave(t, segment.args[0])
    if segment.part is not None:  # blocks.<i>
        block = module.blocks[int(segment.part.split(".")[1])]
        return lambda t: block(t, *segment.args)
    if segment.kind in ("EFF", "AddFusion"):
        return lambda f_d, f_s: module(f_d, f_s, with_aux=False)[0]
    return lambda *tensors: module(*tensors, *segment.args)


def traced_segments(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """(name, args, kwargs) of every call of ``model``'s top-level children in one forward of ``x``,
    identity calls (output is the input) left out. The args are the tensors the child received."""
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    handles = []

    def hook(name: str):
        def record(module, args, kwargs, output):
            first = output[0] if isinstance(output, tuple) else output
            if not (len(args) == 1 and first is args[0]):
                calls.append((name, args, dict(kwargs)))

        return record

    for name, child in model.named_children():
        handles.append(child.register_forward_hook(hook(name), with_kwargs=True))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return calls
