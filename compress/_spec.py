"""What a pruning run is asked to do (:class:`PruneSpec`) and what it did (:class:`PruneResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NoReturn

from rtseg_core import CompressionOptionError, Record

LATENCY_BACKENDS = ("onnxruntime", "pytorch")


@dataclass(frozen=True)
class PruneSpec(Record):
    """One structured-pruning recipe. Exactly one target: ``ratio``, ``target_macs`` or ``target_latency_ms``.

    - ``ratio``: fraction of channels removed from every prunable group (``global_pruning=False``,
      "uniform") or over the whole network ranked together (``global_pruning=True``), reached in
      ``steps`` equal increments.
    - ``target_macs``: prune in increments of ``step_ratio`` until the MACs (fvcore, one forward at
      ``size`` x ``size``) are at most this fraction of the unpruned model's. With ``steps`` N > 1
      the way there is cut into N equal MACs-fraction steps (to 1 - k (1 - target) / N of the
      MACs, k = 1..N), and the fine-tune between steps runs when each intermediate target is met
      (gradual pruning).
    - ``target_latency_ms``: the same, until the median latency measured on this machine with
      ``latency_backend`` (ONNX Runtime on the exported graph, PyTorch eager, or ``predict:TABLE``: the
      kernel-level predictor on a latency table, for a device target without timing each step) and
      ``latency_threads`` threads is at most this many milliseconds.

    The increments stop at ``max_ratio``; a target still unmet there is an error. ``round_to``
    keeps every pruned width a multiple of it (8 for GPUs/TensorRT). ``shift_aware`` spreads the
    removed channels of TMP widths over the shift groups so no surviving channel changes its
    shift. ``ignored`` names modules whose output channels are kept (the head and the aux heads
    always are). ``finetune_epochs_per_step`` fine-tunes between the ``steps`` (iterative
    prune/fine-tune; needs ``steps`` > 1); the final fine-tune is configured by the caller
    (``compress.prune_checkpoint`` splits one total budget over the steps).
    """

    ratio: float | None = None
    target_macs: float | None = None
    target_latency_ms: float | None = None
    importance: str = "l1"
    global_pruning: bool = False
    round_to: int | None = None
    steps: int = 1
    step_ratio: float = 0.05
    max_ratio: float = 0.9
    shift_aware: bool = True
    ignored: tuple[str, ...] = ()
    finetune_epochs_per_step: int = 0
    calibration_batches: int = 4  # labelled training batches for data-driven criteria (Taylor)
    size: int | None = None  # input size for MACs and latency (None: the checkpoint's training size, else 256)
    latency_backend: str = "onnxruntime"
    latency_threads: int = 1
    latency_runs: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.ignored, list):
            object.__setattr__(self, "ignored", tuple(self.ignored))
        self._validate()

    def _validate(self) -> None:
        def fail(name: str, rule: str) -> NoReturn:
            raise CompressionOptionError(f"PruneSpec.{name}: {rule}, got {getattr(self, name)!r}")

        targets = [n for n in ("ratio", "target_macs", "target_latency_ms") if getattr(self, n) is not None]
        if len(targets) != 1:
            raise CompressionOptionError(
                f"PruneSpec: give exactly one target (ratio, target_macs or target_latency_ms), got {targets or 'none'}"
            )
        for name in ("ratio", "target_macs"):
            value = getattr(self, name)
            if value is not None and not (_is_real(value) and 0.0 < value < 1.0):
                fail(name, "must be a fraction strictly between 0 and 1")
        if self.target_latency_ms is not None and not (_is_real(self.target_latency_ms) and self.target_latency_ms > 0):
            fail("target_latency_ms", "must be a positive number of milliseconds")
        if not (_is_real(self.max_ratio) and 0.0 < self.max_ratio < 1.0):
            fail("max_ratio", "must be a fraction strictly between 0 and 1")
        if self.ratio is not None and self.ratio > self.max_ratio:
            fail("ratio", f"exceeds max_ratio {self.max_ratio}")
        if not (_is_real(self.step_ratio) and 0.0 < self.step_ratio <= self.max_ratio):
            fail("step_ratio", "must be in (0, max_ratio]")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 32):
            fail("size", "must be null or an integer >= 32 (five stride-2 stages)")
        for name, low in (
            ("steps", 1),
            ("finetune_epochs_per_step", 0),
            ("calibration_batches", 1),
            ("latency_threads", 1),
            ("latency_runs", 1),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                fail(name, f"must be an integer >= {low}")
        if self.steps > 1 and self.target_latency_ms is not None:
            fail("steps", "gradual pruning (steps > 1) works towards --ratio or --target-macs, not a latency target")
        if self.finetune_epochs_per_step and self.steps == 1:
            fail("finetune_epochs_per_step", "fine-tuning between steps needs steps > 1")
        if self.round_to is not None and (not isinstance(self.round_to, int) or self.round_to < 1):
            fail("round_to", "must be null or an integer >= 1 (8 suits GPUs/TensorRT)")
        if self.latency_backend not in LATENCY_BACKENDS and not str(self.latency_backend).startswith("predict:"):
            fail("latency_backend", f"must be one of {', '.join(LATENCY_BACKENDS)}")
        from compress._importance import get_importance

        get_importance(self.importance)

    @property
    def increments(self) -> int:
        """Number of pruning increments the schedule has room for."""
        if self.ratio is not None:
            return self.steps
        return max(1, math.ceil(self.max_ratio / self.step_ratio - 1e-9))

    @property
    def milestones(self) -> tuple[float, ...]:
        """The MACs fractions a ``target_macs`` schedule passes: N equal steps down to the target."""
        if self.target_macs is None:
            return ()
        return tuple(1.0 - (1.0 - self.target_macs) * k / self.steps for k in range(1, self.steps + 1))

    @property
    def final_ratio(self) -> float:
        return self.ratio if self.ratio is not None else self.max_ratio

    def label(self) -> str:
        """A short recipe name, e.g. ``prune-l1-r0.3``, ``prune-taylor-macs0.5-x8``, ``prune-l1-macs0.5-s4``."""
        if self.ratio is not None:
            target = f"r{self.ratio:g}"
        elif self.target_macs is not None:
            target = f"macs{self.target_macs:g}"
        else:
            target = f"lat{self.target_latency_ms:g}ms"
        parts = ["prune", self.importance, target]
        if self.steps > 1:
            parts.append(f"s{self.steps}")
        if self.global_pruning:
            parts.append("global")
        if self.round_to:
            parts.append(f"x{self.round_to}")
        return "-".join(parts)


@dataclass(frozen=True)
class PruneResult(Record):
    """What a pruning run did. MACs are fvcore multiply-accumulates at ``spec.size``; latency in ms (median)."""

    spec: dict[str, Any]
    history: list[Any]  # one Torch-Pruning history per increment: [[module name, is_out_channel, [indices]], ...]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    ratio: float  # channel ratio of the last increment applied
    increments: int
    steps: list[dict[str, Any]] = field(default_factory=list)  # per increment: ratio, params, macs, latency
    widths: dict[str, int] = field(default_factory=dict)  # output channels of every conv/linear after pruning
    latency_before_ms: float | None = None
    latency_after_ms: float | None = None
    shift_fallbacks: int = 0  # TMP groups pruned without the shift-aware spread (no feasible width)
    notes: str = ""


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
