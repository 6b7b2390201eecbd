"""Which model to ship, said in full: the pick, the conditions its latency holds under, how it
compares with ``paper`` timed in the same run, how many runs stand behind it, and the file and the
command that take it to a device.

Computed from the report's :class:`~reports._select.ShipChoice` and the rows it was chosen from (the
validated records when the study has any, else the search's); :mod:`reports._html_ship` draws it.
The pick is the fastest eligible candidate within the choice's tolerance of the best Dice (the best
itself when no FPS is known).

A model's latency can appear twice in one report: the search timed each trial on its own while it
ran, and ``validate`` timed every validated candidate again in one alternating run. The two
numbers differ (another run, another machine load, perhaps other conditions);
:func:`latency_pairs` lists every such model so the page can say which run each number comes
from, and only numbers from the same run are compared.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from reports._select import ShipChoice
from reports._units import dice_difference, dice_points
from reports._validated import ValidatedInfo
from rtseg_core import CHECKPOINT, MEASURED, SpeedRatio, StudyDir, finite_or_none

JETSON_OPSET = 13  # TensorRT 8.0/8.2 (JetPack 4.6 on a Jetson Nano) parse ONNX opset 13: `export --opset 13`
MODEL_ONNX = "model.onnx"  # the graph quantize (and validate's re-applied variants) write beside their files
PAPER = "paper"
SAME_SPEED = 0.005  # latency ratios within 0.5 % of 1 are written "as fast as"
TWO_RUNS = (
    "The search timed each trial on its own while it ran; validate timed every validated candidate again "
    "in one alternating run. Different runs under different machine load give different numbers even under "
    "the same stated conditions, so only numbers from the same run are compared (the ship section uses "
    "validate's)."
)


@dataclass(frozen=True)
class LatencyConditions:
    """Under what a latency was taken, and in which run."""

    input: str  # "256x256" (batch 1)
    threads: int | None  # None: the runtime chose
    device: str
    target: str
    runtime: str
    precision: str
    kind: str  # measured | estimated | predicted
    run: str  # which run took the number

    def text(self) -> str:
        return f"{self.kind.upper()} {self.where()}"

    def where(self) -> str:
        threads = "runtime-chosen threads" if self.threads is None else f"{self.threads} thread(s)"
        where = f"on {self.device} ({self.target})"
        return f"{where}, {self.runtime} {self.precision}, {threads}, input {self.input}, batch 1"

    def same_as(self, other: LatencyConditions) -> tuple[str, ...]:
        """The measurement conditions that differ from ``other`` (``()``: the same). Precision is the
        model's, not the measurement's: an INT8 pick is compared with paper's FP32 on purpose."""
        fields = ("input", "threads", "device", "target", "runtime", "kind")
        return tuple(f for f in fields if getattr(self, f) != getattr(other, f))


@dataclass(frozen=True)
class VersusPaper:
    """The pick against ``paper`` from the same table (same training budget, same split)."""

    paper_dice: float | None
    paper_ms: float | None
    pick_dice: float | None
    pick_ms: float | None
    same_run: bool  # both latencies from one timing run (validate's alternating run)
    comparable: bool  # same stated latency conditions: the ratio means something
    paper_feasible: bool
    note: str  # what the comparison rests on
    speed: SpeedRatio | None = None  # paper's median / the pick's with its interval over validate's paired rounds

    @property
    def ratio(self) -> float | None:
        """pick ms / paper ms: above 1 the pick is SLOWER."""
        timed = finite_or_none(self.pick_ms) is not None and finite_or_none(self.paper_ms) is not None
        if not self.comparable or not timed or self.paper_ms <= 0:
            return None
        return self.pick_ms / self.paper_ms

    @property
    def dice_points(self) -> float | None:
        if finite_or_none(self.pick_dice) is None or finite_or_none(self.paper_dice) is None:
            return None
        return dice_points(self.pick_dice - self.paper_dice)

    def speed_text(self) -> str:
        r = self.ratio
        if r is None:
            return "no latency ratio to paper (" + self.note + ")"
        ms = f"{self.pick_ms:.2f} ms vs paper's {self.paper_ms:.2f} ms"
        if self.speed is not None and self.same_run:
            return f"{self.speed.describe()} than paper ({ms}; 95 % interval over {self.speed.rounds} paired rounds)"
        if abs(r - 1.0) <= SAME_SPEED:
            return f"as fast as paper ({ms})"
        if r > 1.0:
            return f"{r:.2f}x SLOWER than paper ({ms})"
        return f"{1.0 / r:.2f}x faster than paper ({ms})"

    def dice_text(self) -> str:
        if self.dice_points is None:
            return "no Dice comparison with paper (a Dice value is missing)"
        delta = self.pick_dice - self.paper_dice
        return f"{dice_difference(delta)} vs paper (Dice {self.pick_dice:.4f} vs {self.paper_dice:.4f})"


