"""RTSeg-Net family model: conv encoder, tokenized bottleneck, fused decoder, deep supervision."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models._config import RTSegConfig
from models._dsconv import DSConv2d
from models._fusion import EFF, AddFusion
from models._tokens import TokenStage

_ACTIVATIONS: dict[str, type[nn.Module]] = {"hardswish": nn.Hardswish, "relu": nn.ReLU, "gelu": nn.GELU}


def _resize(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    # Resize to the skip's size, not by a fixed factor 2, so odd input sizes work.
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ConvStage(nn.Module):
    """Encoder stage: conv 3x3 -> BN -> max-pool 2 -> activation (the released order)."""

    def __init__(self, in_ch: int, out_ch: int, cfg: RTSegConfig) -> None:
        super().__init__()
        if cfg.dsconv:
            self.conv = DSConv2d(in_ch, out_ch, 3, padding=1, block_size=cfg.dsconv_block_size, bits=cfg.dsconv_bits)
        else:
            self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = _ACTIVATIONS[cfg.activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.max_pool2d(self.bn(self.conv(x)), 2))


class UpStage(nn.Module):
    """Decoder stage: conv 3x3 (+bias) -> [BN] -> bilinear resize to ``size`` -> activation."""

    def __init__(self, in_ch: int, out_ch: int, cfg: RTSegConfig, *, norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_ch) if norm else nn.Identity()
        self.act = _ACTIVATIONS[cfg.activation]()

    def forward(self, x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
        return self.act(_resize(self.bn(self.conv(x)), size))


class RTSegNet(nn.Module):
    """Any member of the RTSeg-Net family, built from an :class:`RTSegConfig`.

    Input (B, in_channels, H, W), any H and W. ``forward`` returns the main logits
    (B, num_classes, H, W) in every mode. :meth:`forward_with_aux` returns ``(logits, aux)``,
    where ``aux`` is a tuple of the deep-supervision logit maps resized to H x W (four with EFF
    fusion and deep supervision on, otherwise empty); training calls it for the loss.
    """

    def __init__(self, cfg: RTSegConfig) -> None:
        super().__init__()
        self.config = cfg
        c1, c2, c3 = cfg.conv_widths
        c4, c5 = cfg.token_widths
        tok = {"mlp_ratio": cfg.mlp_ratio, "shift_size": cfg.shift_size, "drop_path": cfg.drop_path,
               "dropout": cfg.dropout}  # fmt: skip
        self.enc1 = ConvStage(cfg.in_channels, c1, cfg)
        self.enc2 = ConvStage(c1, c2, cfg)
        self.enc3 = ConvStage(c2, c3, cfg)
        self.tok4 = TokenStage(c3, c4, cfg.enc_depths[0], embed=True, **tok)
        self.tok5 = TokenStage(c4, c5, cfg.enc_depths[1], embed=True, **tok)
        self.up1 = UpStage(c5, c4, cfg)
        self.up2 = UpStage(c4, c3, cfg)
        self.up3 = UpStage(c3, c2, cfg)
        self.up4 = UpStage(c2, c1, cfg)
        self.up5 = UpStage(c1, c1, cfg, norm=False)
        self.fuse1, self.fuse2, self.fuse3, self.fuse4 = (self._fusion(c, cfg) for c in (c4, c3, c2, c1))
        self.dtok1 = TokenStage(c4, c4, cfg.dec_depths[0], embed=False, **tok)
        self.dtok2 = TokenStage(c3, c3, cfg.dec_depths[1], embed=False, **tok)
        self.head = nn.Conv2d(c1, cfg.num_classes, 1)

    @staticmethod
    def _fusion(channels: int, cfg: RTSegConfig) -> nn.Module:
        if cfg.fusion == "add":
            return AddFusion()
        return EFF(
            channels,
            cfg.num_classes,
            dilation=cfg.eff_dilation,
            gate_kernel=cfg.gate_kernel_for(channels),
            attn_input=cfg.eff_attn_input,
            aux_input=cfg.eff_aux_input,
        )

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        return self._forward(x, with_aux=self.config.deep_supervision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The aux heads are not computed here: they are not part of the deployed graph (and
        # thop/fvcore count this graph); the loss gets them from forward_with_aux.
        return self._forward(x, with_aux=False)[0]

    def _forward(self, x: torch.Tensor, *, with_aux: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        size = x.shape[-2:]
        t1 = self.enc1(x)
        t2 = self.enc2(t1)
        t3 = self.enc3(t2)
        t4 = self.tok4(t3)
        out = self.tok5(t4)
        aux = []
        for up, fuse, dtok, skip in (
            (self.up1, self.fuse1, self.dtok1, t4),
            (self.up2, self.fuse2, self.dtok2, t3),
            (self.up3, self.fuse3, None, t2),
            (self.up4, self.fuse4, None, t1),
        ):
            out, a = fuse(up(out, skip.shape[-2:]), skip, with_aux=with_aux)
            if a is not None:
                aux.append(_resize(a, size))
            if dtok is not None:
                out = dtok(out)
        return self.head(self.up5(out, size)), tuple(aux)


def build_model(cfg: RTSegConfig) -> RTSegNet:
    """The only constructor of the family."""
    return RTSegNet(cfg)


def count_parameters(model: nn.Module) -> int:
    """The true number of trainable parameters (sum of ``p.numel()``), not a profiler's estimate."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
