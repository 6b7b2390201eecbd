from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rtseg_core import ConfigError, DataError
from segmentation._data import DataSpec, SegmentationDataset, load_split, split_groups
from segmentation._transforms import AugmentParams, augment_pair, letterbox_square, random_affine, resize_pair

# --------------------------------------------------------------------------- DataSpec


@pytest.mark.parametrize(
    ("text", "kind", "path", "count", "canonical"),
    [
        ("synthetic", "synthetic", None, 400, "synthetic"),
        (" Synthetic:12 ", "synthetic", None, 12, "synthetic:12"),
        ("synthetic:400", "synthetic", None, 400, "synthetic"),
        ("jnu-ifm:/data/JNU IFM", "jnu-ifm", Path("/data/JNU IFM"), None, "jnu-ifm:/data/JNU IFM"),
        ("psfhs:rel/dir", "psfhs", Path("rel/dir"), None, "psfhs:rel/dir"),
        ("fh-ps-aop:x", "psfhs", Path("x"), None, "psfhs:x"),
        ("psfhs:C:\\data", "psfhs", Path("C:\\data"), None, "psfhs:C:\\data"),
    ],
)
def test_dataspec_parse_and_round_trip(text, kind, path, count, canonical):
    spec = DataSpec.parse(text)
    assert (spec.kind, spec.path, spec.count) == (kind, path, count)
    assert str(spec) == canonical
    assert DataSpec.parse(str(spec)) == spec
    assert DataSpec.parse(spec) is spec


@pytest.mark.parametrize(
    "text", ["", "synthetic:0", "synthetic:x", "synthetic:-3", "mnist", "jnu-ifm:", "psfhs", "psfhs: "]
)
def test_dataspec_errors_name_the_option_and_the_forms(text):
    with pytest.raises(ConfigError, match="--data") as err:
        DataSpec.parse(text)
    assert "jnu-ifm:PATH" in str(err.value) or "needs a folder" in str(err.value)


def test_dataspec_default_is_synthetic():
    assert DataSpec() == DataSpec.parse("synthetic")
    with pytest.raises(ConfigError, match="--data"):
        DataSpec(kind="psfhs")


# --------------------------------------------------------------------------- splits


def test_split_groups_is_deterministic_disjoint_and_sized():
    groups = [f"v{i:02d}" for i in range(20)]
    a = split_groups(groups, seed=3, val_fraction=0.1, test_fraction=0.2)
    assert a == split_groups(list(reversed(groups)), seed=3, val_fraction=0.1, test_fraction=0.2)
    assert sorted(a) == groups
    assert [list(a.values()).count(s) for s in ("train", "val", "test")] == [14, 2, 4]
    assert a != split_groups(groups, seed=4, val_fraction=0.1, test_fraction=0.2)
    small = split_groups(["a", "b", "c"], seed=0, val_fraction=0.1, test_fraction=0.1)
    assert sorted(small.values()) == ["test", "train", "val"]


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.2), (0.1, 1.0), (0.5, 0.5), (float("nan"), 0.1)])
def test_bad_fractions(val, test):
    with pytest.raises(ConfigError, match="fraction"):
        split_groups(["a"], seed=0, val_fraction=val, test_fraction=test)


def test_synthetic_splits_are_disjoint_reproducible_and_cover_all():
    splits = {s: load_split("synthetic:30", s, size=32, seed=5) for s in ("train", "val", "test", "all")}
    ids = {s: set(d.ids) for s, d in splits.items()}
    assert [len(splits[s]) for s in ("train", "val", "test", "all")] == [21, 3, 6, 30]
    assert ids["train"] | ids["val"] | ids["test"] == ids["all"]
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    again = load_split("synthetic:30", "val", size=32, seed=5)
    assert again.ids == splits["val"].ids
    assert torch.equal(again[0]["image"], splits["val"][0]["image"])
    other = load_split("synthetic:30", "val", size=32, seed=6)
    assert not set(other.ids) & ids["all"]
    # The same phantom index renders the same image whichever split holds it.
    i_all = splits["all"].ids.index(splits["test"].ids[0])
    assert torch.equal(splits["all"][i_all]["image"], splits["test"][0]["image"])


