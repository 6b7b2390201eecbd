"""Latency of family members from a kernel latency table, without exporting them: the one-shot search's latency half.

:class:`SubnetLatency` takes a member's kernels from its config (:class:`SegmentKernels`: each
distinct segment exported once), looks them up in the table (:class:`LatencyPredictor`: the
kernel sum and the table's overhead fit) and gives milliseconds, MACs (fvcore, counted once per
segment) and parameters (exact, from the config). Kernels the table lacks are timed on the
table's own target when ``time_missing`` is on (the timer of :func:`build_table`: ONNX Runtime in
this process for a local table, the device profiler over SSH in batches for a device table; the
timer's key must equal the table's), added to the table and saved after every batch, so a stopped
run keeps what it timed and the next one resumes; otherwise they come from the table's regressor.
The segments' decompositions are kept beside the table (``TABLE.segments.jsonl``,
:mod:`profiling._segment_cache`), so only the first search against a table pays for them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models import RTSegConfig
from profiling._kernels import Decomposition
from profiling._predictor import LatencyPredictor, Prediction
from profiling._records import LatencyRecord
from profiling._segment_cache import segment_cache_path
from profiling._segment_kernels import SegmentKernels
from rtseg_core import ConfigError

if TYPE_CHECKING:
    from profiling._ssh import SSHOptions
    from profiling._table_build import LocalTimer, SSHTimer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubnetCost:
    """One member's predicted latency (ms) and its counted costs."""

    latency_ms: float
    macs: int  # fvcore convention
    params: int
    kernels: int
    from_table: int
    prediction: Prediction
    input_shape: tuple[int, ...]


class SubnetLatency:
    """Members' latency at ``size`` from the table at ``table_path`` (module docstring)."""

    def __init__(
        self,
        table_path: str | Path,
        *,
        size: int,
        time_missing: bool = True,
        timer: LocalTimer | SSHTimer | None = None,
        ssh_options: SSHOptions | None = None,
        batch_size: int = 64,
        rounds: int = 5,
        runs: int = 5,
        segment_cache: bool = True,
    ) -> None:
        self.predictor = LatencyPredictor.load(table_path)
        self.table = self.predictor.table
        self.size = size
        # the segments' kernels are kept beside the table, so the next process (another search seed) starts warm
        cache = segment_cache_path(table_path) if segment_cache else None
        self.segments = SegmentKernels(opset=self.table.key.opset, cache=cache)
        self.time_missing = time_missing
        self._timer = timer
        self._ssh_options = ssh_options
        self.batch_size, self.rounds, self.runs = batch_size, rounds, runs
        self.timed = 0  # kernels this object timed and added to the table
        self.timing_cpu_s = 0.0  # CPU seconds of this process spent timing them
        if batch_size < 1:
            raise ConfigError(f"batch size {batch_size}: need at least 1 kernel per batch")

    def cost(self, cfg: RTSegConfig, *, name: str = "subnet") -> SubnetCost:
        member = self.segments.member(cfg, self.size)
        missing = [k for k in dict.fromkeys(k.key for k in member.kernels) if k not in self.table.kernels]
        if missing and self.time_missing:
            cpu0 = time.process_time()
            try:
                self._time(cfg, missing)
            finally:
                self.timing_cpu_s += time.process_time() - cpu0
        d = Decomposition(name, self.table.key.opset, member.input_shape, member.kernels)
        pred = self.predictor.predict_decomposition(d, model_name=name, warn_unseen=not self.time_missing)
        return SubnetCost(
            latency_ms=pred.predicted_ms,
            macs=member.macs,
            params=member.params,
            kernels=pred.kernels,
            from_table=pred.from_table,
            prediction=pred,
            input_shape=member.input_shape,
        )

    def record(self, cost: SubnetCost) -> LatencyRecord:
        """The PREDICTED latency record of a :meth:`cost` (what a search candidate stores)."""
        return self.predictor.to_record(cost.prediction, cost.input_shape)

    # -- kernels the table lacks ---------------------------------------------------------------
    def timer(self) -> LocalTimer | SSHTimer:
        if self._timer is None:
            from profiling._table_build import make_timer

            key = self.table.key
            timer = make_timer(
                key.target,
                threads=key.threads,
                ssh_options=self._ssh_options,
                remote_backend="trtexec" if key.runtime.startswith("tensorrt") else "onnxruntime",
                rounds=self.rounds,
                runs=self.runs,
            )
            here = timer.key(precision=key.precision, opset=key.opset, batch=key.batch)
            diff = key.differences(here)
            if diff:
                raise ConfigError(
                    f"{self.table.path}: kernels missing from this table cannot be timed here, on another target "
                    f"than the table's: {'; '.join(diff)} (time them where the table was built, or predict them with "
                    "the table's regressor)"
                )
            self._timer = timer
        return self._timer

    def _time(self, cfg: RTSegConfig, keys: list[str]) -> None:
        from profiling._table_build import LocalTimer, time_kernels

        timer = self.timer()
        graphs = self.segments.graphs(cfg, self.size)
        kernels = {k.key: k for k in self.segments.member(cfg, self.size).kernels}
        kw = {} if isinstance(timer, LocalTimer) else {"precision": self.table.key.precision}
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            time_kernels(timer, self.table, chunk, kernels, graphs, kw)
            self.timed += len(chunk)
            log.info("timed %d kernels missing from %s on %s", len(chunk), self.table.path, self.table.key.target)
