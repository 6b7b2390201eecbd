"""The one row per model that searches and compression write and reports read.

A study directory holds one ``candidate.json`` per finished trial (``trials/<n>/``) and per
compressed variant (``compressed/<name>/``); reports glob them, so they need no Optuna.
:func:`candidate_from_dict` is the one reader: it checks every field's type and bounds, because a
record with ``dice: "abc"`` or a NaN latency would otherwise drop silently off the front, and one
with ``latency_ms: -1`` land on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rtseg_core._errors import ConfigError
from rtseg_core._fields import INT64_MAX, Fields
from rtseg_core._records import Record

# What a latency number is: timed on the target, a roofline estimate, or a kernel-table prediction.
# An estimate or a prediction is never shown as a measurement (profiling re-exports these).
MEASURED, ESTIMATED, PREDICTED = "measured", "estimated", "predicted"
KINDS = (MEASURED, ESTIMATED, PREDICTED)
PREDICT_PREFIX = "predict:"  # the target predict:TABLE = the kernel-level predictor built on a target

MAX_AOP_DEG = 180.0  # an angle of progression difference cannot exceed half a turn


@dataclass(frozen=True)
class CandidateRecord(Record):
    name: str  # "paper", "trial-7", "trial-7.p50", "trial-7.int8"
    source: str  # "reference" (the paper preset), "trial", "compressed", "validated"
    dataset: str  # "synthetic", "jnu-ifm", "psfhs": accuracy on synthetic data is labelled so
    split: str  # the split the accuracy was measured on ("val" during search, "test" after)
    dice: float | None  # mean foreground Dice (PS, FH) in [0, 1]
    dice_ps: float | None
    dice_fh: float | None
    delta_aop_deg: float | None  # mean |dAoP| in degrees over images where both AoPs exist
    params: int
    macs: int | None  # multiply-accumulates of one eval forward pass (fvcore)
    latency_ms: float | None  # median, batch 1; > 0 when known
    fps: float | None
    latency_kind: str  # MEASURED (timed on the target) | ESTIMATED (roofline) | PREDICTED (kernel table)
    target: str  # "local", "ssh://user@host:port", "jetson-nano-estimate", "predict:TABLE"
    device: str
    backend: str  # "onnxruntime", "pytorch", "tensorrt", "roofline", "kernel-predictor"
    precision: str  # "fp32", "fp16", "int8"
    threads: int | None
    height: int
    width: int
    feasible: bool = True  # meets every constraint of the study
    parent: str | None = None  # for compressed variants: the candidate they came from
    trial: int | None = None
    recipe: str = ""  # compression recipe, e.g. "prune-l1-0.5+ft2", "ort-int8-qdq-minmax"
    config: dict = field(default_factory=dict)  # the RTSegConfig as a dict
    notes: str = ""
    # Validated over several training seeds (validate --seeds): ``dice`` is then the mean over ``seeds``,
    # dice_std / dice_low / dice_high its sample standard deviation and 95 % t-interval (None for one seed),
    # collapsed_seeds the seeds whose run never learned a class (included in the mean, flagged).
    seeds: list = field(default_factory=list)
    dice_std: float | None = None
    dice_low: float | None = None
    dice_high: float | None = None
    collapsed_seeds: list = field(default_factory=list)


_FIELDS = tuple(f.name for f in dataclasses.fields(CandidateRecord))
_REQUIRED = tuple(f.name for f in dataclasses.fields(CandidateRecord) if f.default is dataclasses.MISSING
                  and f.default_factory is dataclasses.MISSING)  # fmt: skip


def candidate_from_dict(data: Any, source: str) -> CandidateRecord:
    """A :class:`CandidateRecord` from ``CandidateRecord.to_dict()`` output, every field checked.

    ``source`` names the file in the one :class:`ConfigError` a bad record gives (unknown or
    missing field, wrong type, out of bounds: Dice in [0, 1], latency and FPS > 0, counts
    non-negative integers that fit int64, ``latency_kind`` one of :data:`KINDS`).
    """
    f = Fields(data, source)
    schema = data.get("schema", CandidateRecord.SCHEMA)
    if schema != CandidateRecord.SCHEMA:
        raise ConfigError(f"{source}: CandidateRecord schema {schema!r} cannot be read (this version reads 1)")
    f.unknown((*_FIELDS, "schema"))
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(
            f"{source}: not a complete CandidateRecord (missing field(s) {missing}); rewrite it with "
            "CandidateRecord.to_dict()"
        )
    dice = {k: f.number(k, minimum=0.0, maximum=1.0, optional=True) for k in ("dice", "dice_ps", "dice_fh")}
    return CandidateRecord(
        name=f.str("name", empty=False),
        source=f.str("source", empty=False),
        dataset=f.str("dataset"),
        split=f.str("split"),
        **dice,
        delta_aop_deg=f.number("delta_aop_deg", minimum=0.0, maximum=MAX_AOP_DEG, optional=True),
        params=f.int("params", minimum=0, maximum=INT64_MAX),
        macs=f.int("macs", minimum=0, maximum=INT64_MAX, optional=True),
        latency_ms=f.number("latency_ms", positive=True, optional=True),
        fps=f.number("fps", positive=True, optional=True),
        latency_kind=f.str("latency_kind", choices=KINDS),
        target=f.str("target"),
        device=f.str("device"),
        backend=f.str("backend"),
        precision=f.str("precision"),
        threads=f.int("threads", minimum=1, optional=True),
        height=f.int("height", minimum=1),
        width=f.int("width", minimum=1),
        feasible=f.bool("feasible") if "feasible" in f else True,
        parent=f.str("parent", optional=True),
        trial=f.int("trial", minimum=0, optional=True),
        recipe=f.str("recipe") if "recipe" in f else "",
        config=f.dict("config") if "config" in f else {},
        notes=f.str("notes") if "notes" in f else "",
        seeds=_seeds(f, "seeds"),
        dice_std=f.number("dice_std", minimum=0.0, optional=True),
        dice_low=f.number("dice_low", optional=True),
        dice_high=f.number("dice_high", optional=True),
        collapsed_seeds=_seeds(f, "collapsed_seeds"),
    )


def _seeds(f: Fields, key: str) -> list[int]:
    values = f.list(key, optional=True) or []
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise f.error(key, "must be a list of seeds (integers >= 0)", values)
    return list(values)
