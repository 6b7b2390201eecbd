"""Parsers on captured output in the tools' real formats (TensorRT 7.1 / 8.0 / 8.6, JetPack 4.6 and Orin)."""

# ruff: noqa: E501  (tool output is kept verbatim, one log line per line)

from __future__ import annotations

import json

import pytest

from profiling._parsers import (
    clocks_pinned,
    decode_tensorrt_version,
    format_power_mode,
    parse_jetson_clocks_show,
    parse_l4t_release,
    parse_nvpmodel_query,
    parse_nvpmodel_status,
    parse_tegrastats_line,
    parse_trtexec_output,
    parse_trtexec_times,
    summarize_tegrastats,
)
from rtseg_core import ProfilingError

TRT80_LOG = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v8001] # /usr/src/tensorrt/bin/trtexec --onnx=model.onnx --fp16 --workspace=256
[11/20/2021-10:12:44] [I] === Model Options ===
[11/20/2021-10:12:44] [I] Format: ONNX
[11/20/2021-10:12:44] [I] Model: model.onnx
[11/20/2021-10:12:44] [I] === Device Information ===
[11/20/2021-10:12:44] [I] Selected Device: NVIDIA Tegra X1
[11/20/2021-10:12:44] [I] Compute Capability: 5.3
[11/20/2021-10:12:44] [I] SMs: 1
[11/20/2021-10:12:44] [I] Compute Clock Rate: 0.9216 GHz
[11/20/2021-10:12:44] [I] Device Global Memory: 3956 MiB
[11/20/2021-10:12:44] [I]
[11/20/2021-10:12:44] [I] TensorRT version: 8001
[11/20/2021-10:12:46] [I] [TRT] [MemUsageChange] Init CUDA: CPU +203, GPU +0, now: CPU 221, GPU 3159 (MiB)
[11/20/2021-10:16:02] [I] Starting inference
[11/20/2021-10:16:05] [I] Warmup completed 7 queries over 200 ms
[11/20/2021-10:16:05] [I] Timing trace has 90 queries over 3.06 s
[11/20/2021-10:16:05] [I]
[11/20/2021-10:16:05] [I] === Trace details ===
[11/20/2021-10:16:05] [I] Trace averages of 10 runs:
[11/20/2021-10:16:05] [I] Average on 10 runs - GPU latency: 33.8 ms - Host latency: 34.0 ms (end to end 34.1 ms, enqueue 2.1 ms)
[11/20/2021-10:16:05] [I] Average on 10 runs - GPU latency: 33.7 ms - Host latency: 33.9 ms (end to end 34.0 ms, enqueue 2.0 ms)
[11/20/2021-10:16:05] [I]
[11/20/2021-10:16:05] [I] === Performance summary ===
[11/20/2021-10:16:05] [I] Throughput: 29.1 qps
[11/20/2021-10:16:05] [I] Latency: min = 33.1 ms, max = 36.2 ms, mean = 34.0 ms, median = 33.9 ms, percentile(99%) = 35.8 ms
[11/20/2021-10:16:05] [I] End-to-End Host Latency: min = 33.2 ms, max = 36.9 ms, mean = 34.1 ms, median = 34.0 ms, percentile(99%) = 36.4 ms
[11/20/2021-10:16:05] [I] Enqueue Time: min = 1.8 ms, max = 2.9 ms, mean = 2.1 ms, median = 2.0 ms, percentile(99%) = 2.8 ms
[11/20/2021-10:16:05] [I] H2D Latency: min = 0 ms, max = 0 ms, mean = 0 ms, median = 0 ms, percentile(99%) = 0 ms
[11/20/2021-10:16:05] [I] GPU Compute Time: min = 32.9 ms, max = 36.0 ms, mean = 33.8 ms, median = 33.7 ms, percentile(99%) = 35.6 ms
[11/20/2021-10:16:05] [I] D2H Latency: min = 0 ms, max = 0 ms, mean = 0 ms, median = 0 ms, percentile(99%) = 0 ms
[11/20/2021-10:16:05] [I] Total Host Walltime: 3.06 s
[11/20/2021-10:16:05] [I] Total GPU Compute Time: 3.04 s
[11/20/2021-10:16:05] [I] Explanations of the performance metrics are printed in the verbose logs.
[11/20/2021-10:16:05] [V] GPU Compute Time: the GPU latency to execute the kernels for a query.
[11/20/2021-10:16:05] [V] Latency: the summation of H2D Latency, GPU Compute Time, and D2H Latency.
[11/20/2021-10:16:05] [I]
&&&& PASSED TensorRT.trtexec [TensorRT v8001] # /usr/src/tensorrt/bin/trtexec --onnx=model.onnx --fp16 --workspace=256
"""

TRT86_SUMMARY = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v8603] # trtexec --onnx=m.onnx
[03/28/2024-07:10:12] [I] TensorRT version: 8.6.3
[08/21/2023-14:59:38] [I] === Performance summary ===
[08/21/2023-14:59:38] [I] Throughput: 3716.81 qps
[08/21/2023-14:59:38] [I] Latency: min = 0.17041 ms, max = 0.243042 ms, mean = 0.184305 ms, median = 0.179932 ms, \
percentile(90%) = 0.194153 ms, percentile(95%) = 0.195312 ms, percentile(99%) = 0.197144 ms
"""

