"""Subnets per CPU-minute of the one-shot search, before and after issue 22, and the accuracy predictor's
held-out rank agreement. Not a test: it takes minutes to hours (the defaults are the lead's larger run).

    OMP_NUM_THREADS=1 python scripts/measure_oneshot.py OUT                       # 96 px supernet, 300 samples
    OMP_NUM_THREADS=1 python scripts/measure_oneshot.py OUT --size 64 --epochs 4 --steps 20 \\
        --samples 60 --evaluations 2000 --latency-size 64 --before 3              # a pilot

Stages (each skipped when its output exists, so a stopped run resumes):

1. ``OUT/supernet``: ``supernet train`` on synthetic:240 at --size (its CPU seconds from supernet.json).
2. ``OUT/table.json``: ``latency-table build`` at --latency-size on this CPU (or --table TABLE).
3. before: --before subnets through the old per-subnet path, ``profile_model`` (ONNX export, fvcore +
   thop, ONNX Runtime timing; and the same with ``--target predict:TABLE``, which exported and counted
   too), each plus BatchNorm recalibration and validation.
4. after: the same subnets with latency from the table and kernels from the config
   (:class:`profiling.SubnetLatency`), cold (every segment exported) and warm (all seen), plus the
   same inherited evaluation.
5. ``supernet search --predictor`` into ``OUT/study``: the predictor's held-out Spearman/Kendall with
   intervals and RMSE, NSGA-II subnets per CPU-minute through the predictors, the re-scored front.

Every number is printed with its conditions (CPU, threads, load) and appended to OUT/results.json.
CPU seconds are ``time.process_time`` of this process (every thread), comparable across loads.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiling import SubnetLatency, profile_model  # noqa: E402
from rtseg_core import read_supernet_training  # noqa: E402
from rtseg_nas.cli import main as cli  # noqa: E402
from search_spaces import (  # noqa: E402
    PredictorOptions,
    SubnetEvaluator,
    SupernetSearchConfig,
    load_supernet,
    predictor_nsga,
    random_config,
    run_predictor_search,
    summarize_config,
)


def conditions() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }


def say(results: dict, key: str, value, text: str) -> None:
    results[key] = value
    print(f"{text}   [{key}; load {os.getloadavg()[0]:.1f}]", flush=True)


def per_minute(n: int, cpu_s: float) -> float:
    return n / (cpu_s / 60) if cpu_s > 0 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--size", type=int, default=96, help="supernet training and evaluation side, px")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--steps", type=int, default=25, help="steps per epoch")
    p.add_argument("--data", default="synthetic:240")
    p.add_argument("--latency-size", type=int, default=256, help="side the latency is predicted/timed at, px")
    p.add_argument("--table", type=Path, help="an existing table for this CPU (default: build OUT/table.json)")
    p.add_argument("--table-models", type=int, default=20, help="space samples the built table learns from")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--evaluations", type=int, default=5000)
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--rescore", type=int, default=16)
    p.add_argument("--before", type=int, default=5, help="subnets timed through the old and new per-subnet paths")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the search's progress lines
    torch.set_num_threads(1)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["conditions"] = conditions()
    results["args"] = {k: str(v) for k, v in vars(args).items()}
    print(f"conditions: {results['conditions']}")

    # 1. the supernet
    sn_dir = out / "supernet"
    if not (sn_dir / "supernet.pt").is_file():
        cli(["supernet", "train", "--data", args.data, "--size", str(args.size), "--epochs", str(args.epochs),
             "--steps-per-epoch", str(args.steps), "--out", str(sn_dir), "--seed", str(args.seed)])  # fmt: skip
    record = read_supernet_training(sn_dir)
    say(results, "supernet_train_cpu_s", record.get("cpu_s"),
        f"supernet: {args.epochs} epochs x {args.steps} steps at {args.size} px, {record.get('cpu_s')} CPU s, "
        f"last val Dice largest {record['epochs'][-1]['val_dice_largest']:.4f}, "
        f"smallest {record['epochs'][-1]['val_dice_smallest']:.4f}")  # fmt: skip

    # 2. the latency table
    table = args.table or out / "table.json"
    if not table.is_file():
        cpu0 = time.process_time()
        cli(["latency-table", "build", "--out", str(table), "--size", str(args.latency_size),
             "--models", str(args.table_models), "--calibrate", "8", "--seed", str(args.seed)])  # fmt: skip
        say(results, "table_build_cpu_s", time.process_time() - cpu0, f"table built: {table}")

    # 3./4. one subnet at a time, before and after
    config = SupernetSearchConfig.from_options(
        out / "study", sn_dir, seed=args.seed, target=f"predict:{table}", latency_size=args.latency_size,
        population_size=args.population, progress=False,
    )  # fmt: skip
    evaluator = SubnetEvaluator(config)
    evaluator.check()
    supernet = load_supernet(sn_dir)
    rng = random.Random(f"measure:{args.seed}")
    subnets = [random_config(supernet.space, rng) for _ in range(args.before)]
    rows = {"profile_local": [], "profile_predict": [], "eval": [], "table_cold": [], "table_warm": []}
    for cfg in subnets:
        model = supernet.net.extract(cfg)
        for name, target in (("profile_local", "local"), ("profile_predict", f"predict:{table}")):
            cpu0 = time.process_time()
            profile_model(model, target=target, size=args.latency_size, backends=("onnxruntime",), threads=1,
                          warmup=3, runs=10, seed=args.seed, model_name="m")  # fmt: skip
            rows[name].append(time.process_time() - cpu0)
        cpu0 = time.process_time()
        evaluator.inherited_dice(cfg)
        rows["eval"].append(time.process_time() - cpu0)
    latency = SubnetLatency(table, size=args.latency_size, segment_cache=False)  # cold for these subnets
    for key in ("table_cold", "table_warm"):
        for cfg in subnets:
            cpu0 = time.process_time()
            latency.cost(cfg)
            rows[key].append(time.process_time() - cpu0)
    med = {k: statistics.median(v) for k, v in rows.items()}
    say(results, "per_subnet_cpu_s_median", med,
        f"per subnet, median CPU s over {args.before} subnets at {args.latency_size} px: profile_model local "
        f"{med['profile_local']:.3f}, profile_model predict:TABLE {med['profile_predict']:.3f}, BN recalibration + "
        f"validation at {args.size} px {med['eval']:.3f}; table latency from the config: cold "
        f"{med['table_cold']:.4f} ({latency.segments.exports} segments exported, {latency.timed} kernels timed), "
        f"warm {med['table_warm']:.5f}")  # fmt: skip
    for name, lat in (("before_local", med["profile_local"]), ("before_predict", med["profile_predict"]),
                      ("after_cold", med["table_cold"]), ("after_warm", med["table_warm"])):  # fmt: skip
        say(results, f"inherited_per_cpu_minute_{name}", per_minute(1, lat + med["eval"]),
            f"real inherited evaluation ({name}: latency + BN recalibration + validation): "
            f"{per_minute(1, lat + med['eval']):.1f} subnets per CPU-minute")  # fmt: skip
    say(results, "predicted_per_cpu_minute_before", per_minute(1, med["profile_predict"]),
        f"through predictors before (profile_model predict:TABLE per subnet, no accuracy evaluation): "
        f"{per_minute(1, med['profile_predict']):.1f} subnets per CPU-minute")  # fmt: skip

    # 5. the predictor search
    options = PredictorOptions(samples=args.samples, evaluations=args.evaluations, population_size=args.population,
                               rescore=args.rescore)  # fmt: skip
    result = run_predictor_search(config, options, evaluator=evaluator)
    h = result.predictor.holdout
    say(results, "predictor", result.predictor.to_dict(), result.predictor.describe())
    say(results, "holdout_spearman", [h.spearman, h.spearman_low, h.spearman_high],
        f"held-out Spearman {h.spearman:.3f} [{h.spearman_low:.3f}, {h.spearman_high:.3f}] (n = {h.n})")  # fmt: skip
    say(results, "samples_per_cpu_minute", result.inherited_per_cpu_minute,
        f"predictor samples (inherited Dice only): {result.samples_evaluated} in {result.samples_cpu_s:.1f} CPU s, "
        f"{result.inherited_per_cpu_minute:.1f} per CPU-minute")  # fmt: skip
    n = result.search
    say(results, "predicted_per_cpu_minute_after", n.per_cpu_minute,
        f"NSGA-II through predictors (accuracy predictor + table), caches cold: {n.scored} subnets in "
        f"{n.cpu_s:.1f} CPU s, {n.per_cpu_minute:.0f} per CPU-minute ({n.fill_cpu_s:.1f} CPU s of it exported "
        f"new segments and timed new kernels: {n.per_cpu_minute_warm:.0f} per CPU-minute without)")  # fmt: skip
    # the same NSGA-II run again in this process: every segment and kernel seen, the steady state
    warm = predictor_nsga(config, options, result.predictor, evaluator.subnet_latency())
    say(results, "predicted_per_cpu_minute_after_warm", warm.per_cpu_minute,
        f"NSGA-II through predictors, caches warm (the same run repeated): {warm.scored} subnets in "
        f"{warm.cpu_s:.1f} CPU s, {warm.per_cpu_minute:.0f} per CPU-minute")  # fmt: skip
    if result.front_agreement is not None:
        say(results, "front_agreement", result.front_agreement.to_dict(),
            f"front, predicted vs re-scored Dice: {result.front_agreement.describe()}")  # fmt: skip
    for m in result.front:
        print(f"  front trial {m['trial']}: {m['summary']}  predicted Dice {m['predicted_dice']:.4f}, re-scored "
              f"{m['dice']:.4f}, {m['latency_ms']:.3f} ms")  # fmt: skip
    results["front"] = result.front
    results["subnets"] = [summarize_config(c) for c in subnets]
    results_path.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {results_path}")


if __name__ == "__main__":
    main()