@dataclass(frozen=True)
class ShipInfo:
    """The "Which model to ship" section."""

    basis: str  # "validated" or "proxy"
    pick: str | None
    rule: str
    dice: float | None
    dice_basis: str  # what the Dice was measured on
    latency_ms: float | None
    fps: float | None
    conditions: LatencyConditions | None
    versus_paper: VersusPaper | None  # None when the pick is paper or the table has no paper
    versus_paper_missing: str  # why there is no comparison ("" when there is one)
    runs: str  # how many runs stand behind the numbers, said with what it means
    file: Path | None  # relative to the study folder
    file_found: bool
    export_command: str | None  # None: the file is an ONNX graph already (export applies to checkpoints)
    export_note: str
    device_note: str  # where the latency does not come from the deployment device ("" when it does)
    device_command: str | None  # how to time the pick there
    best: str | None  # the highest Dice, when it is not the pick
    best_dice: float | None
    constraints: dict[str, float | None]
    n_eligible: int
    n_pool: int
    notes: tuple[str, ...]
    runs_label: str = "single run"  # "single run", or "N paired seeds" (validate --seeds)
    menu: tuple[MenuLine, ...] = ()  # the validated front against paper, fastest first (empty: proxy basis)

    def to_dict(self) -> dict[str, Any]:
        vp = self.versus_paper
        return {
            "basis": self.basis,
            "pick": self.pick,
            "rule": self.rule,
            "dice": self.dice,
            "dice_basis": self.dice_basis,
            "latency_ms": self.latency_ms,
            "fps": self.fps,
            "conditions": None if self.conditions is None else vars(self.conditions) | {"text": self.conditions.text()},
            "vs_paper": None
            if vp is None
            else {
                "paper_dice": vp.paper_dice,
                "paper_latency_ms": vp.paper_ms,
                "latency_ratio": vp.ratio,
                "speed_vs_paper": None if vp.speed is None else vp.speed.to_dict(),
                "dice_points": vp.dice_points,
                "same_run": vp.same_run,
                "paper_feasible": vp.paper_feasible,
                "text": f"{vp.speed_text()}; {vp.dice_text()}",
            },
            "vs_paper_missing": self.versus_paper_missing,
            "runs": f"{self.runs_label}: {self.runs}" if self.runs else "",
            "file": None if self.file is None else str(self.file),
            "file_found": self.file_found,
            "export_command": self.export_command,
            "export_note": self.export_note,
            "device_note": self.device_note,
            "device_command": self.device_command,
            "menu": [vars(m) for m in self.menu],
        }


@dataclass(frozen=True)
class MenuLine:
    """One member of the validated front against paper: what the ship section's menu prints."""

    name: str
    latency_ms: float | None
    speed: str  # "1.78x [1.74, 1.82] faster", or why there is no interval
    dice: str  # the paired Dice difference with its interval, or "a single run"
    verdict: str  # better | indistinguishable | worse | single run | reference
    pick: bool  # the pick under the study's constraints
    export_command: str | None  # None: an ONNX graph already (its file is shipped as is)
    file: str


