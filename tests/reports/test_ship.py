"""The report's "Which model to ship" section (issue 21): the pick with its conditions, its latency
against paper's from the same run, single run said, the file and the export command (run for real
on a real checkpoint), and every model timed twice labelled with its run."""

from __future__ import annotations

import shlex
from pathlib import Path

import onnx
import pytest

from reports import build_report, compute_report, report_summary
from rtseg_core import (
    EvalMetrics,
    StudyDir,
    ValidatedLatency,
    ValidatedResult,
    ValidatedSummary,
    write_candidate,
    write_trained,
)
from rtseg_nas.cli._main import build_parser, main

from .conftest import BASE, BUDGET, SETTINGS, cand, write_study

LATENCY = {"input": "1x1x256x256", "threads": 2, "device": "Intel Xeon (2 cores)",
           "runtime": "ONNX Runtime CPUExecutionProvider, one alternating run over every candidate"}  # fmt: skip
# name -> (test Dice, validate's latency ms): the demo's shape, the best Dice 1.55 points above paper and slower
DEMO = {"paper": (0.8919, 15.86), "trial-11": (0.9074, 21.10), "trial-4": (0.8500, 9.00)}


def validate_by_hand(study: Path, rows: dict, *, height: int = 256, variants: dict | None = None) -> None:
    """validated/ through StudyDir's writers, as `validate` writes it. ``rows``: architecture -> (test Dice,
    latency ms); ``variants``: compressed variant -> (parent, precision, test Dice, latency ms)."""
    sd = StudyDir(study)
    size = dict(height=height, width=height, recipe="full: 30 epochs x whole train split")
    for i, (name, (dice, latency)) in enumerate(rows.items()):
        record = cand(name, source="validated", split="test", dice=dice, latency_ms=latency, parent=name, trial=i,
                      **size)  # fmt: skip
        write_candidate(sd.validated(name), record)
        candidate = {"candidate": name, "trial": i, "config": dict(BASE.config), "source": "trial",
                     "proxy_dice": dice - 0.3, "proxy_latency_ms": None, "proxy_values": {}}  # fmt: skip
        test = EvalMetrics(dice=dice, dice_ps=dice, dice_fh=dice, delta_aop_deg=2.0)
        write_trained(sd.validated(name), ValidatedResult(candidate, BUDGET, BUDGET["epochs"], test, 0.5))
    variants = variants or {}
    for name, (parent, precision, dice, latency) in variants.items():
        record = cand(name, source="validated", split="test", dice=dice, latency_ms=latency, parent=parent,
                      precision=precision, **size)  # fmt: skip
        write_candidate(sd.validated(name), record)
    latencies = {n: {"median_ms": v[-1], "params": BASE.params} for n, v in {**rows, **variants}.items()}
    sd.write_validated_latency(ValidatedLatency(kind="measured", target="local", conditions=LATENCY,
                                                candidates=latencies))  # fmt: skip
    sd.write_validated_summary(
        ValidatedSummary(
            budget=BUDGET,
            candidates=tuple(sorted(rows)),
            variants=tuple(sorted(variants)),
            latency_target="local",
            proxy_dice={n: d - 0.3 for n, (d, _) in rows.items()},
            agreement=None,
        )  # fmt: skip
    )


def search_records():
    """The search's own rows: paper timed at 20.70 ms under the same stated conditions as validate's run."""
    return [
        cand("paper", dice=0.52, latency_ms=20.70, height=256, width=256),
        cand("trial-4", source="trial", trial=4, dice=0.45, latency_ms=8.0, height=256, width=256),
        cand("trial-11", source="trial", trial=11, dice=0.55, latency_ms=30.0, height=64, width=64),
    ]


@pytest.fixture
def demo_like(tmp_path: Path) -> Path:
    study = write_study(tmp_path / "study", search_records(), settings={**SETTINGS, "constraints": {}})
    validate_by_hand(study, DEMO)
    return study