TRT71_LOG = """\
&&&& RUNNING TensorRT.trtexec # ./trtexec --onnx=model.onnx --fp16
[08/03/2020-10:16:10] [I] Starting inference threads
[08/03/2020-10:16:13] [I] Warmup completed 6 queries over 200 ms
[08/03/2020-10:16:13] [I] Timing trace has 92 queries over 3.04 s
[08/03/2020-10:16:13] [I] Trace averages of 10 runs:
[08/03/2020-10:16:13] [I] Average on 10 runs - GPU latency: 32.4 ms - Host latency: 33.6 ms (end to end 34.1 ms, enqueue 2.1 ms)
[08/03/2020-10:16:13] [I] Average on 10 runs - GPU latency: 32.6 ms - Host latency: 33.8 ms (end to end 34.3 ms, enqueue 2.2 ms)
[08/03/2020-10:16:13] [I] Host Latency
[08/03/2020-10:16:13] [I] min: 32.9 ms (end to end 33.4 ms)
[08/03/2020-10:16:13] [I] max: 36.0 ms (end to end 36.8 ms)
[08/03/2020-10:16:13] [I] mean: 33.6 ms (end to end 34.1 ms)
[08/03/2020-10:16:13] [I] median: 33.5 ms (end to end 34.0 ms)
[08/03/2020-10:16:13] [I] percentile: 35.7 ms at 99% (end to end 36.5 ms at 99%)
[08/03/2020-10:16:13] [I] throughput: 29.7 qps
[08/03/2020-10:16:13] [I] walltime: 3.04 s
[08/03/2020-10:16:13] [I] Enqueue Time
[08/03/2020-10:16:13] [I] min: 1.9 ms
[08/03/2020-10:16:13] [I] max: 2.6 ms
[08/03/2020-10:16:13] [I] median: 2.1 ms
[08/03/2020-10:16:13] [I] GPU Compute
[08/03/2020-10:16:13] [I] min: 31.8 ms
[08/03/2020-10:16:13] [I] max: 34.9 ms
[08/03/2020-10:16:13] [I] mean: 32.4 ms
[08/03/2020-10:16:13] [I] median: 32.3 ms
[08/03/2020-10:16:13] [I] percentile: 34.5 ms at 99%
[08/03/2020-10:16:13] [I] total compute time: 2.98 s
&&&& PASSED TensorRT.trtexec # ./trtexec --onnx=model.onnx --fp16
"""


def test_trtexec_80_summary():
    s = parse_trtexec_output(TRT80_LOG)
    assert s.layout == "8.x" and s.passed is True and s.tensorrt_version == "8.0.1"
    assert s.throughput_qps == 29.1
    assert (s.latency.min, s.latency.max, s.latency.mean, s.latency.median) == (33.1, 36.2, 34.0, 33.9)
    assert s.latency.percentiles == {99.0: 35.8}
    assert s.gpu_compute.median == 33.7 and s.gpu_compute.percentiles == {99.0: 35.6}
    assert s.end_to_end.max == 36.9
    assert (s.warmup_queries, s.warmup_ms, s.timed_queries) == (7, 200.0, 90)
    assert len(s.averages) == 2 and s.averages[0].gpu_ms == 33.8 and s.averages[0].enqueue_ms == 2.1
    assert (s.device_name, s.compute_capability) == ("NVIDIA Tegra X1", "5.3")


def test_trtexec_86_summary_with_several_percentiles():
    s = parse_trtexec_output(TRT86_SUMMARY)
    assert s.tensorrt_version == "8.6.3" and s.passed is None
    assert s.latency.percentiles == {90.0: 0.194153, 95.0: 0.195312, 99.0: 0.197144}
    assert s.latency.median == 0.179932 and s.gpu_compute is None


def test_trtexec_71_summary():
    s = parse_trtexec_output(TRT71_LOG)
    assert s.layout == "7.x" and s.passed is True and s.tensorrt_version is None  # 7.x printed no version
    assert (s.latency.min, s.latency.max, s.latency.mean, s.latency.median) == (32.9, 36.0, 33.6, 33.5)
    assert s.latency.percentiles == {99.0: 35.7}
    assert s.end_to_end.median == 34.0 and s.end_to_end.percentiles == {99.0: 36.5}
    assert s.gpu_compute.median == 32.3 and s.gpu_compute.percentiles == {99.0: 34.5}
    assert s.throughput_qps == 29.7
    assert s.timed_queries == 92 and s.averages[1].host_ms == 33.8 and s.averages[1].end_to_end_ms == 34.3


