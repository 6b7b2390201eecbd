"""How rank changes with budget: a real tiny multi-fidelity search, its report section checked against scipy."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from reports import build_report, compute_report
from reports._rungs import FULL, parse_rung_dice
from rtseg_core import ConfigError

from .conftest import MF_RUNGS as RUNGS
from .conftest import write_validated


@pytest.fixture(scope="module")
def mf_study(mf_search, tmp_path_factory):
    """A copy of the real multi-fidelity search and its per-rung Dice read from the storage."""
    import shutil

    import optuna

    study_dir = tmp_path_factory.mktemp("rungs") / "mf"
    shutil.copytree(mf_search, study_dir)
    study = optuna.load_study(study_name="mf", storage=f"sqlite:///{study_dir / 'study.db'}")
    # The independent source: the storage's user attributes, at the 4 decimals history.csv keeps.
    rungs = {
        t.number: (t.user_attrs.get("reference") and "paper" or f"trial-{t.number}", t.state.name,
                   {int(k): float(f"{v:.4f}") for k, v in t.user_attrs["rung_dice"].items()})
        for t in study.get_trials() if t.user_attrs.get("rung_dice")
    }  # fmt: skip
    return study_dir, rungs


def validate_by_hand(study_dir, names_dice):
    """Validated records in the layout `validate` writes (full-budget test Dice chosen here)."""
    write_validated(study_dir, {name: (None, dice, 20.0, True) for name, dice in names_dice.items()})


def ordinal_ranks(numbers, values):
    """scipy's ordinal ranks of -value, ties by trial number (the report's documented rule)."""
    order = np.argsort(numbers, kind="stable")
    ranks = stats.rankdata(-np.asarray(values, dtype=float)[order], method="ordinal")
    return {int(numbers[i]): int(r) for i, r in zip(order, ranks)}


def check_agreement(row, prefix, x, y):
    assert row[f"{prefix}_n"] == len(x)
    if len(x) < 3:
        assert row[f"{prefix}_status"].startswith("too few") and row[f"{prefix}_kendall_tau"] is None
        return False
    tau, rho = stats.kendalltau(x, y).statistic, stats.spearmanr(x, y).statistic
    for mine, ref in ((row[f"{prefix}_kendall_tau"], tau), (row[f"{prefix}_spearman"], rho)):
        assert (mine is None and np.isnan(ref)) or abs(mine - ref) < 1e-12
    return True


def test_rank_at_each_rung_and_agreement_match_scipy(mf_study):
    study_dir, rungs = mf_study
    complete = {n: v for n, v in rungs.items() if v[1] == "COMPLETE"}
    assert len(complete) >= 3 and any(v[1] == "PRUNED" for v in rungs.values())  # the rule stopped some
    # Full-budget test Dice by hand for every completed trial, in an order unlike the rungs'.
    full = {v[0]: round(0.95 - 0.013 * ((7 * n) % 5), 4) for n, v in complete.items()}
    validate_by_hand(study_dir, full)

    info = compute_report(study_dir).rungs
    assert info is not None and info.rungs == RUNGS and info.eta == 2
    assert set(info.validated) == set(full)
    table = {int(r["rung_epochs"]): r for r in info.table().to_dict("records")}
    checked = 0
    for i, r in enumerate(RUNGS):
        at = {n: v[2][r] for n, v in rungs.items() if r in v[2]}
        assert table[r]["n_reached"] == len(at) == info.reached[r]
        mine = info.ranks[info.ranks["budget"] == str(r)]
        assert dict(zip(mine["number"], mine["rank"])) == ordinal_ranks(np.array(list(at)), list(at.values()))
        if i + 1 < len(RUNGS):
            both = [n for n in at if RUNGS[i + 1] in rungs[n][2]]
            checked += check_agreement(
                table[r], "next", [at[n] for n in both], [rungs[n][2][RUNGS[i + 1]] for n in both]
            )
        val = [n for n in at if rungs[n][0] in full]
        checked += check_agreement(table[r], "full", [at[n] for n in val], [full[rungs[n][0]] for n in val])
    assert checked >= 2  # some comparisons had n >= 3 and were checked against scipy
    top = info.ranks[info.ranks["budget"] == FULL]
    numbers = np.array(list(complete))
    assert dict(zip(top["number"], top["rank"])) == ordinal_ranks(numbers, [full[complete[n][0]] for n in numbers])

    html = build_report(study_dir).read_text()
    out = study_dir / "report"
    for name in ("rungs.png", "rungs.svg", "rungs.csv", "rung_ranks.csv"):
        assert (out / name).stat().st_size > 0
    assert 'id="rungs"' in html and 'id="fig-rungs"' in html and "full-budget test Dice" in html
    with open(out / "rungs.csv", newline="") as f:
        assert [int(r["rung_epochs"]) for r in csv.DictReader(f)] == list(RUNGS)
    summary = json.loads((out / "summary.json").read_text())["rungs"]
    assert summary["rungs_epochs"] == list(RUNGS) and len(summary["full_budget"]) == len(RUNGS)
    if any(table[r]["next_status"].startswith("too few") for r in RUNGS[:-1]):
        assert "too few (n = " in html


def test_no_rung_dice_no_section_and_bad_cells_are_named(tiny_study):
    info = compute_report(tiny_study)
    assert info.rungs is None
    assert 'id="rungs"' not in build_report(tiny_study).read_text()
    assert not (tiny_study / "report" / "rungs.csv").exists()
    assert parse_rung_dice("1:0.5;3:0.25", where="x") == {1: 0.5, 3: 0.25} and parse_rung_dice("", where="x") == {}
    with pytest.raises(ConfigError, match="history.csv: row 2.*rung_dice"):
        parse_rung_dice("1=0.5", where="history.csv: row 2 (trial 0)")
