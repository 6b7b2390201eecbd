"""The one progress display of a search (:class:`Progress`): a bar on a terminal, else a log line per trial."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search_spaces._files import trial_reason
from search_spaces._study import feasible_front, trial_name

log = logging.getLogger(__name__)


class Progress:
    """The one progress display of a search: with ``bar``, a tqdm bar (done, left, front size, best
    first objective) with log lines printed above it; without, one INFO log line per finished trial."""

    def __init__(self, *, bar: bool, total: int, unit: str, fields: Sequence[str], directions: Sequence[str]) -> None:
        self.use_bar = bar
        self.total = total
        self.unit = unit
        self.fields = list(fields)
        self.directions = list(directions)
        self._bar: Any = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Progress:
        if self.use_bar:
            from tqdm.auto import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            loggers = [logging.root, optuna.logging.get_logger("optuna")]
            self._stack.enter_context(logging_redirect_tqdm(loggers=loggers))
            self._bar = self._stack.enter_context(tqdm(total=self.total, desc="search", unit=self.unit))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._bar = None

    def show(self, study: optuna.Study, done: int) -> None:
        bar = self._bar
        if bar is None:
            return
        front = feasible_front(study, self.fields, self.directions)
        bar.n = min(done, bar.total)
        postfix: dict[str, Any] = {"done": done, "left": max(self.total - done, 0), "front": len(front)}
        if front:
            sign = 1 if self.directions[0] == "maximize" else -1
            best = max(front, key=lambda t: sign * t.values[0])
            head = f"{best.values[0]:.3f}"
            if len(self.fields) > 1:
                head += f"@{best.values[1]:.3g}{'ms' if self.fields[1] == 'latency_ms' else ''}"
            postfix["best"] = head
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    def finished(self, trial: FrozenTrial, done: int) -> None:
        if self.use_bar:
            return
        name = trial_name(trial)
        who = f"{self.unit} {trial.number}" + (f" ({name})" if name != f"trial-{trial.number}" else "")
        if trial.state == TrialState.COMPLETE and trial.values is not None:
            what = "complete: " + ", ".join(f"{f} {v:.4g}" for f, v in zip(self.fields, trial.values))
        else:
            outcome = trial.user_attrs.get("outcome") or trial.state.name.lower()
            what = f"{outcome}: {trial.user_attrs['rejected'] if outcome == 'rejected' else trial_reason(trial)}"
        log.info("%s %s; %d/%d finished", who, what, done, self.total)
