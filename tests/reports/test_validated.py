"""The report's validated section: shown only when validated records exist; the stage's rank agreement; ship basis."""

from __future__ import annotations

import dataclasses
import json

import pytest
from scipy import stats

from reports import build_report, compute_report, report_summary
from rtseg_core import ConfigError, StudyDir, rank_agreement

from .conftest import write_validated

# name -> (proxy Dice in the search, full-budget test Dice, validated latency ms, feasible)
VALIDATED = {
    "paper": (0.41, 0.934, 22.0, True),
    "trial-1": (0.46, 0.909, 12.0, True),
    "trial-4": (0.30, 0.921, 9.0, True),
    "trial-2": (0.00, 0.900, 30.0, True),
}


def test_no_validated_records_no_section_and_the_choice_says_proxy_only(tiny_study):
    info = compute_report(tiny_study)
    assert info.validated is None and info.ship_basis == "proxy"
    assert info.choice.notes[0].startswith("PROXY-ONLY") and "run.py validate" in info.choice.notes[0]
    html = build_report(tiny_study).read_text()
    assert 'id="validated"' not in html and "rank-agreement" not in html
    assert "PROXY-ONLY" in html and "Proxy Pareto front" in html
    assert json.loads((tiny_study / "report" / "summary.json").read_text())["validated"] is None


def test_validated_section_front_and_rank_agreement(tiny_study):
    write_validated(tiny_study, VALIDATED)
    info = compute_report(tiny_study)
    v = info.validated
    assert v is not None and set(v.candidates["name"]) == set(VALIDATED)
    # never mixed: the proxy candidates are unchanged, the validated front is computed on its own
    assert "validated" not in set(info.candidates["source"])
    assert set(v.front.front["name"]) == {"paper", "trial-4"}  # trial-4 dominates trial-1, paper trial-2
    assert v.proxy_dice == {n: VALIDATED[n][0] for n in VALIDATED} and v.budget["epochs"] == 30
    # The agreement is the stage's, as validated/summary.json holds it (the stage computes it like scipy).
    assert v.agreement == StudyDir(tiny_study).read_validated_summary().agreement
    proxy = [VALIDATED[n][0] for n in v.candidates["name"]]
    full = [VALIDATED[n][1] for n in v.candidates["name"]]
    assert v.agreement.n == 4
    assert abs(v.agreement.kendall_tau - stats.kendalltau(proxy, full).statistic) < 1e-12
    assert abs(v.agreement.spearman - stats.spearmanr(proxy, full).statistic) < 1e-12
    # shipping: from the validated records (paper has the best test Dice there, not trial-3 of the proxy)
    assert info.ship_basis == "validated" and info.choice.best == "paper"
    assert info.choice.notes[0].startswith("recommended from VALIDATED")
    html = build_report(tiny_study).read_text()
    assert 'id="validated"' in html and 'id="rank-agreement"' in html and "n = 4" in html
    assert "Basis: validated at the full budget" in html
    summary = report_summary(info)
    assert summary["ship"]["basis"] == "validated"
    assert summary["validated"]["proxy_vs_full_dice"]["n"] == 4


def test_the_report_shows_the_stages_agreement_not_its_own(tiny_study):
    # A stage result the report could not recompute from the records (another seed and resample count):
    # the report shows it as it is, instead of computing a second one.
    pairs = [(p, d) for p, d, _, _ in VALIDATED.values()]
    stage = rank_agreement([p for p, _ in pairs], [d for _, d in pairs], n_resamples=300, seed=11)
    write_validated(tiny_study, VALIDATED, agreement=dataclasses.replace(stage, spearman_low=-0.123))
    info = compute_report(tiny_study)
    assert info.validated.agreement.spearman_low == -0.123 and info.validated.agreement.n_resamples == 300
    assert f"(95 % CI -0.12 to {stage.spearman_high:+.2f})" in build_report(tiny_study).read_text()


def test_fewer_than_three_validated_gives_no_agreement(tiny_study):
    write_validated(tiny_study, {k: VALIDATED[k] for k in ("paper", "trial-1")})
    info = compute_report(tiny_study)
    assert info.validated.agreement is None
    assert "at least 3 validated" in build_report(tiny_study).read_text()


def test_validated_records_without_the_stages_summary_are_refused(tiny_study):
    write_validated(tiny_study, VALIDATED)
    StudyDir(tiny_study).validated_summary_json.unlink()
    with pytest.raises(ConfigError, match=r"validated/summary.json: not found.*run `python run.py validate"):
        compute_report(tiny_study)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["agreement"].update(n="4"), r"'agreement.n' must be an integer >= 3, got '4'"),
        (lambda d: d["agreement"].update(spearman=3.0), r"'agreement.spearman' must be a coefficient"),
        (lambda d: d["proxy_dice"].update(paper="high"), r"'proxy_dice.paper' must be a finite number in \[0, 1\]"),
        (lambda d: d.pop("budget"), r"missing field 'budget'"),
        (lambda d: d["budget"].update(epochs=-1), r"'budget.epochs' must be an integer >= 1"),
    ],
)
def test_a_hostile_summary_names_the_file_and_field(tiny_study, edit, match):
    write_validated(tiny_study, VALIDATED)
    path = StudyDir(tiny_study).validated_summary_json
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=rf"validated/summary.json: {match}"):
        compute_report(tiny_study)


