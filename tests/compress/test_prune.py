"""Structured pruning of the RTSeg-Net family: shapes, ONNX parity, widths, replay, targets, bad input."""

from __future__ import annotations

import pytest
import torch

from compress import PruneSpec, prune_model
from models import (
    EFF,
    DSConv2d,
    build_model,
    count_parameters,
    create_config,
    feasible_width,
    load_checkpoint,
    load_model,
    shift_aware_keep,
    shift_group_sizes,
    shift_tokens,
)
from profiling import ExportConfig, export_onnx
from rtseg_core import CompressionError, ConfigError


def _export_diff(model, tmp_path, size=32) -> float:
    # export_onnx runs a real ONNX Runtime session and raises if it differs from PyTorch by > atol
    return export_onnx(model, tmp_path / "m.onnx", ExportConfig(height=size, width=size, atol=1e-4)).max_abs_diff


@pytest.mark.parametrize(
    "ratio, arch",
    [(0.25, {}), (0.6, {"mlp_ratio": 2.0, "enc_depths": (2, 1), "dec_depths": (0, 2), "shift_size": 3})],
    ids=["r0.25-small", "r0.6-deep-mlp2-shift3"],
)
def test_pruning_keeps_shapes_and_matches_onnxruntime(tools, tmp_path, ratio, arch):
    model = tools.random_model(tools.small_config(**arch))
    before = count_parameters(model)
    result = prune_model(model, PruneSpec(ratio=ratio, size=32))
    x = torch.randn(2, 1, 40, 48)
    model.eval()
    assert model(x).shape == (2, 3, 40, 48)
    logits, aux = model.forward_with_aux(x)
    assert len(aux) == 4 and all(a.shape == (2, 3, 40, 48) for a in aux)
    assert result.params_before == before and result.params_after == count_parameters(model) < before
    assert result.macs_after < result.macs_before
    assert isinstance(model.enc1.conv, DSConv2d)  # the family's types survive pruning
    # class outputs and the EFF gate are untouched
    assert model.head.out_channels == 3 and all(m.aux.out_channels == 3 for m in model.modules() if isinstance(m, EFF))
    assert all(m.gate_weight.shape == (1, 1, 3) for m in model.modules() if isinstance(m, EFF))
    assert _export_diff(model, tmp_path) < 1e-4


def test_thirty_percent_uniform_magnitude_of_paper_reproduces_known_result(tmp_path):
    model = build_model(create_config("paper")).eval()
    result = prune_model(model, PruneSpec(ratio=0.3, importance="l1", size=256))
    assert result.params_after == 933_276  # architecture page: ~0.933M
    assert abs(result.macs_after / 1e9 - 0.429) < 0.001  # ~0.429 GMACs (fvcore, 256 px)
    assert _export_diff(model, tmp_path, size=64) < 1e-6


def test_round_to_gives_multiples_and_shift_groups_stay_whole(tools):
    model = tools.random_model(tools.small_config(shift_size=3))
    result = prune_model(model, PruneSpec(ratio=0.5, round_to=8, ignored=("enc2.conv",), size=32))
    class_layers = {"head"} | {f"fuse{i}.aux" for i in range(1, 5)}
    widths = {k: v for k, v in result.widths.items() if k not in class_layers}
    assert widths and all(w % 8 == 0 for w in widths.values()), widths
    assert result.shift_fallbacks == 0
    assert widths["enc3.conv"] == 16 and widths["tok5.embed"] == 24
    assert widths["enc2.conv"] == 16  # ignored: kept whole


def test_shift_aware_selection_keeps_every_channel_in_its_shift_group():
    torch.manual_seed(0)
    for channels, keep, shift in [(160, 112, 5), (256, 179, 5), (32, 16, 3), (48, 24, 5)]:
        width = feasible_width(channels, keep, shift)
        assert width is not None and width <= keep
        kept = shift_aware_keep(torch.rand(channels), width, shift)
        assert len(kept) == width
        tokens = torch.randn(2, 6 * 7, channels)
        # Shifting the pruned map must equal pruning the shifted map: no channel changed its offset.
        assert torch.equal(
            shift_tokens(tokens[..., kept], 6, 7, shift, 2), shift_tokens(tokens, 6, 7, shift, 2)[..., kept]
        )
    # no width <= 16 splits 32 channels into 5 groups that fit: the caller falls back
    assert feasible_width(32, 16, 5, round_to=8) is None
    assert shift_group_sizes(24, 5) == [5, 5, 5, 5, 4]


