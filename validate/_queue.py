"""Sharing a validation between workers: candidates are claimed through the study's storage.

``run_validate(config)`` opens the search's storage (the SQLite ``study.db`` or the PostgreSQL
server the search workers used), picks the candidates from the search study (feasible Pareto
front of the COMPLETE trials, optionally its ``top_k`` by proxy Dice, plus the reference), and
keeps one Optuna study ``<search name>-validate`` in the same storage with one enqueued trial per
candidate. A worker claims a candidate by letting Optuna pop the next waiting trial (a row
update inside one transaction, so two workers never get the same one) and trains it inside
``study.optimize``, whose heartbeat lets the next worker mark a killed worker's claim FAIL after
the grace period; a candidate without a COMPLETE, RUNNING or WAITING claim is queued again, and
its training resumes from its own checkpoint if the folder is on the same machine.

A parent of a compressed variant (``STUDY_DIR/compressed/``, as the worker that queues the
candidates sees it) is always a candidate, even outside ``top_k``; its claim carries the
variants' recipe chains, and after the parent's full-budget training the same worker re-applies
them (:mod:`validate._variants`). A parent whose earlier claim lacks some of the
variants wanted now is queued again: its training is skipped (``trained.json``) and only the
missing variants are re-applied.

When no claim is waiting or running, every worker takes the latency of all validated candidates
and variants on the latency target in one run (:mod:`validate._graphs`) and
writes the validated records into its own ``STUDY_DIR/validated/``. Results travel through the
storage (the claims' user attributes), so each machine's folder gets all of them; a variant
re-applied on another machine is timed on a graph rebuilt here from its config, pruning history
and quantization spec (same operators and shapes, fresh weights), as its record's notes say.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from rtseg_core import (
    CandidateRecord,
    ConfigError,
    Constraints,
    InputFileError,
    RankAgreement,
    ReappliedResult,
    SearchError,
    SettingsMismatchError,
    StudyDir,
    StudySettings,
    ValidatedLatency,
    ValidatedResult,
    ValidatedSummary,
    rank_agreement,
    resolve_threads,
    text_table,
    usable_cores,
    write_candidate,
    write_reapplied,
    write_trained,
)
from search_spaces import REFERENCE_ATTR, feasible_front, make_storage, resolve_storage_url, trial_name
from validate._config import (
    Candidate,
    ValidateConfig,
    budget_differences,
    describe_budget,
    seed_label,
    seed_slot,
)
from validate._graphs import LatencyRun, TimedGraph, TimingEntry, time_entries
from validate._reuse import check_reuse_sources
from validate._seeds import PAPER, model_stats, paired_menu, seed_runs
from validate._train import train_candidate, validated_record, variant_record
from validate._variants import VariantPlan, find_variants, reapply_variant, variant_size

log = logging.getLogger(__name__)

SUFFIX = "-validate"
BUDGET_ATTR = "rtseg_validate_budget"
VARIANTS_ATTR, VARIANTS_DONE_ATTR = "variants", "variants_done"  # a claim's plans / re-applied results
SEED_ATTR = "seed"  # a claim's training seed (claims made before --seeds have none: the budget's seed)


@dataclass(frozen=True)
class ValidateSummary:
    """What a validation run leaves: one validated record per candidate and how the proxy held up."""

    study_dir: Path
    records: tuple[CandidateRecord, ...]
    trained_now: tuple[str, ...]  # candidates and variants this worker trained (or finished) in this run
    finished_before: tuple[str, ...]  # candidates and variants already validated when this run started
    agreement: RankAgreement | None  # proxy Dice vs test Dice over the validated candidates
    budget: dict
    latency_table: str
    proxy_dice: dict  # name -> proxy Dice in the search
    not_validated: tuple[str, ...] = ()  # compressed variants found but not re-applied (see the queue docstring)
    latency_target: str = "local"
    latency_kind: str = "measured"  # of this run's latencies: measured | estimated | predicted
    seeds: tuple[int, ...] = ()  # the training seeds of this run
    models: dict = field(default_factory=dict)  # name -> rtseg_core.SeedStats (per seed, over seeds, vs paper)
    latency_rows: dict = field(default_factory=dict)  # name -> its row of the one latency run

    def paired(self) -> str:
        """The short menu: each validated model relative to paper (speed, paired Dice difference, verdict)."""
        return paired_menu(self.models, self.latency_rows, self.latency_kind)

    def table(self) -> str:
        kind = self.latency_kind.upper()
        dice = "test Dice" if len(self.seeds) <= 1 else f"test Dice (mean, {len(self.seeds)} seeds)"
        rows = [("name", "parent", "precision", "proxy Dice", dice, f"{kind} ms", "FPS", "params", "feasible")]
        for r in sorted(self.records, key=lambda r: -(r.dice or 0.0)):
            rows.append(
                (
                    r.name,
                    "" if r.parent == r.name else str(r.parent),
                    r.precision,
                    _f4(self.proxy_dice.get(r.name)),
                    _f4(r.dice),
                    "-" if r.latency_ms is None else f"{r.latency_ms:.2f}",
                    "-" if r.fps is None else f"{r.fps:.1f}",
                    f"{r.params:,}",
                    "yes" if r.feasible else "no",
                )
            )
        return text_table(rows)

    def verdict(self) -> str:
        """Which validated candidate has the best test Dice, and how it compares with paper."""
        feasible = [r for r in self.records if r.feasible and r.dice is not None]
        if not feasible:
            return "no feasible validated candidate"
        best = max(feasible, key=lambda r: r.dice)
        paper = next((r for r in self.records if r.name == "paper"), None)
        text = f"best validated: {best.name} (test Dice {best.dice:.4f}, {_ms(best)} on {self.latency_target})"
        if paper is not None and paper.dice is not None and best.name != paper.name:
            text += f"; paper at the same budget: test Dice {paper.dice:.4f}, {_ms(paper)}"
            if paper.latency_ms and best.latency_ms:
                text += f" ({paper.latency_ms / best.latency_ms:.2f}x the best's latency)"
        return text


def select_candidates(
    search: optuna.Study, fields: list[str], directions: list[str], top_k: int | None, latency_size: int | None = None
) -> list[Candidate]:
    """The feasible front (top ``top_k`` by proxy Dice) plus the reference, as :class:`Candidate` s
    (``latency_size``: the search's, below which a trial's searched input size is its own)."""
    front = feasible_front(search, fields, directions)
    front.sort(key=lambda t: (-(t.user_attrs.get("dice") or 0.0), t.number))
    chosen = front[:top_k] if top_k else list(front)
    complete = search.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ref = next((t for t in complete if t.user_attrs.get(REFERENCE_ATTR)), None)
    if ref is not None and all(t.number != ref.number for t in chosen):
        chosen.append(ref)
    out = []
    for t in chosen:
        if "config" not in t.user_attrs:
            raise SearchError(f"trial {t.number} of study {search.study_name!r} has no 'config' attribute")
        out.append(
            Candidate(
                name=trial_name(t),
                trial=t.number,
                config=dict(t.user_attrs["config"]),
                source="reference" if t.user_attrs.get(REFERENCE_ATTR) else "trial",
                proxy_dice=t.user_attrs.get("dice"),
                proxy_latency_ms=t.user_attrs.get("latency_ms"),
                proxy_values=dict(zip(fields, t.values or ())),
                input_size=_searched_input(t, latency_size),
                searched_latency_size=latency_size if _searched_input(t, latency_size) else None,
            )
        )
    return out


def _searched_input(trial, latency_size: int | None) -> int | None:
    """The trial's deployment input (search --input-sizes) when it is below the search's latency size, else None."""
    size = trial.user_attrs.get("input_size")
    return int(size) if size is not None and latency_size is not None and int(size) < latency_size else None


class _Worker:
    def __init__(self, config: ValidateConfig) -> None:
        self.config = config
        self.study_dir = Path(config.study_dir).expanduser().resolve()
        self.study = StudyDir(self.study_dir)
        settings = self.study.read_settings()
        if settings is None:
            raise InputFileError(f"{self.study.study_json}: not found; --study must be the folder a search wrote")
        self.settings: StudySettings = settings
        self.data = config.data or settings.data
        self.threads = _threads(config.threads, settings, self.study.study_json)
        self.budget = config.budget(self.data)
        self.study_target = settings.target
        self.latency_target = config.latency_target or self.study_target
        if self.latency_target.startswith("ssh://") and config.ssh_options is None:
            from profiling import SSHOptions

            self._ssh_options = SSHOptions()
        else:
            self._ssh_options = config.ssh_options
        self.seeds = config.train_seeds
        self.reuse_from = check_reuse_sources(config.reuse_from, self.study_dir)
        self.trained_now: list[str] = []

    def run(self) -> ValidateSummary:
        cfg = self.config
        url = resolve_storage_url(cfg.storage, self.study_dir)
        storage = make_storage(url, heartbeat_interval=cfg.heartbeat_interval, grace_period=cfg.grace_period)
        name = cfg.study_name or self.settings.study_name
        try:
            search = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise SearchError(
                f"the storage has no search study {name!r}; give the search's --storage and --study-name"
            ) from None
        fields = [f for f, _ in self.settings.objectives]
        directions = [d for _, d in self.settings.objectives]
        searched_at = self.settings.latency_size or self.settings.size  # the search's latency size
        candidates = select_candidates(search, fields, directions, cfg.top_k, searched_at)
        for c in candidates:
            if c.input_size is not None and c.input_size > cfg.latency_size:
                raise SearchError(
                    f"{c.name}: searched at input {c.input_size}, larger than --latency-size {cfg.latency_size}; "
                    f"validate at the search's latency size {searched_at}"
                )
        self.plans = find_variants(self.study_dir)
        candidates += _parents_of(search, fields, self.plans, {c.name for c in candidates}, searched_at)
        if not candidates:
            raise SearchError(f"study {name!r}: no feasible completed trial and no reference to validate")
        vstudy = self._open(storage, name + SUFFIX)
        trained, variants = self._complete(vstudy)
        finished_before = sorted(
            seed_label(n, self.budget, s) for done in (trained, variants) for n, runs in done.items() for s in runs
        )
        reused = sorted(f"{n}: seed {s}" for n, runs in trained.items() for s in runs if s in self.seeds)
        if reused and len(self.seeds) > 1:
            log.info("reusing %d finished (candidate, seed) training(s): %s", len(reused), "; ".join(reused))
        self._loop(vstudy, candidates)
        return self._finish(vstudy, finished_before)

    # -- claims -------------------------------------------------------------------------------
    def _open(self, storage, name: str) -> optuna.Study:
        try:
            study = optuna.create_study(storage=storage, study_name=name, directions=["maximize"])
            study.set_user_attr(BUDGET_ATTR, self.budget)
            study.set_metric_names(["test_dice"])
            return study
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage)
        stored = None
        for _ in range(50):  # the creating worker may be writing the attribute right now
            stored = study.user_attrs.get(BUDGET_ATTR)
            if stored is not None:
                break
            time.sleep(0.1)
        if stored != self.budget:
            raise SettingsMismatchError(
                f"validation study {name!r} was started with another budget "
                f"({budget_differences(stored or {}, self.budget)}); "
                "repeat the original --epochs/--size/--lr/--batch-size/--seed/--data/--finetune-epochs (validated "
                "candidates must be comparable)"
            )
        return study

    def _plans_of(self, parent: str) -> list[dict[str, Any]]:
        return [p.to_attrs() for p in self.plans if p.parent == parent]

    def _loop(self, vstudy: optuna.Study, candidates: list[Candidate]) -> None:
        cfg = self.config
        while True:
            optuna.storages.fail_stale_trials(vstudy)
            trials = vstudy.get_trials(deepcopy=False)
            alive = {
                (t.user_attrs.get("candidate"), self._seed_of(t))
                for t in trials
                if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
                and _covers(t, {p["name"] for p in self._plans_of(t.user_attrs.get("candidate"))})
            }
            for seed in self.seeds:  # seed by seed: the first seed of every candidate comes first
                for cand in candidates:
                    if (cand.name, seed) not in alive:
                        attrs = cand.to_attrs() | {SEED_ATTR: seed, VARIANTS_ATTR: self._plans_of(cand.name)}
                        vstudy.enqueue_trial({}, user_attrs=attrs, skip_if_exists=False)
            trials = vstudy.get_trials(deepcopy=False)
            if not any(t.state == TrialState.WAITING for t in trials):
                if any(t.state == TrialState.RUNNING for t in trials):
                    time.sleep(cfg.poll_interval)  # another worker trains the last candidates
                    continue
                return
            # No catch: a candidate that fails stops this worker with the reason (FAIL in the storage);
            # running the command again retries it from its checkpoint.
            try:
                vstudy.optimize(self._objective, n_trials=1)
            except optuna.exceptions.UpdateFinishedTrialError as exc:
                # Another worker took this worker's heartbeat for stale (a machine too loaded to beat within
                # the grace period) and freed the claim; the candidate is queued again, and its finished
                # trained.json (or checkpoint) here makes the retry cheap.
                log.warning("this worker's claim was freed by another worker (%s); raise --grace-period", exc)

    def _seed_of(self, trial: optuna.trial.FrozenTrial) -> int:
        return int(trial.user_attrs.get(SEED_ATTR, self.budget["seed"]))

    def _objective(self, trial: optuna.Trial) -> float:
        attrs = trial.user_attrs
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if "candidate" not in attrs:
            # Two workers saw the last waiting claim; the second got a fresh, empty trial.
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("no candidate left to claim (another worker took the last one)")
        cand = Candidate.from_attrs(attrs)
        seed = int(attrs.get(SEED_ATTR, self.budget["seed"]))
        slot = seed_slot(self.budget, seed)
        plans = [VariantPlan.from_attrs(a) for a in attrs.get(VARIANTS_ATTR) or []]
        # Two workers may queue one candidate at once. Its owner is its lowest-numbered claim that is
        # waiting, running or complete (and covers the same variants); any other claim stops here, so no
        # candidate trains twice.
        alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        for t in trial.study.get_trials(deepcopy=False, states=alive):
            covers = _covers(t, {p.name for p in plans})
            same = t.user_attrs.get("candidate") == cand.name and self._seed_of(t) == seed
            if t.number != trial.number and same and covers:
                if t.state == TrialState.COMPLETE or t.number < trial.number:
                    trial.set_user_attr("duplicate", True)
                    raise optuna.TrialPruned(f"{cand.name} (seed {seed}) is already claimed by trial {t.number}")
        trial.set_user_attr("stage", "training")
        log.info("validating %s (trial %d of the search), training seed %d: %s", cand.name, cand.trial, seed,
                 describe_budget(self.budget))  # fmt: skip
        # trained_now names the work this worker finished now, not results found on disk from an earlier run
        fresh = not self.study.trained_json(cand.name, slot).is_file()
        trained = train_candidate(cand, self.budget, self.study_dir, device=self.config.device, seed=seed,
                                  reuse_from=self.reuse_from)  # fmt: skip
        if fresh and trained.reused_from is None:  # a copy from --reuse-from is logged as reused, not trained
            self.trained_now.append(seed_label(cand.name, self.budget, seed))
        trial.set_user_attr("trained", trained.to_dict())
        done = {}
        for plan in plans:
            trial.set_user_attr("stage", f"re-applying {plan.name}")
            if not self.study.reapplied_json(plan.name, slot).is_file():
                self.trained_now.append(seed_label(plan.name, self.budget, seed))
            done[plan.name] = reapply_variant(
                plan, self.budget, self.study_dir, finetune_epochs=self.config.finetune_epochs,
                device=self.config.device, threads=self.threads, seed=seed,
            ).to_dict()  # fmt: skip
        trial.set_user_attr(VARIANTS_DONE_ATTR, done)
        trial.set_user_attr("stage", "done")
        dice = trained.test.dice
        return float(dice) if dice is not None else 0.0

    def _complete(
        self, vstudy: optuna.Study
    ) -> tuple[dict[str, dict[int, ValidatedResult]], dict[str, dict[int, ReappliedResult]]]:
        """``(trained, variants)``: name -> training seed -> result, over every COMPLETE claim.

        The latest claim wins: a parent queued again for new variants may have been retrained on
        another machine, and its variants were re-applied to that training.
        """
        out: dict[str, dict[int, ValidatedResult]] = {}
        variants: dict[str, dict[int, ReappliedResult]] = {}
        for t in sorted(vstudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number):
            name = t.user_attrs.get("candidate")
            seed = self._seed_of(t)
            where = f"validation study {vstudy.study_name!r}, claim {t.number}"
            if name and "trained" in t.user_attrs:
                result = ValidatedResult.from_dict(t.user_attrs["trained"], source=f"{where}: trained")
                out.setdefault(name, {})[seed] = result
            for vname, v in (t.user_attrs.get(VARIANTS_DONE_ATTR) or {}).items():
                variants.setdefault(vname, {})[seed] = ReappliedResult.from_dict(v, source=f"{where}: variant {vname}")
        return out, variants

    # -- latency and records ------------------------------------------------------------------
    def _finish(self, vstudy: optuna.Study, finished_before: list[str]) -> ValidateSummary:
        cfg = self.config
        all_trained, all_variants = self._complete(vstudy)
        # This run's seeds only; a model is validated once its first seed is (the others join as they finish).
        first = self.seeds[0]
        runs = {n: {s: r for s, r in by.items() if s in self.seeds} for n, by in all_trained.items()}
        runs = {n: by for n, by in runs.items() if first in by}
        vruns = {n: {s: r for s, r in by.items() if s in self.seeds and s in runs.get(r.parent, {})}
                 for n, by in all_variants.items()}  # fmt: skip
        vruns = {n: by for n, by in vruns.items() if first in by}
        left_out = sorted(f"{n}: seed {s}" for done in (all_trained, all_variants) for n, by in done.items()
                          for s in by if s not in self.seeds)  # fmt: skip
        if left_out:
            log.info("finished trainings of other seeds, not in this run's --seeds: %s", "; ".join(left_out))
        trained = {n: by[first] for n, by in runs.items()}  # the first seed: its graph is timed
        variants = {n: by[first] for n, by in vruns.items()}
        entries = [TimingEntry(name, t.config, size=Candidate.from_attrs(t.candidate).input_size)
                   for name, t in trained.items()]  # fmt: skip
        for name, v in variants.items():
            plan = VariantPlan.from_attrs(v.variant)
            own = self.study.validated(name, seed_slot(self.budget, first)) / "model.onnx"
            entries.append(
                TimingEntry(
                    name,
                    trained[plan.parent].config,
                    precision=plan.precision,
                    history=v.pruning_history,
                    quant=plan.quant,
                    onnx=own if own.is_file() else None,
                    size=variant_size(plan, cfg.latency_size),
                )  # fmt: skip
            )
        run = LatencyRun(
            target=self.latency_target, size=cfg.latency_size,
            timing=dataclasses.replace(cfg.timing, threads=self.threads, seed=cfg.seed),
            ssh_options=self._ssh_options, remote_backend=cfg.remote_backend, data=self.data,
        )  # fmt: skip
        latency, conditions = time_entries(entries, run)
        per_seed = {n: seed_runs(by) for n, by in runs.items()} | {n: seed_runs(by) for n, by in vruns.items()}
        paper = per_seed.get(PAPER)
        models = {n: model_stats(r, paper if n != PAPER else None, what=n) for n, r in per_seed.items()}
        constraints = self.settings.constraints
        records = []
        dataset = self.data.split(":", 1)[0]
        common = {"dataset": dataset, "threads": self.threads, "size": cfg.latency_size}
        for name, t in trained.items():
            ok, note = self._feasible(latency[name], constraints)
            own = Candidate.from_attrs(t.candidate).input_size or cfg.latency_size  # its deployment input
            record = validated_record(
                t, latency[name], feasible=ok, feasibility_note=note, stats=models[name], **{**common, "size": own}
            )  # fmt: skip
            self._write(name, record, runs[name])
            records.append(record)
        for name, v in variants.items():
            ok, note = self._feasible(latency[name], constraints)
            size = variant_size(VariantPlan.from_attrs(v.variant), cfg.latency_size)
            record = variant_record(
                v, trained[v.parent], latency[name], feasible=ok, feasibility_note=note, stats=models[name],
                **{**common, "size": size},
            )  # fmt: skip
            self._write(name, record, vruns[name])
            records.append(record)
        proxy = {name: t.proxy_dice for name, t in trained.items()}
        mean_dice = {n: (models[n].dice.mean if models[n].dice is not None else None) for n in trained}
        pairs = [(proxy[n], mean_dice[n]) for n in trained]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        agreement = None
        if len(pairs) >= 3:  # architectures only: a variant's proxy number comes from another recipe
            agreement = rank_agreement(
                [a for a, _ in pairs], [b for _, b in pairs], seed=cfg.seed, a_label="proxy val Dice",
                b_label="full-budget test Dice",
            )  # fmt: skip
        proxy |= {name: v.proxy_dice for name, v in variants.items()}
        rest = {k: v for k, v in conditions.items() if k not in ("table", "kind", "target")}
        self.study.write_validated_latency(
            ValidatedLatency(kind=conditions["kind"], target=conditions["target"], conditions=rest, candidates=latency)
        )
        self.study.write_validated_summary(
            ValidatedSummary(
                budget=self.budget,
                candidates=tuple(sorted(trained)),
                variants=tuple(sorted(variants)),
                latency_target=self.latency_target,
                proxy_dice=proxy,
                agreement=agreement,
                seeds=self.seeds,
                models=models,
            )
        )
        return ValidateSummary(
            study_dir=self.study_dir,
            records=tuple(records),
            trained_now=tuple(n for n in self.trained_now if n not in finished_before),
            finished_before=tuple(finished_before),
            agreement=agreement,
            budget=self.budget,
            latency_table=conditions["table"],
            proxy_dice=proxy,
            not_validated=tuple(p.name for p in self.plans if p.name not in variants),
            latency_target=self.latency_target,
            latency_kind=conditions["kind"],
            seeds=self.seeds,
            models=models,
            latency_rows={n: g.to_dict() for n, g in latency.items()},
        )

    def _write(
        self, name: str, record: CandidateRecord, results: dict[int, ValidatedResult] | dict[int, ReappliedResult]
    ) -> None:
        for seed, result in results.items():
            slot = seed_slot(self.budget, seed)
            folder = self.study.validated(name, slot)
            # Made on another machine: keep a copy of the result here.
            if isinstance(result, ValidatedResult) and not self.study.trained_json(name, slot).is_file():
                write_trained(folder, result)
            elif isinstance(result, ReappliedResult) and not self.study.reapplied_json(name, slot).is_file():
                write_reapplied(folder, result)
        write_candidate(self.study.validated(name), record)

    def _feasible(self, lat: TimedGraph, limits: Constraints) -> tuple[bool, str]:
        """``(feasible, note)``: the study's constraints on the validated numbers.

        Latency limits are judged only when the latency was taken on the study's own target
        (a limit meant for a Jetson cannot be judged from this machine's time); otherwise the
        note says so. A candidate without a latency (an estimate that cannot answer for it)
        fails a latency limit it cannot be shown to meet.
        """
        if not limits.params_only().met_by(params=lat.params, latency_ms=None, fps=None):
            return False, ""
        latency_limits = [k for k in ("max_latency_ms", "min_fps") if getattr(limits, k) is not None]
        if not latency_limits:
            return True, ""
        if self.latency_target != self.study_target:
            return True, (
                f"; latency limits ({', '.join(latency_limits)}) NOT judged: the latency was taken on "
                f"{self.latency_target}, the study's limits are for {self.study_target}"
            )
        if lat.median_ms is None:
            return False, f"; infeasible: no latency on {self.latency_target} to judge {', '.join(latency_limits)} by"
        return limits.met_by(params=lat.params, latency_ms=lat.median_ms, fps=lat.fps), ""


def _covers(trial: optuna.trial.FrozenTrial, wanted: set[str]) -> bool:
    """Whether a claim carries (queued or done) every variant named in ``wanted``."""
    return wanted <= {a.get("name") for a in trial.user_attrs.get(VARIANTS_ATTR) or []}


def _parents_of(
    search: optuna.Study, fields: list[str], plans: list[VariantPlan], chosen: set[str], latency_size: int | None
) -> list[Candidate]:
    """The parents of compressed variants not chosen already (validated even outside ``top_k``)."""
    wanted = sorted({p.parent for p in plans} - chosen)
    if not wanted:
        return []
    by_name = {trial_name(t): t for t in search.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    out = []
    for name in wanted:
        t = by_name.get(name)
        if t is None or "config" not in t.user_attrs:
            raise SearchError(
                f"compressed variant(s) {', '.join(p.name for p in plans if p.parent == name)}: the parent {name!r} is "
                f"not a completed trial with a config in study {search.study_name!r}"
            )
        out.append(
            Candidate(
                name=name,
                trial=t.number,
                config=dict(t.user_attrs["config"]),
                source="reference" if t.user_attrs.get(REFERENCE_ATTR) else "trial",
                proxy_dice=t.user_attrs.get("dice"),
                proxy_latency_ms=t.user_attrs.get("latency_ms"),
                proxy_values=dict(zip(fields, t.values or ())),
                input_size=_searched_input(t, latency_size),
                searched_latency_size=latency_size if _searched_input(t, latency_size) else None,
            )  # fmt: skip
        )
    return out


def _threads(threads: int | None, settings: StudySettings, path: Path) -> int:
    """Threads of the latency run and of the variants' ONNX Runtime evaluation: ``--threads``, else the study's.

    The study's ``threads`` may come from another machine (or a hand edit): more than this machine's
    cores would oversubscribe the timing (and a huge value makes OpenMP allocate per thread), so it
    is refused here with the option that fixes it.
    """
    if threads is not None:
        return resolve_threads(threads, option="--threads")
    cores = usable_cores()
    if settings.threads > cores:
        raise ConfigError(
            f"{path}: 'threads' is {settings.threads}, more than the {cores} usable core(s) of this machine; "
            f"pass --threads N (N <= {cores}) to time the validated candidates here"
        )
    return resolve_threads(settings.threads, option=f"{path}: 'threads'")


def run_validate(config: ValidateConfig) -> ValidateSummary:
    """Validate a study's front at a full budget (module docstrings of this and ``_validate``)."""
    from search_spaces import quiet_optuna

    with warnings.catch_warnings(), quiet_optuna(logging.WARNING), contextlib.ExitStack():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _Worker(config).run()


def _ms(r: CandidateRecord) -> str:
    return "no latency" if r.latency_ms is None else f"{r.latency_ms:.2f} ms {r.latency_kind.upper()}"


def _f4(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
