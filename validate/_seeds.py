"""Several training seeds per validated model (``validate --seeds``): per-seed runs, their summary, paired verdicts.

Every candidate, ``paper`` and every re-applied variant is trained with the same seeds on the same
split (the budget's data seed), so seed s of two models is a paired comparison. The statistics are
rtseg_core's (:func:`~rtseg_core.seed_summary`, :func:`~rtseg_core.paired_difference`,
:func:`~rtseg_core.collapsed_classes`); this module only arranges the stage's results for them.

A run that never learned a class (per-class Dice below ``rtseg_core.COLLAPSE_DICE``) is
*collapsed*: it stays in the mean (dropping it would flatter the architecture) and is flagged
with its seed in the record, the summary and the printed table. A run without a finite Dice
cannot enter a mean; it is flagged as collapsed as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtseg_core import (
    EvalMetrics,
    ReappliedResult,
    SeedRun,
    SeedStats,
    SpeedRatio,
    ValidatedResult,
    collapsed_classes,
    paired_difference,
    seed_summary,
    text_table,
)

PAPER = "paper"


def seed_runs(results: Mapping[int, ValidatedResult | ReappliedResult]) -> tuple[SeedRun, ...]:
    """One :class:`SeedRun` per training seed, in seed order, with the classes it never learned."""
    runs = []
    for seed in sorted(results):
        test = results[seed].test
        runs.append(SeedRun(seed, test, tuple(collapsed_classes({"ps": test.dice_ps, "fh": test.dice_fh}))))
    return tuple(runs)


def model_stats(runs: tuple[SeedRun, ...], paper: tuple[SeedRun, ...] | None, *, what: str) -> SeedStats:
    """Dice over the seeds (finite ones; collapsed runs included) and, given ``paper``'s runs, the paired difference."""
    dice = _finite(runs)
    summary = seed_summary(dice, what=f"{what}: test Dice") if dice else None
    versus = None
    if paper is not None:
        ref = _finite(paper)
        if set(dice) & set(ref):
            versus = paired_difference(dice, ref, what=f"{what} - paper: test Dice")
    return SeedStats(runs=runs, dice=summary, vs_paper=versus)


def mean_metrics(runs: tuple[SeedRun, ...]) -> EvalMetrics:
    """The mean of each test metric over the runs that have it (one run: its own numbers)."""

    def mean(key: str) -> float | None:
        values = [getattr(r.test, key) for r in runs if getattr(r.test, key) is not None]
        return sum(values) / len(values) if values else None

    refs = {r.test.reference_size for r in runs}
    return EvalMetrics(dice=mean("dice"), dice_ps=mean("dice_ps"), dice_fh=mean("dice_fh"),
                       delta_aop_deg=mean("delta_aop_deg"),
                       reference_size=refs.pop() if len(refs) == 1 else None)  # fmt: skip


def record_fields(stats: SeedStats) -> dict[str, Any]:
    """The CandidateRecord fields of a model over its seeds (its ``dice`` is the mean, set by the caller)."""
    d = stats.dice
    return {
        "seeds": list(stats.seeds),
        "dice_std": None if d is None else d.std,
        "dice_low": None if d is None else d.low,
        "dice_high": None if d is None else d.high,
        "collapsed_seeds": list(stats.collapsed_seeds),
    }


def describe_seeds(stats: SeedStats) -> str:
    """``test Dice 0.8123 +- 0.0040 [0.8023, 0.8223] over seeds 0, 1, 2; collapsed: seed 2 (fh)`` for notes."""
    d = stats.dice
    seeds = ", ".join(map(str, stats.seeds))
    if d is None:
        text = f"no finite test Dice over seed(s) {seeds}"
    elif d.n == 1:
        text = f"test Dice {d.mean:.4f} from a single run (seed {seeds}): no interval"
    else:
        text = (
            f"test Dice {d.mean:.4f} (mean) +- {d.std:.4f} (sd), 95 % t-interval [{d.low:.4f}, {d.high:.4f}] over "
            f"seeds {seeds}"
        )
    return text + collapsed_text(stats)


def collapsed_text(stats: SeedStats) -> str:
    bad = [f"seed {r.seed} ({', '.join(r.collapsed)})" for r in stats.runs if r.collapsed]
    return f"; COLLAPSED runs (a class never learned; included in the mean): {', '.join(bad)}" if bad else ""


def paired_menu(models: Mapping[str, SeedStats], latency: Mapping[str, Mapping[str, Any]], kind: str) -> str:
    """One line per validated model relative to paper: speed ratio, Dice difference with its interval, verdict.

    The speed ratio is paper's median latency over the model's from the one latency run, with the
    timer's 95 % interval over its paired rounds (``vs_paper`` of the row); an estimate or a
    prediction times nothing and has no interval (it says so).
    """
    if PAPER not in models:
        return "paired comparison with paper: paper was not validated"
    rows = [("vs paper", "speed (paper ms / ms) [95 %]", "test Dice (mean)", "Dice - paper's, per seed paired",
             "collapsed")]  # fmt: skip
    for name in sorted(n for n in models if n != PAPER):
        s = models[name]
        versus = s.vs_paper.describe() if s.vs_paper is not None else "no common seed with a finite Dice"
        rows.append((name, speed_text(latency.get(name), latency.get(PAPER), kind), _mean(s), versus, _collapsed(s)))
    rows.append((PAPER, "1.00x", _mean(models[PAPER]), "(the reference)", _collapsed(models[PAPER])))
    note = (
        "verdict: 'better' / 'worse' only when the whole 95 % interval of the paired Dice difference is above / below "
        "0; 'indistinguishable' otherwise (never a win); one seed is a 'single run' (no verdict). Collapsed runs are "
        "in the means. Speed: paper's median over the model's from one alternating run, 95 % bootstrap interval "
        "over its paired rounds."
    )
    return text_table(rows) + "\n" + note


def speed_text(row: Mapping[str, Any] | None, paper: Mapping[str, Any] | None, kind: str) -> str:
    """``1.78x [1.74, 1.82] faster (MEASURED, 30 paired rounds)``, or the ratio alone where nothing was timed."""
    ms = None if row is None else row.get("median_ms")
    ref = None if paper is None else paper.get("median_ms")
    if not ms or not ref:
        return "no latency"
    vs = SpeedRatio.read(row.get("vs_paper"), source="latency row")
    if vs is None:
        return f"{ref / ms:.2f}x ({kind.upper()}, no timing rounds: no interval)"
    return f"{vs.describe()} ({kind.upper()}, {vs.rounds} paired rounds)"


def _collapsed(s: SeedStats) -> str:
    return ", ".join(f"seed {r.seed} ({'+'.join(r.collapsed)})" for r in s.runs if r.collapsed) or "-"


def _mean(s: SeedStats) -> str:
    d = s.dice
    if d is None:
        return "-"
    if d.n == 1:
        return f"{d.mean:.4f} (1 seed)"
    return f"{d.mean:.4f} [{d.low:.4f}, {d.high:.4f}] ({d.n} seeds)"


def _finite(runs: tuple[SeedRun, ...]) -> dict[int, float]:
    return {r.seed: float(r.test.dice) for r in runs if r.test.dice is not None}