def test_the_pick_is_said_in_full_and_its_slowness_against_paper_is_not_hidden(demo_like):
    info = compute_report(demo_like)
    s = info.ship
    assert (s.basis, s.pick, s.dice, s.latency_ms) == ("validated", "trial-11", 0.9074, 21.10)
    assert s.fps == pytest.approx(1000 / 21.10)
    c = s.conditions
    assert (c.input, c.threads, c.device, c.target, c.runtime, c.precision, c.kind) == (
        "256x256", 2, "Intel Xeon (2 cores)", "local", "onnxruntime", "fp32", "measured")  # fmt: skip
    assert c.run == "validate's one alternating run over every validated candidate"
    vp = s.versus_paper
    assert vp.same_run and vp.comparable and vp.ratio == pytest.approx(21.10 / 15.86)
    assert vp.speed_text() == "1.33x SLOWER than paper (21.10 ms vs paper's 15.86 ms)"
    assert vp.dice_points == pytest.approx(1.55)
    assert vp.dice_text() == "+1.55 Dice points (+0.0155) vs paper (Dice 0.9074 vs 0.8919)"
    assert s.runs.startswith("each model was trained once (one seed, seed 0)")  # BUDGET's seed
    assert s.file == Path("validated/trial-11/checkpoint.pt") and not s.file_found
    assert s.export_command == (
        f"rtseg-nas export --checkpoint {demo_like.resolve()}/validated/trial-11/checkpoint.pt --out trial-11.onnx "
        "--opset 13 --size 256"
    )
    assert "not in this study folder" in s.export_note and "TensorRT 8.2" in s.export_note
    assert "not timed on the Jetson" in s.device_note
    assert s.device_command == (
        f"rtseg-nas profile --checkpoint {demo_like.resolve()}/validated/trial-11/checkpoint.pt --size 256 "
        "--target ssh://USER@HOST"
    )
    parser, _ = build_parser("profile")  # the command the page gives parses as the CLI's profile verb
    parsed = parser.parse_args(shlex.split(s.device_command)[1:])
    assert (parsed.checkpoint, parsed.size, parsed.target) == (
        f"{demo_like.resolve()}/validated/trial-11/checkpoint.pt", 256, "ssh://USER@HOST")  # fmt: skip
    assert s.best is None and s.n_eligible == 3 and s.n_pool == 3

    html = build_report(demo_like).read_text()
    ship = html[html.index('id="ship"') : html.index('id="validated"')]
    assert "Basis: validated at the full budget" in ship and "Ship <b>trial-11</b>: <b>21.10 ms</b>" in ship
    assert "(47.4 FPS)" in ship and "<b>1.33x SLOWER than paper (21.10 ms vs paper&#x27;s 15.86 ms)</b>" in ship
    assert "<b>single run</b>: each model was trained once" in ship
    assert "--opset 13 --size 256</pre>" in ship and "validated/trial-11/checkpoint.pt" in ship
    summary = report_summary(info)["ship"]
    assert summary["pick"] == "trial-11" and summary["vs_paper"]["latency_ratio"] == pytest.approx(21.10 / 15.86)
    assert summary["runs"].startswith("single run: ")


def test_the_report_command_prints_the_ship_line(demo_like, capsys):
    assert main(["report", "--study", str(demo_like)]) == 0
    out = capsys.readouterr().out
    assert "ship (validated): trial-11, 21.10 ms (47.4 FPS), Dice 0.9074; MEASURED on Intel Xeon (2 cores)" in out
    assert "  vs paper: 1.33x SLOWER than paper (21.10 ms vs paper's 15.86 ms); +1.55 Dice points" in out
    assert "  single run: each model was trained once" in out
    assert "  export for a Jetson Nano: rtseg-nas export --checkpoint " in out and "--opset 13 --size 256" in out


