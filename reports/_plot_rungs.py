"""The bump chart of a multi-fidelity study: each trial's rank at every rung, then at the full budget."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reports._plots import DOMINATED_COLOR, FIGSIZE, FRONT_COLOR, INFEASIBLE_COLOR, REFERENCE_COLOR
from reports._rungs import FULL, RungInfo

FULL_LABEL = "full budget\n(validated, test)"


def plot_rungs(info: RungInfo, *, ax: Axes | None = None) -> Figure:
    """x: rung budgets in epochs (then the full budget when validated records exist); y: rank, best on top.

    One line per trial; validated trials in colour and labelled, the others grey; a trial stopped at
    a rung ends there with a cross; the reference (``paper``) is a star.
    """
    if ax is None:
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    budgets = [str(r) for r in info.rungs] + ([FULL] if info.has_full else [])
    xpos = {b: i for i, b in enumerate(budgets)}
    fig.suptitle("Rank by Dice at each budget (multi-fidelity rungs)", fontsize=12, fontweight="bold")
    eta = f", eta {info.eta}" if info.eta else ""
    ax.set_title(
        f"rungs {', '.join(map(str, info.rungs))} epochs{eta}; rank among the trials that reached the budget "
        "(1 = best val Dice;\nfull budget: test Dice of the validated trials); from " + info.source,
        fontsize=7,
        loc="left",
    )
    ax.set_xticks(range(len(budgets)), [f"{b} ep" if b != FULL else FULL_LABEL for b in budgets])
    ax.set_xlabel("training budget")
    ax.set_ylabel("rank (1 = best Dice)")
    ax.grid(True, axis="y", color="#eeeeee", linewidth=0.8)
    validated = set(info.validated)
    last_rung = str(info.rungs[-1])
    top = int(info.ranks["rank"].max()) if len(info.ranks) else 1
    stopped = paper = False
    for _, rows in info.ranks.groupby("number", sort=True):
        rows = rows.sort_values("budget", key=lambda s: s.map(xpos))
        name = str(rows["name"].iloc[0])
        xs = [xpos[b] for b in rows["budget"]]
        ys = list(rows["rank"])
        is_val = name in validated
        color = FRONT_COLOR if is_val else DOMINATED_COLOR
        ax.plot(xs, ys, color=color, lw=2.0 if is_val else 0.9, alpha=1.0 if is_val else 0.6, zorder=4 if is_val else 2)
        ax.scatter(xs, ys, color=color, s=22 if is_val else 10, zorder=5 if is_val else 3)
        last = rows["budget"].iloc[-1]
        if last not in (last_rung, FULL) and rows["state"].iloc[0] == "PRUNED":  # stopped by the rung rule
            ax.scatter([xs[-1]], [ys[-1]], marker="x", color=INFEASIBLE_COLOR, s=40, zorder=6)
            stopped = True
        if name == "paper":
            paper = True
            ax.scatter(xs, ys, marker="*", s=160, color=REFERENCE_COLOR, edgecolors="white", zorder=7)
        if is_val:
            ax.annotate(name, (xs[-1], ys[-1]), xytext=(5, 0), textcoords="offset points", fontsize=7,
                        va="center", color=FRONT_COLOR)  # fmt: skip
    ax.set_ylim(top + 0.5, 0.5)  # rank 1 on top
    ax.set_xlim(-0.3, len(budgets) - 1 + 0.6)
    handles = [Line2D([], [], color=DOMINATED_COLOR, lw=0.9, label="trial")]
    if info.has_full:
        handles.append(Line2D([], [], color=FRONT_COLOR, lw=2.0, label="validated at the full budget"))
    if stopped:
        handles.append(Line2D([], [], ls="", marker="x", color=INFEASIBLE_COLOR, label="stopped at this rung"))
    if paper:
        handles.append(Line2D([], [], ls="", marker="*", ms=11, color=REFERENCE_COLOR, label="paper (never stopped)"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over a line
    return fig
