"""One-shot architecture search: a weight-sharing supernet of the search space, its subnets evaluated
with inherited weights instead of being trained one by one.

  train    train the supernet (the space's widest member holds the weights; every member runs on
           slices of them) with the sandwich rule: per step the largest, the smallest and
           --random-subnets random members, the largest learning from the labels (the loss of
           `train`) and distilling into the others in place. OUT/supernet.pt after every epoch
           (atomic, weights_only-loadable); --resume continues it.
  search   NSGA-II (Optuna) over the subnets: each one extracted, its BatchNorm recalibrated on
           --bn-batches training batches, evaluated on the validation split and profiled on
           --target. Writes the study folder of `search` (study.json, history.csv,
           trials/<n>/candidate.json marked recipe=supernet-inherited), so `report --study` reads it.
           Running the same command again resumes; --trials counts evaluated subnets.
  extract  one subnet (--arch preset/JSON or --trial STUDY/trials/N) as an ordinary checkpoint
           (OUT/checkpoint.pt + OUT/config.json) that evaluate, prune, quantize, profile take, and
           that `train --arch OUT/config.json --out OUT --resume` fine-tunes.

Examples (CPU-sized, synthetic data):
  rtseg-nas supernet train --out runs/supernet --size 64 --epochs 4 --steps-per-epoch 30
  rtseg-nas supernet search --supernet runs/supernet --study runs/oneshot --trials 300
  rtseg-nas supernet extract --supernet runs/supernet --arch paper --out runs/paper-from-supernet
  rtseg-nas report --study runs/oneshot
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import (
    COUNT,
    COUNT0,
    FRACTION_OPEN,
    NONNEGATIVE,
    SIZE,
    THREADS,
    add_arch,
    add_data,
    add_device,
    add_seed,
    add_ssh,
    int_in,
    overwrite_help,
    run_inputs,
    ssh_options_from,
)

# What `supernet train` writes into --out; nothing else there is touched.
TRAIN_WRITES = ("supernet.pt", "supernet.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rtseg_nas.cli._main import _add_common

    sub = p.add_subparsers(dest="action", metavar="<action>", required=True)

    t = sub.add_parser("train", help="train the supernet (sandwich rule, in-place distillation)")
    _add_common(t, default=argparse.SUPPRESS)  # --quiet/--no-progress after the action too
    add_data(t)
    t.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder for supernet.pt and supernet.json: new, empty or an earlier supernet train output",
    )
    t.add_argument("--space", metavar="JSON", help="SearchSpace overrides as JSON (default: the search's space)")
    t.add_argument("--size", type=int, default=96, help="image side, px (default: %(default)s)")
    t.add_argument("--epochs", type=int, default=10, help="(default: %(default)s)")
    t.add_argument("--steps-per-epoch", type=int, default=0, help="cap on steps per epoch, 0 = whole split")
    t.add_argument("--batch-size", type=int, default=8, help="(default: %(default)s)")
    t.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: %(default)s)")
    t.add_argument("--random-subnets", type=int, default=2, help="random members per step (default: %(default)s)")
    t.add_argument("--kd-weight", type=float, default=0.5, help="distillation share for non-largest members")
    t.add_argument("--bn-batches", type=int, default=4, help="BN recalibration batches for per-epoch val Dice")
    t.add_argument("--frames", default="ps+fh", help="JNU-IFM frame selection (default: %(default)s)")
    add_seed(t)
    add_device(t)
    t.add_argument("--resume", action="store_true", help="continue OUT/supernet.pt")

    s = sub.add_parser("search", help="NSGA-II over subnets with inherited weights")
    _add_common(s, default=argparse.SUPPRESS)
    _add_search(s)

    e = sub.add_parser("extract", help="one subnet as an ordinary checkpoint")
    _add_common(e, default=argparse.SUPPRESS)
    e.add_argument("--supernet", required=True, metavar="CKPT", help="supernet.pt (or its folder)")
    group = e.add_mutually_exclusive_group(required=True)
    add_arch(group, default=None)
    group.add_argument("--trial", metavar="DIR", help="a search trial folder (STUDY/trials/N, its config.json)")
    e.add_argument("--out", required=True, metavar="DIR", help="folder for checkpoint.pt and config.json")
    e.add_argument("--bn-batches", type=int, help="BN recalibration batches (default: the supernet's)")
    e.add_argument("--overwrite", action="store_true", help=overwrite_help("--out"))


def _add_search(s: argparse.ArgumentParser) -> None:
    # Defaults from the config dataclasses (SupernetSearchConfig.default: this strategy's where they differ
    # from the multi-trial search's). search_spaces' config modules import no torch or Optuna: --help stays fast.
    from search_spaces import SAMPLERS, SupernetSearchConfig

    def default(part: str, name: str):
        return SupernetSearchConfig.default(part, name)

    s.add_argument("--supernet", required=True, metavar="CKPT", help="supernet.pt (or its folder)")
    s.add_argument("--study", required=True, metavar="DIR", help="study folder (created; reused to resume)")
    s.add_argument(
        "--trials",
        type=COUNT0,
        default=default("study", "trials"),
        help="evaluated subnets in total (default: %(default)s)",
    )
    s.add_argument(
        "--target",
        default=default("profiling", "target"),
        help="local, ssh://user@host[:port], jetson-nano-estimate or predict:TABLE (a kernel latency table: "
        "latency with kernels from the config, no export; needed by --predictor) (default: %(default)s)",
    )
    objectives = ",".join(default("objectives", "names"))
    s.add_argument("--objectives", default=objectives, help="as in `search` (default: %(default)s)")
    s.add_argument("--min-fps", type=NONNEGATIVE, default=0, help="constraint: frames/s >= this (0 = none)")
    s.add_argument("--max-latency-ms", type=NONNEGATIVE, default=0, help="constraint: latency <= this, ms (0 = none)")
    s.add_argument("--max-params", type=int_in(0, 10**10), default=0, help="constraint: parameters <= this (0 = none)")
    s.add_argument("--sampler", choices=SAMPLERS, default=default("sampling", "sampler"), help="(default: %(default)s)")
    s.add_argument(
        "--population-size",
        type=int_in(2, 10000),
        default=default("sampling", "population_size"),
        help="NSGA-II population (default: %(default)s)",
    )
    s.add_argument(
        "--bn-batches",
        type=COUNT,
        default=default("evaluation", "bn_batches"),
        help="BN recalibration batches per subnet (default: %(default)s)",
    )
    s.add_argument("--val-batches", type=COUNT0, default=0, help="cap on validation batches, 0 = all")
    s.add_argument(
        "--latency-size",
        type=SIZE,
        default=default("profiling", "latency_size"),
        help="input side timed and judged by --max-latency-ms/--min-fps, px: the deployment size "
        "(default: %(default)s, as search and validate)",
    )
    s.add_argument(
        "--threads",
        type=THREADS,
        default=default("profiling", "threads"),
        help="ONNX Runtime intra-op threads (default: %(default)s)",
    )
    s.add_argument(
        "--latency-runs",
        type=COUNT,
        default=default("profiling", "latency_runs"),
        help="timed runs per architecture (default: %(default)s)",
    )
    s.add_argument(
        "--latency-warmup",
        type=COUNT0,
        default=default("profiling", "latency_warmup"),
        help="warm-up runs per architecture (default: %(default)s)",
    )
    p = s.add_argument_group(
        "predictor search (--predictor): NSGA-II on an accuracy predictor and the kernel latency table "
        "(--target predict:TABLE), then the predicted front re-scored with inherited weights"
    )
    p.add_argument(
        "--predictor",
        action="store_true",
        help="search at predictor speed; --trials is then the re-scored front plus the reference",
    )
    p.add_argument("--samples", type=int_in(20, 10**6), default=300, help="subnets the predictor learns from")
    p.add_argument("--evaluations", type=int_in(1, 10**7), default=5000, help="subnets NSGA-II scores by predictor")
    p.add_argument("--predictor-population", type=int_in(2, 10**5), default=64, help="its NSGA-II population")
    p.add_argument("--holdout", type=FRACTION_OPEN, default=0.2, help="share of the samples held out (default: 0.2)")
    p.add_argument("--rescore", type=int_in(1, 10**4), default=16, help="front members re-scored, at most")
    add_seed(s)
    add_ssh(s)


def run(args: argparse.Namespace) -> int:
    return {"train": _train, "search": _search, "extract": _extract}[args.action](args)


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rtseg_core import check_output_dir, mark_output, read_json, read_manifest
    from search_spaces import SandwichConfig, SearchSpace, train_supernet
    from segmentation import TrainConfig

    out = Path(args.out)
    legacy = read_manifest(out) is None and (out / "supernet.pt").is_file()  # from before manifests
    check_output_dir(
        out,
        verb="supernet train",
        inputs=run_inputs(args, "data", "space"),
        in_place=True,
        writes=TRAIN_WRITES,
        legacy=legacy,
    )
    space = SearchSpace.from_dict(read_json(args.space), source=args.space) if args.space else SearchSpace()
    cfg = TrainConfig(
        data=args.data,
        size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        steps_per_epoch=args.steps_per_epoch or None,
        frames=args.frames,
    )
    sandwich = SandwichConfig(random_subnets=args.random_subnets, kd_weight=args.kd_weight, bn_batches=args.bn_batches)
    result = train_supernet(space, cfg, args.out, sandwich=sandwich, resume=args.resume, progress=args.progress)
    # Marked once written; a run stopped before its end leaves supernet.pt, recognised above for --resume.
    mark_output(out, verb="supernet train", files=TRAIN_WRITES)
    if result.epochs:
        last = result.epochs[-1]
        print(
            f"done: {last.epoch} epochs, val Dice on {cfg.data} largest {last.val_dice_largest:.4f}, "
            f"smallest {last.val_dice_smallest:.4f} (BN recalibrated); {result.wall_s:.0f} s this run"
        )
    print(f"supernet: {result.checkpoint}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from search_spaces import run_supernet_search

    if getattr(args, "predictor", False):
        return _predictor_search(args)
    summary = run_supernet_search(supernet_search_config(args))
    c = summary.counts
    print(
        f"{c['complete']} subnets evaluated ({c['rejected']} rejected, {c['failed']} failed); this run "
        f"{summary.trials_run} in {summary.wall_s:.0f} s, {summary.subnets_per_minute:.1f} subnets/min"
    )
    print("feasible front (inherited weights, BN recalibrated, val split):")
    print(summary.table())
    print(f"study: {summary.study_dir}  (report: rtseg-nas report --study {summary.study_dir})")
    return 0


def _predictor_search(args: argparse.Namespace) -> int:
    from search_spaces import PredictorOptions, run_predictor_search

    options = PredictorOptions(
        samples=args.samples,
        evaluations=args.evaluations,
        population_size=args.predictor_population,
        holdout=args.holdout,
        rescore=args.rescore,
    )
    result = run_predictor_search(supernet_search_config(args), options)
    if args.quiet:  # otherwise logged when it was fitted
        print(result.predictor.describe())
    print(
        f"inherited-weight evaluation: {result.samples_evaluated} subnets this run in {result.samples_cpu_s:.1f} CPU s "
        f"({result.inherited_per_cpu_minute:.1f} per CPU-minute)"
    )
    print(
        f"NSGA-II on the predictors: {result.search.scored} subnets in {result.search.cpu_s:.1f} CPU s "
        f"({result.search.per_cpu_minute:.0f} per CPU-minute; {result.search.per_cpu_minute_warm:.0f} without the "
        f"{result.search.fill_cpu_s:.1f} CPU s that exported new segments and timed new kernels once)"
    )
    if result.front_agreement is not None:
        print(f"front, predicted vs re-scored Dice: {result.front_agreement.describe()}")
    summary = result.summary
    print("feasible front (re-scored: inherited weights, BN recalibrated, val split):")
    print(summary.table())
    print(f"study: {summary.study_dir}  (report: rtseg-nas report --study {summary.study_dir})")
    return 0


def supernet_search_config(args: argparse.Namespace):
    """The :class:`SupernetSearchConfig` the parsed ``supernet search`` options describe."""
    from search_spaces import (
        ObjectiveOptions,
        ProfilingOptions,
        StudyOptions,
        SubnetEvaluation,
        SubnetSampling,
        SupernetSearchConfig,
        WorkerOptions,
    )

    return SupernetSearchConfig(
        study_dir=args.study,
        supernet=args.supernet,
        seed=args.seed,
        study=StudyOptions(trials=args.trials),
        # The options' documented 0 = none (all); the library takes None for that and refuses 0.
        objectives=ObjectiveOptions(
            names=args.objectives,
            min_fps=args.min_fps or None,
            max_latency_ms=args.max_latency_ms or None,
            max_params=args.max_params or None,
        ),
        evaluation=SubnetEvaluation(bn_batches=args.bn_batches, val_batches=args.val_batches or None),
        profiling=ProfilingOptions(
            target=args.target,
            threads=args.threads,
            latency_size=args.latency_size,
            latency_warmup=args.latency_warmup,
            latency_runs=args.latency_runs,
            ssh_options=ssh_options_from(args),
            remote_backend=args.remote_backend,
        ),
        sampling=SubnetSampling(sampler=args.sampler, population_size=args.population_size),
        # main() decides it (terminal, --no-progress, --quiet); parsed without main: the default
        workers=WorkerOptions(progress=getattr(args, "progress", WorkerOptions.progress)),
    )


def _extract(args: argparse.Namespace) -> int:
    from pathlib import Path

    from models import RTSegConfig, create_config
    from rtseg_core import dataset_path, read_json, staged_output
    from search_spaces import extract_subnet, load_supernet, summarize_config

    supernet = load_supernet(args.supernet)
    if args.trial:
        path = Path(args.trial) / "config.json"
        cfg = RTSegConfig.from_dict(read_json(path), source=str(path))
    else:
        cfg = create_config(args.arch)
    # OUT is written whole or not at all, and never over files extract did not write (a fine-tuned run),
    # nor over what it reads: the supernet, the config and the data its BatchNorm is recalibrated on.
    inputs = [supernet.path, dataset_path(supernet.train.data), *run_inputs(args, "arch", "trial")]
    with staged_output(args.out, verb="supernet extract", inputs=inputs, overwrite=args.overwrite) as tmp:
        extract_subnet(supernet, cfg, tmp, bn_batches=args.bn_batches)
    out = Path(args.out)
    print(f"extracted {summarize_config(cfg)}: {out / 'checkpoint.pt'} (config: {out / 'config.json'})")
    return 0
