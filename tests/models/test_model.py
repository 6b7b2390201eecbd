import pytest
import torch

from models import (
    EFF,
    PRESETS,
    build_model,
    count_parameters,
    create_config,
    dsconv_quantize,
    freeze_dsconv,
    list_presets,
    shift_group_sizes,
    shift_tokens,
)

# Per-stage counts of the released network with a 1-channel input (docs/architecture.md states them too).
PAPER_STAGES = {
    "enc1": 176, "enc2": 4672, "enc3": 37120, "tok4": 238560, "tok5": 504576,
    "up1": 369120, "fuse1": 257126, "dtok1": 53760, "up2": 184704, "fuse2": 164742, "dtok2": 34816,
    "up3": 36960, "fuse3": 10470, "up4": 4656, "fuse4": 2678, "up5": 2320, "head": 51,
}  # fmt: skip


def test_paper_has_exact_parameter_count_per_stage():
    model = build_model(PRESETS["paper"])
    assert count_parameters(model) == 1_906_507
    for name, expected in PAPER_STAGES.items():
        assert count_parameters(getattr(model, name)) == expected, name


def test_paper_with_rgb_input_and_unext_counts():
    assert count_parameters(build_model(create_config("paper", in_channels=3))) == 1_906_795
    assert count_parameters(build_model(PRESETS["unext"])) == 1_471_921
    assert count_parameters(build_model(create_config("unext", in_channels=1, num_classes=3))) == 1_471_667


def test_eff_parameter_formula():
    for c in (8, 16, 33, 160):
        assert count_parameters(EFF(c, 3)) == 10 * c * c + 7 * c + 6


@pytest.mark.parametrize("name", list_presets())
def test_presets_forward_with_aux_gives_logits_and_deep_supervision_maps(name):
    cfg = PRESETS[name]
    model = build_model(cfg).train()
    x = torch.randn(2, cfg.in_channels, 64, 64)
    logits, aux = model.forward_with_aux(x)
    assert logits.shape == (2, cfg.num_classes, 64, 64)
    assert len(aux) == (4 if cfg.deep_supervision else 0)
    assert all(a.shape == logits.shape for a in aux)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_forward_returns_the_logits_tensor_in_every_mode(mode):
    torch.manual_seed(0)
    model = build_model(create_config("paper", conv_widths=(8, 8, 16), token_widths=(16, 24), dropout=0.0))
    model.train(mode == "train")
    x = torch.randn(2, 1, 32, 32)
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 32, 32)
    # the same main logits as forward_with_aux (no dropout/drop-path here; BN in train mode uses batch
    # statistics both times)
    torch.testing.assert_close(out, model.forward_with_aux(x)[0])


def test_odd_sizes_ratios_and_widths_not_divisible_by_shift():
    cfg = create_config(
        "paper", conv_widths=(8, 20, 44), token_widths=(52, 66), mlp_ratio=2.5, shift_size=7,
        enc_depths=(2, 0), dec_depths=(0, 2), eff_gate_kernel=0, activation="gelu",
    )  # fmt: skip
    model = build_model(cfg).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 77, 101)).shape == (1, 3, 77, 101)


def test_shift_groups_are_python_ints_like_chunk():
    for c, s in [(160, 5), (66, 7), (8, 5), (3, 3), (1, 5)]:
        sizes = shift_group_sizes(c, s)
        assert all(type(v) is int for v in sizes)
        assert sizes == [t.shape[0] for t in torch.arange(c).chunk(s)]


def test_shift_moves_each_group_by_its_offset():
    b, h, w, c = 1, 6, 6, 5
    grid = torch.zeros(b, c, h, w)
    grid[:, :, 3, 3] = 1.0
    tokens = grid.flatten(2).transpose(1, 2)
    out = shift_tokens(tokens, h, w, 5, dim=2).transpose(1, 2).reshape(b, c, h, w)
    for g, offset in enumerate(range(-2, 3)):
        assert out[0, g, 3 + offset, 3] == 1.0
        assert out[0, g].sum() == 1.0


def test_dsconv_quantizer_matches_reference_rule():
    torch.manual_seed(0)
    w = torch.randn(4, 40, 3, 3)
    for bits in (2, 4, 8):
        wq = dsconv_quantize(w, bits, 16)
        assert wq.shape == w.shape
        # Per block vector: values are KDS * integers in the b-bit range, extreme maps to -2^(b-1).
        vec, qvec = w[1, 16:32, 0, 2], wq[1, 16:32, 0, 2]
        extreme = vec[vec.abs().argmax()]
        q = torch.clamp(torch.round(vec * (-(2 ** (bits - 1)) / extreme)), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        kds = (vec @ q) / (q @ q)
        torch.testing.assert_close(qvec, q * kds)
    err8 = (dsconv_quantize(w, 8, 16) - w).abs().mean()
    err2 = (dsconv_quantize(w, 2, 16) - w).abs().mean()
    assert err8 < err2 and err8 < 0.02


def test_dsconv_bits_trains_through_ste_and_freezes_to_same_output():
    cfg = create_config("paper", dsconv_bits=4, conv_widths=(8, 16, 32), token_widths=(32, 48))
    model = build_model(cfg)
    x = torch.randn(2, 1, 32, 32)
    logits, aux = model.forward_with_aux(x)
    (logits.sum() + sum(a.sum() for a in aux)).backward()
    assert model.enc2.conv.weight.grad is not None and model.enc2.conv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        before = model(x)
        freeze_dsconv(model)
        assert model.enc2.conv.bits is None
        torch.testing.assert_close(model(x), before)


def test_bits_none_is_a_plain_conv():
    model = build_model(PRESETS["paper"]).eval()
    conv = model.enc2.conv
    x = torch.randn(1, 16, 9, 9)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, conv.weight, None, 1, 1))


def test_the_architecture_page_states_the_built_counts():
    """docs/architecture.md's per-stage table and total are the counts of the `paper` build."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\w+) \|.*\| ([\d,]+) \|$", page, flags=re.MULTILINE))
    stated = {name: int(count.replace(",", "")) for name, count in rows.items()}
    model = build_model(PRESETS["paper"])
    assert stated == {name: count_parameters(getattr(model, name)) for name in stated}
    assert set(stated) == set(PAPER_STAGES)
    assert f"**{count_parameters(model):,}**" in page
