"""The accuracy predictor and inherited weights against stand-alone training (README "At predictor speed").

Not a test: it trains 12 subnets per seed (about 20 CPU-minutes per seed on a 2-core AMD EPYC).

    OMP_NUM_THREADS=1 python scripts/measure_predictor_agreement.py train OUT SUPERNET SEED
    OMP_NUM_THREADS=1 python scripts/measure_predictor_agreement.py analyse OUT SUPERNET[:STUDY] ...

``train``: the 12 subnets of the earlier rank check, re-drawn by its rule (paper, the supernet space's
smallest and largest, 9 drawn with ``random.Random(123)``; scripts/measure_supernet.py ``rank``),
each trained alone at validate's budget (synthetic:400, 96 px, 12 epochs, lr 1e-3; the data seed is
the seed, so seed 1 also draws its own synthetic training images), test Dice on the data-seed-0 test
split at the 256 reference; one line per subnet in OUT/standalone-sSEED.jsonl (resumable).
``analyse``: for each supernet, the 12 subnets' inherited val Dice exactly as ``supernet search``
scores them, and with ``:STUDY`` (a ``--predictor`` search of that supernet) its accuracy predictor
refit from STUDY/predictor_samples.jsonl (same seed and holdout: the same model); Spearman/Kendall
with bootstrap intervals against the stand-alone mean over seeds, seed against seed, and a paired
bootstrap of the Spearman difference between supernets (the longer-schedule check).
Writes OUT/agreement.json.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import RTSegConfig, create_config, load_model  # noqa: E402
from rtseg_core import rank_agreement  # noqa: E402
from search_spaces import (  # noqa: E402
    SubnetEvaluator,
    SupernetSearchConfig,
    fit_accuracy_predictor,
    largest_config,
    load_supernet,
    random_config,
    smallest_config,
    summarize_config,
)
from segmentation import TrainConfig, evaluate_model, train  # noqa: E402

DATA, SIZE, EPOCHS, LR = "synthetic:400", 96, 12, 1e-3


def twelve(space) -> list[RTSegConfig]:
    rng = random.Random(123)
    cfgs = [create_config("paper"), smallest_config(space), largest_config(space)]
    while len(cfgs) < 12:
        c = random_config(space, rng)
        if c not in cfgs:
            cfgs.append(c)
    return cfgs


def train_alone(out: Path, supernet: str, seed: int) -> None:
    space = load_supernet(supernet).space
    rows_path = out / f"standalone-s{seed}.jsonl"
    done = {json.loads(x)["i"] for x in rows_path.read_text().splitlines()} if rows_path.exists() else set()
    for i, cfg in enumerate(twelve(space)):
        if i in done:
            continue
        folder = out / f"s{seed}" / f"m{i}"
        cpu0 = time.process_time()
        tc = TrainConfig(data=DATA, size=SIZE, epochs=EPOCHS, lr=LR, seed=seed, device="cpu")
        train(cfg, tc, folder, progress=False)
        model = load_model(folder / "checkpoint.pt")[0]
        ev = evaluate_model(model, DATA, split="test", size=SIZE, device="cpu", progress=False)
        row = {"i": i, "seed": seed, "config": cfg.to_dict(), "summary": summarize_config(cfg), "test_dice": ev.dice,
               "ps": ev.summary.ps.dice, "fh": ev.summary.fh.dice, "cpu_s": time.process_time() - cpu0}  # fmt: skip
        with rows_path.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
        print(i, row["summary"], round(row["test_dice"], 4), f"{row['cpu_s']:.0f} CPU s", flush=True)


def _evaluator(supernet: str, scratch: Path) -> SubnetEvaluator:
    """Scores subnets as `supernet search --supernet SUPERNET` with its defaults does."""
    ev = SubnetEvaluator(SupernetSearchConfig.from_options(scratch, supernet))
    ev.check()
    return ev


def analyse(out: Path, specs: list[str]) -> None:
    rows = [json.loads(x) for f in sorted(out.glob("standalone-s*.jsonl")) for x in f.read_text().splitlines()]
    by_i: dict[int, dict] = {}
    for r in rows:
        entry = by_i.setdefault(r["i"], {"config": r["config"], "summary": r["summary"], "dice": {}})
        entry["dice"][r["seed"]] = r["test_dice"]
    seeds = sorted({r["seed"] for r in rows})
    idx = [i for i in sorted(by_i) if all(s in by_i[i]["dice"] for s in seeds)]
    cfgs = [RTSegConfig.from_dict(by_i[i]["config"]) for i in idx]
    alone = [float(np.mean([by_i[i]["dice"][s] for s in seeds])) for i in idx]
    per_seed = {s: [by_i[i]["dice"][s] for i in idx] for s in seeds}
    res = {"n": len(idx), "seeds": seeds, "subnets": [by_i[i]["summary"] for i in idx], "standalone_mean": alone,
           "standalone_per_seed": per_seed, "supernets": {}}  # fmt: skip
    if len(seeds) >= 2:
        res["seed_vs_seed"] = rank_agreement(per_seed[seeds[0]], per_seed[seeds[1]]).to_dict()
    for spec in specs:
        supernet, _, study = spec.partition(":")
        ev = _evaluator(supernet, out / "scratch-study")
        inherited = [ev.inherited_dice(c) for c in cfgs]
        entry = {"inherited": inherited, "inherited_vs_standalone": rank_agreement(inherited, alone).to_dict()}
        if study:
            samples = [json.loads(x) for x in (Path(study) / "predictor_samples.jsonl").read_text().splitlines()]
            seed = json.loads((Path(study) / "study.json").read_text())["seed"]
            sampled = [RTSegConfig.from_dict(s["config"]) for s in samples]
            pred = fit_accuracy_predictor(sampled, [s["dice"] for s in samples], ev.supernet.space, seed=seed)
            p = [float(v) for v in pred.predict(cfgs)]
            entry |= {"predicted": p, "predicted_vs_standalone": rank_agreement(p, alone).to_dict(),
                      "predicted_vs_inherited": rank_agreement(p, inherited).to_dict(),
                      "in_samples": sum(c in set(sampled) for c in cfgs)}  # fmt: skip
        res["supernets"][spec] = entry
        print(spec, {k: round(v["spearman"], 3) for k, v in entry.items() if k.endswith("standalone")}, flush=True)
    res["schedule_differences"] = _differences(res, np.asarray(alone))
    (out / "agreement.json").write_text(json.dumps(res, indent=1))


def _differences(res: dict, y: np.ndarray) -> dict:
    """Spearman(b, stand-alone) - Spearman(a, stand-alone), paired bootstrap over the subnets."""
    keys, rng, out = list(res["supernets"]), np.random.default_rng(0), {}
    for i, ka in enumerate(keys):
        for kb in keys[i + 1 :]:
            a, b = (np.asarray(res["supernets"][k]["inherited"]) for k in (ka, kb))
            boots = []
            for _ in range(2000):
                k = rng.integers(0, len(y), len(y))
                if min(len(set(y[k])), len(set(a[k])), len(set(b[k]))) >= 2:
                    boots.append(spearmanr(b[k], y[k]).statistic - spearmanr(a[k], y[k]).statistic)
            low, high = np.percentile(boots, [2.5, 97.5])
            point = spearmanr(b, y).statistic - spearmanr(a, y).statistic
            out[f"{kb} minus {ka}"] = {"difference": point, "low": low, "high": high, "resamples": len(boots)}
            print(f"{kb} minus {ka}: {point:+.3f} [{low:+.3f}, {high:+.3f}]")
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    stage, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if stage == "train":
        train_alone(out, sys.argv[3], int(sys.argv[4]))
    elif stage == "analyse":
        analyse(out, sys.argv[3:])
    else:
        raise SystemExit(f"unknown stage {stage!r}: train or analyse")
