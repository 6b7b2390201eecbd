"""The training losses: the task loss (CE + soft Dice on the main logits, soft Dice on each
deep-supervision map) and knowledge distillation from a teacher (:class:`Distillation`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss
from torch import nn

from rtseg_core import ConfigError
from segmentation._config import Distillation


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


def kd_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``: summed over classes (dim 1), mean over the rest."""
    if student.shape != teacher.shape:
        raise ConfigError(
            f"distillation: the student's logits {tuple(student.shape)} and the teacher's {tuple(teacher.shape)} differ"
        )
    t = temperature
    log_p_teacher, log_p_student = F.log_softmax(teacher / t, dim=1), F.log_softmax(student / t, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True)  # p_t * (log p_t - log p_s)
    return kl.sum(1).mean() * (t * t)


class DistillationLoss(nn.Module):
    """The task loss mixed with distillation from a teacher's outputs (see :class:`Distillation`)."""

    def __init__(self, task: DeepSupervisionLoss, distill: Distillation) -> None:
        super().__init__()
        self.task = task
        self.distill = distill

    def forward(
        self,
        logits: torch.Tensor,
        aux: tuple[torch.Tensor, ...],
        target: torch.Tensor,
        teacher_logits: torch.Tensor,
        teacher_aux: tuple[torch.Tensor, ...] = (),
    ) -> torch.Tensor:
        d = self.distill
        kd = kd_divergence(logits, teacher_logits, d.temperature)
        if d.aux and aux:
            if len(aux) != len(teacher_aux):
                raise ConfigError(
                    f"distillation with aux: the student has {len(aux)} deep-supervision map(s), the teacher "
                    f"{len(teacher_aux)}"
                )
            kd = kd + torch.stack([kd_divergence(a, b, d.temperature) for a, b in zip(aux, teacher_aux)]).mean()
        task = self.task(logits, aux, target) if d.weight < 1.0 else logits.new_zeros(())
        return (1.0 - d.weight) * task + d.weight * kd


def loss_label(distill: Distillation | None) -> str:
    """What a training log records as its loss: ``task`` or ``task+kd0.5-T2``."""
    return "task" if distill is None else f"task+{distill.label()}"
