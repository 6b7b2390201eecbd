"""The up-front dataset check: a bad file is reported, by name, before any training step."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models import build_model, create_config
from rtseg_core import DataError
from segmentation import TrainConfig, check_dataset, evaluate_model, load_split, split_groups, train
from segmentation._check import _VERIFIED

TINY = create_config("paper", conv_widths=(8, 8, 16), token_widths=(16, 24))
VIDEOS = [f"2019091{i}T100000" for i in range(5)]


@pytest.fixture(autouse=True)
def _fresh_process_memo():
    _VERIFIED.clear()  # each test sees the check as a new process would
    yield
    _VERIFIED.clear()


@pytest.fixture
def jnu5(tmp_path, writers):
    """Five JNU-IFM videos (per-video layout) of four PS+FH frames; splits 3 train / 1 val / 1 test."""
    root = tmp_path / "JNU-IFM"
    for seed, video in enumerate(VIDEOS):
        writers.jnu_video(root, video, [6, 6, 6, 6], seed=seed)
    return root


def videos_in(split: str) -> list[str]:
    assignment = split_groups(VIDEOS, seed=0, val_fraction=0.1, test_fraction=0.2)  # load_split's defaults
    return sorted(v for v, s in assignment.items() if s == split)


def video_in(split: str) -> str:
    return videos_in(split)[0]


def put_label(root, video: str, frame: int, value: int):
    """Write label ``value`` into a few pixels of a frame's mask PNG (JNU-IFM knows only 0, 7, 8)."""
    path = root / video / "mask" / f"{video}_{frame:04d}_mask.png"
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    mask[:3, :3] = value
    assert cv2.imwrite(str(path), mask)
    return path


def config(root, **changes) -> TrainConfig:
    return TrainConfig(**{"data": f"jnu-ifm:{root}", "size": 32, "epochs": 1, "batch_size": 2, "device": "cpu",
                          **changes})  # fmt: skip


def counting_model():
    """A real model that counts its training forward passes (one per optimizer step)."""
    model = build_model(TINY)
    calls = []
    original = model.forward_with_aux
    model.forward_with_aux = lambda x: calls.append(1) or original(x)
    return model, calls


def test_a_bad_mask_label_in_the_training_split_stops_train_before_the_first_step(jnu5, tmp_path):
    bad = put_label(jnu5, video_in("train"), 3, 5)
    model, calls = counting_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DataError, match=r"unexpected label value\(s\) 5") as err:
        train(TINY, config(jnu5), tmp_path / "run", model=model, progress=False)
    assert str(bad) in str(err.value)
    assert calls == []  # no training step ran
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_bad_frame_in_the_validation_split_is_found_before_training_not_after_the_epoch(jnu5, tmp_path):
    # Without the check, this frame would be read only by the end-of-epoch validation.
    bad = put_label(jnu5, video_in("val"), 2, 5)
    model, calls = counting_model()
    with pytest.raises(DataError, match="'val' split") as err:
        train(TINY, config(jnu5), tmp_path / "run", model=model, progress=False)
    assert str(bad) in str(err.value) and calls == []


def test_every_bad_file_is_named_in_one_error(jnu5):
    first, other = videos_in("train")[:2]
    bad_label = put_label(jnu5, first, 1, 5)
    truncated = jnu5 / other / "image" / f"{other}_0004.png"
    truncated.write_bytes(truncated.read_bytes()[:20])
    ds = load_split(f"jnu-ifm:{jnu5}", "train", size=32)
    with pytest.raises(DataError, match="2 of 12 sample") as err:
        check_dataset(ds, progress=False)
    message = str(err.value)
    assert str(bad_label) in message and str(truncated) in message and "cannot decode" in message


def test_a_mask_of_another_size_than_its_image_is_named(jnu5):
    video = video_in("test")
    path = jnu5 / video / "mask" / f"{video}_0001_mask.png"
    assert cv2.imwrite(str(path), np.zeros((20, 20), np.uint8))
    ds = load_split(f"jnu-ifm:{jnu5}", "test", size=32)
    with pytest.raises(DataError, match=r"mask is 20x20 \(HxW\) but its image"):
        check_dataset(ds, progress=False)


def test_evaluate_checks_the_split_before_predicting(jnu5):
    put_label(jnu5, video_in("test"), 4, 9)
    seen = []
    model = build_model(TINY)
    model.register_forward_pre_hook(lambda module, args: seen.append(1))
    with pytest.raises(DataError, match=r"label value\(s\) 9"):
        evaluate_model(model, f"jnu-ifm:{jnu5}", split="test", size=32, device="cpu", batch_size=1, progress=False)
    assert seen == []


def test_a_clean_split_is_read_once_per_process(jnu5):
    first = check_dataset(load_split(f"jnu-ifm:{jnu5}", "train", size=32), progress=False)
    again = check_dataset(load_split(f"jnu-ifm:{jnu5}", "train", size=32), progress=False)
    assert (first.images, first.read, first.known_good) == (12, 12, 0)
    assert (again.read, again.known_good) == (0, 12)


def test_a_file_changed_after_a_clean_check_is_read_again(jnu5):
    check_dataset(load_split(f"jnu-ifm:{jnu5}", "train", size=32), progress=False)
    bad = put_label(jnu5, video_in("train"), 2, 5)
    with pytest.raises(DataError) as err:
        check_dataset(load_split(f"jnu-ifm:{jnu5}", "train", size=32), progress=False)
    assert str(bad) in str(err.value)


def test_synthetic_data_needs_no_reading():
    result = check_dataset(load_split("synthetic:20", "train", size=32), progress=False)
    assert (result.read, result.known_good) == (0, result.images)