def test_a_model_timed_twice_is_labelled_with_each_run(demo_like):
    info = compute_report(demo_like)
    pairs = {p.name: p for p in info.latency_pairs}
    assert set(pairs) == {"paper", "trial-4", "trial-11"}
    paper = pairs["paper"]
    assert (paper.search_ms, paper.validate_ms) == (20.70, 15.86) and paper.differing == ()
    assert paper.text() == (
        "paper: 20.70 ms in the search's own timing of this trial (trial 0); 15.86 ms in validate's one alternating "
        "run over every validated candidate; under the same stated conditions: the difference is the run (another "
        "moment, another machine load)"
    )
    assert pairs["trial-11"].differing == ("input",) and "input differ" in pairs["trial-11"].text()
    html = build_report(demo_like).read_text()
    section = html[html.index('id="two-latencies"') :]
    assert "3 model(s) have two latencies in this report." in section and "only numbers from the same run" in section
    assert "latency ms (validate&#x27;s run)" in html and "each trial was timed on its own" in html


def test_the_export_command_runs_on_the_shipped_checkpoint(tmp_path, monkeypatch):
    from models import Checkpoint, build_model, create_config, save_checkpoint

    study = write_study(tmp_path / "study", search_records(), settings=SETTINGS)
    validate_by_hand(study, DEMO, height=32)
    small = create_config("paper", conv_widths=(8, 16, 32), token_widths=(32, 48), enc_depths=(0, 0),
                          dec_depths=(0, 0))  # fmt: skip
    save_checkpoint(Checkpoint(config=small, state_dict=build_model(small).state_dict()),
                    study / "validated" / "trial-11" / "checkpoint.pt")  # fmt: skip
    s = compute_report(study).ship
    assert s.file_found and "not in this study folder" not in s.export_note
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(s.export_command)
    assert argv[0] == "rtseg-nas" and main(argv[1:]) == 0
    graph = onnx.load(tmp_path / "trial-11.onnx")
    assert [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [13]
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 1, 32, 32]  # the input the latency was taken at


def test_a_quantized_pick_ships_its_onnx_file_and_points_to_its_fp32_parent(tmp_path):
    from models import Checkpoint, build_model, create_config, save_checkpoint

    study = write_study(tmp_path / "study", search_records(), settings=SETTINGS)
    validate_by_hand(study, {"paper": (0.8919, 15.86), "trial-11": (0.9074, 21.10)},
                     variants={"trial-11.int8": ("trial-11", "int8", 0.9050, 12.0)})  # fmt: skip
    cfg = create_config("paper", conv_widths=(8, 16, 32), token_widths=(32, 48), enc_depths=(0, 0), dec_depths=(0, 0))
    save_checkpoint(Checkpoint(config=cfg, state_dict=build_model(cfg).state_dict()),
                    study / "validated" / "trial-11" / "checkpoint.pt")  # fmt: skip
    s = compute_report(study).ship
    assert s.pick == "trial-11.int8" and s.best == "trial-11" and s.best_dice == 0.9074
    assert s.file == Path("validated/trial-11.int8/model.onnx") and not s.file_found
    assert s.export_command is None and "an ONNX graph already (int8)" in s.export_note
    assert "no fast INT8" in s.export_note
    assert f"--checkpoint {study.resolve()}/validated/trial-11/checkpoint.pt --out trial-11.int8.fp32.onnx" in (
        s.export_note
    )
    assert s.versus_paper.speed_text() == "1.32x faster than paper (12.00 ms vs paper's 15.86 ms)"


def test_proxy_only_pick_says_so_and_its_paper_ratio_is_indicative(tmp_path):
    study = write_study(tmp_path / "study", search_records(), settings={**SETTINGS, "constraints": {}})
    s = compute_report(study).ship
    assert s.basis == "proxy" and s.pick == "trial-11" and "NOT validated" in s.dice_basis
    assert s.notes[0].startswith("PROXY-ONLY")
    assert s.conditions.run == "the search's own timing of this trial (trial 11)"
    # paper was timed at 256x256, trial-11 at 64x64: no ratio, and the page says why
    vp = s.versus_paper
    assert not vp.comparable and vp.ratio is None and "input differ" in vp.note
    assert vp.speed_text().startswith("no latency ratio to paper")
    assert s.file == Path("trials/11/checkpoint.pt") and s.runs.endswith("short proxy budget")
    html = build_report(study).read_text()
    assert "Basis: PROXY-ONLY (not validated)" in html and "no latency ratio to paper" in html