def test_trtexec_failed_run():
    text = (
        "&&&& RUNNING TensorRT.trtexec [TensorRT v8001] # trtexec --onnx=m.onnx --int8\n"
        "[11/20/2021-10:12:50] [E] [TRT] ModelImporter.cpp:720: While parsing node number 3 [Resize]\n"
        "[11/20/2021-10:12:50] [E] Failed to parse onnx file\n"
        "&&&& FAILED TensorRT.trtexec [TensorRT v8001] # trtexec --onnx=m.onnx --int8\n"
    )
    s = parse_trtexec_output(text)
    assert s.passed is False and s.latency is None and s.layout is None and s.tensorrt_version == "8.0.1"


@pytest.mark.parametrize(
    ("token", "version"),
    [("8001", "8.0.1"), ("8201", "8.2.1"), ("8603", "8.6.3"), ("100300", "10.3.0"), ("8.6.3", "8.6.3"), ("x1", None)],
)
def test_decode_tensorrt_version(token, version):
    assert decode_tensorrt_version(token) == version


def _trace_80(warm: list[float], timed: list[float]) -> str:
    """--exportTimes as TensorRT 8.x writes it: one object per query, warm-up queries first."""
    rows, t = [], 0.0
    for i, lat in enumerate(warm + timed):
        t = i * 10.0 if i < len(warm) else max(t + lat, 200.0 + 40.0 * (i - len(warm)))
        rows.append(
            f'{{ "startEnqMs" : {t}, "endEnqMs" : {t + 1.5}, "startH2dMs" : {t}, "endH2dMs" : {t + 0.1}, '
            f'"startComputeMs" : {t + 0.1}, "endComputeMs" : {t + 0.1 + lat - 0.2}, "startD2hMs" : {t + lat - 0.1}, '
            f'"endD2hMs" : {t + lat}, "h2dMs" : 0.1, "computeMs" : {lat - 0.2}, "d2hMs" : 0.1, '
            f'"latencyMs" : {lat}, "endToEndMs" : {lat + 0.05} }}'
        )
    return "[\n  " + "\n, ".join(rows) + "\n]\n"


def test_export_times_drops_warmup_by_summary_counts():
    warm, timed = [70.0, 60.0, 50.0], [33.0, 34.0, 35.0, 36.0]
    trace = _trace_80(warm, timed)
    t = parse_trtexec_times(trace, warmup_queries=3, timed_queries=4)
    assert t.latency_ms == tuple(timed) and t.dropped_warmup == 3 and t.total_entries == 7
    assert t.compute_ms == pytest.approx([x - 0.2 for x in timed])
    assert t.end_to_end_ms == pytest.approx([x + 0.05 for x in timed])
    # a trace without warm-up entries (timed count matches) keeps everything
    assert parse_trtexec_times(_trace_80([], timed), warmup_queries=3, timed_queries=4).dropped_warmup == 0


def test_export_times_drops_warmup_by_time_like_trtexec():
    warm, timed = [70.0, 60.0], [33.0, 34.0, 35.0]
    t = parse_trtexec_times(_trace_80(warm, timed), warmup_ms=200.0)
    assert t.latency_ms == tuple(timed) and t.dropped_warmup == 2


def test_export_times_trt7_keys_without_latency():
    """TensorRT 7.x / early 8.0 traces: startInMs/inMs/outMs, latency = in + compute + out."""
    entries = [
        {
            "startInMs": 0.0,
            "endInMs": 0.3,
            "startComputeMs": 0.3,
            "endComputeMs": 30.3,
            "startOutMs": 30.3,
            "endOutMs": 30.5,
            "inMs": 0.3,
            "computeMs": 30.0,
            "outMs": 0.2,
            "endToEndMs": 30.6,
        },
        {
            "startInMs": 31.0,
            "endInMs": 31.3,
            "startComputeMs": 31.3,
            "endComputeMs": 62.3,
            "startOutMs": 62.3,
            "endOutMs": 62.5,
            "computeMs": 31.0,
            "endToEndMs": 31.6,
        },
    ]
    t = parse_trtexec_times(json.dumps(entries))
    assert t.latency_ms == pytest.approx([30.5, 31.5])  # second: intervals from start/end stamps
    assert t.dropped_warmup == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [("[{", "not valid JSON"), ('{"a": 1}', "expected a JSON list"), ('[{"count": 3}]', "no query records")],
)
def test_export_times_errors(text, message):
    with pytest.raises(ProfilingError, match=message):
        parse_trtexec_times(text)


