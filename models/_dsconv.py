"""DSConv (Gennari do Nascimento et al., ICCV 2019): VQK integers times KDS block scales.

With ``bits=None`` the layer is a plain float convolution, exactly the released RTSeg-Net (whose
quantizer is never called). With ``bits=b`` the forward pass uses the fake-quantized weight
VQK * KDS and gradients flow to the float shadow weight straight through; :meth:`freeze` bakes
the quantized weight in so that ONNX export sees a plain conv (and BN folding still works).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def dsconv_quantize(weight: torch.Tensor, bits: int, block_size: int) -> torch.Tensor:
    """Return VQK * KDS for ``weight`` (O, I, kh, kw), blocks of ``block_size`` input channels.

    Per block vector w (one output channel, one block, one kernel position): the element of
    largest magnitude is scaled onto -2^(b-1), all are rounded and clamped to the b-bit signed
    range (VQK), and KDS = <w, q> / <q, q> is the least-squares scale. A zero block stays zero.
    """
    out_ch, in_ch, kh, kw = weight.shape
    n_blocks = math.ceil(in_ch / block_size)
    pad = n_blocks * block_size - in_ch
    w = F.pad(weight, (0, 0, 0, 0, 0, pad)) if pad else weight
    w = w.reshape(out_ch, n_blocks, block_size, kh, kw)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    idx = w.abs().argmax(dim=2, keepdim=True)
    extreme = torch.gather(w, 2, idx)  # signed element of largest magnitude
    safe = torch.where(extreme == 0, torch.ones_like(extreme), extreme)
    q = torch.clamp(torch.round(w * (lo / safe)), lo, hi)
    qq = (q * q).sum(dim=2, keepdim=True)
    kds = (w * q).sum(dim=2, keepdim=True) / torch.where(qq == 0, torch.ones_like(qq), qq)
    wq = (q * kds).reshape(out_ch, n_blocks * block_size, kh, kw)
    return wq[:, :in_ch] if pad else wq


class DSConv2d(nn.Module):
    """Conv2d whose weight is DSConv-quantized when ``bits`` is set (see module docstring)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int = 1,
        bias: bool = False,
        block_size: int = 32,
        bits: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.block_size, self.bits = block_size, bits
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default

    def effective_weight(self) -> torch.Tensor:
        if self.bits is None:
            return self.weight
        wq = dsconv_quantize(self.weight, self.bits, self.block_size)
        return self.weight + (wq - self.weight).detach()  # straight-through estimator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding)

    @torch.no_grad()
    def freeze(self) -> None:
        """Bake the quantized weight into ``weight`` and switch the quantizer off."""
        if self.bits is not None:
            self.weight.copy_(dsconv_quantize(self.weight, self.bits, self.block_size))
            self.bits = None

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.bias is not None}, block_size={self.block_size}, bits={self.bits}"
        )


def freeze_dsconv(model: nn.Module) -> nn.Module:
    """Freeze every DSConv in ``model`` in place (needed before ONNX export); returns ``model``."""
    for module in model.modules():
        if isinstance(module, DSConv2d):
            module.freeze()
    return model
