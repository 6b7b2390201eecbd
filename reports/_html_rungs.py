"""The report's section on how rank changes with budget (issue 11, multi-fidelity studies only).

``esc`` is passed in by :mod:`reports._html` so every piece of study text is escaped by the page's one function.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from reports._rungs import MIN_PAIRS, RungComparison, RungInfo


def rungs_section(info: RungInfo | None, esc: Callable[[object], str], png: bytes | None) -> list[str]:
    """HTML of the bump chart and the per-rung agreement table; nothing for a study without per-rung Dice."""
    if info is None:
        return []
    eta = f", eta {info.eta}" if info.eta else ""
    out = [
        '<h2 id="rungs">How rank changes with budget</h2>',
        f'<p class="note">Multi-fidelity rungs at {esc(", ".join(map(str, info.rungs)))} epochs{esc(eta)}. Each '
        "trial's validation Dice at every rung it reached (from "
        f"{esc(info.source)}); rank 1 = best Dice among the trials that reached that budget, ties by trial "
        "number."
        + (
            " The last column ranks the validated trials by their test Dice after full training."
            if info.has_full
            else " No trial of this study is validated yet, so the full budget is not shown "
            "(<code>python run.py validate --study DIR</code>)."
        )
        + " Only promoted trials reach the next rung: each rung-to-rung comparison covers those only.</p>",
    ]
    if png is not None:
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        out.append(
            f'<figure id="fig-rungs"><img src="{uri}" alt="rank at each budget"><figcaption>Rank by Dice at each '
            "budget; validated trials in colour; a cross marks a trial the rung rule stopped. Files: "
            "rungs.png, rungs.svg, rungs.csv (this table), rung_ranks.csv (every point).</figcaption></figure>"
        )
    nxt = {c.rung: c for c in info.next_rung}
    full = {c.rung: c for c in info.full_budget}
    head = ["rung (epochs)", "trials that reached it", "vs the next rung's val Dice"]
    head += ["vs full-budget test Dice (validated)"] if info.has_full else []
    body = []
    for r in info.rungs:
        cells = [esc(r), esc(info.reached.get(r, 0)), _cell(nxt.get(r), esc, last="last rung")]
        if info.has_full:
            cells.append(_cell(full.get(r), esc, last="-"))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append(
        '<div class="wide"><table id="rung-table"><thead><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
    out.append(
        '<p class="note">Kendall tau-b and Spearman over the trials with both values; 95 % percentile bootstrap '
        f"over trials (2000 resamples); fewer than {MIN_PAIRS} trials with both values: too few to rank.</p>"
    )
    return out


def _cell(c: RungComparison | None, esc: Callable[[object], str], *, last: str) -> str:
    if c is None:
        return esc(last)
    a = c.agreement
    if a is None:
        return f"too few (n = {c.n})"
    return (
        f"Kendall tau {_f2(a.kendall_tau)} [{_f2(a.kendall_low)}, {_f2(a.kendall_high)}], "
        f"Spearman {_f2(a.spearman)} [{_f2(a.spearman_low)}, {_f2(a.spearman_high)}], n = {a.n}"
    )


def _f2(value: float) -> str:
    return f"{value:+.2f}" if value == value else "n/a"
