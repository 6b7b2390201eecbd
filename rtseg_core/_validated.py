"""The files of the validation stage (``validate``), as typed records with one reader each.

=====================================  ====================  ==========================================
file                                   record                what it holds
=====================================  ====================  ==========================================
``validated/<name>/trained.json``      ValidatedResult       one architecture retrained at the full
                                                             budget: the candidate as the search saw
                                                             it, the budget, epochs, test metrics
``validated/<name>/reapplied.json``    ReappliedResult       one compressed variant re-applied to its
                                                             validated parent: its plan, budget,
                                                             steps, test metrics, pruning history
``validated/latency.json``             ValidatedLatency      the one latency run over every validated
                                                             model: its conditions, one row per model
``validated/summary.json``             ValidatedSummary      the stage's result: budget, names, proxy
                                                             Dice per model, the rank agreement, the
                                                             training seeds and per model its
                                                             per-seed metrics, Dice over the seeds and
                                                             the paired difference with paper
                                                             (:class:`SeedStats`)
=====================================  ====================  ==========================================

With several training seeds (``validate --seeds``), the first seed's ``trained.json`` /
``reapplied.json`` live in ``validated/<name>/`` and another seed's in ``validated/seed-<s>/<name>/``
(:meth:`rtseg_core.StudyDir.validated`); each holds its training ``seed``.

The validation stage writes them and :class:`rtseg_core.StudyDir` reads them; the report reads the
stage's own rank agreement from ``summary.json`` instead of computing it again. The same records
travel between validation workers through the study storage (``to_dict`` / ``from_dict``). A file
that does not hold what its record needs is one :class:`ConfigError` naming the file and the field.
Parts owned by the stage (a candidate's config, a variant's recipe, a latency row's timing
details) stay plain JSON objects here; the fields the suite reads from them are checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtseg_core._candidate import KINDS
from rtseg_core._errors import ConfigError
from rtseg_core._fields import Fields
from rtseg_core._paired import PairedDifference, SeedSummary

if TYPE_CHECKING:
    from rtseg_core._rank import RankAgreement  # numpy: loaded only when a summary holds an agreement


@dataclass(frozen=True)
class EvalMetrics:
    """Accuracy of one model on the test split (Dice as a fraction; named so pytest does not collect it)."""

    dice: float | None
    dice_ps: float | None
    dice_fh: float | None
    delta_aop_deg: float | None
    #: Side of the label masks the metrics were computed on (segmentation.REFERENCE_SIZE by default);
    #: None: written before evaluations had a reference size (scored at the input size).
    reference_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dice": self.dice,
            "dice_ps": self.dice_ps,
            "dice_fh": self.dice_fh,
            "delta_aop_deg": self.delta_aop_deg,
        }
        if self.reference_size is not None:
            out["reference_size"] = self.reference_size
        return out

    @classmethod
    def read(cls, f: Fields) -> EvalMetrics:
        dice = {k: f.number(k, minimum=0.0, maximum=1.0, optional=True) for k in ("dice", "dice_ps", "dice_fh")}
        return cls(
            **dice,
            delta_aop_deg=f.number("delta_aop_deg", minimum=0.0, optional=True),
            reference_size=f.int("reference_size", minimum=1, optional=True),
        )


@dataclass(frozen=True)
class ValidatedResult:
    """``trained.json``: one architecture retrained from scratch at the full budget, on the test split."""

    candidate: dict  # the claim's candidate: name ("candidate"), trial, config, source, proxy numbers
    budget: dict  # the full budget (validate.ValidateConfig.budget): epochs, size, batch_size, lr, seed, data ...
    epochs_trained: int
    test: EvalMetrics
    val_dice_last_epoch: float | None
    seed: int | None = None  # the training seed; None (written before validate --seeds): the budget's seed
    # validate --reuse-from: the finished training copied from another study ({"study": path, "name": its
    # candidate}) instead of training here; None: trained here (and absent from the file, as before)
    reused_from: dict | None = None

    @property
    def name(self) -> str:
        return self.candidate["candidate"]

    @property
    def train_seed(self) -> int:
        return int(self.budget["seed"]) if self.seed is None else self.seed

    @property
    def proxy_dice(self) -> float | None:
        return self.candidate.get("proxy_dice")

    @property
    def config(self) -> dict:
        return self.candidate["config"]

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": dict(self.candidate), "budget": dict(self.budget), "epochs_trained": self.epochs_trained,
                "test": self.test.to_dict(), "val_dice_last_epoch": self.val_dice_last_epoch,
                "seed": self.seed} | _origin(self.reused_from)  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> ValidatedResult:
        f = Fields(data, source)
        cand = f.object("candidate")
        cand.str("candidate", empty=False)
        cand.int("trial", minimum=0)
        cand.object("config")
        cand.str("source", empty=False)
        cand.number("proxy_dice", minimum=0.0, maximum=1.0, optional=True)
        cand.number("proxy_latency_ms", positive=True, optional=True)
        return cls(
            candidate=dict(cand.data),
            budget=read_budget(f.object("budget")),
            epochs_trained=f.int("epochs_trained", minimum=0),
            test=EvalMetrics.read(f.object("test")),
            val_dice_last_epoch=f.number("val_dice_last_epoch", minimum=0.0, maximum=1.0, optional=True),
            seed=f.int("seed", minimum=0, optional=True),
            reused_from=_reused_from(f),
        )


def _origin(reused_from: dict | None) -> dict[str, Any]:
    """The ``reused_from`` key of trained.json, only for a copy (a training made here writes none, as before)."""
    return {} if reused_from is None else {"reused_from": dict(reused_from)}


def _reused_from(f: Fields) -> dict | None:
    """``reused_from`` of a trained.json: absent (trained here) or ``{"study": path, "name": candidate}``."""
    if f.data.get("reused_from") is None:
        return None
    origin = f.object("reused_from")
    origin.str("study", empty=False)
    origin.str("name", empty=False)
    return dict(origin.data)


@dataclass(frozen=True)
class ReappliedResult:
    """``reapplied.json``: a compressed variant's recipe re-applied to its validated parent."""

    variant: dict  # the variant's plan: name, parent, precision, prune/quant specs, proxy numbers
    budget: dict  # parent_budget, prune, quantize, finetune_epochs, finetune
    steps: tuple[str, ...]  # what was done, in order ("prune-l1-0.5 + fine-tune 2 epoch(s)", "ort-int8 ...")
    test: EvalMetrics
    finetune: tuple[dict, ...]  # the fine-tune's epochs: epoch, loss, val_dice
    pruning_history: list | None  # replays the pruning on a fresh build (another machine times that graph)
    seed: int | None = None  # the parent's training seed; None (written before validate --seeds): the budget's

    @property
    def name(self) -> str:
        return self.variant["name"]

    @property
    def train_seed(self) -> int:
        return int(self.budget["parent_budget"]["seed"]) if self.seed is None else self.seed

    @property
    def parent(self) -> str:
        return self.variant["parent"]

    @property
    def proxy_dice(self) -> float | None:
        return self.variant.get("proxy_dice")

    def to_dict(self) -> dict[str, Any]:
        return {"variant": dict(self.variant), "budget": dict(self.budget), "steps": list(self.steps),
                "test": self.test.to_dict(), "finetune": [dict(e) for e in self.finetune],
                "pruning_history": self.pruning_history, "seed": self.seed}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> ReappliedResult:
        f = Fields(data, source)
        variant = f.object("variant")
        for key in ("name", "parent", "precision"):
            variant.str(key, empty=False)
        variant.number("proxy_dice", minimum=0.0, maximum=1.0, optional=True)
        budget = f.object("budget")
        read_budget(budget.object("parent_budget"))
        budget.int("finetune_epochs", minimum=0)
        steps = f.list("steps")
        if not all(isinstance(s, str) for s in steps):
            raise f.error("steps", "must be a list of strings", steps)
        finetune = f.list("finetune")
        if not all(isinstance(e, dict) for e in finetune):
            raise f.error("finetune", "must be a list of epoch objects", finetune)
        return cls(
            variant=dict(variant.data),
            budget=dict(budget.data),
            steps=tuple(steps),
            test=EvalMetrics.read(f.object("test")),
            finetune=tuple(finetune),
            pruning_history=f.list("pruning_history", optional=True),
            seed=f.int("seed", minimum=0, optional=True),
        )


