"""The whole pipeline on the built-in synthetic data, ending with the report's path.

Stages (each resumable; running the demo again skips what is finished):
  1. train the paper network (--size, --epochs) and evaluate it on the test split;
  2. profile it at --profile-size: ONNX Runtime and PyTorch on this machine (measured) and the
     Jetson Nano roofline (estimated);
  3. a small multi-objective search (--trials, proxy training at --search-size);
  4. compress the --top-k best feasible front members: pruned to --prune-macs of their MACs
     with Torch-Pruning and fine-tuned, then ONNX Runtime static INT8;
  5. validate the --validate-top-k best proxy front members, paper and the compressed variants'
     parents: retrained from scratch for --validate-epochs at --validate-lr with --validate-seeds
     paired training seeds, each variant's recipe (prune, its own fine-tune epochs, INT8)
     re-applied to each seed's validated parent, all evaluated on the test split and timed in one
     alternating run; the report's ship menu pairs each with paper;
  6. the report (plots, tables, one HTML page) in OUT/study/report/.

The defaults took 14 min 37 s on a 2-core AMD EPYC (2026-12-07, another job on the second core).
Accuracy here is on synthetic data.
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import COUNT, FRACTION, LEARNING_RATE, SEED, SIZE, THREADS, add_threads, overwrite_help


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rtseg_nas.pipeline import DemoConfig

    d = DemoConfig()  # its defaults are the CLI defaults
    p.add_argument("--out", default=str(d.out_dir), help="output directory (default: %(default)s)")
    p.add_argument("--data", default=d.data, help="dataset spec (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=d.seed, help="random seed (default: %(default)s)")
    p.add_argument(
        "--size", type=SIZE, default=d.size, help="training size of the paper network (default: %(default)s)"
    )
    p.add_argument("--epochs", type=COUNT, default=d.epochs, help="its training epochs (default: %(default)s)")
    p.add_argument("--trials", type=COUNT, default=d.trials, help="search trials (default: %(default)s)")
    p.add_argument("--search-size", type=SIZE, default=d.search_size, help="proxy-training size (default: %(default)s)")
    p.add_argument("--search-epochs", type=COUNT, default=d.search_epochs, help="proxy epochs (default: %(default)s)")
    p.add_argument("--top-k", type=COUNT, default=d.top_k, help="front members to compress (default: %(default)s)")
    p.add_argument(
        "--prune-macs", type=FRACTION, default=d.prune_macs, help="MACs fraction kept (default: %(default)s)"
    )
    p.add_argument(
        "--validate-top-k", type=COUNT, default=d.validate_top_k, help="front members validated (default: %(default)s)"
    )
    p.add_argument(
        "--validate-epochs", type=COUNT, default=d.validate_epochs, help="their full budget (default: %(default)s)"
    )
    p.add_argument(
        "--validate-lr", type=LEARNING_RATE, default=d.validate_lr,
        help="their peak learning rate (default: %(default)s; train's 1e-3 leaves paper half-trained on some seeds at "
        "this short budget)",
    )  # fmt: skip
    p.add_argument(
        "--validate-seeds", type=COUNT, default=d.validate_seeds,
        help="paired training seeds per validated model, --seed .. --seed+K-1 (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--profile-size", type=SIZE, default=d.profile_size, help="profiling size (default: %(default)s)")
    p.add_argument("--threads", type=THREADS, default=d.threads, help="inference threads timed (default: %(default)s)")
    add_threads(p, "--train-threads")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=overwrite_help("--out") + " (the demo writes into it and deletes nothing)",
    )


def run(args: argparse.Namespace) -> int:
    from rtseg_nas.pipeline import DemoConfig, run_demo

    cfg = DemoConfig(
        out_dir=args.out, data=args.data, seed=args.seed, size=args.size, epochs=args.epochs, trials=args.trials,
        search_size=args.search_size, search_epochs=args.search_epochs, top_k=args.top_k,
        prune_macs=args.prune_macs, profile_size=args.profile_size, threads=args.threads,
        validate_top_k=args.validate_top_k, validate_epochs=args.validate_epochs, validate_seeds=args.validate_seeds,
        validate_lr=args.validate_lr, train_threads=args.train_threads,
    )  # fmt: skip
    result = run_demo(cfg, progress=args.progress, overwrite=args.overwrite)
    print("stages:")
    for name, t in result.stages.items():
        took = "skipped (already done)" if t["skipped"] else f"{t['seconds']:.0f} s"
        print(f"  {name:<15} {took}")
    print(f"total: {result.wall_s:.0f} s")
    print(f"report: {result.report}")
    return 0
