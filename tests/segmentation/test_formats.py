from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from rtseg_core import ConfigError, DataError
from segmentation._formats import index_jnu_ifm, index_psfhs, load_sample, parse_frames

V1, V2 = "20190916T104520", "20190917T090000"


# --------------------------------------------------------------------------- JNU-IFM


def test_per_video_layout_lists_selected_frames_and_counts_the_rest(jnu_root):
    index = index_jnu_ifm(jnu_root)
    assert [s.id for s in index.samples] == [f"{V1}_0001", f"{V1}_0002", f"{V2}_0001", f"{V2}_0003"]
    assert {s.frame_label for s in index.samples} == {6}
    assert index.groups == [V1, V2]
    info = index.describe()
    assert info["frames_total"] == 8 and info["images"] == 4 and info["videos"] == 2
    assert info["frame_labels"] == {"none": 2, "ps-only": 1, "fh-only": 1, "ps+fh": 4, "unlabelled": 0}
    assert info["frame_labels_selected"] == {"none": 0, "ps-only": 0, "fh-only": 0, "ps+fh": 4, "unlabelled": 0}
    assert index.describe([V2])["frame_labels"]["none"] == 1


@pytest.mark.parametrize(
    ("frames", "labels"),
    [("all", [6, 6, 4, 5, 3, 6, 3, 6]), ("4,5,6", [6, 6, 4, 5, 6, 6]), ("ps-only, fh-only", [4, 5]), ("3", [3, 3])],
)
def test_frame_selection(jnu_root, frames, labels):
    index = index_jnu_ifm(jnu_root, frames=frames)
    assert [s.frame_label for s in index.samples] == labels
    assert len(index.all_samples) == 8


def test_masks_map_7_and_8_to_ps_and_fh(jnu_root, writers):
    index = index_jnu_ifm(jnu_root, frames="all")
    by_id = {s.id: s for s in index.samples}
    for k, label in enumerate([6, 6, 4, 5, 3], start=1):
        image, mask = load_sample(by_id[f"{V1}_{k:04d}"])
        want_image, _, want_mask = writers.jnu_frame(1000 + k, label)
        assert image.dtype == np.float32 and image.shape == (40, 48)
        assert np.allclose(image * 255, want_image, atol=0.5)
        assert mask.dtype == np.uint8 and np.array_equal(mask, want_mask)
        assert (
            set(np.unique(mask)) == {0, 1, 2} if label == 6 else {0, 1} if label == 4 else {0, 2} if label == 5 else {0}
        )


@pytest.mark.parametrize("bare_ids", [False, True])
def test_flattened_layout_with_video_name(tmp_path, writers, bare_ids):
    root = writers.jnu_flat(tmp_path / "flat", {V1: [6, 3, 6], V2: [5, 6]}, bare_ids=bare_ids)
    index = index_jnu_ifm(root)
    assert [(s.id, s.group) for s in index.samples] == [(f"{V1}_0001", V1), (f"{V1}_0003", V1), (f"{V2}_0002", V2)]
    assert index.describe()["frame_labels"]["fh-only"] == 1
    _, mask = load_sample(index.samples[-1])
    assert set(np.unique(mask)) == {0, 1, 2}


def test_bare_frame_numbers_match_zero_padded_files(tmp_path, writers):
    writers.jnu_video(tmp_path, V1, [6, 4, 6], bare_ids=True)
    index = index_jnu_ifm(tmp_path, frames="all")
    assert [s.frame_label for s in index.samples] == [6, 4, 6]
    # A single video folder works as the root too.
    assert [s.id for s in index_jnu_ifm(tmp_path / V1).samples] == [f"{V1}_0001", f"{V1}_0003"]


def test_images_without_csv_row_are_counted_as_unlabelled(jnu_root, writers):
    image, raw, _ = writers.jnu_frame(99, 6)
    writers.png(jnu_root / V2 / "image" / f"{V2}_0004.png", image)
    writers.png(jnu_root / V2 / "mask" / f"{V2}_0004_mask.png", raw)
    index = index_jnu_ifm(jnu_root)
    assert index.describe()["frame_labels"]["unlabelled"] == 1
    assert f"{V2}_0004" not in [s.id for s in index.samples]
    assert f"{V2}_0004" in [s.id for s in index_jnu_ifm(jnu_root, frames="all").samples]
    assert any("no row" in note for note in index.notes)


