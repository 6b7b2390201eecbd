"""The elastic supernet: a subnet's forward equals the standalone member with the sliced weights copied in."""

from __future__ import annotations

import pytest
import torch

from models import ElasticRTSegNet, build_model, create_config, recalibrate_batchnorm
from models._elastic import slice_like
from rtseg_core import ConfigError

# The default search space's widest member (every range at its high end): it contains `paper`.
CONTAINER = create_config(
    "paper", conv_widths=(24, 48, 160), token_widths=(192, 320), enc_depths=(3, 3), dec_depths=(2, 2), mlp_ratio=4.0
)
PAPER = create_config("paper")
MEMBERS = {
    "paper": PAPER,
    "widths": PAPER.replace(conv_widths=(8, 24, 72), token_widths=(104, 184)),
    "depths": PAPER.replace(enc_depths=(3, 0), dec_depths=(0, 2)),
    "mlp-ratio": PAPER.replace(mlp_ratio=3.0, token_widths=(192, 200)),
    "shift": PAPER.replace(shift_size=3, conv_widths=(16, 40, 96)),
    "shift7-dsconv4": PAPER.replace(shift_size=7, dsconv_bits=4, conv_widths=(24, 48, 120)),
    "container": CONTAINER,
}


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    net = ElasticRTSegNet(CONTAINER)
    # Non-trivial BatchNorm statistics and affines, so a wrongly sliced buffer shows in the output.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize("name", list(MEMBERS))
def test_subnet_forward_equals_the_standalone_member_with_sliced_weights(supernet, name):
    cfg = MEMBERS[name]
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    member = build_model(cfg)
    # Copy the slices by hand (prefix of every axis), independently of ElasticRTSegNet.extract.
    big = supernet.net.state_dict()
    member.load_state_dict(
        {k: big[k][tuple(slice(0, s) for s in v.shape)].clone() for k, v in member.state_dict().items()}
    )
    supernet.eval()
    with torch.no_grad():
        assert torch.allclose(supernet.forward_subnet(cfg, x), member.eval()(x), atol=1e-5)
        assert torch.allclose(supernet.extract(cfg).eval()(x), member(x), atol=1e-5)
    # Training mode: batch statistics, the deep-supervision maps too.
    supernet.train()
    try:
        logits, aux = supernet.forward_subnet_with_aux(cfg, x)
    finally:
        supernet.eval()
    ref_logits, ref_aux = member.train().forward_with_aux(x)
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    assert len(aux) == len(ref_aux) == 4 and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(aux, ref_aux))


def test_a_subnet_uses_exactly_its_prefix_of_the_shared_weights(supernet):
    cfg = MEMBERS["widths"]  # C2 = 24 of the container's 48
    x = torch.randn(1, 1, 32, 32)
    w = supernet.net.enc2.conv.weight
    before = supernet.forward_subnet(cfg, x).detach()
    saved = w.detach().clone()
    try:
        with torch.no_grad():
            w[24:] += 5.0  # output channels beyond the member's width
            w[:, 8:] += 5.0  # input channels beyond the member's C1 = 8
        assert torch.equal(supernet.forward_subnet(cfg, x).detach(), before)
        with torch.no_grad():
            w[:24, :8] += 0.5
        assert not torch.allclose(supernet.forward_subnet(cfg, x).detach(), before)
    finally:
        with torch.no_grad():
            w.copy_(saved)


def test_gradients_of_a_subnet_reach_only_its_slices(supernet):
    cfg = PAPER.replace(enc_depths=(1, 1), mlp_ratio=2.0)
    supernet.zero_grad(set_to_none=True)
    supernet.train()
    try:
        logits, aux = supernet.forward_subnet_with_aux(cfg, torch.randn(2, 1, 32, 32))
        (logits.square().mean() + sum(a.square().mean() for a in aux)).backward()
    finally:
        supernet.eval()
    fc1 = supernet.net.tok5.blocks[0].mlp.fc1.weight.grad  # (4 * 320, 320) in the container
    assert fc1[: 2 * 256, :256].abs().sum() > 0
    assert fc1[2 * 256 :].abs().sum() == 0 and fc1[:, 256:].abs().sum() == 0
    assert supernet.net.tok5.blocks[1].mlp.fc1.weight.grad is None  # block 2 is not in the member
    supernet.zero_grad(set_to_none=True)


def test_members_outside_the_supernet_are_refused_naming_the_field(supernet):
    with pytest.raises(ConfigError, match=r"conv_widths\[2\]: 192 exceeds the supernet's 160"):
        supernet.check_member(PAPER.replace(conv_widths=(16, 32, 192)))
    with pytest.raises(ConfigError, match="activation"):
        supernet.check_member(PAPER.replace(activation="relu"))
    with pytest.raises(ConfigError, match="enc_depths"):
        supernet.forward_subnet(PAPER.replace(enc_depths=(4, 1)), torch.randn(1, 1, 32, 32))


def test_a_shorter_gate_kernel_is_the_centre_of_the_longer_one():
    w = torch.arange(5.0).reshape(1, 1, 5)
    assert slice_like(w, (1, 1, 3), name="fuse1.gate_weight").flatten().tolist() == [1.0, 2.0, 3.0]
    assert slice_like(torch.arange(6.0), (3,), name="bn.weight").tolist() == [0.0, 1.0, 2.0]


def test_batchnorm_recalibration_changes_statistics_not_weights(supernet):
    model = supernet.extract(MEMBERS["widths"]).eval()
    weights = {k: v.clone() for k, v in model.named_parameters()}
    stats = {k: v.clone() for k, v in model.named_buffers() if "running" in k}
    gen = torch.Generator().manual_seed(3)
    batches = [torch.rand(4, 1, 32, 32, generator=gen) * 3 + 1 for _ in range(2)]
    assert recalibrate_batchnorm(model, batches) == 8
    assert not model.training
    assert all(torch.equal(v, weights[k]) for k, v in model.named_parameters())
    changed = [k for k, v in model.named_buffers() if "running" in k and not torch.allclose(v, stats[k])]
    assert len(changed) == len(stats)
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    # Equal weight per batch: the running mean of the first BN is the mean over both batches.
    conv_out = torch.cat([torch.nn.functional.conv2d(b, model.enc1.conv.weight, padding=1) for b in batches])
    assert torch.allclose(model.enc1.bn.running_mean, conv_out.mean(dim=(0, 2, 3)), atol=1e-4)