@dataclass(frozen=True)
class ValidatedLatency:
    """``validated/latency.json``: the one latency run over every validated model."""

    kind: str  # MEASURED | ESTIMATED | PREDICTED, for every row
    target: str
    conditions: dict  # input, threads, rounds, device, runtime, environment ... as the run states them
    candidates: dict  # name -> that model's latency row (params, macs, median_ms, fps, how ...)

    def to_dict(self) -> dict[str, Any]:
        rows = {n: r.to_dict() if hasattr(r, "to_dict") else dict(r) for n, r in self.candidates.items()}
        return {**self.conditions, "kind": self.kind, "target": self.target, "candidates": rows}

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> ValidatedLatency:
        f = Fields(data, source)
        rows = f.object("candidates")
        for name in rows.data:
            rows.object(name)
        return cls(
            kind=f.str("kind", choices=KINDS),
            target=f.str("target", empty=False),
            conditions={k: v for k, v in f.data.items() if k not in ("kind", "target", "candidates")},
            candidates={n: dict(r) for n, r in rows.data.items()},
        )


@dataclass(frozen=True)
class SeedRun:
    """One training seed of one validated model: its test metrics and the classes it never learned."""

    seed: int
    test: EvalMetrics
    collapsed: tuple[str, ...] = ()  # classes whose Dice stayed below rtseg_core.COLLAPSE_DICE ("ps", "fh")

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "test": self.test.to_dict(), "collapsed": list(self.collapsed)}

    @classmethod
    def read(cls, f: Fields) -> SeedRun:
        collapsed = f.list("collapsed")
        if not all(isinstance(c, str) for c in collapsed):
            raise f.error("collapsed", "must be a list of class names", collapsed)
        return cls(seed=f.int("seed", minimum=0), test=EvalMetrics.read(f.object("test")), collapsed=tuple(collapsed))


