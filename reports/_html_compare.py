"""The self-contained page of ``report --compare``: studies side by side, their validated fronts overlaid."""

from __future__ import annotations

import json
from typing import Any

from reports._compare import DICE_TOLERANCE, REFERENCE_RULE, SPEEDUP, CompareInfo
from reports._html import _CSS, SYNTHETIC_BANNER, esc, png_data_uri
from reports._units import DICE_POINT, dice_points


def render_compare_html(info: CompareInfo, png: bytes) -> str:
    b, c = info.budget, info.conditions
    synthetic = str(b.get("data", "")).startswith("synthetic")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>rtseg-nas: validated fronts compared</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Validated fronts compared</h1>",
        f'<p class="note">{len(info.studies)} studies: '
        + ", ".join(f"<code>{esc(s.study_dir)}</code>" for s in info.studies)
        + ". Every number below comes from the studies' files (study.json, history.csv, trials/*/metrics.json, "
        "validated/*/candidate.json).</p>",
    ]
    if synthetic:
        parts.append(f'<div class="banner" id="synthetic-banner">{esc(SYNTHETIC_BANNER)}</div>')
    parts.append(
        '<p class="note" id="conditions">All studies were validated with one budget: '
        f"{esc(b.get('epochs'))} epochs at {esc(b.get('size'))} px, batch {esc(b.get('batch_size'))}, lr "
        f"{esc(b.get('lr'))}, seed {esc(b.get('seed'))}, data {esc(b.get('data'))}, Dice on the test split; "
        f"latency {_kind(c.get('latency_kind'))} "
        f"(median, batch 1) at {esc(c.get('height'))}x{esc(c.get('width'))}, {esc(c.get('threads'))} thread(s), "
        f"target {esc(c.get('target'))}; device(s): {esc('; '.join(info.devices))}.</p>"
    )
    for i, note in enumerate(info.notes):  # the first says why raw latencies are not compared across studies
        parts.append(f'<p class="banner" id="{"latency-note" if i == 0 else f"note-{i}"}">{esc(note)}</p>')
    parts.append(
        f'<figure id="fig-compare"><img src="{png_data_uri(png)}" alt="validated fronts"><figcaption>Validated '
        "candidates of each study (dots; crosses: infeasible), its validated feasible front (line) and its own "
        "fully trained paper (star). Files: compare.png, compare.svg.</figcaption></figure>"
    )
    parts += _strategies(info)
    parts.append("<h2>Studies side by side</h2>")
    parts.append(
        f'<p class="note">Hypervolume of each validated feasible front over (Dice max, latency_ms min) under ONE '
        f"reference point for all studies: Dice {info.reference[0]:.4f}, latency {info.reference[1]:.4g} ms "
        f"({esc(REFERENCE_RULE)}). Units: Dice x ms. Each study's paper is one of its validated candidates.</p>"
    )
    rows = [
        ("strategy", lambda s: esc(s.strategy)),
        ("search seed", lambda s: esc("-" if s.search_seed is None else s.search_seed)),
        ("search constraints (study.json)", lambda s: esc(s.constraints_text())),
        ("search compute (as recorded)", lambda s: esc(s.compute.describe())),
        ("not recorded", lambda s: esc("; ".join(s.compute.missing) or "-")),
        ("validated", lambda s: f"{s.n_validated} ({len(s.points())} feasible)"),
        ("validated front", lambda s: esc(", ".join(s.front.front_names) or "-")),
        ("hypervolume", lambda s: f"<b>{s.hypervolume:.5g}</b>"),
        ("best validated (Dice, latency)", lambda s: _best(s.best)),
        ("own paper (Dice, latency)", lambda s: _paper(s.check.paper)),
        (
            f"within {dice_points(DICE_TOLERANCE):g} Dice points of paper at >= {SPEEDUP:g}x lower latency",
            lambda s: esc(s.check.message),
        ),
        ("validated on", lambda s: esc(s.device)),
    ]
    head = "<th></th>" + "".join(f"<th>{esc(s.label)}</th>" for s in info.studies)
    body = "".join(
        f"<tr><th>{esc(label)}</th>" + "".join(f"<td>{fn(s)}</td>" for s in info.studies) + "</tr>"
        for label, fn in rows
    )
    parts.append(
        f'<div class="wide"><table id="compare-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )
    parts.append(
        f'<p class="note">The check: a validated candidate (feasible, not paper) whose test Dice is at least paper\'s '
        f"- {DICE_TOLERANCE} and whose latency is at most paper's / {SPEEDUP:g}, both against the paper of the same "
        "study (trained and timed in the same validate run). Dice is a fraction in [0, 1]; one Dice point is "
        f"{DICE_POINT:g} of it, and each difference is written in points with the fraction beside it. "
        "Files: compare.csv, compare.json.</p>"
    )
    parts += [
        "<h2>Comparison record</h2>",
        "<pre>" + esc(json.dumps(info.to_dict(), indent=2, sort_keys=True, default=str)) + "</pre>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _strategies(info: CompareInfo) -> list[str]:
    """Mean validated hypervolume per strategy over its repeated searches, random sampling as the baseline."""
    if not info.groups:
        return []
    head = ["strategy", "studies (search seed)", "validated hypervolume, mean [95 % interval]",
            "vs random sampling (difference of means)", "search compute (as recorded)"]  # fmt: skip
    body = []
    for g in info.groups:
        studies = ", ".join(f"{s} ({'-' if d is None else d})" for s, d in zip(g.studies, g.search_seeds))
        cells = [esc(g.strategy) + (" <b>(baseline)</b>" if g.baseline else ""), esc(studies),
                 esc(g.hypervolume_text()), esc(g.baseline_text()), esc(g.cpu_text())]  # fmt: skip
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    single = any(g.n == 1 for g in info.groups)
    return [
        "<h2>Strategies over repeated searches</h2>",
        '<p class="note" id="strategies-note">One search is one draw: studies with the same strategy (study.json; '
        "<code>search --sampler random</code> is the random-sampling baseline at the same budget) are grouped, and "
        "each group gives its mean validated hypervolume with a 95 % Student-t interval over its studies; the "
        "difference to the baseline has Welch&#x27;s 95 % interval, and is called better or worse only when the "
        "whole interval is on one side."
        + (" A strategy with one study is a <b>single run</b>: run its search again with another --seed." if single
           else "")
        + "</p>",
        '<div class="wide"><table id="strategies"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></div>",
    ]  # fmt: skip


def _kind(kind: Any) -> str:
    label = {"measured": "MEASURED", "estimated": "ESTIMATED", "predicted": "PREDICTED"}.get(str(kind), str(kind))
    return f'<span class="kind {esc(kind)}">{esc(label)}</span>'


def _best(best: dict[str, Any] | None) -> str:
    if not best:
        return "-"
    speed = f", {best['speedup']:.2f}x vs own paper" if best.get("speedup") else ""
    return f"{esc(best['name'])}: {best['dice']:.4f}, {best['latency_ms']:.2f} ms{speed}"


def _paper(paper: dict[str, Any] | None) -> str:
    return "not validated" if not paper else f"{paper['dice']:.4f}, {paper['latency_ms']:.2f} ms"