def test_colour_image_becomes_grayscale(tmp_path, writers):
    folder = writers.jnu_video(tmp_path, V1, [6])
    path = folder / "image" / f"{V1}_0001.png"
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    writers.png(path, np.dstack([gray, gray, gray]))
    image, _ = load_sample(index_jnu_ifm(tmp_path).samples[0])
    assert image.ndim == 2 and np.allclose(image * 255, gray, atol=0.5)


def test_parse_frames():
    assert parse_frames("ps+fh") == {6}
    assert parse_frames("ALL") == {3, 4, 5, 6, None}
    assert parse_frames("4, 6") == {4, 6}
    for bad in ("7", "ps", "", "4,,5"):
        with pytest.raises(ConfigError, match="--frames"):
            parse_frames(bad)


# --------------------------------------------------------------------------- JNU-IFM errors


def test_missing_framelabel_csv_names_the_folder(jnu_root):
    (jnu_root / V2 / "framelabel.csv").unlink()
    with pytest.raises(DataError, match=f"{V2}: no framelabel.csv"):
        index_jnu_ifm(jnu_root)


def test_missing_csv_column_names_file_and_column(jnu_root, writers):
    writers.csv(jnu_root / V1 / "framelabel.csv", ["frame", "frame_label"], [[f"{V1}_0001", 6]])
    with pytest.raises(DataError, match=r"framelabel.csv: missing column 'frame_id'.*found \['frame', 'frame_label'\]"):
        index_jnu_ifm(jnu_root)


def test_bad_frame_label_in_csv_names_line_and_value(jnu_root, writers):
    writers.csv(jnu_root / V1 / "framelabel.csv", ["frame_id", "frame_label"], [[f"{V1}_0001", 6], [f"{V1}_0002", 9]])
    with pytest.raises(DataError, match=r"framelabel.csv: line 3: frame_label '9'"):
        index_jnu_ifm(jnu_root)


def test_missing_mask_names_the_expected_file(jnu_root):
    (jnu_root / V1 / "mask" / f"{V1}_0002_mask.png").unlink()
    with pytest.raises(DataError, match=f"have no mask; expected {V1}_0002_mask.png"):
        index_jnu_ifm(jnu_root)
    # A frame that is not selected may lack its mask: it is only counted.
    (jnu_root / V1 / "mask" / f"{V1}_0005_mask.png").unlink()
    (jnu_root / V1 / "mask" / f"{V1}_0003_mask.png").unlink()
    with pytest.raises(DataError):
        index_jnu_ifm(jnu_root, frames="4")
    assert len(index_jnu_ifm(jnu_root, frames="5").samples) == 1


def test_selected_csv_row_without_image_is_an_error(jnu_root):
    (jnu_root / V1 / "image" / f"{V1}_0001.png").unlink()
    with pytest.raises(DataError, match=rf"1 selected frame\(s\) have no image .*'{V1}_0001' \(line 2\)"):
        index_jnu_ifm(jnu_root)
    assert index_jnu_ifm(jnu_root, frames="3").describe()["csv_rows_without_image"] == 1


def test_corrupt_image_names_the_file(jnu_root):
    path = jnu_root / V1 / "image" / f"{V1}_0001.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    sample = index_jnu_ifm(jnu_root).samples[0]
    with pytest.raises(DataError, match=f"{path.name}: cannot decode the image"):
        load_sample(sample)


def test_mask_with_unexpected_values_names_file_and_values(jnu_root, writers):
    path = jnu_root / V1 / "mask" / f"{V1}_0001_mask.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    raw[0, :3] = (1, 2, 255)
    writers.png(path, raw)
    with pytest.raises(
        DataError, match=rf"{path.name}: unexpected label value\(s\) 1, 2, 255; JNU-IFM masks use only \[0, 7, 8\]"
    ):
        load_sample(index_jnu_ifm(jnu_root).samples[0])