@dataclass(frozen=True)
class SeedStats:
    """One validated model over its training seeds (``summary.json``'s ``models``).

    ``dice``: mean, standard deviation and 95 % t-interval of the test Dice over the seeds with a
    finite Dice (collapsed runs included, and flagged in ``runs``); ``vs_paper``: the per-seed
    difference with ``paper`` over the common seeds and its verdict (None for paper itself or
    without paper). Both come from rtseg_core.seed_summary / paired_difference.
    """

    runs: tuple[SeedRun, ...]
    dice: SeedSummary | None
    vs_paper: PairedDifference | None

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(r.seed for r in self.runs)

    @property
    def collapsed_seeds(self) -> tuple[int, ...]:
        return tuple(r.seed for r in self.runs if r.collapsed)

    def per_seed_dice(self) -> dict[int, float | None]:
        return {r.seed: r.test.dice for r in self.runs}

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [r.to_dict() for r in self.runs],
                "dice": None if self.dice is None else self.dice.to_dict(),
                "vs_paper": None if self.vs_paper is None else self.vs_paper.to_dict()}  # fmt: skip

    @classmethod
    def read(cls, f: Fields) -> SeedStats:
        runs = f.list("runs")
        if not all(isinstance(r, dict) for r in runs):
            raise f.error("runs", "must be a list of per-seed objects", runs)
        dice, vs = f.object("dice", optional=True), f.object("vs_paper", optional=True)
        return cls(
            runs=tuple(SeedRun.read(Fields(r, f.source, f"{f.prefix}runs[{i}].")) for i, r in enumerate(runs)),
            dice=None if dice is None else _record(SeedSummary, dice),
            vs_paper=None if vs is None else _record(PairedDifference, vs),
        )


