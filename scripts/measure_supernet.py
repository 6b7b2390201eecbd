"""The supernet measurements of the README (synthetic data, CPU, 1 thread). Not a test: it takes minutes.

    python scripts/measure_supernet.py OUT train        # supernet vs `paper` trained once, same steps
    python run.py supernet search --supernet OUT/supernet --study OUT/oneshot --trials 60
    python scripts/measure_supernet.py OUT rank 12      # inherited vs stand-alone Dice, Kendall/Spearman
    python scripts/measure_supernet.py OUT finetune 2   # extracted paper + 2 fine-tune epochs vs paper alone
    python scripts/measure_supernet.py OUT front 24,46,21  # search front members: fine-tuned vs trained alone
    python scripts/measure_supernet.py OUT breakdown    # seconds per step of one subnet's evaluation

Every stage appends to OUT/results.json. The budget (BUDGET) is the same for the supernet and every
stand-alone model: synthetic:240 (168 training images), 64x64, batch 8, lr 3e-3, 8 epochs = 168 steps.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from scipy.stats import kendalltau, spearmanr
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import RTSegConfig, build_model, count_parameters, create_config, load_model, recalibrate_batchnorm  # noqa: E402
from profiling import profile_model  # noqa: E402
from search_spaces import (  # noqa: E402  # noqa: E402
    SearchSpace,
    calibration_batches,
    extract_subnet,
    largest_config,
    load_supernet,
    random_config,
    smallest_config,
    summarize_config,
    train_supernet,
)
from segmentation import MetricAccumulator, TrainConfig, evaluate_model, load_split, train  # noqa: E402

BUDGET = dict(data="synthetic:240", size=64, batch_size=8, steps_per_epoch=25, epochs=8, seed=0, device="cpu", lr=3e-3)


def dice(model, split: str) -> float:
    ev = evaluate_model(model, BUDGET["data"], split=split, size=BUDGET["size"], device="cpu", progress=False)
    return ev.dice


def main() -> None:
    torch.set_num_threads(1)
    out, stage, arg = Path(sys.argv[1]), sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "")
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    res = json.loads(results_path.read_text()) if results_path.exists() else {}
    tc, space = TrainConfig(**BUDGET), SearchSpace()

    if stage == "train":
        shutil.rmtree(out / "paper", ignore_errors=True)
        shutil.rmtree(out / "supernet", ignore_errors=True)
        t = time.perf_counter()
        r = train(create_config("paper"), tc, out / "paper", progress=False)
        paper_s = time.perf_counter() - t
        t = time.perf_counter()
        s = train_supernet(space, tc, out / "supernet", progress=False)
        supernet_s = time.perf_counter() - t
        res["train"] = {"budget": BUDGET, "paper_wall_s": paper_s, "supernet_wall_s": supernet_s,
                        "ratio": supernet_s / paper_s, "paper_val_dice": r.val_dice,
                        "supernet_last": asdict(s.epochs[-1]),
                        "container_params": count_parameters(build_model(largest_config(space)))}  # fmt: skip
    elif stage == "rank":
        sn = load_supernet(out / "supernet")
        rng = random.Random(123)
        cfgs = [create_config("paper"), smallest_config(space), largest_config(space)]
        while len(cfgs) < int(arg or 12):
            c = random_config(space, rng)
            if c not in cfgs:
                cfgs.append(c)
        bn = calibration_batches(sn.train, 4)
        rows = []
        for c in cfgs:
            m = sn.net.extract(c)
            recalibrate_batchnorm(m, bn)
            inherited = dice(m, "val")
            t = time.perf_counter()
            alone = train(c, tc, None, progress=False).val_dice
            rows.append({"config": summarize_config(c), "params": count_parameters(m), "inherited_val_dice": inherited,
                         "standalone_val_dice": alone, "standalone_train_s": time.perf_counter() - t})  # fmt: skip
            print(rows[-1], flush=True)
        a, b = [r["inherited_val_dice"] for r in rows], [r["standalone_val_dice"] for r in rows]
        kt, sp = kendalltau(a, b), spearmanr(a, b)
        res["rank"] = {"rows": rows, "n": len(rows), "kendall_tau": kt.statistic, "kendall_p": kt.pvalue,
                       "spearman": sp.statistic, "spearman_p": sp.pvalue}  # fmt: skip
    elif stage == "finetune":
        sn = load_supernet(out / "supernet")
        paper = create_config("paper")
        shutil.rmtree(out / "paper_ft", ignore_errors=True)
        extract_subnet(sn, paper, out / "paper_ft")
        before = dice(load_model(out / "paper_ft" / "checkpoint.pt")[0], "test")
        t = time.perf_counter()
        train(paper, TrainConfig(**{**BUDGET, "epochs": int(arg or 2)}), out / "paper_ft", resume=True, progress=False)
        ft_s = time.perf_counter() - t
        after = dice(load_model(out / "paper_ft" / "checkpoint.pt")[0], "test")
        alone = dice(load_model(out / "paper" / "checkpoint.pt")[0], "test")
        res["finetune"] = {"finetune_epochs": int(arg or 2), "extracted_test_dice_no_ft": before,
                           "extracted_test_dice_ft": after, "finetune_wall_s": ft_s, "paper_alone_test_dice": alone,
                           "paper_alone_epochs": BUDGET["epochs"]}  # fmt: skip
    elif stage == "front":
        sn = load_supernet(out / "supernet")
        rows = []
        for trial in arg.split(","):
            cfg = RTSegConfig.from_dict(json.loads((out / "oneshot" / "trials" / trial / "config.json").read_text()))
            ft_dir, alone_dir = out / f"front_ft_{trial}", out / f"front_alone_{trial}"
            shutil.rmtree(ft_dir, ignore_errors=True)
            shutil.rmtree(alone_dir, ignore_errors=True)
            extract_subnet(sn, cfg, ft_dir)
            t = time.perf_counter()
            train(cfg, TrainConfig(**{**BUDGET, "epochs": 2}), ft_dir, resume=True, progress=False)
            ft_s = time.perf_counter() - t
            ft = load_model(ft_dir / "checkpoint.pt")[0]
            t = time.perf_counter()
            train(cfg, tc, alone_dir, progress=False)
            alone_s = time.perf_counter() - t
            alone = load_model(alone_dir / "checkpoint.pt")[0]
            rows.append({"trial": trial, "config": summarize_config(cfg), "ft2_val": dice(ft, "val"),
                         "ft2_test": dice(ft, "test"), "ft2_s": ft_s, "alone8_val": dice(alone, "val"),
                         "alone8_test": dice(alone, "test"), "alone8_s": alone_s})  # fmt: skip
            print(rows[-1], flush=True)
        res["front_validation"] = rows
    elif stage == "breakdown":
        sn = load_supernet(out / "supernet")
        bn = calibration_batches(sn.train, 4)
        val_ds = load_split(BUDGET["data"], "val", size=BUDGET["size"], augment=False)
        val = [(b["image"], b["mask"], list(b["id"])) for b in DataLoader(val_ds, batch_size=16)]
        cfg = create_config("paper")
        times: dict[str, list[float]] = {k: [] for k in ("extract", "bn_recal", "val_metrics", "profile_local_ort",
                                                         "profile_estimate")}  # fmt: skip
        for _ in range(3):
            t = time.perf_counter()
            m = sn.net.extract(cfg)
            times["extract"].append(time.perf_counter() - t)
            t = time.perf_counter()
            recalibrate_batchnorm(m, bn)
            times["bn_recal"].append(time.perf_counter() - t)
            t = time.perf_counter()
            acc = MetricAccumulator()
            with torch.no_grad():
                for x, y, ids in val:
                    acc.update(m(x).argmax(1), y, ids)
            acc.summary()
            times["val_metrics"].append(time.perf_counter() - t)
            t = time.perf_counter()
            profile_model(m, target="local", size=64, backends=("onnxruntime",), threads=1, warmup=3, runs=10)
            times["profile_local_ort"].append(time.perf_counter() - t)
            t = time.perf_counter()
            profile_model(m, target="jetson-nano-estimate", size=64)
            times["profile_estimate"].append(time.perf_counter() - t)
        res["breakdown_s"] = {k: statistics.median(v) for k, v in times.items()}
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    results_path.write_text(json.dumps(res, indent=2))
    print(json.dumps({k: v for k, v in res.items() if k != "rank"}, indent=1)[:4000])


if __name__ == "__main__":
    main()
