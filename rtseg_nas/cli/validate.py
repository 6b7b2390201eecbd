"""Validate a search's answer: retrain its front and paper at a full budget, test split, one latency run.

The search ranks architectures by a proxy (a few short epochs, validation split). This verb
retrains the feasible Pareto front (or its --top-k by proxy Dice), the paper architecture and the
parents of the study's compressed variants (STUDY_DIR/compressed/, validated even outside
--top-k) from scratch with one recipe (defaults = train's: 30 epochs, 256 px, lr 1e-3, batch 8)
and evaluates each on the TEST split.

Compressed variants: after a parent's full-budget training, each variant's recipe chain is
re-applied to the validated parent (prune with its stored spec and step schedule, fine-tune
--finetune-epochs epochs in total, split over the steps, default the variant's own budget: its
--finetune-budget fraction of the validated parent's epochs, else its own epochs; with the
variant's own loss, distilled from the validated parent when the variant was; other fine-tune
settings compress's defaults; then quantize with its stored spec) and evaluated with ONNX
Runtime on its exported graph on the TEST split. `prune --study S --parent paper` makes
variants of paper itself, re-applied to the validated paper of each seed.

Latency is taken at the deployment size (--latency-size, default 256) on --latency-target
(default: the study's --target): local = one alternating ONNX Runtime run over every candidate
here; ssh://... = the device, in --device-rounds rounds that each time every candidate once in a
rotated order (a candidate's latency = the median of its round medians, so device drift spreads
over all); jetson-nano-estimate / predict:TABLE = the estimate / prediction per candidate,
labelled ESTIMATED / PREDICTED. The study's latency limits are judged only on its own target.

It prints the validated table and the rank agreement between proxy Dice and full-budget Dice
(Kendall tau, Spearman, bootstrap 95 % intervals, n; architectures only), and writes
STUDY_DIR/validated/<name>/candidate.json (source "validated"), which `report` shows apart from
the proxy front.

Seeds: --seeds K (the K training seeds --seed .. --seed+K-1) or --seeds 0,1,2 trains every
candidate, paper and each re-applied variant once per seed, all on the split and images of --seed
(so seed s of two models is a paired comparison); each (candidate, seed) is one claim. Records
keep every seed's test metrics; a record's Dice is the mean over the seeds, with its 95 %
t-interval, and each model is compared with paper seed by seed (mean difference, 95 % interval,
verdict better / indistinguishable / worse; one seed: "single run", no verdict). A run that never
learned a class (per-class Dice < 0.05) is flagged as collapsed with its seed and kept in the
mean. Latency stays one run per model, on the first seed's graph. A later run with more seeds
reuses the finished ones. The first seed's files stay in validated/<name>/, another seed's go to
validated/seed-<s>/<name>/.

Reuse: comparing search strategies validates many studies with one recipe, and each of them
trains paper (and sometimes the same architecture) with the same seeds on the same data.
--reuse-from STUDY (repeatable) copies such a finished training (checkpoint and files; the
other study is only read) when the architecture's config, the budget and the training seed
are the same (the check a resumed run applies); its trained.json names the source in
"reused_from", and re-applied variants, latency and verdicts use it as if trained here.
Compressed variants are re-applied here. A folder that is not a study, or this study, is refused.

Resumable: run the same command again; finished candidates and variants are skipped and a killed
training continues from its last epoch; another --finetune-epochs (like another training budget)
is refused. Several workers (machines) share the work through the search's --storage: each
claims a candidate (Optuna study "<study name>-validate" in that storage) and re-applies its
variants; the final latency run times a variant made on another machine on a graph rebuilt
from its config, pruning history and quantization spec (same graph, fresh weights; the record
says so).

Examples (CPU-sized):
  rtseg-nas validate --study runs/nas --epochs 20 --size 96 --top-k 3
  rtseg-nas validate --study runs/shared --storage postgresql://nas@db-host/nas --study-name nas
  rtseg-nas validate --study runs/jetson --latency-target ssh://nvidia@jetson --known-hosts hosts
"""

from __future__ import annotations

import argparse