@pytest.fixture(scope="module")
def pruned_small(tools):
    """One two-increment global pruning of the small model, shared by the save/load tests."""
    model = tools.random_model(tools.small_config())
    return model, prune_model(model, PruneSpec(ratio=0.4, steps=2, global_pruning=True, size=32))


def test_pruned_checkpoint_round_trip_is_exact(tools, tmp_path, pruned_small):
    model, result = pruned_small
    assert len(result.history) == 2  # one history per increment, each replayed on a fresh trace
    path = tools.write_checkpoint(tmp_path / "p.pt", model, pruning={"history": result.history, "spec": result.spec})
    raw = torch.load(path, weights_only=True)  # plain data only: no pickled modules
    assert raw["pruning"]["history"] == result.history
    loaded, _ = load_model(path)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert count_parameters(loaded) == result.params_after


def test_macs_target_is_reached_in_increments(tools):
    model = tools.random_model(tools.small_config())
    result = prune_model(model, PruneSpec(target_macs=0.5, step_ratio=0.2, size=32))
    assert result.macs_after <= 0.5 * result.macs_before
    assert result.increments == len(result.steps) >= 2
    assert result.steps[-2]["macs"] > 0.5 * result.macs_before  # stopped at the first increment that met it


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"ratio": 1.5}, r"PruneSpec\.ratio: .*between 0 and 1, got 1\.5"),
        ({"ratio": 0.0}, r"PruneSpec\.ratio: .*got 0\.0"),
        ({"ratio": 0.3, "target_macs": 0.5}, "exactly one target"),
        ({"ratio": 0.3, "importance": "taylr"}, r"unknown criterion 'taylr' \(did you mean 'taylor'\?\)"),
        ({"ratio": 0.3, "round_to": 0}, r"round_to: .*got 0"),
    ],
)
def test_bad_specs_are_rejected(kwargs, pattern):
    with pytest.raises(CompressionError, match=pattern):
        PruneSpec(**kwargs)


def test_unknown_ignored_module_is_named(tools):
    with pytest.raises(CompressionError, match="no module named 'enc9'"):
        prune_model(tools.random_model(tools.small_config()), PruneSpec(ratio=0.3, ignored=("enc9",), size=32))


def test_checkpoint_whose_config_does_not_match_its_weights_is_named(tools, tmp_path, pruned_small):
    model, result = pruned_small
    # the pruned weights saved without their history: the config rebuilds the unpruned widths
    path = tools.write_checkpoint(tmp_path / "bad.pt", model)
    with pytest.raises(ConfigError, match=r"bad\.pt: the weights do not match the config"):
        load_model(path)
    # a history that belongs to another architecture
    other = tools.write_checkpoint(
        tmp_path / "other.pt",
        tools.random_model(tools.small_config(token_widths=(24, 40))),
        pruning={"history": result.history, "spec": result.spec},
    )
    with pytest.raises((CompressionError, ConfigError), match="other.pt|pruning history"):
        load_model(other)
    assert load_checkpoint(other).pruning["history"] == result.history


def test_taylor_importance_uses_training_batches(tools):
    from compress import calibration_batches

    batches = calibration_batches(tools.DATA, size=32, seed=0, count=2, batch_size=2)
    assert len(batches) == 2 and batches[0][0].shape == (2, 1, 32, 32) and batches[0][1].dtype == torch.int64
    model = tools.random_model(tools.small_config())
    result = prune_model(model, PruneSpec(ratio=0.3, importance="taylor", size=32), batches=batches)
    assert result.params_after < result.params_before
    assert all(p.grad is None for p in model.parameters())  # scoring leaves no gradients behind
    with pytest.raises(CompressionError, match="'taylor' needs training data"):
        prune_model(tools.random_model(tools.small_config()), PruneSpec(ratio=0.3, importance="taylor", size=32))


