"""One self-contained HTML page per study: inline CSS, images as base64 PNG data URIs, no scripts,
no external resources. Every piece of text from the study passes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from reports._html_remeasured import PREDICTED_LEGEND, remeasured_section
from reports._html_rungs import rungs_section
from reports._html_ship import ship_section
from reports._html_validated import validated_section
from reports._hypervolume import DEFAULT_PAD
from reports._info import ReportInfo
from reports._plot_info import PAPER_PUBLISHED
from reports._tables import display_table

MEASURED_LEGEND = (
    "median latency of batch-1 forward passes timed on the stated target, runtime, precision "
    "and thread count after warm-up; FPS = 1000 / median ms."
)
ESTIMATED_LEGEND = (
    "latency computed from a model of the target (e.g. a roofline from MACs and memory "
    "traffic), never timed; do not compare it with measurements as if it were one."
)
SEARCH_LATENCY = (
    "Latencies in this table come from the search: each trial was timed on its own while it ran (compressed "
    "variants when compress made them), so two rows were timed at different moments under different machine "
    "load. Validated candidates were timed again in one run: see the validated section."
)
REFERENCE_LATENCY = (
    "These latencies come from this model's own profile run, another run than the search's and validate's "
    "(another moment, another machine load): they are not compared with the milliseconds in the other tables."
)
SYNTHETIC_BANNER = (
    "Accuracy on synthetic data: Dice values here come from the built-in transperineal phantom, not from "
    "JNU-IFM or PSFHS. They rank candidates against each other; they say nothing about clinical accuracy."
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}tr.front td{background:#eef4ff}tr.infeasible td{color:#888}
.banner{background:#fff3cd;border:2px solid #d39e00;padding:.7em 1em;font-weight:bold;margin:1em 0}
.kind{font-weight:bold;padding:0 .35em;border-radius:3px;font-size:.9em;white-space:nowrap}
.kind.measured{background:#d4edda;color:#155724}.kind.estimated{background:#f8d7da;color:#721c24}
.kind.predicted{background:#e2d9f3;color:#432874}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}.note{color:#555;font-size:.9em}
.wide{overflow-x:auto}.ship{background:#eef7ee;border:1px solid #7fb77f;padding:.6em 1em}
.pick{font-size:1.15em}.facts{font-size:.9em;background:#fff}.facts th{width:15em;white-space:nowrap}
.facts pre{margin:.2em 0;white-space:pre-wrap;word-break:break-all}.warn{color:#a00}
"""