def test_paired_table_and_ship_verdict_over_several_seeds(tiny_study):
    from rtseg_core import EvalMetrics, SeedRun, SeedStats, SpeedRatio, paired_difference, seed_summary

    write_validated(tiny_study, VALIDATED)
    per_seed = {  # name -> seed -> test Dice; trial-4's seed 2 never learned FH (collapsed)
        "paper": {0: 0.930, 1: 0.934, 2: 0.938},
        "trial-1": {0: 0.905, 1: 0.909, 2: 0.913},
        "trial-4": {0: 0.925, 1: 0.921, 2: 0.917},
        "trial-2": {0: 0.900, 1: 0.901, 2: 0.899},
    }

    def stats(name):
        runs = tuple(
            SeedRun(s, EvalMetrics(d, d, 0.01 if (name, s) == ("trial-4", 2) else d, 1.0),
                    ("fh",) if (name, s) == ("trial-4", 2) else ())
            for s, d in per_seed[name].items()
        )  # fmt: skip
        versus = None if name == "paper" else paired_difference(per_seed[name], per_seed["paper"])
        return SeedStats(runs, seed_summary(per_seed[name]), versus)

    sd = StudyDir(tiny_study)
    summary = sd.read_validated_summary()
    sd.write_validated_summary(dataclasses.replace(summary, seeds=(0, 1, 2), models={n: stats(n) for n in per_seed}))
    # validate's timing run: paper's median over each model's with its interval over the paired rounds
    latency = sd.read_validated_latency()
    speed = {"trial-1": SpeedRatio(1.83, 1.79, 1.88, 30), "trial-4": SpeedRatio(2.44, 2.40, 2.51, 30),
             "trial-2": SpeedRatio(0.733, 0.70, 0.76, 30)}  # fmt: skip
    rows = {n: {**r, "vs_paper": speed[n].to_dict() if n in speed else None,
                "median_interval_ms": [r["median_ms"] * 0.97, r["median_ms"] * 1.04]}
            for n, r in latency.candidates.items()}  # fmt: skip
    sd.write_validated_latency(dataclasses.replace(latency, candidates=rows))
    info = compute_report(tiny_study)
    rows = info.validated.paired().set_index("name")
    assert list(rows.index) == ["paper", "trial-1", "trial-2", "trial-4"]
    for name in ("trial-1", "trial-2", "trial-4"):
        expected = paired_difference(per_seed[name], per_seed["paper"])
        assert rows.loc[name, "verdict"] == expected.verdict
        assert (rows.loc[name, "vs paper low"], rows.loc[name, "vs paper high"]) == (expected.low, expected.high)
    assert rows.loc["trial-1", "verdict"] == "worse" and rows.loc["trial-4", "collapsed seeds"] == [2]
    assert rows.loc["paper", "n seeds"] == 3 and rows.loc["paper", "mean Dice"] == pytest.approx(0.934)
    assert (rows.loc["trial-4", "speed low"], rows.loc["trial-4", "speed high"]) == (2.40, 2.51)
    html = build_report(tiny_study).read_text()
    section = html[html.index('id="paired"') :]
    assert "3 training seeds (0, 1, 2)" in section and "<td>worse</td>" in section
    assert "each architecture&#x27;s mean over its 3 training seeds" in html  # the rank agreement's ground truth
    assert "<td>2.44x [2.40, 2.51] faster</td>" in section and "<td>1.36x [1.32, 1.43] SLOWER</td>" in section
    # the figure: Dice interval x latency interval of every validated model
    assert 'id="fig-validated"' in html and (tiny_study / "report" / "validated.png").is_file()
    from reports._plot_validated import points

    at = {p["name"]: p for p in points(info.validated)}
    t4 = seed_summary(per_seed["trial-4"])
    assert (at["trial-4"]["y_low"], at["trial-4"]["y"], at["trial-4"]["y_high"]) == (t4.low, t4.mean, t4.high)
    assert (at["trial-4"]["x_low"], at["trial-4"]["x_high"]) == pytest.approx((9.0 * 0.97, 9.0 * 1.04))
    # the ship section's menu: the validated front against paper, fastest first, each with both intervals
    menu = {m.name: m for m in info.ship.menu}
    assert [m.name for m in info.ship.menu] == ["trial-4", "paper"]  # the validated front
    expected = paired_difference(per_seed["trial-4"], per_seed["paper"])
    assert menu["trial-4"].speed == "2.44x [2.40, 2.51] faster" and menu["trial-4"].dice == expected.describe()
    assert menu["trial-4"].verdict == expected.verdict and menu["paper"].verdict == "reference"
    assert "rtseg-nas export --checkpoint" in menu["trial-4"].export_command
    assert 'id="ship-menu"' in html and "<td>2.44x [2.40, 2.51] faster</td>" in html.split('id="ship-menu"')[1]
    assert '<b class="warn">2</b>' in section  # trial-4's collapsed seed
    # the pick is paper (best validated Dice): the ship section says how many paired seeds stand behind it
    assert info.ship.runs_label == "3 paired seeds" and "seeds 0, 1, 2" in info.ship.runs
    assert "<b>3 paired seeds</b>" in html and "single run" not in html.split('id="ship"')[-1].split("</table>")[0]
    out = report_summary(info)["validated"]
    assert out["seeds"] == [0, 1, 2] and {r["name"]: r["verdict"] for r in out["paired"]}["trial-1"] == "worse"


def test_one_seed_summary_says_single_run(tiny_study):
    write_validated(tiny_study, VALIDATED)
    info = compute_report(tiny_study)
    assert info.validated.seeds == (0,) and info.validated.paired().empty  # written before --seeds: no models
    assert info.ship.runs_label == "single run" and report_summary(info)["ship"]["runs"].startswith("single run: ")