def test_nni_masks_as_importance(tools, tmp_path):
    pytest.importorskip("nni")
    model = tools.random_model(tools.small_config())
    result = prune_model(model, PruneSpec(ratio=0.5, importance="nni-l1", size=32))
    assert result.params_after < result.params_before
    assert _export_diff(model, tmp_path) < 1e-4


@pytest.mark.parametrize("shift_aware", [True, False])
def test_pruned_hidden_width_computes_the_same_block_only_when_shift_aware(tools, shift_aware):
    import copy

    from compress._importance import get_importance
    from compress._prune import _apply
    from models._prune_graph import build_pruner, prunable_view, shifted_layers

    model = tools.random_model(tools.small_config(token_widths=(40, 48)))  # hidden 40: shift groups of 8
    reference = copy.deepcopy(model)
    block = "tok4.blocks.0.mlp"
    scores = torch.rand(40, generator=torch.Generator().manual_seed(1))
    spec = PruneSpec(ratio=0.5, shift_aware=shift_aware, size=32)
    with prunable_view(model):
        pruner = build_pruner(model, get_importance("l1").factory(), pruning_ratio=0.5)
        root = dict(model.named_modules())[f"{block}.dwconv"]
        fn = pruner.DG.get_pruner_of_module(root).prune_out_channels
        full = pruner.DG.get_pruning_group(root, fn, list(range(40)))
        _apply(pruner.DG, root, fn, 40, 20, full, scores, shifted_layers(model) if shift_aware else {}, spec)
    kept = shift_aware_keep(scores, 20, 5) if shift_aware else sorted(torch.topk(scores, 20).indices.tolist())
    # Silence the removed hidden channels in the reference: then only the shift layout can differ.
    with torch.no_grad():
        fc2 = dict(reference.named_modules())[f"{block}.fc2"]
        dropped = [i for i in range(40) if i not in kept]
        fc2.weight[:, dropped] = 0
    x = torch.randn(1, 32, 4, 4)
    with torch.no_grad():
        same = torch.allclose(model.tok4(x), reference.tok4(x), atol=1e-5)
    assert same == shift_aware


def _origin(pruned: torch.Tensor, original: torch.Tensor) -> list[int]:
    """Which slice of ``original`` (along dim 0) each slice of ``pruned`` came from."""
    diffs = (pruned[:, None] - original[None]).abs().flatten(2).sum(2)
    return diffs.argmin(1).tolist()


def test_every_tmp_layer_keeps_the_same_channels_as_its_neighbours(tools):
    import copy

    model = tools.random_model(tools.small_config(token_widths=(40, 48), shift_size=5))
    reference = copy.deepcopy(model)
    prune_model(model, PruneSpec(ratio=0.5, size=32))
    ref = dict(reference.named_modules())
    for name, block in model.named_modules():
        if type(block).__name__ != "TMPBlock":
            continue
        fc1, dw, fc2 = block.mlp.fc1, block.mlp.dwconv, block.mlp.fc2
        r1, rdw, r2 = ref[f"{name}.mlp.fc1"], ref[f"{name}.mlp.dwconv"], ref[f"{name}.mlp.fc2"]
        # which channels survived, read off layers pruned along one dimension only
        stage = _origin(block.norm.weight[:, None], ref[f"{name}.norm"].weight[:, None])
        hidden = _origin(dw.weight, rdw.weight)
        # the Linears on both sides must have kept exactly those rows and columns
        assert torch.equal(fc1.weight, r1.weight[hidden][:, stage]) and torch.equal(fc1.bias, r1.bias[hidden]), name
        assert torch.equal(fc2.weight, r2.weight[stage][:, hidden]) and torch.equal(fc2.bias, r2.bias[stage]), name
        assert len(hidden) < r1.out_features and len(stage) < r1.in_features
