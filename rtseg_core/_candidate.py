"""The one row per model that searches and compression write and reports read.

A study directory holds one ``candidate.json`` per finished trial (``trials/<n>/``) and per
compressed variant (``compressed/<name>/``); reports glob them, so they need no Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtseg_core._records import Record


@dataclass(frozen=True)
class CandidateRecord(Record):
    name: str  # "paper", "trial-7", "trial-7.p50", "trial-7.int8"
    source: str  # "reference" (the paper preset), "trial", "compressed"
    dataset: str  # "synthetic", "jnu-ifm", "psfhs": accuracy on synthetic data is labelled so
    split: str  # the split the accuracy was measured on ("val" during search, "test" after)
    dice: float | None  # mean foreground Dice (PS, FH) in [0, 1]
    dice_ps: float | None
    dice_fh: float | None
    delta_aop_deg: float | None  # mean |dAoP| in degrees over images where both AoPs exist
    params: int
    macs: int | None  # multiply-accumulates of one eval forward pass (fvcore)
    latency_ms: float | None  # median, batch 1
    fps: float | None
    latency_kind: str  # "measured" | "estimated"
    target: str  # "local", "ssh://...", "jetson-nano-estimate"
    device: str
    backend: str  # "onnxruntime", "pytorch", "tensorrt", "roofline"
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