def ship_menu(study_dir: Path, validated: ValidatedInfo | None, pick: str | None) -> tuple[MenuLine, ...]:
    """The validated front (and paper) as a short menu relative to paper, fastest first.

    Speed with the interval of validate's timing rounds, Dice difference with its paired interval
    over the training seeds and the verdict from it; a difference inside the seed noise is never a
    win, and with one seed every line says *single run*."""
    if validated is None:
        return ()
    pool = validated.candidates
    names = [*validated.front.front_names, *([PAPER] if PAPER in set(pool["name"]) else [])]
    paper = pool[pool["name"] == PAPER]
    paper_ms = finite_or_none(paper.iloc[0]["latency_ms"]) if not paper.empty else None
    out = []
    for name in dict.fromkeys(names):
        row = pool[pool["name"] == name].iloc[0]
        ms = finite_or_none(row["latency_ms"])
        rel, _, command, _ = _file_and_command(Path(study_dir), row, "validated", pool)
        out.append(MenuLine(name=name, latency_ms=ms, speed=_menu_speed(validated, name, ms, paper_ms),
                            **_menu_dice(validated, name, row, paper), pick=name == pick, export_command=command,
                            file=str(rel) if rel is not None else "-"))  # fmt: skip
    return tuple(sorted(out, key=lambda m: (m.latency_ms is None, m.latency_ms or 0.0)))


def _menu_speed(validated: ValidatedInfo, name: str, ms: float | None, paper_ms: float | None) -> str:
    if name == PAPER:
        return "1.00x (the reference)"
    speed = validated.speed.get(name)
    if speed is not None:
        return speed.describe()
    if ms is None or paper_ms is None:
        return "no latency"
    return f"{paper_ms / ms:.2f}x (no timing rounds: no interval)"


def _menu_dice(validated: ValidatedInfo, name: str, row: Any, paper: pd.DataFrame) -> dict[str, str]:
    if name == PAPER:
        return {"dice": "(the reference)", "verdict": "reference"}
    m = validated.models.get(name)
    if m is not None and m.vs_paper is not None:
        return {"dice": m.vs_paper.describe(), "verdict": m.vs_paper.verdict}
    dice, ref = finite_or_none(row["dice"]), None if paper.empty else finite_or_none(paper.iloc[0]["dice"])
    if dice is None or ref is None:
        return {"dice": "no Dice comparison with paper", "verdict": "-"}
    return {"dice": f"{dice_points(dice - ref):+.2f} points (a single run, no verdict)", "verdict": "single run"}


def ship_info(
    study_dir: Path,
    choice: ShipChoice,
    basis: str,
    candidates: pd.DataFrame,
    validated: ValidatedInfo | None,
) -> ShipInfo:
    """The ship section for the choice made from ``validated`` (basis "validated") or ``candidates``."""
    pool = validated.candidates if basis == "validated" and validated is not None else candidates
    pick = choice.fastest or choice.best
    rule = (
        f"among the {'validated' if basis == 'validated' else 'search'} candidates that are feasible and meet "
        f"the study's constraints, the fastest within {_points(choice.tolerance)} ({choice.tolerance:g}) of the "
        "highest Dice"
    )
    common = dict(
        basis=basis, rule=rule, constraints=dict(choice.constraints), n_eligible=len(choice.eligible),
        n_pool=len(pool), notes=choice.notes,
    )  # fmt: skip
    if pick is None:
        return ShipInfo(
            pick=None, dice=None, dice_basis="", latency_ms=None, fps=None, conditions=None, versus_paper=None,
            versus_paper_missing="", runs="", file=None, file_found=False, export_command=None, export_note="",
            device_note="", device_command=None, best=None, best_dice=None, **common,
        )  # fmt: skip
    row = pool[pool["name"] == pick].iloc[0]
    cond = conditions_of(row, validated=validated if basis == "validated" else None)
    versus, missing = _versus_paper(row, pool, cond, basis, validated)
    rel, found, command, note = _file_and_command(Path(study_dir), row, basis, pool)
    return ShipInfo(
        pick=pick,
        dice=finite_or_none(row["dice"]),
        dice_basis=(
            "test split, after full training (validate)"
            if basis == "validated"
            else f"{row['split']} split, after the search's short proxy training (NOT validated)"
        ),
        latency_ms=finite_or_none(row["latency_ms"]),
        fps=finite_or_none(row["fps"]),
        conditions=cond,
        versus_paper=versus,
        versus_paper_missing=missing,
        runs=_runs(basis, validated, pick),
        runs_label=_runs_label(basis, validated),
        file=rel,
        file_found=found,
        export_command=command,
        export_note=note,
        **_on_the_device(cond, rel, study_dir, row),
        best=choice.best if choice.best != pick else None,
        best_dice=choice.best_dice if choice.best != pick else None,
        menu=ship_menu(Path(study_dir), validated, pick) if basis == "validated" else (),
        **common,
    )


