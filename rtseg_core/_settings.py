"""``study.json``: a search's settings as one typed record, :class:`StudySettings`.

Both searches build one (the multi-trial search in ``search_spaces.SearchConfig``, the one-shot
search from its supernet) and write it through :meth:`rtseg_core.StudyDir.write_settings`;
validation, compression and the reports read it through :meth:`rtseg_core.StudyDir.read_settings`.
The part that differs by strategy is :attr:`StudySettings.search`:

====================  =====================  ===============================================
strategy              ``search``             what it records
====================  =====================  ===============================================
``multi-trial``       MultiTrialSettings     proxy training of every trial, early stopping,
                                             the epoch budget
``multi-fidelity``    MultiTrialSettings     the same, with rungs (``proxy_training.fidelity``)
``supernet``          SupernetSettings       the supernet (path, epoch, its training and
                                             sandwich settings) and how subnets are evaluated
====================  =====================  ===============================================

The file keeps the layout it always had (``proxy_training``, ``early_stop``, ``supernet``,
``evaluation`` at the top), so older studies read and resumed studies compare equal. Reading is
strict: a wrong type, a shape or a value out of bounds is one :class:`ConfigError` naming the file
and the field. Two fields did not always exist:

- ``budget_epochs`` (written since searches have an epoch budget): absent means ``null``, no
  budget; a record read so says it in :attr:`StudySettings.assumed`, and the reader logs it;
- ``strategy`` (multi-trial studies did not write it): read from the file's shape, which says it
  exactly (a ``supernet`` part; else rungs in ``proxy_training.fidelity``, or none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtseg_core._fields import Fields
from rtseg_core._objectives import DIRECTIONS, OBJECTIVES, Constraints

MULTI_TRIAL, MULTI_FIDELITY, SUPERNET = "multi-trial", "multi-fidelity", "supernet"
STRATEGIES = (MULTI_TRIAL, MULTI_FIDELITY, SUPERNET)


@dataclass(frozen=True)
class ProxyTrainingSettings:
    """How each trial of a multi-trial search was trained and validated (the proxy)."""

    epochs: int  # the top rung in a multi-fidelity study
    steps_per_epoch: int | None  # None: the whole training split every epoch
    batch_size: int
    lr: float
    val_batches: int | None  # None: the whole validation split
    frames: str
    seed: int
    fidelity: tuple[int, ...] = ()  # multi-fidelity rungs in epochs, increasing; () = one budget for every trial
    eta: int | None = None  # multi-fidelity: 1/eta of the trials at a rung go on to the next

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch,
                               "batch_size": self.batch_size, "lr": self.lr, "val_batches": self.val_batches,
                               "frames": self.frames, "seed": self.seed}  # fmt: skip
        # Only multi-fidelity studies carry the rungs (a fixed-budget study's settings stay as they were).
        return out | ({"fidelity": list(self.fidelity), "eta": self.eta} if self.fidelity else {})

    @classmethod
    def read(cls, f: Fields) -> ProxyTrainingSettings:
        fidelity = tuple(_ints(f, "fidelity", minimum=1)) if "fidelity" in f else ()
        if list(fidelity) != sorted(set(fidelity)):
            raise f.error("fidelity", "must be increasing epochs, each once", list(fidelity))
        return cls(
            epochs=f.int("epochs", minimum=1),
            steps_per_epoch=f.int("steps_per_epoch", minimum=1, optional=True),
            batch_size=f.int("batch_size", minimum=1),
            lr=f.number("lr", positive=True),
            val_batches=f.int("val_batches", minimum=1, optional=True),
            frames=f.str("frames", empty=False),
            seed=f.int("seed"),
            fidelity=fidelity,
            eta=f.int("eta", minimum=2) if fidelity else None,
        )


@dataclass(frozen=True)
class MultiTrialSettings:
    """The strategy part of a multi-trial or multi-fidelity study."""

    proxy_training: ProxyTrainingSettings
    early_stop: bool
    early_stop_rule: dict  # search_spaces.EarlyStopRule as a dict (after_epochs, margin, cost_tolerance)
    budget_epochs: int | None = None  # no new trial once the study's trials trained this many epochs

    @property
    def strategy(self) -> str:
        return MULTI_FIDELITY if self.proxy_training.fidelity else MULTI_TRIAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "proxy_training": self.proxy_training.to_dict(),
            "early_stop": {"enabled": self.early_stop, **self.early_stop_rule},
            # Not a fixed setting: like --trials, a resumed run may raise it (None: no budget).
            "budget_epochs": self.budget_epochs,
        }


@dataclass(frozen=True)
class SupernetSettings:
    """The strategy part of a one-shot study: the supernet and how each subnet was evaluated."""

    path: str  # the supernet.pt the subnets inherit their weights from
    epoch: int  # the epochs it had been trained when the search read it
    container: str  # the widest member, in one line
    train: dict  # its segmentation.TrainConfig as a dict
    sandwich: dict  # its sandwich-rule settings (search_spaces.SandwichConfig) as a dict
    recipe: str  # how subnets are evaluated, e.g. "supernet-inherited"
    bn_batches: int  # BatchNorm recalibration batches per subnet
    val_batches: int | None  # None: the whole validation split
    split: str = "val"

    strategy = SUPERNET

    def to_dict(self) -> dict[str, Any]:
        return {
            "supernet": {"path": self.path, "epoch": self.epoch, "container": self.container,
                         "train": dict(self.train), "sandwich": dict(self.sandwich)},
            "evaluation": {"recipe": self.recipe, "bn_batches": self.bn_batches, "val_batches": self.val_batches,
                           "split": self.split},
        }  # fmt: skip

    @property
    def steps_per_epoch(self) -> int | None:
        return self.train.get("steps_per_epoch")

    @property
    def random_subnets(self) -> int | None:
        return self.sandwich.get("random_subnets")


@dataclass(frozen=True)
class StudySettings:
    """What a search ran with: the contents of ``study.json`` (see the module docstring)."""

    objectives: tuple[tuple[str, str], ...]  # ((record field, direction), ...), e.g. (("dice", "maximize"), ...)
    constraints: Constraints
    target: str  # where latency was taken: "local", "ssh://...", "jetson-nano-estimate", "predict:TABLE"
    precision: str
    threads: int  # CPU threads of the latency measurements
    data: str  # the --data of the search, e.g. "synthetic:400"
    size: int  # training input side
    latency_size: int | None  # input side timed (None: the training size)
    sampler: str
    population_size: int
    seed: int
    space: dict  # search_spaces.SearchSpace as a dict
    trials_requested: int
    storage: str  # the storage URL without its password
    study_name: str
    reference: str | None  # the preset enqueued as trial 0 (None: not in the space)
    search: MultiTrialSettings | SupernetSettings
    # Defaults taken because an older file lacks a field (not written; see the module docstring).
    assumed: tuple[str, ...] = field(default=(), compare=False)

    @property
    def strategy(self) -> str:
        return self.search.strategy

    @property
    def dataset(self) -> str:
        """The dataset's kind, e.g. ``synthetic`` for ``synthetic:400``."""
        return self.data.split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``study.json`` (and of the settings stored with the Optuna study)."""
        names = {o.field: o.name for o in OBJECTIVES.values()}
        return {
            "strategy": self.strategy,
            "objectives": [[f, d] for f, d in self.objectives],
            "objective_names": [names[f] for f, _ in self.objectives],
            "constraints": self.constraints.to_dict(),
            "target": self.target,
            "precision": self.precision,
            "threads": self.threads,
            "data": self.data,
            "size": self.size,
            "latency_size": self.latency_size,
            "sampler": self.sampler,
            "population_size": self.population_size,
            "seed": self.seed,
            **self.search.to_dict(),
            "space": dict(self.space),
            "trials_requested": self.trials_requested,
            "storage": self.storage,
            "study_name": self.study_name,
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "study.json") -> StudySettings:
        """The record of ``data`` (parsed ``study.json``); errors name ``source`` and the field."""
        f = Fields(data, source)
        assumed: list[str] = []
        strategy = f.str("strategy", choices=STRATEGIES) if "strategy" in f else None
        search = _strategy_part(f, strategy, assumed)
        return cls(
            objectives=read_objectives(f),
            constraints=Constraints.from_dict(f.dict("constraints"), source=source),
            target=f.str("target", empty=False),
            precision=f.str("precision", empty=False),
            threads=f.int("threads", minimum=1),
            data=f.str("data", empty=False),
            size=f.int("size", minimum=1),
            latency_size=f.int("latency_size", minimum=1, optional=True),
            sampler=f.str("sampler", empty=False),
            population_size=f.int("population_size", minimum=1),
            seed=f.int("seed"),
            space=f.dict("space"),
            trials_requested=f.int("trials_requested", minimum=0),
            storage=f.str("storage"),
            study_name=f.str("study_name", empty=False),
            reference=f.str("reference", empty=False, optional=True),
            search=search,
            assumed=tuple(assumed),
        )


def read_objectives(f: Fields) -> tuple[tuple[str, str], ...]:
    """``objectives``: distinct ``[record field, direction]`` pairs of known objectives.

    An unknown objective is an error: a search could not have written it, and a stage that
    skipped it would judge the study on fewer objectives than it was run with.
    """
    raw = f.list("objectives")
    by_field = {o.field: o for o in OBJECTIVES.values()}
    out: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        key = f"objectives[{i}]"
        if not isinstance(item, list) or len(item) != 2:
            raise f.error(key, "must be a [field, direction] pair", item)
        name, direction = item
        if name not in by_field:
            raise f.error(f"{key}", f"names an unknown objective; use one of {', '.join(by_field)}", name)
        if direction not in DIRECTIONS:
            raise f.error(f"{key}", "direction must be 'minimize' or 'maximize'", direction)
        if any(name == n for n, _ in out):
            raise f.error("objectives", f"lists {name!r} twice", raw)
        out.append((name, direction))
    if not out:
        raise f.error("objectives", "must list at least one objective", raw)
    return tuple(out)


def _strategy_part(f: Fields, strategy: str | None, assumed: list[str]) -> MultiTrialSettings | SupernetSettings:
    if strategy == SUPERNET or (strategy is None and "supernet" in f):
        sn, ev = f.object("supernet"), f.object("evaluation")
        train, sandwich = sn.object("train"), sn.object("sandwich")
        train.int("steps_per_epoch", minimum=1, optional=True)  # checked here: reports count steps with them
        sandwich.int("random_subnets", minimum=0, optional=True)
        return SupernetSettings(
            path=sn.str("path", empty=False), epoch=sn.int("epoch", minimum=0), container=sn.str("container"),
            train=dict(train.data), sandwich=dict(sandwich.data), recipe=ev.str("recipe", empty=False),
            bn_batches=ev.int("bn_batches", minimum=1), val_batches=ev.int("val_batches", minimum=1, optional=True),
            split=ev.str("split", empty=False),
        )  # fmt: skip
    proxy = ProxyTrainingSettings.read(f.object("proxy_training"))
    if strategy is not None and strategy != (MULTI_FIDELITY if proxy.fidelity else MULTI_TRIAL):
        rungs = "rungs" if proxy.fidelity else "no rungs"
        raise f.error("strategy", f"does not match 'proxy_training' ({rungs} in 'proxy_training.fidelity')", strategy)
    stop = f.object("early_stop")
    if "budget_epochs" in f:
        budget = f.int("budget_epochs", minimum=1, optional=True)
    else:
        budget = None
        assumed.append("budget_epochs: null (no epoch budget; the file was written before searches had one)")
    rule = {k: v for k, v in stop.data.items() if k != "enabled"}
    return MultiTrialSettings(proxy, early_stop=stop.bool("enabled"), early_stop_rule=rule, budget_epochs=budget)


def _ints(f: Fields, key: str, *, minimum: int) -> list[int]:
    values = f.list(key)
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise f.error(f"{key}[{i}]", f"must be an integer >= {minimum}", value)
    return values
