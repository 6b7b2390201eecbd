"""Validating a search's answer at a full budget (``rtseg-nas validate --study DIR``).

A search ranks architectures by a *proxy* (a few short epochs, validation split). Validation
retrains the feasible Pareto front (or its ``top_k`` by proxy Dice), the reference ``paper`` and
the parents of the study's compressed variants from scratch with one recipe for all
(:class:`ValidateConfig`: defaults = ``train``'s), evaluates each on the **test** split,
re-applies each compressed variant's recipe to its validated parent
(:mod:`validate._variants`), and takes every validated model's latency on the
study's target in one run (:mod:`validate._graphs`: one alternating ONNX Runtime
run here, alternating rounds on an SSH device, or the estimate / prediction per candidate), so
their latencies are comparable even on a busy machine.

Files, per candidate ``STUDY_DIR/validated/<name>/``:

- ``checkpoint.pt``/``metrics.json``: the training, written atomically after every epoch; a
  killed run continues from the last finished epoch (``train(resume=True)``);
- ``trained.json`` (:class:`rtseg_core.ValidatedResult`): the test-split evaluation and the proxy
  numbers it is compared with; a candidate with this file is finished and skipped by later runs;
- ``reapplied.json`` (:class:`rtseg_core.ReappliedResult`; compressed variants, with their model
  files): see :mod:`validate._variants`;
- ``candidate.json``: the validated :class:`CandidateRecord` (``source="validated"``,
  ``parent`` = the trial's name, ``split="test"``, ``recipe`` = the full budget), written once
  every candidate is trained and the latency run is done.

and for the stage, ``validated/latency.json`` (:class:`rtseg_core.ValidatedLatency`: the one
latency run) and ``validated/summary.json`` (:class:`rtseg_core.ValidatedSummary`: the budget,
the proxy Dice of every validated model and the rank agreement of proxy and full-budget Dice,
which the report shows as it is). All paths and readers belong to :class:`rtseg_core.StudyDir`.

Several workers (machines) validate one study together through its storage; see
:mod:`validate._queue`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from profiling import TimingOptions
from rtseg_core import DEPLOYMENT_SIZE, ConfigError, SettingsMismatchError

if TYPE_CHECKING:
    from profiling import SSHOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidateConfig:
    """One validation run. Training defaults are ``rtseg-nas train``'s (30 epochs, 256 px, lr 1e-3,
    batch 8, the whole training split). ``top_k`` (None: the whole feasible front) picks the
    front members with the highest proxy Dice; ``paper`` is always validated. ``latency_size``
    is the deployment input side timed; ``latency_target`` where (None: the study's target;
    ``local`` allowed as an override); ``threads`` ONNX Runtime's (None: the search's);
    ``timing`` how the candidates are timed against each other (``profiling.TimingOptions``: rounds,
    warm-up and runs here, rounds and runs on an SSH device; its ``threads`` and ``seed`` are replaced
    by this config's). ``finetune_epochs``:
    the fine-tune after re-applying a compressed variant's pruning (None: the variant's own).
    ``storage``/``study_name`` as the search's (None: ``STUDY_DIR/study.db`` and the name in
    ``study.json``); the claims live in the study ``<study_name>-validate`` of that storage.
    """

    study_dir: str | Path
    top_k: int | None = None
    epochs: int = 30
    size: int = 256
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0  # the data seed (split, synthetic images, augmentation) and the first training seed
    seeds: tuple[int, ...] = ()  # the training seeds (validate --seeds); (): (seed,), one run as before
    data: str | None = None  # None: the search's --data
    device: str = "auto"
    latency_size: int = DEPLOYMENT_SIZE
    latency_target: str | None = None  # None: the study's --target (study.json)
    threads: int | None = None  # None: the search's --threads
    timing: TimingOptions = TimingOptions()  # profiling owns these defaults
    ssh_options: SSHOptions | None = None  # for an ssh:// latency target
    remote_backend: str = "auto"
    finetune_epochs: int | None = None  # compressed variants' fine-tune; None: each variant's own
    storage: str | None = None
    study_name: str | None = None
    heartbeat_interval: int = 10
    grace_period: int | None = None
    poll_interval: float = 2.0
    progress: bool = False
    # validate --reuse-from: other studies whose finished trainings of the same architecture and recipe are
    # copied instead of trained again (validate._reuse); checked to be studies other than this one before any work
    reuse_from: tuple[str | Path, ...] = ()

    def __post_init__(self) -> None:
        seeds = tuple(self.seeds)
        bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
        if bad or len(set(seeds)) != len(seeds):
            raise ConfigError(f"--seeds: must be distinct integers >= 0, got {list(seeds)!r}")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "reuse_from", tuple(self.reuse_from))
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ConfigError(f"--top-k: must be an integer >= 1, got {self.top_k!r}")
        names = ("epochs", "size", "batch_size", "latency_size", "heartbeat_interval")
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= 1, got {value!r}")
        if self.finetune_epochs is not None and (not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0):
            raise ConfigError(f"--finetune-epochs: must be an integer >= 0, got {self.finetune_epochs!r}")
        if self.latency_target is not None:
            from profiling import check_target

            try:
                check_target(self.latency_target)
            except ConfigError as exc:  # the profiling message names --target; this option is --latency-target
                raise ConfigError(str(exc).replace("--target", "--latency-target", 1)) from None
        if self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"grace_period ({self.grace_period} s) must exceed heartbeat_interval ({self.heartbeat_interval} s)"
            )

    @property
    def train_seeds(self) -> tuple[int, ...]:
        """The training seeds, first one first: ``--seeds``, else ``(seed,)``."""
        return self.seeds or (self.seed,)

    def budget(self, data: str) -> dict[str, Any]:
        """The recipe every candidate is trained with (stored with the claims; a resumed run must match).

        The training seeds are not part of it: each claim carries its own seed, so a later run with
        more seeds reuses the finished ones; ``seed`` here is the data seed (split and images), the
        same for every training seed so that seed s of two candidates is a paired comparison.

        A ``finetune_epochs`` override is part of it (a run with another one is refused); the
        default (each variant's own epochs) adds nothing, so studies validated before stay valid.
        """
        extra = {} if self.finetune_epochs is None else {"finetune_epochs": self.finetune_epochs}
        return extra | {
            "epochs": self.epochs,
            "size": self.size,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            "data": data,
            "steps_per_epoch": None,
            "split": "test",
        }


def parse_seeds(text: str, first: int) -> tuple[int, ...]:
    """``--seeds``: ``K`` (an integer: the K seeds ``first .. first+K-1``) or a list ``0,1,2``."""
    text = text.strip()
    try:
        if "," not in text:
            count = int(text)
            if count < 1:
                raise ValueError
            return tuple(range(first, first + count))
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--seeds: expected a count K >= 1 or a list of seeds like 0,1,2, got {text!r}") from None


def seed_slot(budget: dict[str, Any], seed: int) -> int | None:
    """The folder key of training seed ``seed`` (StudyDir.validated): None for the budget's seed, as before."""
    return None if int(seed) == int(budget["seed"]) else int(seed)


def seed_label(name: str, budget: dict[str, Any], seed: int) -> str:
    """``trial-3`` for the budget's seed, ``trial-3 (seed 1)`` for another (logs and the trained-now lists)."""
    return name if seed_slot(budget, seed) is None else f"{name} (seed {seed})"


def budget_differences(before: dict[str, Any], now: dict[str, Any]) -> str:
    """``epochs: 12 before, 30 in this run; size: ...``: only what differs, for a refusal."""
    keys = [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    return "; ".join(f"{k}: {before.get(k)!r} before, {now.get(k)!r} in this run" for k in keys) or "another budget"


def check_finished(found: Any, budget: dict[str, Any], seed: int, *, path: Path, work: Path, fix: str) -> None:
    """Refuse a finished result (``trained.json``/``reapplied.json``) made with another budget or training seed.

    A resumed run reuses a finished result only when both match; anything else is a
    :class:`SettingsMismatchError` naming what differs, never a silent mix of recipes.
    """
    if found.budget != budget or found.train_seed != seed:
        before, now = found.budget | {"seed": found.train_seed}, budget | {"seed": seed}
        raise SettingsMismatchError(
            f"{path}: made with another budget ({budget_differences(before, now)}); {fix}, or move {work} away"
        )


def describe_budget(budget: dict[str, Any]) -> str:
    """``30 epochs x 256 px, batch 8, lr 0.001, data seed 0, on synthetic:400, test split`` (a log line,
    not a Python dict)."""
    b = budget
    parts = [f"{b['epochs']} epoch(s) x {b['size']} px", f"batch {b['batch_size']}", f"lr {b['lr']:g}"]
    parts += [f"data seed {b['seed']}", f"on {b['data']}", f"{b.get('split', 'test')} split"]
    if b.get("steps_per_epoch"):
        parts.append(f"{b['steps_per_epoch']} steps per epoch")
    if b.get("finetune_epochs") is not None:
        parts.append(f"{b['finetune_epochs']} fine-tune epoch(s) for re-applied variants")
    return ", ".join(parts)


@dataclass(frozen=True)
class Candidate:
    """One architecture to validate, as the search recorded it (proxy numbers from the storage)."""

    name: str  # the trial's name: "paper", "trial-7"
    trial: int
    config: dict
    source: str  # "reference" | "trial"
    proxy_dice: float | None
    proxy_latency_ms: float | None
    proxy_values: dict = field(default_factory=dict)  # objective field -> value in the search
    # The deployment input the search drew for it (search --input-sizes) when smaller than the latency size:
    # validate trains it at the budget's size scaled by input_size / latency size and times it at input_size.
    input_size: int | None = None
    searched_latency_size: int | None = None  # the search's latency size, which input_size is a fraction of

    def to_attrs(self) -> dict[str, Any]:
        out = {
            "candidate": self.name,
            "trial": self.trial,
            "config": self.config,
            "source": self.source,
            "proxy_dice": self.proxy_dice,
            "proxy_latency_ms": self.proxy_latency_ms,
            "proxy_values": self.proxy_values,
        }
        if self.input_size is not None:  # only then: earlier claims and results stay as written
            out["input_size"] = self.input_size
            out["searched_latency_size"] = self.searched_latency_size
        return out

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Candidate:
        return cls(
            name=str(attrs["candidate"]),
            trial=int(attrs["trial"]),
            config=dict(attrs["config"]),
            source=str(attrs["source"]),
            proxy_dice=attrs.get("proxy_dice"),
            proxy_latency_ms=attrs.get("proxy_latency_ms"),
            proxy_values=dict(attrs.get("proxy_values") or {}),
            input_size=attrs.get("input_size"),
            searched_latency_size=attrs.get("searched_latency_size"),
        )