def conditions_of(row: Any, *, validated: ValidatedInfo | None = None) -> LatencyConditions:
    """The latency conditions of one candidate row; ``validated``: the row is a validated record."""
    threads = row["threads"]
    return LatencyConditions(
        input=f"{row['height']}x{row['width']}",
        threads=None if _missing(threads) else int(threads),
        device=str(row["device"]),
        target=str(row["target"]),
        runtime=str(row["backend"]),
        precision=str(row["precision"]),
        kind=str(row["latency_kind"]),
        run=_validate_run(validated) if validated is not None else _search_run(row),
    )


@dataclass(frozen=True)
class LatencyPair:
    """One model timed twice: by the search (or compress) and by validate's run."""

    name: str
    search_ms: float
    search: LatencyConditions
    validate_ms: float
    validate: LatencyConditions

    @property
    def differing(self) -> tuple[str, ...]:
        return self.search.same_as(self.validate)

    def text(self) -> str:
        why = (
            "under the same stated conditions: the difference is the run (another moment, another machine load)"
            if not self.differing
            else f"under different conditions ({', '.join(self.differing)} differ) and in different runs"
        )
        return (
            f"{self.name}: {self.search_ms:.2f} ms in {self.search.run}; {self.validate_ms:.2f} ms in "
            f"{self.validate.run}; {why}"
        )


def latency_pairs(candidates: pd.DataFrame, validated: ValidatedInfo | None) -> tuple[LatencyPair, ...]:
    """Every model with a latency both in the search's table and in validate's, in validate's order."""
    if validated is None or candidates.empty:
        return ()
    search = {str(r["name"]): r for _, r in candidates.iterrows() if finite_or_none(r["latency_ms"]) is not None}
    out = []
    for _, r in validated.candidates.iterrows():
        s = search.get(str(r["name"]))
        if s is None or finite_or_none(r["latency_ms"]) is None:
            continue
        out.append(
            LatencyPair(
                name=str(r["name"]),
                search_ms=float(s["latency_ms"]),
                search=conditions_of(s),
                validate_ms=float(r["latency_ms"]),
                validate=conditions_of(r, validated=validated),
            )
        )
    return tuple(out)


# -- the pieces --------------------------------------------------------------------------------------
def _search_run(row: Any) -> str:
    if row["source"] == "compressed":
        return "compress's own timing of this variant"
    trial = row["trial"]
    return "the search's own timing of this trial" + ("" if _missing(trial) else f" (trial {int(trial)})")


def _validate_run(validated: ValidatedInfo) -> str:
    lat = validated.latency
    kind = str(lat.get("kind", MEASURED))
    if kind != MEASURED:
        return f"validate's {kind.upper()} latencies (one per candidate, not a timing run)"
    if str(lat.get("target", "local")).startswith("ssh://"):
        return f"validate's alternating rounds over every validated candidate on {lat.get('target')}"
    return "validate's one alternating run over every validated candidate"


