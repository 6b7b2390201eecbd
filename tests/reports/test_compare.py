"""``report --compare``: real tiny searches (fixed budget, multi-fidelity) with validated records written by hand
in the layout `validate` writes, a supernet study's layout, the hypervolume checked against pymoo."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from datetime import datetime

import numpy as np
import pytest
from pymoo.indicators.hv import HV

from reports import candidates_frame, compare_studies, dice_difference, paper_check
from rtseg_core import ConfigError, Constraints, StudyDir, SupernetSettings, write_supernet_training
from rtseg_nas.cli._main import main

from .conftest import BUDGET, cand, run_tiny_search, write_validated

# name -> (full-budget test Dice, validated latency ms, feasible)
FIXED = {"paper": (0.930, 30.0, True), "trial-1": (0.927, 19.0, True), "trial-2": (0.940, 35.0, True),
         "trial-3": (0.960, 5.0, False)}  # fmt: skip
MULTI = {"paper": (0.925, 24.0, True), "trial-1": (0.900, 12.0, True), "trial-2": (0.926, 20.0, True)}
ONESHOT = {"paper": (0.931, 26.0, True), "trial-4": (0.915, 17.0, True)}


def validate_by_hand(study, rows, *, threads=1, budget=BUDGET):
    """validated/ as `validate` writes it (no proxy Dice: these tests compare fronts, not the proxy)."""
    write_validated(study, {n: (None, *row) for n, row in rows.items()}, budget=budget, threads=threads)


SUPERNET_RECORD = {"train": {"epochs": 2, "steps_per_epoch": 3}, "sandwich": {"random_subnets": 2}, "space": {},
                   "largest": {}, "smallest": {}, "wall_s_this_run": 3.75, "device": "cpu",
                   "epochs": [{"epoch": 1, "seconds": 1.5}, {"epoch": 2, "seconds": 2.25}]}  # fmt: skip


@pytest.fixture(scope="module")
def studies(mf_search, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    fixed = run_tiny_search(root / "fixed", trials=3, epochs=2)
    multi = root / "multi"
    shutil.copytree(mf_search, multi)
    # A study from before trials recorded CPU seconds: no cpu_s column in its history.csv.
    with open(multi / "history.csv", newline="") as f:
        hist = list(csv.DictReader(f))
    with open(multi / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[k for k in hist[0] if k != "cpu_s"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(hist)
    # A supernet study's layout: its study.json names the supernet, whose supernet.json records its training.
    oneshot = root / "oneshot"
    shutil.copytree(fixed, oneshot)
    for m in oneshot.glob("trials/*/metrics.json"):
        m.unlink()  # subnets are evaluated with inherited weights, never trained
    sn = root / "sn"
    write_supernet_training(sn, SUPERNET_RECORD)
    settings = StudyDir(oneshot).read_settings()
    part = SupernetSettings(path=str(sn / "supernet.pt"), epoch=2, container="widest", train=SUPERNET_RECORD["train"],
                            sandwich=SUPERNET_RECORD["sandwich"], recipe="supernet-inherited", bn_batches=4,
                            val_batches=None)  # fmt: skip
    StudyDir(oneshot).write_settings(dataclasses.replace(settings, search=part))
    for study, rows in ((fixed, FIXED), (multi, MULTI), (oneshot, ONESHOT)):
        validate_by_hand(study, rows)
    return fixed, multi, oneshot


def pymoo_hv(points, ref):
    """Hypervolume of (Dice max, latency min) points by pymoo (both minimized: -Dice)."""
    pts = np.array([[-d, lat] for d, lat in points], dtype=float)
    return float(HV(ref_point=np.array([-ref[0], ref[1]]))(pts))


def history_wall(study):
    total = 0.0
    with open(study / "history.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["datetime_start"] and r["datetime_complete"]:
                a, b = (datetime.fromisoformat(r[k]) for k in ("datetime_start", "datetime_complete"))
                total += (b - a).total_seconds()
    return total


def test_compare_writes_hypervolume_under_one_reference_and_the_paper_check(studies, tmp_path, capsys):
    fixed, multi, oneshot = studies
    out = tmp_path / "cmp"
    assert main(["report", "--compare", str(fixed), str(multi), str(oneshot), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "comparison: " in printed
    for name in ("compare.csv", "compare.json", "compare.html", "compare.png", "compare.svg", ".rtseg-output.json"):
        assert (out / name).stat().st_size > 0
    with open(out / "compare.csv", newline="") as f:
        rows = {r["study"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"fixed", "multi", "oneshot"}

    # One reference point from every study's feasible validated points (trial-3 of `fixed` is infeasible).
    feasible = {k: [(d, lat) for d, lat, ok in v.values() if ok] for k, v in
                (("fixed", FIXED), ("multi", MULTI), ("oneshot", ONESHOT))}  # fmt: skip
    pooled = np.array([p for pts in feasible.values() for p in pts])
    ref = (pooled[:, 0].min() - 0.1 * np.ptp(pooled[:, 0]), pooled[:, 1].max() + 0.1 * np.ptp(pooled[:, 1]))
    for study, pts in feasible.items():
        assert float(rows[study]["hv_reference_dice"]) == pytest.approx(ref[0], abs=1e-12)
        assert float(rows[study]["hv_reference_latency_ms"]) == pytest.approx(ref[1], abs=1e-12)
        assert float(rows[study]["hypervolume"]) == pytest.approx(pymoo_hv(pts, ref), rel=1e-12)
    assert float(rows["fixed"]["hypervolume"]) > float(rows["multi"]["hypervolume"])

    # The check against each study's own paper: Dice >= paper - 0.005 and latency <= paper / 1.5.
    assert rows["fixed"]["meets_paper_check"] == "trial-1"  # 0.927 >= 0.925, 19 <= 20 ms
    assert rows["multi"]["meets_paper_check"] == ""
    assert rows["multi"]["closest_by_dice"] == "trial-1" and rows["multi"]["closest_by_speed"] == "trial-2"
    assert rows["oneshot"]["closest_by_dice"] == "trial-4" and rows["oneshot"]["closest_by_speed"] == ""
    assert rows["fixed"]["best_name"] == "trial-2" and float(rows["fixed"]["paper_dice"]) == 0.930

    # Strategy and compute as the files record them.
    # (the tiny searches draw at random: --sampler random, the baseline's label)
    assert rows["fixed"]["strategy"] == "random sampling, fixed-budget (2 epochs)"
    assert rows["multi"]["strategy"] == "random sampling, multi-fidelity (rungs 1, 2, 3 epochs, eta 2)"
    assert rows["oneshot"]["strategy"].startswith("supernet")
    for study in (fixed, multi):
        with open(study / "history.csv", newline="") as f:
            hist = list(csv.DictReader(f))
        row = rows[study.name]
        epochs = sum(int(h["epochs_trained"]) for h in hist if h["epochs_trained"])
        assert int(row["epochs_trained"]) == epochs and int(row["steps_at_most"]) == epochs  # 1 step per epoch
        assert int(row["trials"]) == len(hist)
        assert float(row["trial_wall_s"]) == pytest.approx(history_wall(study))
    assert int(rows["multi"]["trials_stopped"]) == sum(1 for h in hist if h["state"] == "PRUNED")
    assert int(rows["oneshot"]["epochs_trained"]) == 0 and float(rows["oneshot"]["supernet_wall_s"]) == 3.75
    assert int(rows["oneshot"]["supernet_members_per_step"]) == 4

    # Trial CPU seconds, summed from history.csv's cpu_s; "not recorded" where the column is absent.
    with open(fixed / "history.csv", newline="") as f:
        cpu = [float(h["cpu_s"]) for h in csv.DictReader(f)]
    assert cpu and all(c > 0 for c in cpu)
    assert float(rows["fixed"]["trial_cpu_s"]) == pytest.approx(sum(cpu)) and rows["multi"]["trial_cpu_s"] == ""
    assert f"trials {sum(cpu):.1f} s CPU" in printed and "trial CPU not recorded" in printed

    html = (out / "compare.html").read_text()
    assert "trial CPU seconds not recorded" in html and f"trials {sum(cpu):.1f} s CPU" in html
    assert "supernet's training CPU seconds" in rows["oneshot"]["compute_missing"]
    assert 'id="fig-compare"' in html and 'id="latency-note"' in html and "own paper" in html
    assert "did not spend the same compute (training steps, at most: fixed 6, multi " in html
    assert "trial-1 (-0.30 Dice points (-0.0030), 1.58x faster)" in html and "none is within 0.5 Dice points" in html
    assert "one Dice point is 0.01 of it" in html
    # Searched under the same constraints (none): said in a row, no warning.
    assert "<th>search constraints (study.json)</th><td>none</td><td>none</td><td>none</td>" in html
    assert "DIFFERENT constraints" not in html and rows["fixed"]["constraints"] == "none"
    data = json.loads((out / "compare.json").read_text())
    assert data["reference_point"]["rule"].startswith("worst validated feasible value") and len(data["studies"]) == 3

    # Its own earlier output is replaced; a folder holding other files is refused without --overwrite.
    assert main(["report", "--compare", str(fixed), str(multi), "--out", str(out)]) == 0
    (out / "mine.txt").write_text("x")
    assert main(["report", "--compare", str(fixed), str(multi), "--out", str(out)]) == 2
    assert "mine.txt" in capsys.readouterr().err and (out / "mine.txt").exists()


def test_compare_refuses_different_budgets_conditions_and_unvalidated_studies(studies, tmp_path, capsys):
    fixed, multi, _ = studies
    other = tmp_path / "other"
    shutil.copytree(multi, other)
    validate_by_hand(other, MULTI, budget={**BUDGET, "epochs": 15})
    with pytest.raises(ConfigError, match=r"fixed and other .*budget: 'epochs' = 30 vs 15"):
        compare_studies([fixed, other])
    validate_by_hand(other, MULTI, threads=2)
    with pytest.raises(ConfigError, match=r"fixed and other .*latency condition: 'threads' = 1 vs 2"):
        compare_studies([fixed, other])
    shutil.rmtree(other / "validated")
    out = tmp_path / "cmp"
    assert main(["report", "--compare", str(fixed), str(other), "--out", str(out)]) == 2
    assert "no validated candidates" in capsys.readouterr().err and not out.exists()
    assert main(["report", "--compare", str(fixed)]) == 2
    assert "--out" in capsys.readouterr().err


def test_compare_states_different_search_constraints(studies, tmp_path):
    fixed, multi, _ = studies
    other = tmp_path / "other"
    shutil.copytree(multi, other)
    settings = StudyDir(other).read_settings()
    StudyDir(other).write_settings(dataclasses.replace(settings, constraints=Constraints(min_fps=30, max_params=2e6)))
    info = compare_studies([fixed, other])
    assert [s.constraints_text() for s in info.studies] == ["none", "max_params = 2e+06, min_fps = 30"]
    warning = [n for n in info.notes if "DIFFERENT constraints" in n]
    assert warning == [
        "The studies were searched under DIFFERENT constraints (fixed: none; other: max_params = 2e+06, min_fps = 30): "
        "each search kept and rejected candidates by its own limits, so their fronts answer different questions; the "
        "validated feasibility below is judged by each study's own limits."
    ]
    assert info.to_dict()["studies"][1]["constraints"]["min_fps"] == 30


def test_a_large_dice_difference_reads_large():
    # 0.1122 as a fraction is 11.22 points: written with both, never as a small-looking "+0.11"
    assert dice_difference(0.1122) == "+11.22 Dice points (+0.1122)"
    assert dice_difference(-0.003) == "-0.30 Dice points (-0.0030)"
    rows = {"paper": (0.80, 30.0, True), "trial-1": (0.9122, 15.0, True)}
    df = candidates_frame([cand(n, source="validated", split="test", dice=d, latency_ms=lat, feasible=ok)
                           for n, (d, lat, ok) in rows.items()])  # fmt: skip
    check = paper_check(df)
    assert check.message == "meets it: trial-1 (+11.22 Dice points (+0.1122), 2.00x faster)"


def test_the_supernets_training_cpu_seconds_count_when_its_record_has_them(tmp_path):
    from reports._compare import _supernet_record

    part = SupernetSettings(path=str(tmp_path / "supernet.pt"), epoch=2, container="widest",
                            train=SUPERNET_RECORD["train"], sandwich=SUPERNET_RECORD["sandwich"],
                            recipe="supernet-inherited", bn_batches=4, val_batches=None)  # fmt: skip
    epochs = [{**e, "cpu_s": cpu} for e, cpu in zip(SUPERNET_RECORD["epochs"], (1.25, 2.0))]
    write_supernet_training(tmp_path, {**SUPERNET_RECORD, "epochs": epochs})
    record, note = _supernet_record(part)
    assert note == "" and record["cpu_s"] == 3.25 and record["seconds"] == 3.75
    write_supernet_training(tmp_path, SUPERNET_RECORD)  # from before: wall seconds only
    assert _supernet_record(part)[0]["cpu_s"] is None
    from reports._strategies import _all_cpu, _supernet_seconds

    # a group's supernet compute is in CPU seconds only when every supernet recorded them, never mixed
    with_cpu, wall_only = {"seconds": 3.75, "cpu_s": 3.25}, {"seconds": 3.75}
    assert _all_cpu([with_cpu, None]) and not _all_cpu([with_cpu, wall_only]) and not _all_cpu([None])
    assert _supernet_seconds(with_cpu, True) == 3.25 and _supernet_seconds(with_cpu, False) == 3.75


def test_two_studies_per_strategy_give_mean_hypervolumes_with_intervals_against_random_sampling(
    studies, tmp_path, capsys
):
    from scipy import stats

    fixed, multi, oneshot = studies
    # repeated searches: the same strategy with another --seed (study.json), each validated on its own
    rows = {"fixed-a": (fixed, 0, FIXED), "fixed-b": (fixed, 1, {**FIXED, "trial-1": (0.929, 17.0, True)}),
            "multi-a": (multi, 0, MULTI), "multi-b": (multi, 1, {**MULTI, "trial-2": (0.931, 18.0, True)}),
            "random-a": (fixed, 2, {"paper": (0.930, 30.0, True), "trial-1": (0.910, 25.0, True)}),
            "random-b": (fixed, 3, {"paper": (0.929, 30.0, True), "trial-2": (0.905, 22.0, True)})}  # fmt: skip
    copies = {}
    for name, (source, seed, validated) in rows.items():
        copies[name] = tmp_path / name
        shutil.copytree(source, copies[name])
        sd = StudyDir(copies[name])
        sampler = "random" if name.startswith("random") else "nsga2"
        sd.write_settings(dataclasses.replace(sd.read_settings(), seed=seed, sampler=sampler))
        validate_by_hand(copies[name], validated)
    dirs = [
        *(copies[n] for n in ("fixed-a", "fixed-b", "multi-a", "multi-b")),
        oneshot,
        copies["random-a"],
        copies["random-b"],
    ]
    out = tmp_path / "cmp"
    assert main(["report", "--compare", *map(str, dirs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    info = compare_studies(dirs)
    hv = {s.label: s.hypervolume for s in info.studies}
    groups = {g.strategy: g for g in info.groups}
    assert list(groups)[0] == "random sampling, fixed-budget (2 epochs)" and info.groups[0].baseline
    base = groups["random sampling, fixed-budget (2 epochs)"]
    fix = groups["fixed-budget (2 epochs)"]
    assert fix.studies == ("fixed-a", "fixed-b") and fix.search_seeds == (0, 1) and base.search_seeds == (2, 3)
    # the mean and its 95 % t-interval over the strategy's studies, as scipy gives them
    values = [hv["fixed-a"], hv["fixed-b"]]
    low, high = stats.t.interval(0.95, 1, loc=np.mean(values), scale=stats.sem(values))
    assert fix.hypervolume.mean == pytest.approx(np.mean(values))
    assert (fix.hypervolume.low, fix.hypervolume.high) == pytest.approx((low, high))
    # against the random-sampling baseline: Welch's interval of the difference of the means
    welch = stats.ttest_ind(values, [hv["random-a"], hv["random-b"]], equal_var=False).confidence_interval()
    v = fix.vs_baseline
    assert (v["low"], v["high"]) == pytest.approx((welch.low, welch.high))
    assert v["verdict"] == ("better" if welch.low > 0 else "worse" if welch.high < 0 else "indistinguishable")
    # one supernet study: a single run, no interval; compute as recorded (cpu_s summed per study)
    sn = groups["supernet (one-shot, inherited weights)"]
    assert sn.n == 1 and sn.hypervolume.low is None and "single run" in sn.hypervolume_text()
    assert "single run" in sn.baseline_text() and "supernet training 3.8 s (wall) per study" in sn.cpu_text()
    assert fix.cpu_s == (info.studies[0].compute.trial_cpu_s, info.studies[1].compute.trial_cpu_s)
    assert groups["multi-fidelity (rungs 1, 2, 3 epochs, eta 2)"].cpu_text() == "trial CPU not recorded"
    assert "validated hypervolume per strategy" in printed and fix.hypervolume_text() in printed
    html = (out / "compare.html").read_text()
    assert 'id="strategies"' in html and "<b>(baseline)</b>" in html and "fixed-a (0), fixed-b (1)" in html
    data = json.loads((out / "compare.json").read_text())
    assert [g["studies"] for g in data["strategies"]][1] == ["fixed-a", "fixed-b"]


def test_a_predictor_searchs_samples_and_nsga_cpu_count_in_its_compute(studies, tmp_path):
    from reports._compare import search_compute

    oneshot = tmp_path / "oneshot"
    shutil.copytree(studies[2], oneshot)
    sd = StudyDir(oneshot)
    assert search_compute(sd, sd.read_settings()).predictor is None  # no predictor.json: not a predictor search
    record = {"samples": {"n": 3, "cpu_s_this_run": 1.0, "cpu_s": 4.5}, "search": {"cpu_s": 2.25}}
    sd.predictor_json.write_text(json.dumps(record))
    compute = search_compute(sd, sd.read_settings())
    assert compute.predictor == {"samples_cpu_s": 4.5, "nsga_cpu_s": 2.25, "cpu_s": 6.75}
    assert "predictor phase 6.8 s CPU (samples 4.5, NSGA-II 2.2)" in compute.describe()
    info = compare_studies([studies[0], oneshot])
    assert info.table()["predictor_cpu_s"].isna().tolist() == [True, False]
    assert info.table()["predictor_cpu_s"].tolist()[1] == 6.75
    group = next(g for g in info.groups if g.studies == ("oneshot",))
    assert "predictor phase (samples + NSGA-II) 6.8 CPU s per study" in group.cpu_text()
    # samples scored before their per-line CPU was kept: said, never counted as this run's share
    record["samples"]["cpu_s"] = None
    sd.predictor_json.write_text(json.dumps(record))
    compute = search_compute(sd, sd.read_settings())
    assert compute.predictor is None and any("predates the samples' total" in m for m in compute.missing)
