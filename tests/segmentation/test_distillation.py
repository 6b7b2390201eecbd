import copy
import json
import math

import pytest
import torch

from models import build_model, create_config
from rtseg_core import ConfigError
from segmentation import (
    DeepSupervisionLoss,
    Distillation,
    DistillationLoss,
    TrainConfig,
    kd_divergence,
    train,
)

TINY = create_config("paper", conv_widths=(8, 8, 16), token_widths=(16, 24))


def _softmax(values, t):
    e = [math.exp(v / t) for v in values]
    return [x / sum(e) for x in e]


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def test_kd_divergence_is_t_squared_times_the_pixel_mean_of_kl_teacher_to_student():
    # two pixels, three classes: (B=1, C=3, H=1, W=2)
    student = [[0.0, 1.0], [0.5, -1.0], [2.0, 0.0]]
    teacher = [[1.0, 0.0], [0.0, 2.0], [-1.0, 0.5]]
    s = torch.tensor(student).view(1, 3, 1, 2)
    t = torch.tensor(teacher).view(1, 3, 1, 2)
    for temperature in (1.0, 2.0, 4.0):
        by_hand = [
            _kl(_softmax([teacher[c][px] for c in range(3)], temperature),
                _softmax([student[c][px] for c in range(3)], temperature))
            for px in range(2)
        ]  # fmt: skip
        expected = temperature**2 * sum(by_hand) / 2
        assert kd_divergence(s, t, temperature).item() == pytest.approx(expected, rel=1e-5)
    assert kd_divergence(t, t, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_distillation_loss_mixes_task_and_kd_by_weight_and_adds_the_aux_maps_when_asked():
    torch.manual_seed(0)
    logits, teacher = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    aux, t_aux = (torch.randn(2, 3, 4, 4),), (torch.randn(2, 3, 4, 4),)
    target = torch.randint(0, 3, (2, 4, 4))
    task = DeepSupervisionLoss()
    plain = task(logits, aux, target).item()
    kd = kd_divergence(logits, teacher, 3.0).item()
    loss = DistillationLoss(task, Distillation(weight=0.25, temperature=3.0))
    assert loss(logits, aux, target, teacher, t_aux).item() == pytest.approx(0.75 * plain + 0.25 * kd, rel=1e-5)
    with_aux = DistillationLoss(task, Distillation(weight=0.25, temperature=3.0, aux=True))
    kd_aux = kd_divergence(aux[0], t_aux[0], 3.0).item()
    assert with_aux(logits, aux, target, teacher, t_aux).item() == pytest.approx(
        0.75 * plain + 0.25 * (kd + kd_aux), rel=1e-5
    )
    with pytest.raises(ConfigError, match="teacher's"):
        kd_divergence(logits, teacher[:, :2], 2.0)


def test_distillation_options_are_validated_labelled_and_read_back():
    d = Distillation(weight=0.9, temperature=4)
    assert d.label() == "kd0.9-T4" and Distillation(aux=True).label().endswith("-aux")
    assert Distillation.from_dict(d.to_dict()) == d
    with pytest.raises(ConfigError, match="--kd-weight"):
        Distillation(weight=1.5)
    with pytest.raises(ConfigError, match="--kd-temperature"):
        Distillation(temperature=0)
    with pytest.raises(ConfigError, match="exactly weight, temperature, aux"):
        Distillation.from_dict({"weight": 0.5})


def test_train_with_a_teacher_records_the_loss_and_leaves_the_teacher_unchanged(tmp_path):
    cfg = TrainConfig(data="synthetic:24", size=32, epochs=1, batch_size=4, seed=3, device="cpu")
    torch.manual_seed(1)
    teacher = build_model(TINY)
    before = copy.deepcopy(teacher.state_dict())
    result = train(TINY, cfg, tmp_path, progress=False, teacher=teacher, distill=Distillation(0.5, 2.0))
    assert [e.loss_fn for e in result.epochs] == ["task+kd0.5-T2"]
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"][0]["loss_fn"] == "task+kd0.5-T2"
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert teacher.training  # ran in eval mode (its BN statistics above are unchanged), mode restored after
    plain = train(TINY, cfg, None, progress=False)
    assert plain.epochs[0].loss_fn == "task" and plain.epochs[0].loss != result.epochs[0].loss
    with pytest.raises(ConfigError, match="both a teacher"):
        train(TINY, cfg, None, progress=False, teacher=teacher)