def _versus_paper(row, pool: pd.DataFrame, cond: LatencyConditions, basis: str, validated) -> tuple[Any, str]:
    if row["name"] == PAPER:
        return None, "the pick is paper itself: no searched candidate does better under these rules"
    papers = pool[pool["name"] == PAPER]
    if papers.empty:
        where = "validated" if basis == "validated" else "in this study's candidates"
        return None, f"paper is not {where}, so there is no reference measured beside the pick"
    p = papers.iloc[0]
    pcond = conditions_of(p, validated=validated if basis == "validated" else None)
    differ = cond.same_as(pcond)
    same_run = basis == "validated" and not differ and cond.kind == MEASURED
    if differ:
        note = f"paper's latency was taken under other conditions ({', '.join(differ)} differ): no ratio"
    elif same_run:
        note = f"both timed in {cond.run}"
    elif basis == "validated":
        note = f"both from {cond.run}"
    else:
        note = (
            "each timed on its own during the search (different moments, different machine load): the ratio is "
            "indicative only; validate times them in one run"
        )
    versus = VersusPaper(
        paper_dice=finite_or_none(p["dice"]),
        paper_ms=finite_or_none(p["latency_ms"]),
        pick_dice=finite_or_none(row["dice"]),
        pick_ms=finite_or_none(row["latency_ms"]),
        same_run=same_run,
        comparable=not differ,
        paper_feasible=bool(p["feasible"]),
        note=note,
        speed=validated.speed.get(str(row["name"])) if basis == "validated" and validated is not None else None,
    )
    return versus, ""


def _runs_label(basis: str, validated: ValidatedInfo | None) -> str:
    if basis == "validated" and validated is not None and validated.several_seeds():
        return f"{len(validated.seeds)} paired seeds"
    return "single run"


def _runs(basis: str, validated: ValidatedInfo | None, pick: str) -> str:
    if basis == "validated" and validated is not None and validated.several_seeds():
        seeds = ", ".join(map(str, validated.seeds))
        m = validated.models.get(pick)
        text = (
            f"each model was trained with seeds {seeds} (the same split for every seed, so seed s of two models is "
            "a paired comparison); Dice is the mean over the seeds, latency one run on the first seed's graph"
        )
        if pick == PAPER:
            return text
        if m is None or m.vs_paper is None:
            return text + "; no paired comparison with paper (paper not validated with these seeds)"
        vp = m.vs_paper
        verdict = {"better": "better than paper", "worse": "worse than paper"}.get(
            vp.verdict, "not distinguishable from paper: the difference is inside the seed noise, not a win"
        )
        collapsed = (
            f"; collapsed run(s) (a class never learned, kept in the mean): seed(s) "
            f"{', '.join(map(str, m.collapsed_seeds))}"
            if m.collapsed_seeds
            else ""
        )
        return f"{text}; Dice vs paper per seed: {vp.describe()}, so {verdict}{collapsed}"
    if basis == "validated":
        seed = (validated.budget or {}).get("seed") if validated is not None else None
        return (
            "each model was trained once (one seed"
            + ("" if seed is None else f", seed {seed}")
            + ") and timed in one run; the spread between training seeds was not measured, so a Dice difference "
            "of about a point may not repeat with another seed"
        )
    return "each architecture was trained once (one seed) for the search's short proxy budget"


def _folder(study: StudyDir, row: Any, basis: str) -> Path | None:
    name = str(row["name"])
    if basis == "validated":
        return study.validated(name)
    if row["source"] == "compressed":
        return study.compressed(name)
    return None if _missing(row["trial"]) else study.trial_dir(int(row["trial"]))