def test_item_contract_and_standardisation():
    ds = load_split("synthetic:10", "val", size=48, seed=1)
    assert isinstance(ds, SegmentationDataset)
    assert (ds.in_channels, ds.num_classes, ds.split, ds.augment) == (1, 3, "val", False)
    assert str(ds.spec) == "synthetic:10"
    item = ds[0]
    assert set(item) == {"image", "mask", "id"}
    assert item["image"].shape == (1, 48, 48) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (48, 48) and item["mask"].dtype == torch.int64
    assert item["id"] == ds.ids[0]
    assert abs(float(item["image"].mean())) < 1e-4 and abs(float(item["image"].std(unbiased=False)) - 1) < 1e-3
    assert set(item["mask"].unique().tolist()) == {0, 1, 2}
    with pytest.raises(IndexError):
        ds[len(ds)]
    desc = ds.describe()
    assert desc["images"] == len(ds) and desc["split"] == "val" and desc["data"] == "synthetic:10"


def test_augmentation_defaults_epochs_and_rng():
    train = load_split("synthetic:10", "train", size=48, seed=0)
    assert train.augment and not load_split("synthetic:10", "test", size=48).augment
    plain = load_split("synthetic:10", "train", size=48, augment=False)
    base = plain[0]
    torch.manual_seed(0)
    first, second = train[0], train[0]
    assert not torch.equal(first["image"], second["image"])  # fresh draws without set_epoch
    assert not torch.equal(first["image"], base["image"])
    torch.manual_seed(0)
    assert torch.equal(train[0]["image"], first["image"])  # torch's seed makes it repeatable
    # DataLoader workers get different torch seeds, hence different augmentations.
    torch.manual_seed(1)
    assert not torch.equal(train[0]["image"], first["image"])
    train.set_epoch(2)
    a, b = train[1], train[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    train.set_epoch(3)
    assert not torch.equal(train[1]["image"], a["image"])
    for i in range(len(train)):
        mask = train[i]["mask"]
        assert set(mask.unique().tolist()) <= {0, 1, 2}


def test_affine_moves_image_and_mask_together():
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 12:40] = 1
    mask[35:58, 20:50] = 2
    image = mask.astype(np.float32) / 2  # intensity encodes the class
    params = AugmentParams(rotation_deg=15, scale=(0.9, 1.1), translate=0.06)
    for _ in range(10):
        out_img, out_mask = random_affine(image, mask, rng, params)
        assert set(np.unique(out_mask)) <= {0, 1, 2}
        assert out_mask.dtype == np.uint8 and out_img.shape == out_mask.shape == (64, 64)
        agree = np.round(out_img * 2) == out_mask
        assert agree.mean() > 0.97  # disagreement only along the interpolated edges
        assert not np.array_equal(out_mask, mask)
    img2, mask2 = augment_pair(image, mask, np.random.default_rng(1))
    assert img2.min() >= 0 and img2.max() <= 1 and set(np.unique(mask2)) <= {0, 1, 2}


def test_letterbox_keeps_aspect_and_labels():
    mask = np.zeros((20, 40), np.uint8)
    mask[5:15, 10:20] = 2  # a 10 x 10 square
    image = mask.astype(np.float32) / 2
    sq_img, sq_mask = letterbox_square(image, mask)
    assert sq_mask.shape == (40, 40) and (sq_mask == 2).sum() == 100
    out_img, out_mask = resize_pair(image, mask, 20)
    assert out_img.shape == out_mask.shape == (20, 20)
    rows, cols = np.nonzero(out_mask == 2)
    assert np.ptp(rows) == np.ptp(cols) and set(np.unique(out_mask)) == {0, 2}


# --------------------------------------------------------------------------- real formats


