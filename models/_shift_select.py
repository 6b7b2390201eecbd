"""Which channels of one Torch-Pruning group to remove, given scores and a count.

Torch-Pruning picks the ``n`` lowest-scored channels of a group. In a TMP block that is not enough:
the shift splits a width into ``shift`` consecutive groups of ``ceil(C / shift)`` channels and
moves each group by a different offset. The forward pass recomputes that split from the *new*
width, so if the pruned channels are not spread to match, channels silently move to another
shift group and the pruned network computes a different function. :func:`shift_aware_keep`
keeps the best channels *within each shift group* so that the surviving channels fall exactly
into ``shift_group_sizes(C', shift)``: every channel keeps its shift offset.
"""

from __future__ import annotations

import torch

from models._tokens import shift_group_sizes


def feasible_width(channels: int, keep: int, shift: int, *, round_to: int | None = None) -> int | None:
    """The largest width <= ``keep`` whose shift groups fit inside those of ``channels`` (or None).

    A width fits when it splits into as many shift groups as ``channels`` does and each new group
    is no larger than the old one at the same position. With ``round_to`` only multiples of it count.
    """
    old = shift_group_sizes(channels, shift)
    step = round_to or 1
    k = keep - keep % step if round_to else keep
    while k >= 1:
        new = shift_group_sizes(k, shift)
        if len(new) == len(old) and all(a <= b for a, b in zip(new, old)):
            return k
        k -= step
    return None


def shift_aware_keep(scores: torch.Tensor, keep: int, shift: int) -> list[int]:
    """Indices to keep (sorted): the top channels of each shift group, ``shift_group_sizes(keep)`` of them.

    ``scores`` is one score per channel (higher = more important), in channel order. The caller
    ensures ``keep`` is feasible (:func:`feasible_width`).
    """
    channels = scores.numel()
    old = shift_group_sizes(channels, shift)
    new = shift_group_sizes(keep, shift)
    kept: list[int] = []
    start = 0
    for size, want in zip(old, new):
        block = scores[start : start + size]
        top = torch.topk(block, want, largest=True).indices + start
        kept.extend(int(i) for i in top)
        start += size
    return sorted(kept)


def lowest(scores: torch.Tensor, n: int) -> list[int]:
    """Indices of the ``n`` lowest scores (sorted)."""
    if n <= 0:
        return []
    return sorted(int(i) for i in torch.topk(scores, n, largest=False).indices)