from rtseg_core import DEPLOYMENT_SIZE
from rtseg_nas.cli._args import (
    BATCH,
    COUNT,
    COUNT0,
    LEARNING_RATE,
    SIZE,
    SSH_FILES,
    THREADS,
    add_device,
    add_json_out,
    add_seed,
    add_ssh,
    check_file_outputs,
    emit,
    ssh_options_from,
    timing_defaults,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, metavar="DIR", help="the folder a search wrote (with study.json)")
    p.add_argument(
        "--top-k",
        type=COUNT,
        help="validate only the K front members with the best proxy Dice (paper and the parents of compressed "
        "variants are validated in any case)",
    )
    p.add_argument("--epochs", type=COUNT, default=30, help="full training budget, epochs (default: %(default)s)")
    p.add_argument("--size", type=SIZE, default=256, help="training/test image side, px (default: %(default)s)")
    p.add_argument("--batch-size", type=BATCH, default=8, help="(default: %(default)s)")
    p.add_argument("--lr", type=LEARNING_RATE, default=1e-3, help="peak learning rate (default: %(default)s)")
    add_seed(p)
    p.add_argument(
        "--seeds",
        metavar="K|S,S,..",
        help="training seeds: a count K (seeds --seed .. --seed+K-1) or a list like 0,1,2; the split and the data "
        "stay those of --seed (default: 1 seed, --seed)",
    )
    p.add_argument("--data", help="dataset (default: the search's --data)")
    p.add_argument(
        "--reuse-from",
        metavar="STUDY",
        action="append",
        default=[],
        help="another validated study (repeatable): a (candidate, seed) whose architecture (same config) was "
        "trained there to the end with this same recipe (budget, data, data and training seed, size) is copied "
        "from there (read only) instead of trained again; for comparing search strategies with one recipe, where "
        "every study trains paper with the same seeds (default: train everything here)",
    )
    add_device(p)
    p.add_argument(
        "--finetune-epochs",
        type=COUNT0,
        help="total fine-tune epochs after re-applying a compressed variant's pruning, split over its steps "
        "(default: the variant's own budget)",
    )
    p.add_argument(
        "--latency-size", type=SIZE, default=DEPLOYMENT_SIZE, help="deployment input side timed (default: %(default)s)"
    )
    p.add_argument(
        "--latency-target",
        metavar="TARGET",
        help="where latency is taken: local, ssh://user@host[:port], jetson-nano-estimate or predict:TABLE "
        "(default: the study's --target)",
    )
    p.add_argument(
        "--threads",
        type=THREADS,
        help="ONNX Runtime threads (default: the search's --threads, if this machine has that many cores)",
    )
    timing = timing_defaults()
    p.add_argument(
        "--rounds", type=COUNT, default=timing.rounds, help="local alternating rounds (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=COUNT0, default=timing.warmup, help="warm-up runs per candidate (default: %(default)s)"
    )
    p.add_argument(
        "--device-rounds", type=COUNT, default=timing.device_rounds, help="SSH device: rounds (default: %(default)s)"
    )
    p.add_argument(
        "--device-runs",
        type=COUNT,
        default=timing.device_runs,
        help="SSH device: timed runs per candidate and round (default: %(default)s)",
    )
    p.add_argument("--storage", metavar="URL", help="the search's storage (default: sqlite:///STUDY_DIR/study.db)")
    p.add_argument("--study-name", help="the search study's name (default: from study.json)")
    p.add_argument("--heartbeat-interval", type=COUNT, default=10, help="seconds (default: %(default)s)")
    p.add_argument("--grace-period", type=COUNT, help="seconds before a silent worker's claim is freed (default: 2x)")
    add_ssh(p)
    add_json_out(p, "the validated records and the rank agreement")


def run(args: argparse.Namespace) -> int:
    import logging

    from profiling import TimingOptions
    from validate import ValidateConfig, parse_seeds, run_validate

    check_file_outputs(args, {"--json": args.json}, "study", "data", "latency_target", *SSH_FILES)
    if not getattr(args, "debug", False):
        for name in ("segmentation", "profiling"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # SSH options for an ssh:// latency target, whether given here or stored as the study's target.
    ssh = ssh_options_from(argparse.Namespace(**{**vars(args), "target": "ssh://"}))
    seeds = parse_seeds(args.seeds, args.seed) if args.seeds else ()
    config = ValidateConfig(
        study_dir=args.study, top_k=args.top_k, epochs=args.epochs, size=args.size, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, seeds=seeds, data=args.data, device=args.device, latency_size=args.latency_size,
        latency_target=args.latency_target, threads=args.threads, ssh_options=ssh,
        timing=TimingOptions(rounds=args.rounds, warmup=args.warmup, device_rounds=args.device_rounds,
                             device_runs=args.device_runs),
        remote_backend=args.remote_backend, finetune_epochs=args.finetune_epochs, storage=args.storage,
        study_name=args.study_name, heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period,
        reuse_from=tuple(args.reuse_from),
    )  # fmt: skip
    summary = run_validate(config)
    payload = {
        "records": [r.to_dict() for r in summary.records],
        "proxy_dice": summary.proxy_dice,
        "agreement": summary.agreement.to_dict() if summary.agreement else None,
        "budget": summary.budget,
        "trained_now": list(summary.trained_now),
        "finished_before": list(summary.finished_before),
        "not_validated": list(summary.not_validated),
        "latency_target": summary.latency_target,
        "latency_kind": summary.latency_kind,
        "seeds": list(summary.seeds),
        "models": {n: m.to_dict() for n, m in summary.models.items()},
    }
    emit(args.json, payload, lambda: _show(summary), what="validation")
    return 0


def _show(summary) -> None:
    b = summary.budget
    print(
        f"validated {len(summary.records)} candidate(s) at {b['epochs']} epochs x {b['size']} px on {b['data']} "
        f"(test split); trained now: {', '.join(summary.trained_now) or 'none'}; finished before: "
        f"{', '.join(summary.finished_before) or 'none'}; latency {summary.latency_kind.upper()} on "
        f"{summary.latency_target}"
    )
    print(summary.table())
    print(summary.latency_table)
    if summary.agreement is not None:
        print(f"proxy vs full-budget Dice: {summary.agreement.describe()}")
    else:
        print("proxy vs full-budget Dice: fewer than 3 validated candidates, no rank agreement")
    print(summary.verdict())
    print(summary.paired())
    if summary.not_validated:
        print(
            f"not validated: compressed variants {', '.join(summary.not_validated)} (their parent's claim holds no "
            "re-applied result; their numbers remain proxy-parent numbers)"
        )
    print(f"files: {summary.study_dir / 'validated'}")
