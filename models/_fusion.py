"""Skip fusion: RTSeg-Net's EFF block and UNeXt's plain addition."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EFF(nn.Module):
    """Efficient feature fusion of an upsampled decoder map F_D and an encoder skip F_S.

    F_D' = BN(Conv3x3, dilated)(F_D), F_S' = BN(Conv1x1)(F_S); z = F_D + F_S (``attn_input="raw"``,
    the released code) or F_D' + F_S' (``"proj"``, the figure); d = a*GAP(z) + b*GMP(z);
    gamma = sigmoid(conv1d_k(d) along channels); out = ReLU((1-gamma)*F_S' + gamma*F_D');
    aux = Conv1x1(gamma*F_D') (``aux_input="gated"``) or Conv1x1(F_D') (``"proj"``).

    The channel gate is written functionally (``gate_weight``/``gate_bias``, not an nn.Conv1d):
    a Conv1d running along the channel axis would otherwise make Torch-Pruning treat its input
    length as a pruneable width and silently block pruning of every width feeding a gate.
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        *,
        dilation: int = 2,
        gate_kernel: int = 3,
        attn_input: str = "raw",
        aux_input: str = "gated",
    ) -> None:
        super().__init__()
        self.attn_input, self.aux_input = attn_input, aux_input
        self.dec_conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.dec_bn = nn.BatchNorm2d(channels)
        self.skip_conv = nn.Conv2d(channels, channels, 1, bias=False)
        self.skip_bn = nn.BatchNorm2d(channels)
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.beta = nn.Parameter(torch.tensor(0.5))
        self.gate_weight = nn.Parameter(torch.empty(1, 1, gate_kernel))
        self.gate_bias = nn.Parameter(torch.zeros(1))
        nn.init.kaiming_uniform_(self.gate_weight, a=5**0.5)
        self.aux = nn.Conv2d(channels, num_classes, 1, bias=False)

    def gate_parameters(self) -> list[nn.Parameter]:
        """Parameters that must never be pruned (their shapes do not follow the channel width)."""
        return [self.alpha, self.beta, self.gate_weight, self.gate_bias]

    def forward(
        self, f_d: torch.Tensor, f_s: torch.Tensor, *, with_aux: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        d_proj = self.dec_bn(self.dec_conv(f_d))
        s_proj = self.skip_bn(self.skip_conv(f_s))
        z = f_d + f_s if self.attn_input == "raw" else d_proj + s_proj
        desc = self.alpha * z.mean(dim=(2, 3)) + self.beta * z.amax(dim=(2, 3))  # (B, C)
        k = self.gate_weight.shape[-1]
        gamma = torch.sigmoid(F.conv1d(desc.unsqueeze(1), self.gate_weight, self.gate_bias, padding=k // 2))
        gamma = gamma.squeeze(1)[:, :, None, None]  # (B, C, 1, 1)
        gated = gamma * d_proj
        out = F.relu((1 - gamma) * s_proj + gated)
        if not with_aux:
            return out, None
        return out, self.aux(gated if self.aux_input == "gated" else d_proj)


class AddFusion(nn.Module):
    """UNeXt's skip connection: F_D + F_S, no parameters, no aux map."""

    def forward(self, f_d: torch.Tensor, f_s: torch.Tensor, *, with_aux: bool = True) -> tuple[torch.Tensor, None]:
        return f_d + f_s, None
