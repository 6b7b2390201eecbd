"""The report's validated section: shown only when validated records exist; rank agreement; ship basis."""

from __future__ import annotations

import json

from scipy import stats

from reports import build_report, compute_report, report_summary
from rtseg_core import atomic_write_json

from .conftest import cand

# name -> (proxy Dice in the search, full-budget test Dice, validated latency ms)
VALIDATED = {
    "paper": (0.41, 0.934, 22.0),
    "trial-1": (0.46, 0.909, 12.0),
    "trial-4": (0.30, 0.921, 9.0),
    "trial-2": (0.00, 0.900, 30.0),
}


def write_validated(study, rows=VALIDATED):
    for name, (proxy, full, latency) in rows.items():
        record = cand(
            name, source="validated", split="test", dice=full, latency_ms=latency, parent=name,
            recipe="full: 30 epochs x whole train split", height=256, width=256,
        )  # fmt: skip
        atomic_write_json(study / "validated" / name / "candidate.json", record.to_dict())
        atomic_write_json(
            study / "validated" / name / "trained.json",
            {"candidate": {"candidate": name, "proxy_dice": proxy}, "budget": {"epochs": 30, "size": 256}},
        )


def test_no_validated_records_no_section_and_the_choice_says_proxy_only(tiny_study):
    info = compute_report(tiny_study)
    assert info.validated is None and info.ship_basis == "proxy"
    assert info.choice.notes[0].startswith("PROXY-ONLY") and "run.py validate" in info.choice.notes[0]
    html = build_report(tiny_study).read_text()
    assert 'id="validated"' not in html and "rank-agreement" not in html
    assert "PROXY-ONLY" in html and "Proxy Pareto front" in html
    assert json.loads((tiny_study / "report" / "summary.json").read_text())["validated"] is None


def test_validated_section_front_and_rank_agreement(tiny_study):
    write_validated(tiny_study)
    info = compute_report(tiny_study)
    v = info.validated
    assert v is not None and set(v.candidates["name"]) == set(VALIDATED)
    # never mixed: the proxy candidates are unchanged, the validated front is computed on its own
    assert "validated" not in set(info.candidates["source"])
    assert set(v.front.front["name"]) == {"paper", "trial-4"}  # trial-4 dominates trial-1, paper trial-2
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


def test_fewer_than_three_validated_gives_no_agreement(tiny_study):
    write_validated(tiny_study, {k: VALIDATED[k] for k in ("paper", "trial-1")})
    info = compute_report(tiny_study)
    assert info.validated.agreement is None
    assert "at least 3 validated" in build_report(tiny_study).read_text()
