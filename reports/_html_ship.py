"""The report's "Which model to ship" section, drawn from its :class:`~reports._ship.ShipInfo`."""

from __future__ import annotations

from reports._info import ReportInfo


def ship_section(info: ReportInfo, esc) -> list[str]:
    s = info.ship
    basis = "validated at the full budget" if s.basis == "validated" else "PROXY-ONLY (not validated)"
    out = ['<h2 id="ship">Which model to ship</h2>', '<div class="ship">']
    out.append(f'<p id="ship-basis"><b>Basis: {esc(basis)}</b></p>')
    cons = ", ".join(f"{k} = {v:g}" for k, v in s.constraints.items() if v is not None) or "none"
    if s.pick is None:
        out.append(f'<p id="ship-pick">No candidate is feasible and meets the constraints ({esc(cons)}).</p>')
        out += [f'<p class="note">Note: {esc(n)}.</p>' for n in s.notes]
        return [*out, "</div>"]
    fps = f"{s.fps:.1f} FPS" if s.fps is not None else "FPS not recorded"
    speed = f"<b>{s.latency_ms:.2f} ms</b> per frame ({fps})" if s.latency_ms is not None else "no latency"
    dice = f"Dice {s.dice:.4f}" if s.dice is not None else "no Dice"
    out.append(
        f'<p id="ship-pick" class="pick">Ship <b>{esc(s.pick)}</b>: {speed}, {esc(dice)} ({esc(s.dice_basis)}).</p>'
    )
    rows = []
    c = s.conditions
    kind = f'<span class="kind {esc(c.kind)}">{esc(c.kind.upper())}</span>'
    rows.append(("latency conditions", f"{kind} {esc(c.where())}; from {esc(c.run)}"))
    vp = s.versus_paper
    if vp is not None:
        infeasible = "" if vp.paper_feasible else " (paper itself breaks the study's constraints)"
        rows.append(
            (
                "against paper",
                f"<b>{esc(vp.speed_text())}</b>; {esc(vp.note)}.<br><b>{esc(vp.dice_text())}</b>{esc(infeasible)}.",
            )
        )
    else:
        rows.append(("against paper", esc(s.versus_paper_missing) + "."))
    rows.append(("runs", f"<b>{esc(s.runs_label)}</b>: {esc(s.runs)}."))
    best = f"; the highest Dice, {esc(s.best)} ({s.best_dice:.4f}), is slower" if s.best else ""
    rows.append(
        (
            "why this one",
            f"{esc(s.rule)}{best}. Constraints: {esc(cons)}; {s.n_eligible} of {s.n_pool} candidate(s) eligible.",
        )
    )
    found = "" if s.file_found else ' <b class="warn">not in this study folder</b>'
    path = esc(f"{info.study_dir}/{s.file}") if s.file is not None else "-"
    rows.append(("file to ship", f"<code>{path}</code>{found}"))
    if s.export_command:
        rows.append(
            (
                "export for a Jetson Nano (TensorRT 8.2)",
                f'<pre id="ship-export">{esc(s.export_command)}</pre>{esc(s.export_note)}',
            )
        )
    else:
        rows.append(("export", esc(s.export_note)))
    if s.device_note:
        rows.append(("on the device", f"{esc(s.device_note)}<pre>{esc(s.device_command)}</pre>"))
    body = "".join(f"<tr><th>{label}</th><td>{cell}</td></tr>" for label, cell in rows)
    out.append(f'<table class="facts" id="ship-facts"><tbody>{body}</tbody></table>')
    out += _menu(s, esc)
    out += [f'<p class="note">Note: {esc(n)}.</p>' for n in s.notes]
    out.append("</div>")
    return out


def _menu(s, esc) -> list[str]:
    """The validated front against paper, one line per member, fastest first; the pick in bold."""
    if not s.menu:
        return []
    head = ["model", "ms", "speed vs paper [95 % interval]", "Dice vs paper [95 % interval]", "verdict",
            "export for the device"]  # fmt: skip
    body = []
    for m in s.menu:
        name = f"<b>{esc(m.name)}</b> (pick)" if m.pick else esc(m.name)
        export = f"<code>{esc(m.export_command)}</code>" if m.export_command else f"ship <code>{esc(m.file)}</code>"
        ms = f"{m.latency_ms:.2f}" if m.latency_ms is not None else "-"
        cells = [name, ms, esc(m.speed), esc(m.dice), esc(m.verdict), export]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return [
        '<p id="ship-menu-note"><b>Menu: the validated front against paper</b> (fastest first). Speed: paper&#x27;s '
        "median latency over the model&#x27;s from validate&#x27;s one timing run, 95 % interval over its paired "
        "rounds; Dice: the per-seed paired difference, 95 % t-interval over the training seeds. A difference inside "
        "the noise is &lsquo;indistinguishable&rsquo;, never a win; one seed is a <b>single run</b>.</p>",
        '<div class="wide"><table id="ship-menu"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></div>",
    ]  # fmt: skip
