"""The INT8 measurements behind `quantize --help`'s choice of defaults. Not a test: it takes minutes.

    OMP_NUM_THREADS=1 python scripts/measure_int8.py CHECKPOINT DATA OUT [ROUNDS] [SIZE]

Exports CHECKPOINT (a trained `paper`) at SIZE px (default 256) to OUT/fp32.onnx, quantizes it
with ONNX Runtime static INT8 in each variant below (`quantize --onnx`'s function, calibrated on
8 training images of DATA, the dataset it was trained on),
writes each one's INT8 graph report (compress.int8_graph_report: integer vs float Conv on the
graph ORT executes, Q/DQ pairs, why ops stay float, op-class times from 20 profiled runs) to
OUT/<variant>.int8_graph.json, then times FP32 and every variant in ONE alternating loop of the
suite's timer (profiling.time_graphs, ROUNDS rounds, default 30, 1 thread) and prints each
speed-up over FP32 with its 95 % interval. S8S8 QOperator is reported but not timed (it ran at
0.31x of FP32 on the project's AMD EPYC; timing it only costs minutes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS: dict[str, dict] = {
    "u8s8": {},  # the default
    "s8s8": {"activations": "int8"},
    "s8s8_dedicated": {"activations": "int8", "dedicated_qdq": True},
    "u8s8_dedicated": {"dedicated_qdq": True},
    "u8s8_qoperator": {"graph_format": "qoperator"},
    "s8s8_qoperator": {"activations": "int8", "graph_format": "qoperator"},
    "u8s8_per_tensor": {"per_channel": False},
    "u8s8_conv_only": {"op_types": ("Conv",)},
}
UNTIMED = {"s8s8_qoperator"}


def main(checkpoint: str, data: str, out: Path, rounds: int, size: int) -> None:
    from compress import QuantSpec, int8_graph_report, load_for_compression, quantize_onnx
    from profiling import ExportConfig, TimingOptions, export_onnx, speedup, time_graphs

    out.mkdir(parents=True, exist_ok=True)
    model, _ = load_for_compression(checkpoint)
    fp32 = out / "fp32.onnx"
    export_onnx(model, fp32, ExportConfig(height=size, width=size, atol=1e-3))
    graphs = {"fp32": fp32}
    for name, options in VARIANTS.items():
        spec = QuantSpec(calibration_images=8, **options)
        quantize_onnx(fp32, spec, out / name, data=data, evaluate=False, measure=False)
        report = int8_graph_report(out / name / "model.onnx", profile_runs=20)
        (out / f"{name}.int8_graph.json").write_text(json.dumps(report.to_dict(), indent=1))
        print(f"== {name} ({spec.label()})\n{report.summary()}", flush=True)
        if name not in UNTIMED:
            graphs[name] = out / name / "model.onnx"
    got = time_graphs(graphs, TimingOptions(threads=1, rounds=rounds))
    print(f"one alternating loop, {rounds} rounds, 1 thread, {size} px:")
    for name in graphs:
        sp = speedup(got["fp32"].samples, got[name].samples)
        print(f"  {name:16s} median {got[name].record.median_ms:7.2f} ms  {sp.ratio:.3f}x ({sp.low:.3f}-{sp.high:.3f})")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 30,
         int(sys.argv[5]) if len(sys.argv) > 5 else 256)  # fmt: skip
