import numpy as np
from rtseg_nas.latency_models import training_models, heldout_models
from profiling._predictor import build_table, export_for_table, LatencyPredictor, CalibrationRow
from profiling._kernels import decompose_onnx
from profiling._bench import bench_variants, ort_variant
from pathlib import Path
import tempfile, time
tmp = Path(tempfile.mkdtemp())
models = training_models(4, seed=10000)[:3] + heldout_models(1, seed=0)[:2]
paths = {n: export_for_table(m, tmp / f"{n}.onnx", size=256, opset=17) for n, m in models}
t=time.time()
res = build_table(tmp / "t.json", [(n, p) for n, p in paths.items()], calibrate=0)
print("build", time.time()-t, res.kernels_measured)
x = np.random.default_rng(0).standard_normal((1, 1, 256, 256)).astype(np.float32)
r = bench_variants([ort_variant(n, p) for n, p in paths.items()], x, rounds=5, warmup=2)
pred = LatencyPredictor.load(tmp / "t.json")
print("call", pred.table.call_ms)
for v in r.variants:
    d = decompose_onnx(paths[v.name])
    ms, seen = pred.kernel_ms(d.kernels)
    print(v.name, "measured", round(v.median_ms,2), "sum", round(ms.sum(),2), "net", round(pred._net(ms),2), "n", len(d.kernels))
    by = {}
    for k, m in zip(d.kernels, ms): by[k.op.split("+")[0]] = by.get(k.op.split("+")[0], 0) + m
    print(sorted(((round(b,2), a) for a, b in by.items()), reverse=True)[:8])
