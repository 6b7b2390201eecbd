"""The timing measurements behind profiling/_timing.py's docstring. Not a test: it takes a few minutes.

    OMP_NUM_THREADS=1 python scripts/measure_timing.py OUT method [REPEATS]
        cold vs warm: the same pairs timed with one timed run right after the other model
        (untimed 0, runs 1) and with untimed runs first (1+1, 1+3, 1+5), 30 rounds, 1 thread;
        the methods themselves alternate, REPEATS times (default 3)
    OMP_NUM_THREADS=1 python scripts/measure_timing.py OUT verbs [REPEATS]
        `paper` vs `paper` pruned to 50 % MACs at 256 px through the four entry points that compare
        them (bench, validate's timer, the speed-up quantize/prune print, the latency table's
        calibration), in one process, alternately, REPEATS times (default 2)

The pairs: a narrow family member vs `paper` at 96 px (small, a fraction of a millisecond to a
few), and `paper` vs `paper` pruned to 50 % of its MACs (L1, round-to 16) at 256 px. ONNX files
are exported once into OUT (fresh weights, seed 0: a dense graph's time does not depend on them).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NARROW = {"conv_widths": (8, 16, 32), "token_widths": (32, 48), "enc_depths": (1, 0), "dec_depths": (0, 0)}


def _export(model, path: Path, size: int) -> Path:
    from profiling import ExportConfig, export_onnx

    if not path.is_file():
        export_onnx(model, path, ExportConfig(height=size, width=size, atol=1e-3), model_name=path.stem)
    return path


def graphs(out: Path) -> dict[str, dict[str, Path]]:
    """{pair: {name: onnx}} and OUT/pruning.json (the pruned member's history, for validate's timer)."""
    import torch

    from compress import PruneSpec, prune_model
    from models import build_model, create_config

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    narrow = build_model(create_config("paper", **NARROW)).eval()
    torch.manual_seed(0)
    paper = build_model(create_config("paper")).eval()
    small = {
        "narrow-96": _export(narrow, out / "narrow-96.onnx", 96),
        "paper-96": _export(paper, out / "paper-96.onnx", 96),
    }
    large = {"paper-256": _export(paper, out / "paper-256.onnx", 256)}
    pruned_path = out / "paper-pruned50-256.onnx"
    if not pruned_path.is_file() or not (out / "pruning.json").is_file():
        torch.manual_seed(0)
        pruned = build_model(create_config("paper")).eval()
        result = prune_model(pruned, PruneSpec(target_macs=0.5, round_to=16, size=256, step_ratio=0.02))
        _export(pruned.eval(), pruned_path, 256)
        (out / "pruning.json").write_text(
            json.dumps({"history": result.history, "macs_before": result.macs_before, "macs_after": result.macs_after})
        )
    large["paper-pruned50-256"] = pruned_path
    return {"small (96 px)": small, "large (256 px)": large}


def _load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def method(out: Path, repeats: int) -> None:
    """Each pair under each method; reference = the larger model, variant = the smaller (ratio > 1)."""
    from profiling import TimingOptions, speedup, time_graphs

    methods = {
        "cold 0+1": TimingOptions(untimed=0, runs=1),
        "warm 1+1": TimingOptions(untimed=1, runs=1),
        "warm 1+3": TimingOptions(untimed=1, runs=3),
        "warm 1+5": TimingOptions(untimed=1, runs=5),
    }
    pairs = {"small (96 px)": ("paper-96", "narrow-96"), "large (256 px)": ("paper-256", "paper-pruned50-256")}
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    print(f"load before {_load()}", flush=True)
    for pair, files in graphs(out).items():
        ref, var = pairs[pair]
        for rep in range(repeats):
            order = list(methods)[rep % len(methods) :] + list(methods)[: rep % len(methods)]
            for label in order:  # the methods alternate too: a load change does not land on one of them
                got = time_graphs(files, methods[label])
                wall, cpu = (
                    speedup(got[ref].samples, got[var].samples),
                    speedup(got[ref].samples, got[var].samples, clock="cpu"),
                )
                row = {
                    "ref_ms": got[ref].record.median_ms,
                    "var_ms": got[var].record.median_ms,
                    "ref_cpu": got[ref].samples.cpu_median_ms,
                    "var_cpu": got[var].samples.cpu_median_ms,
                    "wall": wall.ratio,
                    "cpu": cpu.ratio,
                }
                rows.setdefault((pair, label), []).append(row)
                print(f"  {pair} {label} rep {rep}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    print(f"load after {_load()}")
    print(f"\nmedians over {repeats} repeats; ratio = {pairs['small (96 px)'][0]} / {pairs['small (96 px)'][1]} and "
          f"{pairs['large (256 px)'][0]} / {pairs['large (256 px)'][1]}")  # fmt: skip
    head = ("pair", "method", "ref ms", "var ms", "ratio", "ref cpu", "var cpu", "cpu ratio")
    print("  ".join(f"{h:>10}" for h in head))
    for (pair, label), values in rows.items():
        med = {k: statistics.median(v[k] for v in values) for k in values[0]}
        cells = [pair.split()[0], label] + [f"{med[k]:.3f}" for k in ("ref_ms", "var_ms", "wall", "ref_cpu",
                                                                       "var_cpu", "cpu")]  # fmt: skip
        print("  ".join(f"{c:>10}" for c in cells))


def verbs(out: Path, repeats: int) -> None:
    """The same pair through the four entry points that compare two graphs."""
    import numpy as np

    from compress import compare_latency
    from models import create_config
    from profiling import LocalTimer, TimingOptions, bench_variants, ort_variant
    from validate import LatencyRun, TimingEntry, time_entries

    files = graphs(out)["large (256 px)"]
    ref, var = files["paper-256"], files["paper-pruned50-256"]
    history = json.loads((out / "pruning.json").read_text())["history"]
    options = TimingOptions()  # the defaults every verb uses
    config = create_config("paper").to_dict()

    def bench() -> float:
        x = np.random.default_rng(0).standard_normal((1, 1, 256, 256)).astype(np.float32)
        result = bench_variants([ort_variant("paper", ref), ort_variant("pruned", var)], x, options, baseline="paper")
        return result.speedups()["pruned"]

    def validate() -> float:
        entries = [
            TimingEntry("paper", config, onnx=ref),
            TimingEntry("pruned", config, history=history, onnx=var),
        ]
        timed, _ = time_entries(entries, LatencyRun(target="local", size=256, timing=options))
        return timed["paper"].latency.median_ms / timed["pruned"].latency.median_ms

    def compress() -> float:
        return compare_latency(ref, var, options).speedup

    def table() -> float:  # the latency table's calibration: its models timed whole
        got = LocalTimer(threads=1).time_models({"paper": ref, "pruned": var})
        return got["paper"]["wall"] / got["pruned"]["wall"]

    entries = {"bench": bench, "validate": validate, "quantize/prune": compress, "latency-table": table}
    got: dict[str, list[float]] = {k: [] for k in entries}
    print(f"load before {_load()}", flush=True)
    for rep in range(repeats):
        names = list(entries)[rep % 4 :] + list(entries)[: rep % 4]
        for name in names:
            t0 = time.monotonic()
            got[name].append(entries[name]())
            print(f"  rep {rep} {name}: {got[name][-1]:.3f}x ({time.monotonic() - t0:.0f} s, load {_load()})",
                  flush=True)  # fmt: skip
    print(f"load after {_load()}")
    print("\npaper / paper pruned to 50 % MACs, 256 px, ORT FP32, 1 thread (median over repeats):")
    values = {k: statistics.median(v) for k, v in got.items()}
    for k, v in values.items():
        print(f"  {k:<15} {v:.3f}x   (each: {', '.join(f'{x:.3f}' for x in got[k])})")
    spread = max(values.values()) / min(values.values()) - 1
    print(f"  largest / smallest - 1 = {spread:.1%}")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[2] not in ("method", "verbs"):
        sys.exit(__doc__)
    folder, what = Path(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else (3 if what == "method" else 2)
    (method if what == "method" else verbs)(folder, n)
