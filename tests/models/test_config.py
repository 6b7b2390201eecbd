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
