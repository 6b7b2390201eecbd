"""Tokenized shifted-MLP (TMP) blocks, as in UNeXt, with any MLP ratio and any channel count."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def shift_group_sizes(channels: int, shift_size: int) -> list[int]:
    """Channel-group sizes of the shift: ceil(C / shift) each, the last one smaller.

    Python ints on purpose: tensor-valued sizes make the ONNX exporter write wrong Slice bounds
    when C is not a multiple of the shift size, and ``torch.chunk`` breaks Torch-Pruning's tracing.
    Like ``torch.chunk``, fewer than ``shift_size`` groups come out when C is small.
    """
    size = math.ceil(channels / shift_size)
    sizes = [size] * (channels // size)
    if channels % size:
        sizes.append(channels % size)
    return sizes


def shift_tokens(tokens: torch.Tensor, height: int, width: int, shift_size: int, dim: int) -> torch.Tensor:
    """Shift channel group g of a (B, N, C) token map by g - shift//2 pixels along ``dim`` (2=H, 3=W)."""
    b, n, c = tokens.shape
    pad = shift_size // 2
    if pad == 0:
        return tokens
    x = tokens.transpose(1, 2).reshape(b, c, height, width)
    x = F.pad(x, (pad, pad, pad, pad))
    groups = torch.split(x, shift_group_sizes(c, shift_size), dim=1)
    x = torch.cat([torch.roll(g, s, dim) for g, s in zip(groups, range(-pad, pad + 1))], dim=1)
    x = x[:, :, pad : pad + height, pad : pad + width]
    return x.reshape(b, c, n).transpose(1, 2)


class DropPath(nn.Module):
    """Stochastic depth on the residual branch (identity in eval or when ``p == 0``)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class ShiftedMLP(nn.Module):
    """H-shift -> Linear C->Ch -> depthwise 3x3 -> GELU -> W-shift -> Linear Ch->C."""

    def __init__(self, dim: int, hidden: int, shift_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.shift_size = shift_size
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = self.fc1(shift_tokens(x, height, width, self.shift_size, dim=2))
        b, n, ch = x.shape  # reshape with the hidden width: UNeXt's code used C and broke for ratio != 1
        x = self.dwconv(x.transpose(1, 2).reshape(b, ch, height, width)).flatten(2).transpose(1, 2)
        x = self.drop(self.act(x))
        x = self.fc2(shift_tokens(x, height, width, self.shift_size, dim=3))
        return self.drop(x)


class TMPBlock(nn.Module):
    """``t + DropPath(ShiftedMLP(LN(t)))`` on (B, N, C) tokens."""

    def __init__(self, dim: int, mlp_ratio: float, shift_size: int, drop_path: float = 0.0, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = ShiftedMLP(dim, max(1, round(dim * mlp_ratio)), shift_size, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return x + self.drop_path(self.mlp(self.norm(x), height, width))


class TokenStage(nn.Module):
    """Optional overlapping patch embedding (3x3 stride-2 conv + LN), TMP blocks, final LN.

    Input and output are (B, C, H, W) maps; tokens live only inside. With ``depth == 0`` and no
    embedding the stage is the identity.
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        depth: int,
        *,
        embed: bool,
        mlp_ratio: float,
        shift_size: int,
        drop_path: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Conv2d(in_dim, dim, 3, stride=2, padding=1) if embed else None
        self.embed_norm = nn.LayerNorm(dim) if embed else None
        self.blocks = nn.ModuleList(TMPBlock(dim, mlp_ratio, shift_size, drop_path, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim) if depth else None
        self.apply(_init_token_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embed is None and self.norm is None:
            return x  # no embedding, no blocks: the identity
        t, (b, c, h, w) = self.enter(x)
        for block in self.blocks:
            t = block(t, h, w)
        return self.leave(t, (b, c, h, w))

    # The stage's parts, in the order forward calls them (profiling decomposes each part once).
    def enter(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """(B, C, H, W) map -> (B, N, C) tokens (embedded and normalised when the stage embeds), and the map's shape."""
        if self.embed is not None:
            x = self.embed(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        if self.embed_norm is not None:
            t = self.embed_norm(t)
        return t, (b, c, h, w)

    def leave(self, t: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """(B, N, C) tokens -> the final LayerNorm (when there are blocks) -> a (B, C, H, W) map."""
        if self.norm is not None:
            t = self.norm(t)
        b, c, h, w = shape
        return t.transpose(1, 2).reshape(b, c, h, w)


def _init_token_weights(m: nn.Module) -> None:
    # UNeXt's initialisation for the token stages.
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
