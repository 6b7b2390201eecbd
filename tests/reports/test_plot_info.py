from __future__ import annotations

import numpy as np
import pytest

from reports import (
    PAPER_PUBLISHED,
    REALTIME_BANDS,
    ValidatedMarks,
    candidates_frame,
    dice_fps_info,
    dice_macs_info,
    dice_params_info,
    figure_bytes,
    plot_scatter,
)
from reports._labels import MARKER_PT, Box, Frame

from .conftest import cand, tiny_records

NANO = dict(
    dataset="jnu-ifm",
    split="test",
    target="ssh://nvidia@192.168.55.1:22",
    device="Jetson Nano (L4T R32.6.1), 10W MAXN",
    backend="tensorrt",
    precision="fp16",
    threads=None,
)


def _nano_study(**override):
    return candidates_frame(
        [
            cand("paper", **{**NANO, **override}, latency_ms=40.0),
            cand("trial-1", source="trial", trial=1, dice=0.88, latency_ms=30.0, **{**NANO, **override}),
            cand(
                "paper.fp16",
                source="compressed",
                parent="paper",
                trial=None,
                dice=0.87,
                latency_ms=20.0,
                **{**NANO, **override},
            ),
        ]
    )


def test_dice_fps_front_and_marks_on_the_tiny_study():
    info = dice_fps_info(candidates_frame(tiny_records()))
    # FPS maximize is the same order as latency minimize.
    assert set(info.front.front_names) == {"paper", "paper.int8", "trial-1", "trial-4"}
    assert info.front.dominated_names == ("trial-2",)
    assert info.front.infeasible_names == ("trial-3",)
    assert tuple(info.front.missing["name"]) == ("trial-5",)
    assert info.references == ("paper",)
    assert info.estimated == ("trial-4",)
    assert [(a.parent, a.child) for a in info.arrows] == [("paper", "paper.int8")]
    assert info.arrows[0].start == pytest.approx((20.0, 0.90)) and info.arrows[0].end == pytest.approx(
        (1000 / 28, 0.895)
    )  # Dice drawn as stored: a fraction
    # Local and estimated targets mixed: no real-time bands; synthetic data: no published point.
    assert info.bands == ()
    assert info.published is None and "synthetic" in info.published_reason
    assert "synthetic data" in info.title
    assert "measured" in info.x.label and "ESTIMATED" in info.x.label
    assert "Intel Xeon (2 cores) | onnxruntime fp32 | 2 thread(s) | input 64x64 | measured (local)" in info.subtitle
    # The staircase runs from the fastest front point (best x) to the best Dice.
    assert info.front_line[0] == pytest.approx((62.5, 0.86)) and info.front_line[-1] == pytest.approx((20.0, 0.90))
    assert info.better == ("right", "top")


def test_published_point_only_when_comparable():
    info = dice_fps_info(_nano_study())
    assert info.published is PAPER_PUBLISHED
    assert info.bands == REALTIME_BANDS
    # Never part of our front.
    assert "published (paper)" not in info.front.front_names and len(info.front.front) == 3

    assert dice_fps_info(_nano_study(dataset="synthetic")).published is None
    assert dice_fps_info(_nano_study(device="Jetson Nano 4GB (B01)")).published is PAPER_PUBLISHED
    xavier = dice_fps_info(_nano_study(device="Jetson Xavier NX", target="ssh://nvidia@xavier:22"))
    assert xavier.published is None and xavier.bands == REALTIME_BANDS
    estimate = dice_fps_info(_nano_study(latency_kind="estimated", target="jetson-nano-estimate", backend="roofline"))
    assert estimate.published is None and "estimated" in estimate.published_reason
    assert estimate.bands == REALTIME_BANDS and "ESTIMATED" in estimate.x.label
    local = dice_fps_info(_nano_study(target="local", device="Intel Xeon"))
    assert local.published is None and local.bands == ()
    # The cost plots never carry it.
    assert dice_macs_info(_nano_study()).published is None


def test_cost_plots_use_their_own_fronts():
    df = candidates_frame(tiny_records())
    macs = dice_macs_info(df)
    # Equal MACs for paper and paper.int8 (quantization keeps them): the int8 one has lower Dice.
    assert set(macs.front.front_names) == {"paper", "trial-1", "trial-4"}
    assert "paper.int8" in macs.front.dominated_names
    assert macs.x.factor == 1e-9 and macs.better == ("left", "top")
    params = dice_params_info(df)
    assert set(params.front.front_names) == {"paper", "trial-1", "trial-4"}
    assert "counted at input 64x64" in params.subtitle


def test_log_scale_when_costs_span_orders_of_magnitude():
    df = candidates_frame([cand("a", params=10_000), cand("b", trial=1, params=5_000_000, dice=0.95)])
    assert dice_params_info(df).x.log
    assert not dice_params_info(candidates_frame(tiny_records())).x.log


