"""Evaluation at a reference resolution: a prediction at a smaller input size is scored on the labels at full size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rtseg_core import ConfigError
from segmentation import REFERENCE_SIZE, EvalSummary, evaluate, image_metrics, load_split, resize_prediction
from segmentation._phantom import make_phantom


def _one_hot_logits(mask: np.ndarray, classes: int = 3) -> torch.Tensor:
    """Logits [1, C, H, W] that are +10 on the mask's class and -10 elsewhere."""
    m = torch.from_numpy(mask.astype(np.int64))
    return (torch.nn.functional.one_hot(m, classes).permute(2, 0, 1)[None].float() * 20.0) - 10.0


def test_half_size_prediction_resized_back_gives_the_hand_computed_dice() -> None:
    # Full-resolution label: class 1 on rows/cols 9..22 (14 x 14 = 196 px) of 32 x 32; odd edges that a
    # 16 x 16 prediction cannot draw. The half-size prediction marks 4..11 (8 x 8), which bilinear
    # upsampling (align_corners=False: output pixel i reads source i/2 - 0.25) turns into exactly 8..23
    # (16 x 16 = 256 px; corner pixels get 0.75 * 0.75 = 0.5625 of class 1). Overlap 196, so
    # Dice = 2 * 196 / (196 + 256) = 392 / 452.
    label = np.zeros((32, 32), np.uint8)
    label[9:23, 9:23] = 1
    half = np.zeros((16, 16), np.uint8)
    half[4:12, 4:12] = 1
    pred = resize_prediction(_one_hot_logits(half), 32)[0]
    assert pred.shape == (32, 32) and pred.dtype == torch.int64
    expected = np.zeros((32, 32), np.int64)
    expected[8:24, 8:24] = 1
    assert np.array_equal(pred.numpy(), expected)
    dice = image_metrics(pred.numpy(), label)["PS"]["dice"]
    assert dice == pytest.approx(392 / 452, abs=1e-9)


def test_same_size_is_the_plain_argmax_and_probabilities_are_resized_not_labels() -> None:
    logits = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(resize_prediction(logits, 16), logits.argmax(1))
    # at another size: the argmax of the bilinearly resized probabilities
    up = resize_prediction(logits, 64)
    assert up.shape == (2, 64, 64)
    probs = torch.nn.functional.interpolate(logits.softmax(1), size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.equal(up, probs.argmax(1))


def test_phantom_masks_at_the_reference_size_are_the_same_scene() -> None:
    small = load_split("synthetic:10", "test", size=32, seed=3, label_size=64)
    assert small.size == 32 and small.label_size == 64
    item = small[0]
    assert item["image"].shape == (1, 32, 32) and item["mask"].shape == (64, 64)
    index = int(small.ids[0].rsplit("-", 1)[1])
    want = make_phantom(64, 3 * 100003 + index)[1]
    assert np.array_equal(item["mask"].numpy(), want)
    # the image is the one a 32-px evaluation without a reference size sees
    plain = load_split("synthetic:10", "test", size=32, seed=3)
    assert torch.equal(plain[0]["image"], item["image"]) and plain[0]["mask"].shape == (32, 32)


def test_evaluate_scores_at_the_reference_size_and_records_it(tmp_path) -> None:
    # A perfect 32-px prediction (the 32-px labels themselves) scored at 64 px: below 1 (it cannot draw
    # the 64-px edges), at 32 px exactly 1; both results say where they were scored.
    ds = load_split("synthetic:10", "test", size=32, seed=0)
    masks = torch.stack([ds[i]["mask"] for i in range(len(ds))])
    seen = []

    def predict(images: torch.Tensor) -> torch.Tensor:
        start = sum(seen)
        seen.append(len(images))
        return torch.cat([_one_hot_logits(m.numpy()) for m in masks[start : start + len(images)]])

    at_ref = evaluate(predict, "synthetic:10", size=32, reference_size=64, progress=False)
    seen.clear()
    at_input = evaluate(predict, "synthetic:10", size=32, reference_size=None, progress=False)
    assert at_input.dice == pytest.approx(1.0)
    assert 0.8 < at_ref.dice < 1.0
    assert (at_ref.reference_size, at_ref.summary.reference_size, at_ref.size) == (64, 64, 32)
    assert (at_input.reference_size, at_input.summary.reference_size) == (32, 32)
    at_ref.write(tmp_path / "e.json")
    data = json.loads((tmp_path / "e.json").read_text())
    assert (data["size"], data["reference_size"]) == (32, 64)
    assert EvalSummary.from_dict(data) == at_ref.summary
    assert REFERENCE_SIZE == 256  # the stated default (README, segmentation.evaluate)


def test_file_masks_are_read_at_the_reference_size(jnu_root) -> None:
    # 40 x 48 frames: the reference mask is the native label letterboxed to 48 x 48, as a 48-px load gives it
    ds = load_split(f"jnu-ifm:{jnu_root}", "all", size=32, label_size=48)
    full = load_split(f"jnu-ifm:{jnu_root}", "all", size=48)
    small = load_split(f"jnu-ifm:{jnu_root}", "all", size=32)
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (1, 32, 32) and torch.equal(item["image"], small[i]["image"])
        assert torch.equal(item["mask"], full[i]["mask"])
    assert any(full[i]["mask"].any() for i in range(len(full)))


def test_bad_reference_size_is_refused_before_work() -> None:
    with pytest.raises(ConfigError, match="label_size"):
        load_split("synthetic:10", "test", size=32, label_size=8)
    with pytest.raises(ConfigError, match="augmentation"):
        load_split("synthetic:10", "train", size=32, label_size=64, augment=True)
