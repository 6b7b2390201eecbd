"""Metric tables: empty-mask conventions, equality with MONAI, accumulation and the text table."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
)

from rtseg_core import DataError
from segmentation._aop import angle_of_progression, draw_aop_masks
from segmentation._metrics import (
    FOREGROUND_CLASSES,
    EvalSummary,
    MetricAccumulator,
    binary_metrics,
    format_table,
    image_diagonal,
    image_metrics,
    surface_distances,
)

H, W = 40, 48


def _disk(cy, cx, r, shape=(H, W)):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


EMPTY = np.zeros((H, W), dtype=bool)
BLOB = _disk(20, 24, 8)
DIAG_PX = math.hypot(H, W)
DIAG_MM = math.hypot(H * 0.5, W * 0.25)

# (case, pred, target, spacing, expected dice, jaccard, asd, hd95)
EMPTY_CASES = [
    ("both empty", EMPTY, EMPTY, None, 1.0, 1.0, 0.0, 0.0),
    ("both empty, mm", EMPTY, EMPTY, (0.5, 0.25), 1.0, 1.0, 0.0, 0.0),
    ("only ground truth empty", BLOB, EMPTY, None, 0.0, 0.0, DIAG_PX, DIAG_PX),
    ("only prediction empty", EMPTY, BLOB, None, 0.0, 0.0, DIAG_PX, DIAG_PX),
    ("only ground truth empty, mm", BLOB, EMPTY, (0.5, 0.25), 0.0, 0.0, DIAG_MM, DIAG_MM),
    ("only prediction empty, mm", EMPTY, BLOB, (0.5, 0.25), 0.0, 0.0, DIAG_MM, DIAG_MM),
    ("identical", BLOB, BLOB, None, 1.0, 1.0, 0.0, 0.0),
]


@pytest.mark.parametrize(
    ("case", "pred", "target", "spacing", "dice", "jaccard", "asd", "hd95"),
    EMPTY_CASES,
    ids=[c[0] for c in EMPTY_CASES],
)
def test_empty_mask_table(case, pred, target, spacing, dice, jaccard, asd, hd95):
    got = binary_metrics(pred, target, spacing=spacing)
    assert got == pytest.approx({"dice": dice, "jaccard": jaccard, "asd": asd, "hd95": hd95})
    assert all(math.isfinite(v) for v in got.values())


def test_penalty_exceeds_every_measurable_distance():
    corner_a = np.zeros((H, W), dtype=bool)
    corner_b = np.zeros((H, W), dtype=bool)
    corner_a[0, 0] = True
    corner_b[-1, -1] = True
    far = binary_metrics(corner_a, corner_b)
    assert far["hd95"] < image_diagonal((H, W)) == pytest.approx(DIAG_PX)


def _one_hot(labels: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(labels).long(), 3).permute(2, 0, 1)[None].float()


def _random_pair(seed: int, shape=(64, 64)) -> tuple[np.ndarray, np.ndarray]:
    """Two label maps with PS and FH in both: ellipses, jitter, specks and a border-touching FH."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]

    def scene(dx, dy, fh_r):
        m = np.zeros(shape, dtype=np.uint8)
        m[(xx - 40 - dx) ** 2 + (yy - 42 - dy) ** 2 <= fh_r**2] = 2
        m[((xx - 16 - dx) / 10.0) ** 2 + ((yy - 14 - dy) / 3.5) ** 2 <= 1.0] = 1
        return m

    target = scene(0, 0, 20 + seed % 3)
    pred = scene(rng.integers(-3, 4), rng.integers(-3, 4), 18 + seed % 5)
    specks = rng.random(shape) < 0.004
    pred[specks] = rng.integers(1, 3, size=int(specks.sum()))
    return pred, target


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("spacing", [None, (0.5, 0.3)])
def test_equal_to_monai_on_non_empty_masks(seed, spacing):
    pred, target = _random_pair(seed)
    got = image_metrics(pred, target, spacing=spacing)
    p, t = _one_hot(pred), _one_hot(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's own deprecation notices
        reference = {
            "dice": compute_dice(p, t, include_background=False)[0],
            "jaccard": compute_iou(p, t, include_background=False)[0],
            "asd": compute_average_surface_distance(p, t, symmetric=True, spacing=spacing)[0],
            "hd95": compute_hausdorff_distance(p, t, percentile=95, spacing=spacing)[0],
        }
    for channel, name in enumerate(FOREGROUND_CLASSES.values()):
        for metric, values in reference.items():
            assert got[name][metric] == pytest.approx(float(values[channel]), rel=1e-4, abs=1e-4), (name, metric)


def test_surface_distances_are_directed():
    small = _disk(20, 24, 3)
    large = _disk(20, 24, 9)
    to_large, to_small = surface_distances(small, large)
    assert to_large.size < to_small.size  # one entry per surface pixel of the source mask
    assert to_large.min() > 4.5 and to_small.max() < 7.5


def test_image_metrics_shape_and_aop_columns():
    target = draw_aop_masks(120.0, 128)
    pred = draw_aop_masks(135.0, 128)
    got = image_metrics(torch.from_numpy(pred), target)
    assert set(got) == {"PS", "FH", "aop_pred", "aop_true", "delta_aop"}
    assert set(got["PS"]) == {"dice", "jaccard", "asd", "hd95"}
    assert got["aop_true"] == pytest.approx(angle_of_progression(target))
    assert got["delta_aop"] == pytest.approx(abs(got["aop_pred"] - got["aop_true"]))
    assert got["delta_aop"] == pytest.approx(15.0, abs=3.0)

    no_head = pred.copy()
    no_head[no_head == 2] = 0
    missing = image_metrics(no_head, target)
    assert missing["aop_pred"] is None and missing["delta_aop"] is None
    assert missing["FH"]["dice"] == 0.0 and missing["FH"]["asd"] == pytest.approx(math.hypot(128, 128))


def test_image_metrics_rejects_mismatched_shapes():
    with pytest.raises(DataError, match=r"\(32, 32\) and \(32, 30\)"):
        image_metrics(np.zeros((32, 32)), np.zeros((32, 30)))
    with pytest.raises(DataError, match="spacing"):
        image_metrics(np.zeros((32, 32)), np.zeros((32, 32)), spacing=(1.0, -1.0))


def _batch() -> tuple[np.ndarray, np.ndarray]:
    """Four 64 px images: normal, prediction without FH, both without PS, prediction with an extra PS."""
    target = np.stack([draw_aop_masks(a, 64) for a in (110.0, 120.0, 130.0, 140.0)])
    pred = np.stack([draw_aop_masks(a, 64, offset=(1.0, 0.0)) for a in (112.0, 120.0, 127.0, 140.0)])
    pred[1][pred[1] == 2] = 0
    pred[2][pred[2] == 1] = 0
    target[2][target[2] == 1] = 0
    target[3][target[3] == 1] = 0
    return pred, target


def test_accumulator_rows_and_summary():
    pred, target = _batch()
    acc = MetricAccumulator()
    acc.update(pred[:2], target[:2], ["a", "b"])
    acc.update(torch.from_numpy(pred[2:]), torch.from_numpy(target[2:]), ["c", "d"])
    rows = acc.rows()
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert list(rows[0]) == [
        "id",
        "PS_dice",
        "PS_jaccard",
        "PS_asd",
        "PS_hd95",
        "FH_dice",
        "FH_jaccard",
        "FH_asd",
        "FH_hd95",
        "aop_pred",
        "aop_true",
        "delta_aop",
    ]
    for i, row in enumerate(rows):
        single = image_metrics(pred[i], target[i])
        assert row["FH_hd95"] == pytest.approx(single["FH"]["hd95"])
        assert row["delta_aop"] == single["delta_aop"]
    assert rows[1]["FH_dice"] == 0.0 and rows[1]["delta_aop"] is None
    assert rows[2]["PS_dice"] == 1.0 and rows[2]["PS_asd"] == 0.0  # both empty
    assert rows[3]["PS_dice"] == 0.0 and rows[3]["PS_hd95"] == pytest.approx(math.hypot(64, 64))

    summary = acc.summary()
    s = summary.to_dict()  # the JSON schema of evaluation_<split>.json
    assert EvalSummary.from_dict(s) == summary
    assert summary.dice == s["mean"]["dice"] and summary.fh.hd95 == s["FH"]["hd95"]
    assert set(s) == {"PS", "FH", "mean"}
    for name in ("PS", "FH"):
        assert set(s[name]) == {"dice", "jaccard", "asd", "hd95", "n", "n_empty_true", "n_empty_pred", "n_diagonal"}
        assert s[name]["n"] == 4
        for metric in ("dice", "jaccard", "asd", "hd95"):
            assert s[name][metric] == pytest.approx(np.mean([r[f"{name}_{metric}"] for r in rows]))
    assert (s["PS"]["n_empty_true"], s["PS"]["n_empty_pred"]) == (2, 1)
    assert (s["FH"]["n_empty_true"], s["FH"]["n_empty_pred"]) == (0, 1)
    # the diagonal penalty stands in for ASD/HD95 where exactly one side is empty, not where both are
    for name in ("PS", "FH"):
        one_sided = sum(
            r[f"{name}_dice"] == 0.0 and r[f"{name}_hd95"] == pytest.approx(math.hypot(64, 64)) for r in rows
        )
        assert s[name]["n_diagonal"] == one_sided
    assert (s["PS"]["n_diagonal"], s["FH"]["n_diagonal"]) == (1, 1)
    for metric in ("dice", "jaccard", "asd", "hd95"):
        assert s["mean"][metric] == pytest.approx((s["PS"][metric] + s["FH"][metric]) / 2)
    assert s["mean"]["n_aop"] == 1  # only image "a" has both angles
    assert s["mean"]["delta_aop"] == pytest.approx(rows[0]["delta_aop"])
    flat = [v for entry in s.values() for v in entry.values() if v is not None]
    assert all(math.isfinite(v) for v in flat)
    # The four numbers every record of a model carries (CandidateRecord's field names), from one place.
    assert summary.headline().to_dict() == {
        "dice": s["mean"]["dice"], "dice_ps": s["PS"]["dice"], "dice_fh": s["FH"]["dice"],
        "delta_aop_deg": s["mean"]["delta_aop"],
    }  # fmt: skip


def test_accumulator_accepts_logits_and_label_channels():
    pred, target = _batch()
    logits = torch.nn.functional.one_hot(torch.from_numpy(pred).long(), 3).permute(0, 3, 1, 2).float()
    logits = logits * 5.0 + torch.randn_like(logits) * 0.1  # scores whose argmax is pred
    from_labels = MetricAccumulator()
    from_labels.update(pred, target, ids=list("abcd"))
    from_logits = MetricAccumulator()
    from_logits.update(logits, torch.from_numpy(target)[:, None], ids=list("abcd"))
    from_channel = MetricAccumulator()
    from_channel.update(pred[:, None], target)
    assert from_logits.rows() == from_labels.rows()
    assert [r["id"] for r in from_channel.rows()] == ["0", "1", "2", "3"]
    assert from_channel.summary() == from_labels.summary()


def test_accumulator_spacing_units():
    pred, target = _batch()
    acc = MetricAccumulator()
    acc.update(pred[:2], target[:2], ["a", "b"], spacing=(0.5, 0.5))
    acc.update(pred[2:], target[2:], ["c", "d"], spacing=[(0.5, 0.5), (0.25, 0.25)])
    assert acc.distance_unit == "mm"
    px = MetricAccumulator()
    px.update(pred, target)
    assert acc.rows()[0]["FH_asd"] == pytest.approx(px.rows()[0]["FH_asd"] * 0.5)
    assert acc.rows()[3]["PS_hd95"] == pytest.approx(math.hypot(64, 64) * 0.25)
    with pytest.raises(DataError, match="spacing"):
        acc.update(pred[:1], target[:1], ["e"])
    with pytest.raises(DataError, match="3 spacings for a batch of 2"):
        px.update(pred[:2], target[:2], spacing=[(1, 1)] * 3)


def test_accumulator_rejects_bad_batches():
    acc = MetricAccumulator()
    with pytest.raises(DataError, match="ids"):
        acc.update(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), ["only-one"])
    with pytest.raises(DataError, match="matching size"):
        acc.update(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    assert len(acc) == 0


def test_empty_accumulator_summary_and_reset():
    acc = MetricAccumulator()
    s = acc.summary()
    assert s.ps.dice is None and s.ps.n == 0
    assert s.mean.delta_aop is None and s.mean.n_aop == 0
    assert set(s.headline().to_dict().values()) == {None}  # no image: no number, never NaN
    pred, target = _batch()
    acc.update(pred, target)
    acc.reset()
    assert len(acc) == 0 and acc.rows() == []


def test_format_table_lists_every_row():
    pred, target = _batch()
    acc = MetricAccumulator()
    acc.update(pred, target)
    s = acc.summary()
    text = format_table(s, distance_unit=acc.distance_unit)
    lines = text.splitlines()
    assert "dice" in lines[0] and "%" not in lines[0] and "HD95 px" in lines[0] and "|dAoP|" in lines[0]
    assert [line.split()[0] for line in lines[2:5]] == ["PS", "FH", "mean"]
    assert f"{s.fh.dice:.4f}" in lines[3]  # a fraction, as in the JSON and CSV
    assert f"{s.mean.delta_aop:.2f} (1)" in lines[4]
    assert len({len(line) for line in lines[:5]}) == 1  # fixed width
    # one image per class had an empty side: its ASD/HD95 is the diagonal penalty, and the table says so
    assert all(
        f"{getattr(c, m):.2f}*" in line for c, line in ((s.ps, lines[2]), (s.fh, lines[3])) for m in ("asd", "hd95")
    )
    assert lines[5].startswith("* the image diagonal stands in for ASD and HD95 in 1 of 4 PS and 1 of 4 FH image(s)")
    empty = format_table(MetricAccumulator().summary())
    assert empty.splitlines()[2].split()[1] == "-" and "*" not in empty


def test_summary_from_a_malformed_dict_names_the_source():
    with pytest.raises(DataError, match="evaluation_test.json: not an evaluation summary"):
        EvalSummary.from_dict({"PS": {}, "FH": {}}, source="evaluation_test.json")
