"""Strategies over repeated searches (``report --compare`` with several studies per strategy).

One search is one draw: its validated hypervolume depends on the search's own seed as much as on
its strategy. Studies whose ``study.json`` gives the same strategy (fixed budget, multi-fidelity,
early stop, supernet; ``--sampler random`` is its own strategy, "random sampling", the baseline)
are grouped; per group:

- the mean validated hypervolume over its studies and the two-sided 95 % Student-t interval of
  that mean (:func:`rtseg_core.seed_summary`); one study is a *single run* (no interval);
- against the random-sampling baseline (when there is one): the difference of the means with
  Welch's 95 % interval (``scipy.stats.ttest_ind(equal_var=False).confidence_interval``), and a
  verdict from it as for seeds (better / worse only when the whole interval is on one side);
- the search compute as recorded: the trials' CPU seconds (history.csv ``cpu_s``) per study, their
  mean, the supernet's own training seconds where a supernet study records them, and a
  ``--predictor`` search's samples and NSGA-II CPU seconds (``predictor.json``); a study without
  ``cpu_s`` is counted as not recorded, never as 0.

The hypervolumes all share the comparison's one reference point, so they are comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rtseg_core import BETTER, INDISTINGUISHABLE, SINGLE_RUN, WORSE, SeedSummary, seed_summary

RANDOM = "random sampling"  # the strategy label prefix of a `search --sampler random` study


@dataclass(frozen=True)
class StrategyGroup:
    """The studies of one strategy and what they give together."""

    strategy: str
    studies: tuple[str, ...]  # study labels
    search_seeds: tuple[int | None, ...]  # each study's search --seed (None: no study.json)
    hypervolumes: tuple[float, ...]
    hypervolume: SeedSummary  # mean and t-interval over the studies (n = 1: no interval)
    cpu_s: tuple[float | None, ...]  # each study's trial CPU seconds as recorded (None: not recorded)
    supernet_s: tuple[float | None, ...]  # a supernet's own training seconds (None: not a supernet / not recorded)
    baseline: bool  # the random-sampling group
    vs_baseline: dict[str, Any] | None = None  # {"mean", "low", "high", "verdict"}: mean HV - baseline's
    supernet_cpu: bool = False  # supernet_s are CPU seconds (every supernet recorded them), else wall seconds
    predictor_s: tuple[float | None, ...] = ()  # a --predictor search's samples + NSGA-II CPU seconds (None: none)

    @property
    def n(self) -> int:
        return len(self.studies)

    def hypervolume_text(self) -> str:
        h = self.hypervolume
        if h.n == 1:
            return f"{h.mean:.5g} (1 study: a single run, no interval)"
        return f"{h.mean:.5g} [{h.low:.5g}, {h.high:.5g}] (95 % t-interval, {h.n} studies)"

    def cpu_text(self) -> str:
        known = [c for c in self.cpu_s if c is not None]
        missing = len(self.cpu_s) - len(known)
        if not known:
            text = "trial CPU not recorded"
        else:
            text = f"trials {sum(known) / len(known):.1f} CPU s per study (" + ", ".join(f"{c:.1f}" for c in known)
            text += ")" + (f"; {missing} study(ies) without cpu_s" if missing else "")
        sn = [s for s in self.supernet_s if s is not None]
        if sn:
            clock = "CPU s" if self.supernet_cpu else "s (wall)"
            text += f"; supernet training {sum(sn) / len(sn):.1f} {clock} per study, as recorded"
        pr = [p for p in self.predictor_s if p is not None]
        if pr:
            text += f"; predictor phase (samples + NSGA-II) {sum(pr) / len(pr):.1f} CPU s per study"
            if len(pr) < len(self.predictor_s):
                text += f" ({len(self.predictor_s) - len(pr)} study(ies) without it)"
        return text

    def baseline_text(self) -> str:
        if self.baseline:
            return "(the baseline)"
        v = self.vs_baseline
        if v is None:
            return "no random-sampling baseline among the studies"
        if v["low"] is None:
            return f"{v['mean']:+.5g} ({v['verdict']}: one study on a side, no interval)"
        return f"{v['mean']:+.5g} [{v['low']:+.5g}, {v['high']:+.5g}] (Welch 95 % interval): {v['verdict']}"

    def to_dict(self) -> dict[str, Any]:
        h = self.hypervolume
        return {
            "strategy": self.strategy,
            "studies": list(self.studies),
            "search_seeds": list(self.search_seeds),
            "hypervolumes": list(self.hypervolumes),
            "hypervolume_mean": h.mean,
            "hypervolume_low": h.low,
            "hypervolume_high": h.high,
            "cpu_s": list(self.cpu_s),
            "supernet_s": list(self.supernet_s),
            "supernet_clock": "cpu" if self.supernet_cpu else "wall",
            "predictor_cpu_s": list(self.predictor_s),
            "baseline": self.baseline,
            "vs_baseline": self.vs_baseline,
            "text": f"{self.hypervolume_text()}; {self.cpu_text()}; vs random sampling: {self.baseline_text()}",
        }


def group_strategies(studies: Sequence[Any], seeds: Sequence[int | None]) -> tuple[StrategyGroup, ...]:
    """One group per strategy label, in the order the strategies first appear; the baseline first."""
    order: dict[str, list[int]] = {}
    for i, s in enumerate(studies):
        order.setdefault(s.strategy, []).append(i)
    groups = []
    for strategy, idx in order.items():
        hv = tuple(float(studies[i].hypervolume) for i in idx)
        cpu = _all_cpu([studies[i].compute.supernet for i in idx])
        groups.append(
            StrategyGroup(
                strategy=strategy,
                studies=tuple(studies[i].label for i in idx),
                search_seeds=tuple(seeds[i] for i in idx),
                hypervolumes=hv,
                hypervolume=seed_summary(dict(enumerate(hv)), what=f"hypervolume of {strategy}"),
                cpu_s=tuple(studies[i].compute.trial_cpu_s for i in idx),
                supernet_s=tuple(_supernet_seconds(studies[i].compute.supernet, cpu) for i in idx),
                supernet_cpu=cpu,
                predictor_s=tuple((studies[i].compute.predictor or {}).get("cpu_s") for i in idx),
                baseline=strategy.startswith(RANDOM),
            )
        )
    base = [g for g in groups if g.baseline]
    if len(base) == 1:  # one baseline: every other group against it
        groups = [g if g.baseline else _against(g, base[0]) for g in groups]
    return tuple(sorted(groups, key=lambda g: not g.baseline))


def welch_difference(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95) -> dict[str, Any]:
    """``mean(a) - mean(b)`` with Welch's t-interval and the verdict; one value on a side: no interval."""
    mean = sum(a) / len(a) - sum(b) / len(b)
    if len(a) < 2 or len(b) < 2:
        return {"mean": mean, "low": None, "high": None, "verdict": SINGLE_RUN}
    if len(set(a)) == 1 and len(set(b)) == 1:  # no spread on either side: scipy gives NaN
        low = high = mean
    else:
        from scipy import stats

        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
        low, high = float(ci.low), float(ci.high)
    verdict = BETTER if low > 0 else WORSE if high < 0 else INDISTINGUISHABLE
    return {"mean": mean, "low": low, "high": high, "verdict": verdict}


def _against(group: StrategyGroup, base: StrategyGroup) -> StrategyGroup:
    from dataclasses import replace

    return replace(group, vs_baseline=welch_difference(group.hypervolumes, base.hypervolumes))


def _supernet_seconds(record: dict[str, Any] | None, cpu: bool) -> float | None:
    """CPU seconds when every supernet of the group recorded them (they compare across machine loads),
    else wall seconds; never a mix."""
    if not record:
        return None
    value = record.get("cpu_s" if cpu else "seconds")
    return float(value) if isinstance(value, (int, float)) else None


def _all_cpu(records: list[dict[str, Any] | None]) -> bool:
    supernets = [r for r in records if r]
    return bool(supernets) and all(isinstance(r.get("cpu_s"), (int, float)) for r in supernets)