def test_colour_mask_is_rejected_with_a_hint(jnu_root, writers):
    path = jnu_root / V1 / "mask" / f"{V1}_0001_mask.png"
    shutil.copy(jnu_root / V1 / "mask_enhance" / f"{V1}_0001.png", path)
    with pytest.raises(DataError, match=f"{path.name}: the mask has colour pixels.*mask_enhance"):
        load_sample(index_jnu_ifm(jnu_root).samples[0])


def test_image_mask_size_mismatch_names_both(jnu_root, writers):
    path = jnu_root / V1 / "mask" / f"{V1}_0001_mask.png"
    writers.png(path, np.zeros((40, 40), np.uint8))
    with pytest.raises(DataError, match=rf"{path.name}: mask is 40x40 \(HxW\) but its image {V1}_0001.png is 40x48"):
        load_sample(index_jnu_ifm(jnu_root).samples[0])


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        index_jnu_ifm(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no JNU-IFM data found; expected per-video folders"):
        index_jnu_ifm(tmp_path / "empty")
    (tmp_path / "noimg" / "image").mkdir(parents=True)
    (tmp_path / "noimg" / "framelabel.csv").write_text("frame_id,frame_label\n")
    with pytest.raises(DataError, match="framelabel.csv: no rows below the header"):
        index_jnu_ifm(tmp_path / "noimg")


# --------------------------------------------------------------------------- PSFHS


@pytest.mark.parametrize("layout", ["chw", "2d", "vector"])
def test_psfhs_layouts_load_as_grayscale(tmp_path, writers, layout):
    from segmentation._phantom import make_phantom

    root = writers.psfhs(tmp_path / "psfhs", 3, layout=layout, size=32)
    index = index_psfhs(root)
    assert [s.id for s in index.samples] == ["00000", "00001", "00002"]
    assert index.groups == ["00000", "00001", "00002"]
    image, mask = load_sample(index.samples[1])
    want_image, want_mask = make_phantom(32, 1)
    assert image.shape == mask.shape == (32, 32) and image.dtype == np.float32
    assert np.allclose(image, np.round(want_image * 255) / 255, atol=1e-6)
    assert np.array_equal(mask, want_mask)


def test_psfhs_found_one_level_down(tmp_path, writers):
    writers.psfhs(tmp_path / "archive" / "PSFHS", 2, layout="2d")
    assert len(index_psfhs(tmp_path / "archive").samples) == 2


def test_psfhs_errors(tmp_path, writers):
    import SimpleITK as sitk

    root = writers.psfhs(tmp_path / "p", 3, layout="2d", size=32)
    (root / "label_mha" / "00001.mha").unlink()
    with pytest.raises(DataError, match=r"label_mha: 1 image\(s\) have no label of the same name: 00001.mha"):
        index_psfhs(root)

    root = writers.psfhs(tmp_path / "q", 3, layout="2d", size=32)
    (root / "image_mha" / "00000.mha").write_bytes(b"ObjectType = Image\nNDims = 2\nnonsense")
    samples = index_psfhs(root).samples
    with pytest.raises(DataError, match=r"00000.mha: cannot read the image: the file is corrupt or not a MetaImage"):
        load_sample(samples[0])
    bad = np.zeros((32, 32), np.uint8)
    bad[0, 0] = 3
    sitk.WriteImage(sitk.GetImageFromArray(bad), str(root / "label_mha" / "00001.mha"))
    with pytest.raises(DataError, match=r"00001.mha: unexpected label value\(s\) 3; PSFHS masks use only \[0, 1, 2\]"):
        load_sample(samples[1])
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((30, 32), np.uint8)), str(root / "label_mha" / "00002.mha"))
    with pytest.raises(DataError, match=r"00002.mha: mask is 30x32 \(HxW\) but its image 00002.mha is 32x32"):
        load_sample(samples[2])

    (tmp_path / "r" / "image_mha").mkdir(parents=True)
    (tmp_path / "r" / "label_mha").mkdir()
    with pytest.raises(DataError, match=r"image_mha: no .mha images"):
        index_psfhs(tmp_path / "r")
    with pytest.raises(DataError, match=r"no image_mha/ folder"):
        index_psfhs(tmp_path)