def test_proxy_ratio_under_the_same_conditions_is_marked_indicative(tmp_path):
    records = [cand("paper", dice=0.52, latency_ms=20.0), cand("trial-1", source="trial", trial=1, dice=0.55,
                                                                  latency_ms=10.0)]  # fmt: skip
    study = write_study(tmp_path / "study", records, settings={**SETTINGS, "constraints": {}})
    vp = compute_report(study).ship.versus_paper
    assert vp.comparable and not vp.same_run and vp.ratio == pytest.approx(0.5)
    assert vp.speed_text() == "2.00x faster than paper (10.00 ms vs paper's 20.00 ms)"
    assert "indicative only" in vp.note


def test_paper_as_the_pick_no_paper_and_no_eligible_candidate(tmp_path):
    study = write_study(tmp_path / "a", search_records(), settings={**SETTINGS, "constraints": {}})
    validate_by_hand(study, {"paper": (0.93, 15.0), "trial-4": (0.85, 9.0)})
    s = compute_report(study).ship
    assert s.pick == "paper" and s.versus_paper is None and "the pick is paper itself" in s.versus_paper_missing

    study = write_study(tmp_path / "b", search_records(), settings={**SETTINGS, "constraints": {}})
    validate_by_hand(study, {"trial-4": (0.85, 9.0)})
    s = compute_report(study).ship
    assert s.pick == "trial-4" and s.versus_paper is None and s.versus_paper_missing.startswith("paper is not")

    study = write_study(tmp_path / "c", search_records(), settings={**SETTINGS, "constraints": {"min_fps": 1000}})
    validate_by_hand(study, DEMO)
    s = compute_report(study).ship
    assert s.pick is None and s.conditions is None
    assert "No candidate is feasible and meets the constraints (min_fps = 1000)" in build_report(study).read_text()


def test_the_figures_mark_the_validated_pick_and_front(demo_like):
    info = compute_report(demo_like)
    fps = info.plots[0]
    assert fps.pick == "trial-11" and fps.pick_note == ""
    assert set(fps.marked_front) == set(info.validated.front.front_names) & set(info.candidates["name"])
    pick = next(label for label in fps.labels if label.role == "pick")
    assert pick.text == "SHIP trial-11\nvalidated, test split:\nDice 0.9074, 21.10 ms"
    assert ("pick", "ship pick (validated), at its search position") in fps.legend
    assert any(key == "validated_front" for key, _ in fps.legend)


def test_the_pick_against_paper_carries_the_interval_of_validates_rounds(demo_like):
    import dataclasses

    from rtseg_core import SpeedRatio

    sd = StudyDir(demo_like)
    latency = sd.read_validated_latency()
    speed = SpeedRatio(15.86 / 21.10, 0.73, 0.77, 30)  # paper's median over trial-11's: trial-11 is slower
    rows = {n: {**r, "vs_paper": speed.to_dict() if n == "trial-11" else None} for n, r in latency.candidates.items()}
    sd.write_validated_latency(dataclasses.replace(latency, candidates=rows))
    vp = compute_report(demo_like).ship.versus_paper
    assert vp.speed == speed and vp.speed_text() == (
        "1.33x [1.30, 1.37] SLOWER than paper (21.10 ms vs paper's 15.86 ms; 95 % interval over 30 paired rounds)"
    )
    assert report_summary(compute_report(demo_like))["ship"]["vs_paper"]["speed_vs_paper"]["low"] == 0.73