def _file_and_command(study_dir: Path, row: Any, basis: str, pool: pd.DataFrame):
    """``(file relative to the study, found, export command or None, note)``."""
    study = StudyDir(study_dir)
    folder = _folder(study, row, basis)
    if folder is None:
        return None, False, None, "this candidate has no folder in the study (no trial number)"
    ckpt, onnx = folder / CHECKPOINT, folder / MODEL_ONNX
    precision = str(row["precision"])
    if ckpt.is_file() or (precision == "fp32" and not onnx.is_file()):
        path, found = ckpt, ckpt.is_file()
    else:
        path, found = onnx, onnx.is_file()
    rel = path.relative_to(study.root)
    missing = (
        ""
        if found
        else f"{rel} is not in this study folder (validated or compressed on another machine?): copy it from there. "
    )
    size = int(row["height"]) if not _missing(row["height"]) else None
    if path.name == CHECKPOINT:
        cmd = ["rtseg-nas", "export", "--checkpoint", str(path.resolve()), "--out", f"{row['name']}.onnx"]
        cmd += ["--opset", str(JETSON_OPSET)] + (["--size", str(size)] if size else [])
        square = (
            ""
            if _missing(row["width"]) or row["width"] == row["height"]
            else f" export traces a square input; the latency above is for {row['height']}x{row['width']}."
        )
        note = (
            f"{missing}opset {JETSON_OPSET} is what TensorRT 8.2 (JetPack 4.6, Jetson Nano) parses; at --size "
            f"{size}, the input the latency was taken at; export checks the ONNX graph against PyTorch before it "
            f"writes it.{square}"
        )
        return rel, found, shlex.join(cmd), note
    note = f"{missing}an ONNX graph already ({precision}): ship it as is (export applies to checkpoints)." + (
        " TensorRT on the Jetson Nano's GPU has no fast INT8 (compute capability 5.3): run this file with ONNX "
        "Runtime on the Nano's CPU, or ship the FP32 model and build an FP16 engine."
        if precision.startswith("int8")
        else ""
    )
    source = _fp32_source(study, row, basis, folder)
    if source is not None and precision.startswith("int8"):
        cmd = ["rtseg-nas", "export", "--checkpoint", str(source.resolve()), "--out", f"{row['name']}.fp32.onnx"]
        cmd += ["--opset", str(JETSON_OPSET)] + (["--size", str(size)] if size else [])
        note += f" The FP32 model it was quantized from: {shlex.join(cmd)}"
    return rel, found, None, note


def _on_the_device(cond: LatencyConditions, rel: Path | None, study_dir: Path, row: Any) -> dict[str, Any]:
    """``device_note`` and ``device_command``: how to time the pick on the device when it was not timed there."""
    if cond.kind == MEASURED and cond.target.startswith("ssh://"):
        return {"device_note": "", "device_command": None}
    what = f"{cond.kind.upper()} for {cond.target}" if cond.kind != MEASURED else f"measured on {cond.device}"
    source = "--checkpoint" if rel is not None and rel.name == CHECKPOINT else "--onnx"
    path = str((Path(study_dir) / rel).resolve()) if rel is not None else "FILE"
    size = [] if _missing(row["height"]) else ["--size", str(int(row["height"]))]
    cmd = shlex.join(["rtseg-nas", "profile", source, path, *size, "--target", "ssh://USER@HOST"])
    return {"device_note": f"These latencies are {what}, not timed on the Jetson; time the pick there:",
            "device_command": cmd}  # fmt: skip


def _fp32_source(study: StudyDir, row: Any, basis: str, folder: Path) -> Path | None:
    """The FP32 checkpoint a quantized variant came from, when the study holds it."""
    pruned = folder / "pruned" / CHECKPOINT  # a prune-then-quantize chain keeps its pruned step here
    if pruned.is_file():
        return pruned
    parent = row["parent"]
    if basis == "validated" and isinstance(parent, str) and parent != row["name"]:
        ckpt = study.validated(parent) / CHECKPOINT
        return ckpt if ckpt.is_file() else None
    return None


def _points(tolerance: float) -> str:
    n = dice_points(tolerance)
    return f"{n:g} Dice point" + ("" if n == 1 else "s")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