def test_jnu_splits_by_video_and_frames_never_move_videos(tmp_path, writers):
    videos = [f"2019091{d}T10{m:02d}00" for d in range(3) for m in range(4)]  # 12 videos
    for i, video in enumerate(videos):
        writers.jnu_video(tmp_path, video, [6, 3, 4 if i % 2 else 5], seed=i)
    by_split = {}
    for split in ("train", "val", "test"):
        ds = load_split(f"jnu-ifm:{tmp_path}", split, size=32, seed=2)
        groups = set(ds.groups)
        assert all(i.startswith(tuple(groups)) for i in ds.ids)
        by_split[split] = groups
        every = load_split(f"jnu-ifm:{tmp_path}", split, size=32, seed=2, frames="all")
        assert set(every.groups) == groups and len(every) == 3 * len(groups)
    assert sum(len(g) for g in by_split.values()) == 12 and set().union(*by_split.values()) == set(videos)
    assert [len(by_split[s]) for s in ("train", "val", "test")] == [9, 1, 2]  # round(0.2 * 12) = 2
    test = load_split(f"jnu-ifm:{tmp_path}", "test", size=32, seed=2)
    desc = test.describe()
    assert desc["frame_labels"]["none"] == 2 and desc["frame_labels"]["ps+fh"] == 2
    assert desc["frame_labels"]["ps-only"] + desc["frame_labels"]["fh-only"] == 2
    assert desc["frame_labels_selected"] == {"none": 0, "ps-only": 0, "fh-only": 0, "ps+fh": 2, "unlabelled": 0}
    assert desc["frames"] == "ps+fh" and desc["images"] == 2 and desc["videos"] == 2 and desc["frames_total"] == 6


def test_jnu_items_are_resized_cached_and_labelled(tmp_path, writers):
    writers.jnu_video(tmp_path, "20190916T104520", [6, 5, 4])
    ds = load_split(f"jnu-ifm:{tmp_path}", "all", size=32, frames="all")
    assert ds.ids == ["20190916T104520_0001", "20190916T104520_0002", "20190916T104520_0003"]
    masks = [ds[i]["mask"] for i in range(3)]
    assert [sorted(m.unique().tolist()) for m in masks] == [[0, 1, 2], [0, 2], [0, 1]]
    assert masks[0].shape == (32, 32) and ds[0]["image"].shape == (1, 32, 32)
    # Cached after the first read: the files are no longer needed.
    for path in (tmp_path / "20190916T104520").rglob("*.png"):
        path.unlink()
    assert torch.equal(ds[0]["mask"], masks[0])
    image, mask = ds.load_resized(1)
    assert image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1 and mask.dtype == np.uint8


def test_psfhs_end_to_end(tmp_path, writers):
    writers.psfhs(tmp_path, 10, layout="chw", size=32)
    train = load_split(f"psfhs:{tmp_path}", "train", size=32)
    test = load_split(f"psfhs:{tmp_path}", "test", size=32)
    assert len(train) == 7 and len(test) == 2 and not set(train.ids) & set(test.ids)
    assert train[0]["image"].shape == (1, 32, 32)
    assert test.describe()["format"] == "psfhs"


def test_load_split_errors(tmp_path, writers):
    with pytest.raises(DataError, match=r"nowhere: does not exist \(from --data jnu-ifm:"):
        load_split(f"jnu-ifm:{tmp_path / 'nowhere'}", "train")
    with pytest.raises(ConfigError, match="split 'dev'"):
        load_split("synthetic:10", "dev")
    with pytest.raises(ConfigError, match="size"):
        load_split("synthetic:10", "train", size=8)
    with pytest.raises(ConfigError, match="seed"):
        load_split("synthetic:10", "train", seed=-1)
    with pytest.raises(ConfigError, match="--frames"):
        load_split("synthetic:10", "train", frames="7")
    with pytest.raises(DataError, match=r"split 'val' is empty: 2 images in all with val_fraction=0.1"):
        load_split("synthetic:2", "val")
    writers.jnu_video(tmp_path, "20190916T104520", [3, 3])
    with pytest.raises(DataError, match=r"no frames selected by --frames 'ps\+fh'.*'none': 2.*try --frames all"):
        load_split(f"jnu-ifm:{tmp_path}", "all")


def test_a_jnu_split_logs_the_frames_its_selection_left_out(jnu_root, caplog):
    """`--frames ps+fh` drops frames: the log says how many, per label, at the default level (INFO)."""
    import logging

    with caplog.at_level(logging.INFO, logger="segmentation"):
        ds = load_split(f"jnu-ifm:{jnu_root}", "all", size=32, seed=0)
    assert len(ds) == 4  # the four ps+fh frames of the eight
    line = next(r.getMessage() for r in caplog.records if "--frames" in r.getMessage())
    assert line.endswith(
        "all: 4 frames from 2 video(s); --frames ps+fh kept 4 of 8 frames (left out: none 2, ps-only 1, fh-only 1)"
    ), line
