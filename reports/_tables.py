"""The report's tables: the front and every candidate, as CSV (raw values) and Markdown (formatted)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from reports._pareto import FrontInfo
from rtseg_core import atomic_write_text

STATUS_ORDER = ("front", "dominated", "infeasible", "incomplete")


def candidates_table(df: pd.DataFrame, front: FrontInfo) -> pd.DataFrame:
    """``df`` plus ``status`` (front / dominated / infeasible / incomplete) and ``rank`` for the study objectives.

    ``rank`` is the non-dominated sorting rank (0 = front) and missing for rows that were not
    ranked; ``config`` becomes a JSON string so the table survives CSV.
    """
    out = df.copy()
    status = pd.Series("incomplete", index=out.index, dtype=object)
    rank = pd.Series(pd.NA, index=out.index, dtype="Int64")
    for label, part in (("front", front.front), ("dominated", front.dominated)):
        status[part.index] = label
        rank[part.index] = part["rank"].astype("Int64")
    status[front.infeasible.index] = "infeasible"
    out["status"] = status
    out["rank"] = rank
    out["config"] = [json.dumps(c, sort_keys=True) if isinstance(c, dict) else "" for c in out["config"]]
    return out


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """Human-readable columns, the unit in each name (Dice a fraction in [0, 1] as everywhere; millions
    of parameters, GMACs, ms), latency kind spelled out; all strings."""
    rows = []
    for r in df.itertuples(index=False):
        rows.append(
            {
                "name": str(r.name),
                "source": str(r.source) + (f" of {r.parent}" if _has(r.parent) else ""),
                "dice": _fmt(r.dice, 1, 4),
                "fps": _fmt(r.fps, 1, 2),
                "latency_ms": _fmt(r.latency_ms, 1, 2),
                "latency": "ESTIMATED" if r.latency_kind == "estimated" else str(r.latency_kind),
                "mparams": _fmt(r.params, 1e-6, 3),
                "gmacs": _fmt(r.macs, 1e-9, 3),
                "target": str(r.target),
                "device": str(r.device),
                "runtime": str(r.backend),
                "precision": str(r.precision),
                "threads": "runtime" if not _has(r.threads) else str(int(r.threads)),
                "input": f"{r.height}x{r.width}",
                "data": f"{r.dataset}/{r.split}",
            }
        )
    return pd.DataFrame(rows, columns=list(_DISPLAY_COLUMNS))


_DISPLAY_COLUMNS = (
    "name",
    "source",
    "dice",
    "fps",
    "latency_ms",
    "latency",
    "mparams",
    "gmacs",
    "target",
    "device",
    "runtime",
    "precision",
    "threads",
    "input",
    "data",
)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (cells as strings, pipes escaped)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(_md(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_tables(df: pd.DataFrame, front: FrontInfo, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``front.csv``, ``front.md`` and ``candidates.csv`` atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    table = candidates_table(df, front)
    front_rows = table.loc[front.front.index]
    objs = ", ".join(f"{n} ({d})" for n, d in front.objectives)
    md = [
        f"# Pareto front ({objs})",
        "",
        "Feasible candidates no other feasible candidate beats in every objective. "
        "Latency 'ESTIMATED' is a model of the target, not a measurement.",
        "",
        to_markdown(display_table(front_rows)) if len(front_rows) else "_No feasible candidate with all objectives._\n",
    ]
    return {
        "front.csv": atomic_write_text(out_dir / "front.csv", front_rows.to_csv(index=False)),
        "front.md": atomic_write_text(out_dir / "front.md", "\n".join(md)),
        "candidates.csv": atomic_write_text(out_dir / "candidates.csv", table.to_csv(index=False)),
    }


def _md(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _has(value) -> bool:
    if value is None or value is pd.NA:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def _fmt(value, factor: float, digits: int) -> str:
    if not _has(value) or not np.isfinite(float(value)):
        return "n/a"
    return f"{float(value) * factor:.{digits}f}"