def esc(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(info: ReportInfo, images: Mapping[str, bytes]) -> str:
    """The report page. ``images`` maps each key of ``info.plot_keys`` to its PNG bytes."""
    missing = [k for k in info.plot_keys if k not in images]
    if missing:
        raise KeyError(f"render_html: no PNG for plot(s) {missing}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc('rtseg-nas report: ' + info.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc('rtseg-nas study report: ' + info.title)}</h1>",
        f'<p class="note">Study directory: <code>{esc(info.study_dir)}</code>; '
        f"{len(info.candidates)} candidate(s); objectives "
        f"{esc(', '.join(f'{n} ({d})' for n, d in info.objectives))}.</p>",
    ]
    if info.synthetic:
        parts.append(f'<div class="banner" id="synthetic-banner">{esc(SYNTHETIC_BANNER)}</div>')
    parts += ship_section(info, esc) if info.ship is not None else []
    parts += validated_section(info, esc, images.get("validated"))  # empty unless `validate` wrote records
    parts += rungs_section(info.rungs, esc, images.get("rungs"))  # issue 11: multi-fidelity studies only
    parts += _reference(info)
    parts += _figures(info, images)
    parts += _front(info)
    parts += remeasured_section(info.remeasured, esc, images.get("remeasured"))  # issue 12; [] without predictions
    parts += _conditions(info)
    parts += _configs(info)
    parts += _environment(info)
    parts += _settings(info)
    parts += ["</body></html>"]
    return "\n".join(parts) + "\n"


def _settings(info: ReportInfo) -> list[str]:
    """study.json as written, and any default its reader assumed for a field an older version did not write."""
    if info.settings is None:
        return ["<h2>Study settings</h2>", '<p class="note">No study.json: default objectives, no constraints.</p>']
    note = '<p class="note">Assumed (the file is older than this field): {}</p>'
    assumed = [note.format(esc(a)) for a in info.settings.assumed]
    text = json.dumps(info.settings.to_dict(), indent=2, sort_keys=True, default=str)
    return ["<h2>Study settings</h2>", *assumed, "<pre>" + esc(text) + "</pre>"]


_REFERENCE_COLUMNS = {
    "backend": "runtime", "provider": "provider", "precision": "precision", "threads": "threads",
    "device": "device", "height": "input", "kind": "latency", "median_ms": "median ms", "p90_ms": "p90 ms",
    "iqr_ms": "IQR ms", "fps": "FPS",
}  # fmt: skip


def _reference(info: ReportInfo) -> list[str]:
    """A fully trained reference model (``reference.json``), kept apart from the proxy-trained front."""
    ref = info.reference
    if not ref:
        return []
    out = [f"<h2>Reference: {esc(ref.get('name', 'reference model'))}</h2>"]
    if ref.get("description"):
        out.append(f'<p class="note">{esc(ref["description"])}</p>')
    evaluation = ref.get("evaluation") or {}
    metric_rows = []
    for cls in ("PS", "FH", "mean"):
        m = evaluation.get(cls) or {}
        cells = [m.get("dice"), m.get("jaccard"), m.get("asd"), m.get("hd95")]
        shown = [f"{v:.4f}" if i < 2 and v is not None else _num(v) for i, v in enumerate(cells)]  # fractions
        dao = _num(m.get("delta_aop")) if cls == "mean" else ""
        metric_rows.append(f"<tr><th>{esc(cls)}</th>" + "".join(f"<td>{esc(v)}</td>" for v in [*shown, dao]) + "</tr>")
    if metric_rows:
        unit = esc(evaluation.get("distance_unit", "px"))
        split = esc(evaluation.get("split", "test"))
        out.append(
            f'<p class="note">Segmentation on the {split} split ({esc(evaluation.get("data", ""))}, '
            f"{esc(evaluation.get('size', ''))} px; distances in {unit}):</p>"
            f"<table><thead><tr><th></th><th>Dice</th><th>Jaccard</th><th>ASD</th><th>HD95</th><th>|dAoP| deg</th>"
            f"</tr></thead><tbody>{''.join(metric_rows)}</tbody></table>"
        )
    profiles = ref.get("profiles") or []
    if profiles:
        head = "".join(f"<th>{esc(v)}</th>" for v in _REFERENCE_COLUMNS.values())
        body = []
        for row in profiles:
            cells = []
            for key in _REFERENCE_COLUMNS:
                value = row.get(key)
                if key == "kind":
                    label = "ESTIMATED" if value == "estimated" else str(value).upper()
                    cells.append(f'<td><span class="kind {esc(value)}">{esc(label)}</span></td>')
                elif key == "height":
                    cells.append(f"<td>{esc(row.get('batch', 1))}x{esc(row.get('channels', 1))}x{esc(value)}x"
                                 f"{esc(row.get('width', value))}</td>")  # fmt: skip
                elif key in ("p90_ms", "iqr_ms") and row.get("kind") == "estimated":
                    cells.append("<td>-</td>")  # an estimate is one number: no spread, even in old files
                else:
                    cells.append(f"<td>{esc(_num(value))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        first = profiles[0]
        counts = (
            f"{first.get('params', 0):,} parameters (true count; {first.get('params_paper_convention', 0):,} by the "
            f"paper's thop convention), {(first.get('macs_fvcore') or 0) / 1e9:.3f} GMACs (fvcore)"
            if first.get("params")
            else ""
        )
        out.append(
            f'<p class="note">Latency, batch 1. {esc(counts)} {esc(REFERENCE_LATENCY)}</p>'
            f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        )
    return out


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _figures(info: ReportInfo, images: Mapping[str, bytes]) -> list[str]:
    out = ["<h2>Figures</h2>"]
    captions = {p.key: p for p in info.plots}
    for key in info.plot_keys:
        plot = captions.get(key)
        if plot is not None:
            title = plot.title
            extra = []
            if plot.note:
                extra.append(plot.note)
            if plot.x.column == "fps":
                extra.append(
                    f"{PAPER_PUBLISHED.label}: drawn ({PAPER_PUBLISHED.note})"
                    if plot.published is not None
                    else f"{PAPER_PUBLISHED.label}: not drawn, {plot.published_reason}"
                )
                if plot.bands:
                    extra.append("shaded: the paper's real-time bands IS>10 and IS>24 frames/s")
        else:
            title = "Hypervolume over trials"
            ref = ", ".join(f"{v:.6g}" for v in info.hypervolume.reference)
            extra = [
                f"reference point ({ref}): the worst feasible value per objective "
                f"moved {DEFAULT_PAD:.0%} of its range further towards worse",
                f"trials from {info.hypervolume.source}",
            ]
        caption = esc(title) + "".join(f"<br>{esc(e)}" for e in extra)
        caption += f"<br>Files: {esc(key)}.png, {esc(key)}.svg"
        out.append(
            f'<figure id="fig-{esc(key)}"><img src="{png_data_uri(images[key])}" alt="{esc(title)}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return out


def _front(info: ReportInfo) -> list[str]:
    objs = ", ".join(f"{n} ({d})" for n, d in info.objectives)
    out = [
        f"<h2>Proxy Pareto front ({esc(objs)}; search: short training, validation split)</h2>",
        f'<p class="note">{esc(SEARCH_LATENCY)}</p>',
    ]
    if info.front.front.empty:
        return [*out, '<p class="note">No feasible candidate has every objective value.</p>']
    return [*out, _table(display_table(info.front.front), kinds=list(info.front.front["latency_kind"]))]


def _conditions(info: ReportInfo) -> list[str]:
    df = info.candidates
    out = [
        "<h2>All candidates and measurement conditions</h2>",
        f'<p class="note"><span class="kind measured">MEASURED</span> {esc(MEASURED_LEGEND)}<br>'
        f'<span class="kind estimated">ESTIMATED</span> {esc(ESTIMATED_LEGEND)}'
        + (f'<br><span class="kind predicted">PREDICTED</span> {esc(PREDICTED_LEGEND)}' if info.remeasured else "")
        + "</p>",
    ]
    out.append(f'<p class="note">{esc(SEARCH_LATENCY)}</p>')
    if info.unlisted is not None and info.unlisted.trials:
        out += _unlisted(info)
    if df.empty:
        return [*out, '<p class="note">No candidates.</p>']
    status = _status(info)
    table = display_table(df)
    table.insert(1, "status", [status.get(i, "") for i in df.index])
    out.append(_table(table, kinds=list(df["latency_kind"]), row_classes=[status.get(i, "") for i in df.index]))
    return out


def _unlisted(info: ReportInfo) -> list[str]:
    u = info.unlisted
    rows = "".join(
        f'<tr class="infeasible"><td>{t.number}</td><td>{esc(t.name)}</td><td>{esc(t.outcome)}</td>'
        f"<td>{esc(t.reason or '-')}</td></tr>"
        for t in u.trials
    )
    return [
        f'<p class="note" id="unlisted"><b>{esc(u.note())}</b></p>',
        '<details id="unlisted-trials"><summary>Trials without a candidate row</summary><div class="wide"><table>'
        f"<thead><tr><th>trial</th><th>name</th><th>outcome</th><th>reason</th></tr></thead><tbody>{rows}</tbody>"
        "</table></div></details>",
    ]


def _configs(info: ReportInfo) -> list[str]:
    out = ["<h2>Candidate configurations</h2>"]
    df = info.candidates
    if df.empty:
        return [*out, '<p class="note">No candidates.</p>']
    for r in df.itertuples(index=False):
        extra = {k: _plain(getattr(r, k)) for k in ("recipe", "parent", "trial", "notes") if _present(getattr(r, k))}
        body = json.dumps({"config": r.config, **extra}, indent=2, sort_keys=True, default=str)
        out.append(f"<details><summary>{esc(r.name)} ({esc(r.source)})</summary><pre>{esc(body)}</pre></details>")
    return out


def _environment(info: ReportInfo) -> list[str]:
    out = ["<h2>Environment</h2>"]
    if not info.environment:
        return [*out, '<p class="note">No environment.json in the study.</p>']
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v if not isinstance(v, dict | list) else json.dumps(v, default=str))}</td></tr>"
        for k, v in info.environment.items()
    )
    return [*out, f"<table>{rows}</table>"]


