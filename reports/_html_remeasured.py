"""The report's predicted-vs-measured section (issue 12): a predict:TABLE search's front, timed for real.

``esc`` is passed in by :mod:`reports._html` (which imports this module) so every piece of study text
is escaped by the one function the page uses.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from reports._remeasured import WITHIN, RemeasuredInfo

PREDICTED_LEGEND = (
    "latency predicted from a kernel table measured on the target (sum of per-kernel medians plus a fitted "
    "per-model overhead), never timed as a whole model; the table's key says where and how it was measured."
)


def remeasured_section(info: RemeasuredInfo | None, esc: Callable[[object], str], png: bytes | None) -> list[str]:
    """HTML of the section; nothing for a study without PREDICTED latencies and without ``remeasured.json``."""
    if info is None:
        return []
    pred = '<span class="kind predicted">PREDICTED</span>'
    meas = '<span class="kind measured">MEASURED</span>'
    out = [f'<h2 id="remeasured">Latency: {pred} vs {meas}</h2>']
    conditions = "".join(f"<li>{esc(c)}</li>" for c in (*info.predicted_conditions, *info.table_keys))
    if not info.remeasured:
        return [
            *out,
            f'<div class="banner" id="predicted-only">The latencies of this study are {pred} (kernel table), '
            f"not measured: {len(info.predicted)} candidate(s) ({esc(', '.join(info.predicted))}). Rank them "
            "with care and measure the front before choosing a model:<br>"
            f"<code>{esc(info.command)}</code><br>(writes {esc(info.path.name)}; the next report shows "
            "predicted beside measured)</div>",
            f'<p class="note">{pred} {esc(PREDICTED_LEGEND)}</p>',
            f'<ul class="note">{conditions}</ul>' if conditions else "",
        ]
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "candidate", "Dice", f"{pred} ms", f"{meas} ms (median)", f"{meas} IQR ms", "error %", "table key",
            "measured on",
        )
    )  # fmt: skip
    body = []
    for r in info.rows:
        flags = [f"conditions differ: {d}" for d in r.conditions_differ]
        if r.stale:
            flags.append("the study's predicted latency changed since (remeasure)")
        cls = "front" if abs(r.error_percent) <= WITHIN else ""
        cells = [
            esc(r.name),
            "-" if r.dice is None else f"{r.dice:.4f}",
            f"{r.predicted_ms:.3f}",
            f"{r.measured_ms:.3f}",
            "-" if r.measured_iqr_ms is None else f"{r.measured_iqr_ms:.3f}",
            f"{r.error_percent:+.1f}",
            f"{esc(r.table_key)}<br><code>{esc(r.table)}</code>",
            "<br>".join(esc(t) for t in (r.measured_on, r.measured_when) if t)
            + "".join(f'<br><b class="note">{esc(f)}</b>' for f in flags),
        ]
        body.append(f'<tr class="{cls}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    stats = [f"{len(info.rows)} candidate(s) of the feasible (Dice, latency) front"]
    stats.append(f"mean |error| {info.mape:.1f} %, {info.within:.0%} within +-{WITHIN:g} %")
    if info.spearman is not None:
        stats.append(f"Spearman {info.spearman:.3f}")
    out += [
        f'<p class="note">{pred} {esc(PREDICTED_LEGEND)}<br>{meas} the same candidates exported and timed by '
        f"<code>latency-table remeasure</code> ({esc(info.path.name)}). Error % = 100 (predicted - measured) / "
        f"measured; rows within +-{WITHIN:g} % are shaded. {esc('; '.join(stats))}.</p>",
        f'<div class="wide"><table id="remeasured-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
        "</tbody></table></div>",
    ]
    if info.not_remeasured:
        out.append(
            f'<p class="note">Not remeasured, though on the predicted front now: '
            f"{esc(', '.join(info.not_remeasured))}; rerun <code>{esc(info.command)}</code>.</p>"
        )
    if info.missing:
        out.append(f'<p class="note">No longer in the study: {esc(", ".join(info.missing))}.</p>')
    if png is not None:
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        out.append(
            f'<figure id="fig-remeasured"><img src="{src}" alt="PREDICTED vs MEASURED latency">'
            "<figcaption>PREDICTED against MEASURED latency of the remeasured front; dashed: equal; shaded: "
            f"within +-{WITHIN:g} %.<br>Files: remeasured.png, remeasured.svg</figcaption></figure>"
        )
    return out
