"""Parameter, MAC and activation-memory counts, checked against the paper's numbers and by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import EFF, DSConv2d, build_model, count_parameters, create_config
from profiling import (
    CostRecord,
    count_costs,
    count_parameters_paper_convention,
    peak_activation_memory,
    trace_forward,
)

SMALL = {"conv_widths": (8, 16, 32), "token_widths": (32, 48)}
TINY = {**SMALL, "enc_depths": (0, 0), "dec_depths": (0, 0)}  # no token blocks: quick to count
H = 32


@pytest.fixture(scope="module")
def paper_costs() -> CostRecord:
    return count_costs(build_model(create_config("paper")), height=256, model_name="paper")


def test_paper_parameters_true_and_paper_convention(paper_costs):
    assert paper_costs.params == 1_906_507
    # The "1.86M" of the paper: thop's rule on the released code (DSConv and EFF scalars/gate skipped).
    assert paper_costs.params_paper_convention == 1_864_867


def test_paper_macs_agree_between_fvcore_and_thop_with_the_dsconv_rule(paper_costs):
    fv, th = paper_costs.macs_fvcore, paper_costs.macs_thop
    assert 0.87e9 < fv < 0.89e9
    assert abs(fv - th) / fv < 0.01
    # Without a DSConv rule thop misses the three encoder convs: the paper's 0.64 G.
    assert 0.640e9 < paper_costs.macs_thop_paper_convention < 0.645e9
    assert "DSConv2d x3 (41,616 params" in paper_costs.thop_skipped
    assert "hardswish" in paper_costs.fvcore_skipped


def test_paper_convention_is_true_count_minus_dsconv_and_non_leaf_parameters():
    model = build_model(create_config("paper", **SMALL))
    dsconv = sum(p.numel() for m in model.modules() if isinstance(m, DSConv2d) for p in m.parameters())
    eff_owned = sum(p.numel() for m in model.modules() if isinstance(m, EFF) for p in m.parameters(recurse=False))
    assert eff_owned == 4 * (2 + 3 + 1)  # alpha, beta, gate kernel 3, gate bias per EFF
    assert count_parameters_paper_convention(model) == count_parameters(model) - dsconv - eff_owned


@pytest.fixture(scope="module")
def tiny():
    cfg = create_config("paper", **TINY)
    model = build_model(cfg)
    return cfg, model, count_costs(model, height=H, model_name="tiny")


def test_the_dsconv_rule_adds_exactly_the_encoder_conv_macs(tiny):
    cfg, _, rec = tiny
    c_in, (c1, c2, c3) = cfg.in_channels, cfg.conv_widths
    # each stage's conv runs at its input resolution (before the max-pool): out elements * in channels * 3 * 3
    by_hand = H * H * c1 * c_in * 9 + (H // 2) ** 2 * c2 * c1 * 9 + (H // 4) ** 2 * c3 * c2 * 9
    assert rec.macs_thop - rec.macs_thop_paper_convention == by_hand
    assert rec.macs_thop_paper_convention < rec.macs_thop


def test_include_aux_counts_the_four_aux_heads(tiny):
    cfg, model, plain = tiny
    with_aux = count_costs(model, height=H, include_aux=True)
    c1, c2, c3 = cfg.conv_widths
    c4 = cfg.token_widths[0]
    # 1x1 aux convs (no bias) on the fused maps at 1/16, 1/8, 1/4 and 1/2 of the input size
    aux_macs = sum(c * cfg.num_classes * (H // f) ** 2 for c, f in ((c4, 16), (c3, 8), (c2, 4), (c1, 2)))
    assert with_aux.macs_thop - plain.macs_thop == aux_macs
    assert with_aux.params == plain.params  # parameters belong to the model either way
    assert with_aux.include_aux and not plain.include_aux
    assert model.training  # counting works on a copy; the caller's module is untouched


def test_peak_activation_memory_of_a_known_chain():
    h = w = 32
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1)).eval()
    peak, method = peak_activation_memory(model, torch.randn(1, 1, h, w))
    # The conv output and the ReLU output (both 8 x 32 x 32 fp32) are alive together; then the
    # conv output is released before the 2-channel output appears.
    assert peak == 2 * 8 * h * w * 4
    assert method.startswith("cpu:")


def test_trace_counts_conv_and_linear_macs_like_fvcore():
    from fvcore.nn import FlopCountAnalysis

    model = build_model(create_config("paper", **SMALL)).eval()
    x = torch.randn(1, 1, 64, 64)
    by_op = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).by_operator()
    assert trace_forward(model, x).macs == by_op["conv"] + by_op["linear"]


def test_cost_record_round_trips_through_json(paper_costs):
    import json

    again = CostRecord.from_dict(json.loads(paper_costs.to_json()))
    assert again == paper_costs