def _table(df: pd.DataFrame, *, kinds: Iterable[str], row_classes: Iterable[str] | None = None) -> str:
    kinds = list(kinds)
    classes = list(row_classes) if row_classes is not None else ["front"] * len(df)
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = []
    for (_, row), kind, cls in zip(df.iterrows(), kinds, classes):
        cells = []
        for col, value in row.items():
            if col == "latency":
                label = "ESTIMATED" if kind == "estimated" else str(kind).upper()
                cells.append(f'<td><span class="kind {esc(kind)}">{esc(label)}</span></td>')
            else:
                cells.append(f"<td>{esc(value)}</td>")
        body.append(f'<tr class="{esc(cls)}">' + "".join(cells) + "</tr>")
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _status(info: ReportInfo) -> dict[Any, str]:
    out = {i: "incomplete" for i in info.candidates.index}
    for label, part in (
        ("front", info.front.front),
        ("dominated", info.front.dominated),
        ("infeasible", info.front.infeasible),
    ):
        for i in part.index:
            out[i] = label
    return out


def _present(value: Any) -> bool:
    if value is None or value is pd.NA or (isinstance(value, str) and not value):
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def _plain(value: Any) -> Any:
    # numpy/pandas scalars print as e.g. np.int64(3) through json's default=str
    return value.item() if hasattr(value, "item") else value
