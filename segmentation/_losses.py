"""The training loss: CE + soft Dice on the main logits, soft Dice on each deep-supervision map."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss, DiceLoss
from torch import nn


class DeepSupervisionLoss(nn.Module):
    """``L = DiceCE(main) + aux_weight * mean_k Dice(aux_k)``.

    Targets are (B, H, W) label maps; logits are (B, C, H, W) without activation. The Dice terms
    leave the background out (``include_background=False``): the small PS would otherwise be
    swamped by the background's near-perfect overlap.
    """

    def __init__(self, aux_weight: float = 1.0) -> None:
        super().__init__()
        self.aux_weight = aux_weight
        self.main = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
        self.aux = DiceLoss(to_onehot_y=True, softmax=True, include_background=False)

    def forward(self, logits: torch.Tensor, aux: tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
        y = target.unsqueeze(1)
        loss = self.main(logits, y)
        if aux and self.aux_weight:
            loss = loss + self.aux_weight * torch.stack([self.aux(a, y) for a in aux]).mean()
        return loss
