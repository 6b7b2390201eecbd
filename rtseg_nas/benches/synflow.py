"""SynFlow, a training-free proxy of an architecture's quality (Tanaka et al., NeurIPS 2020).

Our own implementation, following the zero-cost-proxy protocol of Abdelfattah et al. (ICLR 2021):
every parameter and buffer is replaced by its absolute value (the network is "linearised": all
signs positive), an all-ones input goes through the network in float64 in eval mode (BatchNorm
uses its initial running statistics), ``R = sum(output)`` is back-propagated, and the score is
``sum over parameters |theta * dR/dtheta|``. It needs no data and no labels, and one forward and
backward pass. The score is reported as ``log10`` (raw values span hundreds of orders of magnitude
across widths and depths; ranks are unchanged).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def synflow_score(model: nn.Module, *, size: int, in_channels: int | None = None) -> float:
    """``log10`` of the SynFlow saliency of ``model`` (a fresh build; weights are not changed in place).

    ``in_channels`` defaults to the model's ``config.in_channels``.
    """
    if in_channels is None:
        in_channels = int(model.config.in_channels)
    work = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in list(work.parameters()) + [b for b in work.buffers() if b.is_floating_point()]:
            tensor.abs_()
    for p in work.parameters():
        p.grad = None
    x = torch.ones(1, in_channels, size, size, dtype=torch.float64)
    out = work(x)
    if isinstance(out, tuple | list):  # deep supervision in train mode; eval gives the logits only
        out = out[0]
    out.sum().backward()
    total = 0.0
    for p in work.parameters():
        if p.grad is not None:
            total += float((p.detach() * p.grad).abs().sum())
    return math.log10(total) if total > 0 else float("-inf")