NANO_LINE = (
    "RAM 2160/3964MB (lfb 1x2MB) SWAP 0/1982MB (cached 0MB) CPU [12%@1479,3%@1479,2%@1479,1%@1479] "
    "EMC_FREQ 0% GR3D_FREQ 0% PLL@25.5C CPU@27C PMIC@100C GPU@26C AO@33.5C thermal@26.5C "
    "POM_5V_IN 1750/1628 POM_5V_GPU 0/0 POM_5V_CPU 366/406"
)
ORIN_LINE = (
    "11-20-2023 10:14:02 RAM 2907/7620MB (lfb 1x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,0%@729,1%@729,"
    "0%@729,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] VIC_FREQ 729 APE 200 cpu@45.9C soc2@44.6C "
    "soc0@45.4C gpu@45.5C tj@46.4C soc1@46.4C VDD_IN 4025mW/4025mW VDD_CPU_GPU_CV 479mW/479mW VDD_SOC 1278mW/1278mW"
)
XAVIER_AGX_LINE = (
    "RAM 3202/31919MB (lfb 7000x4MB) CPU [1%@1190,0%@1190] EMC_FREQ 0% GR3D_FREQ 0% AO@36C GPU@37C "
    "GPU 0/0 CPU 155/155 SOC 931/931 CV 0/0 VDDRQ 155/155 SYS5V 1771/1771"
)


def test_tegrastats_nano_line():
    rails = parse_tegrastats_line(NANO_LINE)
    assert rails == {"POM_5V_IN": (1750.0, 1628.0), "POM_5V_GPU": (0.0, 0.0), "POM_5V_CPU": (366.0, 406.0)}


def test_tegrastats_orin_line():
    rails = parse_tegrastats_line(ORIN_LINE)
    assert rails == {"VDD_IN": (4025.0, 4025.0), "VDD_CPU_GPU_CV": (479.0, 479.0), "VDD_SOC": (1278.0, 1278.0)}


def test_tegrastats_mean_uses_only_the_input_rail():
    lines = [NANO_LINE, NANO_LINE.replace("POM_5V_IN 1750/1628", "POM_5V_IN 2250/1700")]
    p = summarize_tegrastats(lines)
    assert (p.rail, p.mean_mw, p.samples) == ("POM_5V_IN", 2000.0, 2)  # not + GPU + CPU rails
    assert set(p.rails_seen) == {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}
    assert summarize_tegrastats([ORIN_LINE]).mean_mw == 4025.0
    assert summarize_tegrastats([XAVIER_AGX_LINE]) is None  # no board input rail: no made-up total
    assert summarize_tegrastats([]) is None


def test_nvpmodel_query_and_status():
    assert parse_nvpmodel_query("NV Power Mode: MAXN\n0") == ("MAXN", 0)
    assert parse_nvpmodel_query("NV Fan Mode:quiet\nNV Power Mode: 5W\n1\n") == ("5W", 1)
    assert parse_nvpmodel_query("NVPM ERROR: failed to read PARAM\n") == (None, None)
    conf = "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=5W >\n"
    assert parse_nvpmodel_status("pmode:0001 fmode:quiet", conf) == ("5W", 1)
    assert parse_nvpmodel_status("pmode:0003", conf) == (None, 3)
    assert format_power_mode("MAXN", 0) == "MAXN (nvpmodel mode 0)"
    assert format_power_mode(None, 3) == "nvpmodel mode 3" and format_power_mode(None, None) is None


JETSON_CLOCKS_PINNED = """\
SOC family:tegra210  Machine:NVIDIA Jetson Nano Developer Kit
Online CPUs: 0-3
cpu0: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0
cpu1: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0
cpu2: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0
cpu3: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0
GPU MinFreq=921600000 MaxFreq=921600000 CurrentFreq=921600000
EMC MinFreq=204000000 MaxFreq=1600000000 CurrentFreq=1600000000 FreqOverride=1
Fan: PWM=255
NV Power Mode: MAXN
"""


def test_jetson_clocks_show():
    assert parse_jetson_clocks_show(JETSON_CLOCKS_PINNED) is True
    unpinned = JETSON_CLOCKS_PINNED.replace("GPU MinFreq=921600000", "GPU MinFreq=76800000")
    assert parse_jetson_clocks_show(unpinned) is False
    assert parse_jetson_clocks_show("jetson_clocks: must be run as root") is None
    assert clocks_pinned([(1, 1)], []) is None


def test_l4t_release():
    text = "# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64, DATE: Mon Jul 26 19:20:30 UTC 2021"
    assert parse_l4t_release(text) == "R32.6.1"
    assert parse_l4t_release("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref") == "R35.4.1"
    assert parse_l4t_release("") is None
