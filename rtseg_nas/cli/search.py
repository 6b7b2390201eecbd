"""Multi-objective architecture search over the RTSeg-Net family (Optuna), resumable and shareable.

Each trial draws an architecture from the search space (widths in multiples of 8 around the
paper's, token-stage depths, MLP ratio, shift size; see --show-space), rejects impossible ones
before training, profiles it on --target (params, MACs, latency), proxy-trains it briefly,
evaluates it on the validation split and reports the objectives (default: mean foreground Dice
up, latency down). The paper's architecture is always trial 0, the reference point.

Constraints (--min-fps, --max-latency-ms, --max-params; 0 = none) are Optuna constraints: every
"best" printed here is feasible. Architectures that already violate a constraint before training
are rejected without training. With --early-stop (default) a trial whose validation Dice after
--early-stop-after epochs trails, by more than --early-stop-margin, a feasible Pareto member of
similar or lower cost at the same epoch is stopped (state PRUNED, reason in its user attributes).
With --fidelity 1,3,9 (multi-fidelity, MO-ASHA style) a trial trains up to the last rung and, at
each earlier rung, continues only if it is in the top 1/--eta of the trials that reached that rung
by non-dominated sorting on (Dice at the rung, cost); the others stop there with the reason.

Every Dice printed here is a proxy number (short training, validation split): run
`rtseg-nas validate --study DIR` to retrain the front at a full budget on the test split.

Files in STUDY_DIR: study.db (the Optuna study, unless --storage), study.json (settings),
history.csv (one row per trial), environment.json, and trials/<n>/ with config.json,
measurement.json, checkpoint.pt, metrics.json (training history), validation.json (validation
metrics) and candidate.json (what `report` reads).

Resume: run the same command again; --trials N means N finished trials in total, so only the missing
ones run. --budget-epochs N likewise counts every epoch the study's trials trained (earlier runs and
other workers included): no trial is proposed once they reach N, so a resumed search with the same
budget runs nothing new, and --trials is then an upper bound; a resumed search without
--budget-epochs keeps the study's budget. Ctrl-C stops a search (the trial it interrupted is
recorded as failed); running the same command again resumes it. Every trial records its CPU seconds
(cpu_s in history.csv), which `report --compare` sums. A worker killed mid-trial leaves a RUNNING
trial that the next run marks FAIL once its heartbeat is older than the grace period. Several
workers (machines) share one study through a database server: create it once with --trials 0, then
start each worker with the same --storage postgresql://user@host/db and --study-name. The study
opens in optuna-dashboard as is.

Examples (CPU-sized):
  rtseg-nas search --data synthetic --study runs/nas --trials 20 --size 64 --epochs 2
  rtseg-nas search --data synthetic --study runs/nas --trials 30      # resume, 10 more
  rtseg-nas search --data synthetic --study runs/mf --fidelity 1,3,9 --trials 500 --budget-epochs 120
  rtseg-nas search --data jnu-ifm:/data/JNU-IFM --study runs/nas-jnu --trials 50 \\
      --target jetson-nano-estimate --objectives dice,latency --min-fps 24
  rtseg-nas search --study runs/shared --storage postgresql://nas@db-host/nas --trials 100
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from rtseg_core import DEPLOYMENT_SIZE, THREADS_HELP
from rtseg_nas.cli._args import (
    BATCH,
    COUNT,
    COUNT0,
    LEARNING_RATE,
    NONNEGATIVE,
    SEED,
    SIZE,
    THREADS,
    add_data,
    add_device,
    add_ssh,
    int_in,
    ssh_options_from,
)

if TYPE_CHECKING:
    from search_spaces import SearchConfig, SearchSpace

log = logging.getLogger(__name__)

_OBJECTIVES_HELP = (
    "comma list of objectives from dice (max), delta_aop (min, degrees), latency (min, ms), params (min), "
    "macs (min) (default: %(default)s)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Defaults come from the config dataclasses. Imported here, not at the top: every CLI module is
    # imported to build `rtseg-nas --help`. These names come from search_spaces._config and
    # _early_stop, which import no torch or Optuna, so `search --help` stays fast too.
    from search_spaces import (
        SAMPLERS,
        EarlyStopRule,
        ObjectiveOptions,
        ProfilingOptions,
        ProxyTraining,
        SearchConfig,
        StrategyOptions,
        StudyOptions,
        WorkerOptions,
    )

    add_data(p)
    p.add_argument(
        "--strategy",
        choices=("multi-trial", "supernet"),
        default="multi-trial",
        help="multi-trial (this verb: every trial trained briefly) or supernet: the one-shot search, the same "
        "as `supernet search` with its options (--supernet CKPT, --predictor ...; see `supernet search --help`) "
        "(default: %(default)s)",
    )
    p.add_argument("--study", required=True, metavar="DIR", help="study folder (created; reused to resume)")
    p.add_argument(
        "--trials",
        type=COUNT0,
        default=StudyOptions.trials,
        help="finished trials (complete or early-stopped) the study should hold at the end; 0 only creates "
        "the study (default: %(default)s)",
    )
    p.add_argument(
        "--budget-epochs",
        type=COUNT0,
        default=StudyOptions.budget_epochs,
        metavar="N",
        help="compute budget: propose no new trial once the study's trials (all runs and workers) have trained N "
        "epochs in total; early-stopped and multi-fidelity trials count the epochs they trained. Trials already "
        "running finish their epochs as usual, so the budget may be exceeded by at most the trials in flight "
        "(one worker: the last trial). --trials stays an upper bound. 0 = no budget. Left out: a resumed study "
        "keeps the budget it was run with (the log says so), a new one has none",
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage URL (default: sqlite:///STUDY_DIR/study.db); postgresql://user@host/db for "
        "several workers (psycopg 3 driver used)",
    )
    p.add_argument("--study-name", help="name of the study in the storage (default: the study folder's name)")
    p.add_argument(
        "--target",
        default=ProfilingOptions.target,
        help="where latency comes from: local (ONNX Runtime on this CPU, measured), ssh://user@host[:port] "
        "(measured on the device), jetson-nano-estimate (roofline estimate) or predict:TABLE (the kernel-level "
        "predictor on a table from `rtseg-nas latency-table build`, labelled predicted) (default: %(default)s)",
    )
    p.add_argument("--objectives", default=",".join(ObjectiveOptions.names), help=_OBJECTIVES_HELP)
    p.add_argument("--min-fps", type=NONNEGATIVE, default=0, help="constraint: frames/s >= this (0 = none)")
    p.add_argument("--max-latency-ms", type=NONNEGATIVE, default=0, help="constraint: latency <= this, ms (0 = none)")
    p.add_argument("--max-params", type=int_in(0, 10**10), default=0, help="constraint: parameters <= this (0 = none)")
    p.add_argument("--sampler", choices=SAMPLERS, default=StrategyOptions.sampler, help="(default: %(default)s)")
    p.add_argument(
        "--population-size",
        type=int_in(2, 10000),
        default=StrategyOptions.population_size,
        help="NSGA-II population (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=SEED,
        default=SearchConfig.seed,
        help="seeds sampler, data split and training (default: %(default)s)",
    )

    train = p.add_argument_group("proxy training and evaluation")
    train.add_argument(
        "--size",
        type=SIZE,
        default=ProxyTraining.size,
        help="training/validation image side, px (default: %(default)s)",
    )
    train.add_argument(
        "--epochs", type=COUNT, default=ProxyTraining.epochs, help="epochs per trial (default: %(default)s)"
    )
    train.add_argument(
        "--steps-per-epoch",
        type=COUNT0,
        default=ProxyTraining.steps_per_epoch,
        help="training steps per epoch, 0 = whole split (default: %(default)s)",
    )
    train.add_argument("--batch-size", type=BATCH, default=ProxyTraining.batch_size, help="(default: %(default)s)")
    train.add_argument(
        "--lr",
        type=LEARNING_RATE,
        default=ProxyTraining.lr,
        help="peak learning rate of the proxy (default: %(default)s)",
    )
    train.add_argument("--val-batches", type=COUNT0, default=0, help="cap on validation batches per epoch, 0 = all")
    train.add_argument("--frames", default=ProxyTraining.frames, help="JNU-IFM frame selection (default: %(default)s)")
    add_device(train)
    train.add_argument("--train-threads", type=THREADS, metavar="N", help=THREADS_HELP)

    prof = p.add_argument_group("profiling")
    prof.add_argument(
        "--input-sizes",
        metavar="SIZES",
        help="search the deployment input too, e.g. 256,192,160 (multiples of 32; the largest is --latency-size): "
        "each trial is timed at its size and proxy-trained at --size x size / --latency-size (e.g. 96 -> 72 px "
        "for 192 of 256); Dice is scored on the labels at 256 px whatever the size (default: --latency-size only)",
    )
    prof.add_argument(
        "--latency-size",
        type=SIZE,
        default=ProfilingOptions.latency_size,
        help="input side timed, px: the deployment size, where validate times too, so --min-fps and "
        "--max-latency-ms mean the same in both (default: %(default)s; --size is only the training size)",
    )
    prof.add_argument(
        "--threads",
        type=THREADS,
        default=ProfilingOptions.threads,
        help="ONNX Runtime intra-op threads (default: %(default)s)",
    )
    prof.add_argument(
        "--latency-runs",
        type=COUNT,
        default=ProfilingOptions.latency_runs,
        help="timed runs per trial (default: %(default)s)",
    )
    prof.add_argument(
        "--latency-warmup",
        type=COUNT0,
        default=ProfilingOptions.latency_warmup,
        help="warm-up runs per trial (default: %(default)s)",
    )
    add_ssh(p)

    space = p.add_argument_group("search space and early stopping")
    space.add_argument("--space", metavar="JSON", help="SearchSpace overrides as JSON (e.g. narrower width ranges)")
    space.add_argument(
        "--dsconv-bits", help="also search DSConv bits: comma list of none and 2-8, e.g. none,8,4 (default: none only)"
    )
    space.add_argument("--show-space", action="store_true", help="print the search space table and exit")
    space.add_argument(
        "--early-stop",
        action=argparse.BooleanOptionalAction,
        default=StrategyOptions.early_stop,
        help="stop trials that trail a cheaper Pareto member (default: %(default)s)",
    )
    space.add_argument(
        "--early-stop-after",
        type=COUNT,
        default=EarlyStopRule.after_epochs,
        help="first epoch that may stop a trial (default: %(default)s)",
    )
    space.add_argument(
        "--early-stop-margin",
        type=NONNEGATIVE,
        default=EarlyStopRule.margin,
        help="Dice lead that stops a trial, a fraction like Dice itself (default: %(default)s)",
    )
    space.add_argument(
        "--fidelity",
        metavar="EPOCHS",
        help="multi-fidelity rungs, e.g. 1,3,9: successive halving by non-dominated sorting on (Dice at the rung, "
        "cost); the last rung replaces --epochs (default: fixed budget)",
    )
    space.add_argument(
        "--eta", type=int, default=ProxyTraining.eta, help="reduction factor of --fidelity (default: %(default)s)"
    )
    space.add_argument(
        "--early-stop-tolerance",
        type=NONNEGATIVE,
        default=EarlyStopRule.cost_tolerance,
        help="relative cost slack of 'similar' (default: %(default)s)",
    )

    run_group = p.add_argument_group("workers")
    run_group.add_argument(
        "--heartbeat-interval",
        type=int_in(1, 3600),
        default=WorkerOptions.heartbeat_interval,
        help="seconds (default: %(default)s)",
    )
    run_group.add_argument(
        "--grace-period",
        type=int_in(1, 86400),
        help="seconds without heartbeat before a trial is marked FAIL (default: 2x interval)",
    )
    p.set_defaults(
        data=ProxyTraining.data, device=ProxyTraining.device
    )  # the shared options, with this verb's defaults


def run(args: argparse.Namespace) -> int:
    from rtseg_core import read_json
    from search_spaces import SearchSpace, run_search

    space_fields = read_json(args.space) if args.space else {}
    if args.dsconv_bits:
        space_fields["dsconv_bits"] = [
            None if b.strip().lower() == "none" else int(b) for b in args.dsconv_bits.split(",") if b.strip()
        ]
    if args.input_sizes:
        space_fields["input_sizes"] = [_size_item(v) for v in args.input_sizes.split(",") if v.strip()]
    given = (("--dsconv-bits", args.dsconv_bits), ("--input-sizes", args.input_sizes))
    flags = [flag for flag, value in given if value]
    space = SearchSpace.from_dict(space_fields, source=args.space or "/".join(flags) or "the default search space")
    if args.show_space:
        print(space.describe())
        return 0
    config = search_config(args, space)
    size, lat = config.training.size, config.profiling.latency_size
    log.info(
        "latency timed at %dx%d px (--latency-size)%s; proxy training at %dx%d px (--size)",
        lat, lat, ", the deployment size" if lat == DEPLOYMENT_SIZE else "", size, size,
    )  # fmt: skip
    if not getattr(args, "debug", False):
        # Data-loading and profiling lines of every trial would bury the progress display.
        for name in ("segmentation", "profiling"):
            logging.getLogger(name).setLevel(logging.WARNING)
    summary = run_search(config)
    c = summary.counts
    print(
        f"study {summary.study_name} ({summary.storage}): {summary.finished}/{summary.trials_requested} finished "
        f"({c['complete']} complete, {c['early_stopped']} early-stopped), {c['rejected']} rejected before training, "
        f"{c['failed']} failed; {summary.trials_run} run now in {summary.wall_s:.0f} s"
    )
    if summary.budget_epochs is not None:
        print(summary.budget_line())
    constraints = ", ".join(f"{k}={v:g}" for k, v in summary.constraints.items() if v is not None) or "none"
    lat = config.profiling.latency_size
    print(f"feasible Pareto front (constraints: {constraints}; latency at {lat}x{lat} px):")
    print(summary.table())
    print(summary.verdict())
    print(
        "these are proxy numbers (short training, validation split); check them at a full budget on the test "
        f"split with: rtseg-nas validate --study {summary.study_dir}"
    )
    print(f"files: {summary.study_dir}")
    return 0


def _size_item(text: str) -> int:
    from rtseg_core import ConfigError

    try:
        return int(text.strip())
    except ValueError:
        raise ConfigError(f"--input-sizes: {text.strip()!r} is not an integer (give sizes like 256,192,160)") from None


def search_config(args: argparse.Namespace, space: SearchSpace) -> SearchConfig:
    """The :class:`SearchConfig` the parsed options describe (one sub-config per option group)."""
    from search_spaces import (
        EarlyStopRule,
        FidelitySchedule,
        ObjectiveOptions,
        ProfilingOptions,
        ProxyTraining,
        SearchConfig,
        StrategyOptions,
        StudyOptions,
        WorkerOptions,
    )

    return SearchConfig(
        study_dir=args.study,
        seed=args.seed,
        study=StudyOptions(
            trials=args.trials,
            storage=args.storage,
            study_name=args.study_name,
            budget_epochs=None if args.budget_epochs == 0 else args.budget_epochs,
        ),
        # The options' documented 0 = none; the library takes None for that and refuses 0.
        objectives=ObjectiveOptions(
            names=args.objectives,
            min_fps=args.min_fps or None,
            max_latency_ms=args.max_latency_ms or None,
            max_params=args.max_params or None,
        ),
        training=ProxyTraining(
            data=args.data,
            size=args.size,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch or None,
            batch_size=args.batch_size,
            lr=args.lr,
            val_batches=args.val_batches or None,
            frames=args.frames,
            device=args.device,
            train_threads=args.train_threads,
            fidelity=FidelitySchedule.parse(args.fidelity, args.eta).rungs if args.fidelity else (),
            eta=args.eta,
        ),
        profiling=ProfilingOptions(
            target=args.target,
            latency_size=args.latency_size,
            threads=args.threads,
            latency_warmup=args.latency_warmup,
            latency_runs=args.latency_runs,
            remote_backend=args.remote_backend,
            ssh_options=ssh_options_from(args),
        ),
        strategy=StrategyOptions(
            sampler=args.sampler,
            population_size=args.population_size,
            space=space,
            early_stop=args.early_stop,
            early_stop_rule=EarlyStopRule(
                after_epochs=args.early_stop_after,
                margin=args.early_stop_margin,
                cost_tolerance=args.early_stop_tolerance,
            ),
        ),
        workers=WorkerOptions(
            heartbeat_interval=args.heartbeat_interval,
            grace_period=args.grace_period,
            # main() decides it (terminal, --no-progress, --quiet); parsed without main: the default
            progress=getattr(args, "progress", WorkerOptions.progress),
        ),
    )
