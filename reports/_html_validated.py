"""The report's validated section (issue 11): the front after full training and how well the proxy ranked it."""

from __future__ import annotations

import base64
from typing import Any

from reports._info import ReportInfo
from reports._ship import TWO_RUNS
from rtseg_core import finite_or_none


def validated_section(info: ReportInfo, esc, image: bytes | None = None) -> list[str]:
    """HTML of the validated front and the rank agreement; nothing when no candidate was validated."""
    v = info.validated
    if v is None:
        return []
    b = v.budget
    out = [
        '<h2 id="validated">Validated front (full budget, test split)</h2>',
        '<p class="note">Retrained from scratch with one recipe for all'
        + (
            f": {esc(b.get('epochs'))} epochs over the whole training split at {esc(b.get('size'))} px, lr "
            f"{esc(b.get('lr'))}, batch {esc(b.get('batch_size'))}, {_seeds(v, b, esc)} on {esc(b.get('data'))}"
            if b
            else ""
        )
        + "; Dice on the <b>test</b> split"
        + _latency_basis(v.latency, esc)
        + (
            f" ({esc(v.latency.get('input', ''))}, {esc(v.latency.get('threads', ''))} thread(s), "
            f"{esc(v.latency.get('device', ''))})"
            if v.latency
            else ""
        )
        + ". Compressed variants (&ldquo;variant of&rdquo;) had their recipe re-applied to the validated parent. "
        "These rows are never mixed with the proxy front below.</p>",
    ]
    rows = v.comparison()
    header = {"latency ms": "latency ms (validate's run)"}  # the search's own numbers are in the tables below
    head = "".join(f"<th>{esc(header.get(c, c))}</th>" for c in rows.columns)
    body = []
    for r in rows.itertuples(index=False):
        cells = [
            esc(r[0]),
            _dice(r[1]),
            _dice(r[2]),
            _int(r[3]),
            _int(r[4]),
            f"{r[5]:.2f}" if finite_or_none(r[5]) is not None else "-",
            f"{int(r[6]):,}" if finite_or_none(r[6]) is not None else "-",
            "yes" if r[7] else "",
            esc(r[8]),
            esc(r[9]),
        ]
        body.append(f'<tr class="{"front" if r[7] else ""}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    out += _paired(v, esc)
    if image is not None:
        uri = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
        out.append(
            f'<figure id="fig-validated"><img src="{uri}" alt="validated models with intervals">'
            "<figcaption>Validated models: mean test Dice (95 % t-interval over the training seeds; none with one "
            "seed) against the median latency of validate&#x27;s run (95 % bootstrap interval over its rounds). "
            "Boxes that overlap are not told apart by these runs.<br>Files: validated.png, validated.svg"
            "</figcaption></figure>"
        )
    out += _two_latencies(info, esc)
    a = v.agreement
    if a is not None:
        out.append(
            '<p id="rank-agreement"><b>Rank agreement, proxy Dice vs full-budget Dice</b>'
            + (
                f" (the full-budget Dice: each architecture&#x27;s mean over its {len(v.seeds)} training seeds)"
                if v.several_seeds()
                else ""
            )
            + ": "
            f"Kendall tau {_f2(a.kendall_tau)} (95 % CI {_f2(a.kendall_low)} to {_f2(a.kendall_high)}), "
            f"Spearman {_f2(a.spearman)} (95 % CI {_f2(a.spearman_low)} to {_f2(a.spearman_high)}), "
            f"n = {a.n} validated architectures; percentile bootstrap over architectures, {a.n_resamples} "
            "resamples. A small n gives wide intervals: read them before trusting the proxy's order.</p>"
        )
    else:
        out.append(
            '<p class="note" id="rank-agreement">Rank agreement needs at least 3 validated candidates with a proxy '
            "Dice; validate more of the front (without --top-k) to measure it.</p>"
        )
    return out


def _seeds(v, b: dict, esc) -> str:
    """``seed 0`` (one run), or ``training seeds 0, 1, 2 on the split of seed 0`` (validate --seeds)."""
    if len(v.seeds) <= 1:
        return f"seed {esc(b.get('seed'))}"
    return f"training seeds {esc(', '.join(map(str, v.seeds)))} on the split and images of seed {esc(b.get('seed'))}"


def _paired(v, esc) -> list[str]:
    """The paired table: each model over its training seeds and its per-seed difference with paper."""
    rows = v.paired()
    if rows.empty:
        return []
    n = len(v.seeds)
    head = ["candidate", "n seeds", "mean Dice [95 % interval]", "&Delta; Dice vs paper, points [95 % interval]",
            "verdict", "speed vs paper [95 % interval]", "collapsed seeds"]  # fmt: skip
    body = []
    for r in rows.itertuples(index=False):
        mean = _dice(r[2]) + (f" [{_dice(r[3])}, {_dice(r[4])}]" if finite_or_none(r[3]) is not None else "")
        if r[0] == "paper":
            delta = "(reference)"
        elif finite_or_none(r[5]) is None:
            delta = "-"
        else:
            delta = f"{100 * r[5]:+.2f}" + (
                f" [{100 * r[6]:+.2f}, {100 * r[7]:+.2f}]" if finite_or_none(r[6]) is not None else ""
            )
        collapsed = ", ".join(map(str, r[9]))
        flag = f'<b class="warn">{esc(collapsed)}</b>' if collapsed else ""
        speed = v.speed.get(r[0])
        speed_cell = "1.00x (reference)" if r[0] == "paper" else esc(speed.describe()) if speed else _ratio(v, r[0])
        cells = [esc(r[0]), str(r[1]), mean, delta, esc(r[8]), speed_cell, flag]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    timing = (
        "Speed: paper's median latency over the model's from validate's one timing run; its 95 % interval "
        "resamples the run's whole alternating rounds (a load change slows both members of a round alike)."
    )
    what = (
        f"{n} training seeds ({esc(', '.join(map(str, v.seeds)))}), every model on the same split, so seed s of a "
        "model and of paper is a pair; the difference's 95 % t-interval is over the per-seed differences. "
        "&lsquo;better&rsquo; / &lsquo;worse&rsquo; only when the whole interval is above / below 0; a difference "
        "inside the noise is &lsquo;indistinguishable&rsquo;, never a win"
        if n > 1
        else "one training seed: every difference with paper is a <b>single run</b> (no interval, no verdict); "
        "run validate with --seeds 3 or more to measure the seed noise"
    )
    return [
        f'<p class="note" id="paired"><b>Paired with paper over training seeds</b>: {what}. A collapsed run (a '
        "class never learned: per-class Dice &lt; 0.05) is kept in the mean and flagged with its seed. "
        f"{timing}</p>",
        '<div class="wide"><table><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
        + "".join(body) + "</tbody></table></div>",
    ]  # fmt: skip


def _ratio(v, name: str) -> str:
    """paper ms / ms where no rounds stand behind the two numbers (an estimate or a prediction): no interval."""
    df = v.candidates.set_index("name")["latency_ms"]
    ms, ref = finite_or_none(df.get(name)), finite_or_none(df.get("paper"))
    if ms is None or ref is None:
        return "-"
    return f"{ref / ms:.2f}x (no timing rounds: no interval)"


def _two_latencies(info: ReportInfo, esc) -> list[str]:
    """Models timed by the search and again by validate: which run each number comes from, and why they differ."""
    if not info.latency_pairs:
        return []
    items = "".join(f"<li>{esc(p.text())}</li>" for p in info.latency_pairs)
    return [
        f'<div class="note" id="two-latencies"><p><b>{len(info.latency_pairs)} model(s) have two latencies in this '
        f"report.</b> {esc(TWO_RUNS)}</p><ul>{items}</ul></div>"
    ]


def _latency_basis(latency: dict, esc) -> str:
    """How the section's latencies were obtained (validated/latency.json): MEASURED, ESTIMATED or PREDICTED."""
    kind = str(latency.get("kind", "measured"))
    label = f'<span class="kind {esc(kind)}">{esc(kind.upper())}</span>'
    if kind != "measured":
        return f"; latency {label} for {esc(latency.get('target', ''))}, not a measurement"
    if str(latency.get("target", "local")).startswith("ssh://"):
        return f"; latency {label} on {esc(latency.get('target'))} in alternating rounds over every candidate"
    return f"; latency {label} for every candidate in one alternating ONNX Runtime run"


def _dice(value: Any) -> str:
    # Dice is a fraction on every surface of the suite (CSV, database, dashboard, HTML, terminal)
    return f"{float(value):.4f}" if finite_or_none(value) is not None else "-"


def _int(value: Any) -> str:
    return str(int(value)) if finite_or_none(value) is not None else "-"


def _f2(value: float) -> str:
    return f"{value:+.2f}" if finite_or_none(value) is not None else "n/a"