def _record(cls, f: Fields):
    """A stored SeedSummary / PairedDifference: its numbers checked, its lists back to tuples."""
    for key in ("mean", "std", "low", "high", "confidence"):
        if key in f:
            f.number(key, optional=True)
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in f.data.items()}
    try:
        return cls.from_dict(data)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{f.source}: '{f.prefix.rstrip('.')}': {exc}") from None


@dataclass(frozen=True)
class ValidatedSummary:
    """``validated/summary.json``: what the validation stage found, as a whole."""

    budget: dict
    candidates: tuple[str, ...]  # architectures validated
    variants: tuple[str, ...]  # compressed variants re-applied
    latency_target: str
    proxy_dice: dict  # name -> the Dice the search (or compress, for a variant) gave it, or None
    agreement: RankAgreement | None  # proxy Dice vs full-budget test Dice over the architectures (n >= 3)
    seeds: tuple[int, ...] = ()  # the training seeds (written before validate --seeds: the budget's seed)
    models: dict = field(default_factory=dict)  # name -> SeedStats (empty in files written before --seeds)

    @property
    def train_seeds(self) -> tuple[int, ...]:
        return self.seeds or (int(self.budget["seed"]),)

    def to_dict(self) -> dict[str, Any]:
        return {"budget": dict(self.budget), "candidates": list(self.candidates), "variants": list(self.variants),
                "latency_target": self.latency_target, "proxy_dice": dict(self.proxy_dice),
                "agreement": self.agreement.to_dict() if self.agreement else None, "seeds": list(self.seeds),
                "models": {n: m.to_dict() for n, m in self.models.items()}}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> ValidatedSummary:
        f = Fields(data, source)
        proxy = f.object("proxy_dice")
        for name in proxy.data:
            proxy.number(name, minimum=0.0, maximum=1.0, optional=True)
        agreement = f.object("agreement", optional=True)
        models = f.object("models", optional=True)
        return cls(
            budget=read_budget(f.object("budget")),
            candidates=_names(f, "candidates"),
            variants=_names(f, "variants"),
            latency_target=f.str("latency_target", empty=False),
            proxy_dice=dict(proxy.data),
            agreement=None if agreement is None else _agreement(agreement),
            seeds=tuple(_seed_list(f, "seeds")),
            models={n: SeedStats.read(models.object(n)) for n in models.data} if models is not None else {},
        )


def read_budget(f: Fields) -> dict:
    """A full budget (validate's): the fields a validated record is built from, checked; kept as the dict."""
    for key in ("epochs", "size", "batch_size"):
        f.int(key, minimum=1)
    f.number("lr", positive=True)
    f.int("seed")
    f.str("data", empty=False)
    return dict(f.data)


def _seed_list(f: Fields, key: str) -> list[int]:
    values = f.list(key, optional=True) or []
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise f.error(key, "must be a list of seeds (integers >= 0)", values)
    return values


def _names(f: Fields, key: str) -> tuple[str, ...]:
    values = f.list(key)
    if not all(isinstance(v, str) and v for v in values):
        raise f.error(key, "must be a list of names", values)
    return tuple(values)


def _agreement(f: Fields) -> RankAgreement:
    """A stored :class:`RankAgreement`; its coefficients may be NaN (undefined: a constant scoring)."""
    f.int("n", minimum=3)
    for key in ("kendall_tau", "kendall_low", "kendall_high", "spearman", "spearman_low", "spearman_high"):
        value = f.data.get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not (math.isnan(value) or -1.0 <= value <= 1.0):
            raise f.error(key, "must be a coefficient in [-1, 1] (NaN: undefined)", value)
    from rtseg_core._rank import RankAgreement

    try:
        return RankAgreement.from_dict(dict(f.data))
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{f.source}: 'agreement': {exc}") from None