def test_drawing_with_bands_published_and_arrows_renders():
    info = dice_fps_info(_nano_study())
    fig = plot_scatter(info)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert lo == 0 and hi >= PAPER_PUBLISHED.fps
    assert fig.get_suptitle() == info.title
    png = figure_bytes(fig, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = figure_bytes(fig, "svg").decode()
    assert "<svg" in svg
    assert "IS&gt;24" in svg and "published (paper)" in svg  # matplotlib keeps drawn text as comments


def test_empty_input_warns_and_still_draws(caplog):
    df = candidates_frame([])
    with caplog.at_level("WARNING"):
        info = dice_fps_info(df)
    assert info.note and "no candidates" in info.note
    assert any("empty figure" in r.message for r in caplog.records)
    assert np.asarray(info.front_line).size == 0
    assert figure_bytes(plot_scatter(info), "png")[:4] == b"\x89PNG"


# -- issue 21: the pick and the validated front marked; an infeasible paper marked; text that does not overprint --
def _boxes_overlap(a, b):
    return a.overlap(b) > 0.0


def test_validated_pick_and_front_are_marked_at_their_search_position():
    marks = ValidatedMarks(front=("trial-1", "trial-2", "gone"), pick="trial-2", pick_text="SHIP trial-2\nvalidated")
    info = dice_fps_info(candidates_frame(tiny_records()), marks)
    assert info.pick == "trial-2" and info.marked_front == ("trial-1", "trial-2")  # "gone" has no point here
    pick = [label for label in info.labels if label.role == "pick"]
    assert len(pick) == 1 and pick[0].xy == pytest.approx((1000 / 55, 0.85)) and pick[0].text == marks.pick_text
    keys = [k for k, _ in info.legend]
    assert keys[-2:] == ["validated_front", "pick"]
    # trial-2 is dominated: labelled as the pick only, not again as a validated front member
    assert [label.name for label in info.labels].count("trial-2") == 1
    missing = dice_fps_info(candidates_frame(tiny_records()), ValidatedMarks((), "trial-5", "SHIP trial-5"))
    assert missing.pick is None and "trial-5 has no point on this plot" in missing.pick_note
    alone = dice_fps_info(candidates_frame(tiny_records()), ValidatedMarks(("trial-2",), "trial-2", "SHIP"))
    assert [k for k, _ in alone.legend][-1] == "pick" and "validated_front" not in dict(alone.legend)
    proxy = dice_fps_info(candidates_frame(tiny_records()), ValidatedMarks((), "trial-1", "x", basis="proxy"))
    assert ("pick", "ship pick (PROXY-ONLY, not validated), at its search position") in proxy.legend


def test_an_infeasible_paper_is_marked_infeasible():
    records = [cand("paper", feasible=False), *tiny_records()[1:]]
    info = dice_fps_info(candidates_frame(records))
    assert info.references == ("paper",) and info.references_infeasible == ("paper",)
    assert ("reference_infeasible", "paper preset, INFEASIBLE: breaks a constraint") in info.legend
    assert "reference" not in [k for k, _ in info.legend]
    assert any(label.text == "paper (INFEASIBLE)" for label in info.labels)
    feasible = dice_fps_info(candidates_frame(tiny_records()))
    assert feasible.references_infeasible == () and ("reference", "paper preset (measured here)") in feasible.legend


def test_labels_of_a_crowded_front_do_not_overprint_each_other_or_the_markers():
    # Eight front points close together, as a converged search gives: one label each, no two boxes overlapping.
    rows = [cand(f"trial-{i}", source="trial", trial=i, dice=0.80 + 0.004 * i, latency_ms=10.0 + 0.6 * i)
            for i in range(1, 9)]  # fmt: skip
    info = dice_fps_info(candidates_frame([cand("paper", dice=0.95, latency_ms=60.0), *rows]))
    frame = Frame(info.xlim, info.ylim, log_x=info.x.log)
    boxes = [label.box(frame) for label in info.labels]
    assert len(boxes) == len(info.front.front_names) == 9
    assert not any(_boxes_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    points = [frame.to_pt(r.fps, r.dice) for r in info.front.front.itertuples()]
    markers = [Box(x - MARKER_PT, y - MARKER_PT, x + MARKER_PT, y + MARKER_PT) for x, y in points]
    assert not any(_boxes_overlap(b, m) for b in boxes for m in markers)
    assert not any(label.crowded for label in info.labels)
    w, h = frame.size
    assert all(b.x0 >= 0 and b.y0 >= 0 and b.x1 <= w and b.y1 <= h for b in boxes)


def test_the_better_arrow_and_the_legend_keep_off_the_best_points():
    # Every point in the upper right (high Dice, high FPS): that is where "better" points, not where it goes.
    rows = [cand(f"trial-{i}", source="trial", trial=i, dice=0.90 + 0.002 * i, latency_ms=10.0 - 0.5 * i)
            for i in range(1, 6)]  # fmt: skip
    info = dice_fps_info(candidates_frame([cand("paper", dice=0.60, latency_ms=60.0), *rows]))
    assert info.better == ("right", "top") and info.better_corner != "upper right"
    assert info.legend_corner != info.better_corner and info.legend_corner != "upper right"
    tx, ty, hx, hy = info.better_arrow
    assert hx > tx and hy > ty  # it still points towards higher FPS and higher Dice
    frame = Frame(info.xlim, info.ylim)
    arrow = Box(tx * frame.size[0], ty * frame.size[1], hx * frame.size[0], hy * frame.size[1])
    for r in info.front.front.itertuples():
        x, y = frame.to_pt(r.fps, r.dice)
        assert not arrow.contains(x, y)
    # The limits hold every point; a cost plot points left (fewer MACs) and up.
    assert info.xlim[0] < min(info.front.front["fps"]) and info.xlim[1] > max(info.front.front["fps"])
    macs = dice_macs_info(candidates_frame(tiny_records()))
    tx, ty, hx, hy = macs.better_arrow
    assert hx < tx and hy > ty


def test_limits_hold_every_point_and_stay_non_negative():
    info = dice_fps_info(candidates_frame([cand("paper", latency_ms=50.0), cand("t", trial=1, latency_ms=1.0)]))
    assert info.xlim[0] == 0.0 and info.xlim[1] > 1000.0  # 20 and 1000 FPS, no negative FPS shown
    zero = dice_fps_info(candidates_frame([cand("paper"), cand("t", trial=1, dice=0.0, latency_ms=1.0)]))
    assert zero.ylim[0] < 0.0 < 0.9 < zero.ylim[1]  # a Dice of 0 keeps room below it
