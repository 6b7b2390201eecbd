import json

import pytest

from models import PRESETS, RTSegConfig, create_config, list_presets
from rtseg_core import ConfigError


@pytest.mark.parametrize("name", list_presets())
def test_json_round_trip(name):
    cfg = PRESETS[name]
    again = RTSegConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and hash(again) == hash(cfg)


def test_presets_differ_only_where_documented():
    paper, figure, unext = PRESETS["paper"], PRESETS["paper-figure"], PRESETS["unext"]
    assert (figure.eff_attn_input, figure.eff_aux_input) == ("proj", "proj")
    assert figure.replace(eff_attn_input="raw", eff_aux_input="gated") == paper
    assert (unext.in_channels, unext.num_classes, unext.fusion, unext.activation) == (3, 1, "add", "relu")
    assert not unext.dsconv and not unext.deep_supervision


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"conv_widths": (16, 32)}, "conv_widths"),
        ({"token_widths": (0, 256)}, "token_widths"),
        ({"enc_depths": (1, -1)}, "enc_depths"),
        ({"shift_size": 4}, "shift_size"),
        ({"mlp_ratio": 0}, "mlp_ratio"),
        ({"dsconv_bits": 1}, "dsconv_bits"),
        ({"activation": "swish"}, "activation"),
        ({"fusion": "concat"}, "fusion"),
        ({"eff_gate_kernel": 2}, "eff_gate_kernel"),
        ({"fusion": "add"}, "deep_supervision"),
        ({"in_channels": 0}, "in_channels"),
    ],
)
def test_validation_names_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        PRESETS["paper"].replace(**changes)


def test_unknown_field_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'shift_size'"):
        RTSegConfig.from_dict({"shift_sise": 5})


def test_create_config_from_files_and_errors(tmp_path):
    path = tmp_path / "variant.json"
    cfg = PRESETS["paper"].replace(token_widths=(128, 192))
    path.write_text(json.dumps({"params": 1, "config": cfg.to_dict()}))
    assert create_config(str(path)) == cfg
    path.write_text(json.dumps(cfg.to_dict()))
    assert create_config(path, shift_size=3) == cfg.replace(shift_size=3)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        create_config(bad)
    with pytest.raises(ConfigError, match="Did you mean 'paper'"):
        create_config("papr")
    bad.write_text(json.dumps({"token_widths": [1, 2, 3]}))
    with pytest.raises(ConfigError, match=r"bad.json.*token_widths"):
        create_config(bad)


# The size of a config, known before anything is built (issue 23: configs that need gigabytes)
VARIANTS = [
    *PRESETS.values(),
    PRESETS["paper"].replace(conv_widths=(8, 24, 40), token_widths=(56, 72), mlp_ratio=2.5, shift_size=3),
    PRESETS["paper"].replace(enc_depths=(0, 3), dec_depths=(2, 0), eff_gate_kernel=0, num_classes=5),
    PRESETS["paper"].replace(dsconv=False, in_channels=3, token_widths=(7, 9), mlp_ratio=0.5),
    PRESETS["unext"].replace(enc_depths=(0, 0), dec_depths=(0, 0)),
]


@pytest.mark.parametrize("cfg", VARIANTS, ids=range(len(VARIANTS)))
def test_the_parameter_count_is_known_exactly_before_building(cfg):
    from models import build_model, count_parameters

    assert cfg.estimated_parameters() == count_parameters(build_model(cfg))


@pytest.mark.parametrize("cfg", VARIANTS, ids=range(len(VARIANTS)))
def test_the_activation_estimate_is_within_2x_of_what_a_forward_pass_creates(cfg):
    """Counted on the meta device: every tensor an operator creates (views and in-place ones aside)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from models import build_model

    class Created(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not func._schema.is_mutable and not any(r.alias_info for r in func._schema.returns):
                for t in out if isinstance(out, (tuple, list)) else [out]:
                    if isinstance(t, torch.Tensor):
                        Created.total += t.numel() * t.element_size()
            return out

    with torch.device("meta"):
        model = build_model(cfg).train()
    with Created():
        model.forward_with_aux(torch.empty(1, cfg.in_channels, 96, 96, device="meta"))
    estimate = cfg.estimated_activation_bytes(96, training=True)
    assert 0.5 <= estimate / Created.total <= 2.0, (estimate, Created.total)


def test_a_config_too_large_to_build_is_refused_with_its_numbers():
    with pytest.raises(ConfigError) as info:
        RTSegConfig(conv_widths=(4096,) * 3, token_widths=(4096,) * 2, enc_depths=(32, 32), dec_depths=(32, 32),
                    mlp_ratio=16)  # fmt: skip
    message = str(info.value)
    assert "70,843,666,459 parameters (283.4 GB of float32 weights" in message and "200,000,000" in message


def test_a_run_whose_activations_exceed_the_memory_is_refused_before_it_starts():
    cfg = PRESETS["paper"].replace(conv_widths=(1024, 1024, 1024), token_widths=(1024, 1024))
    cfg.check_memory(size=256, batch=1, limit_bytes=2**34)  # 16 GiB: fits
    with pytest.raises(ConfigError) as info:
        cfg.check_memory(size=2048, batch=8, training=True, limit_bytes=2**34, where="the test's budget has")
    message = str(info.value)
    assert "training this model at 2048x2048, batch 8 needs about 1246.6 GiB" in message
    assert "more than the 16.0 GiB of memory the test's budget has" in message
