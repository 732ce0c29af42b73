"""Device analysis of Kineto traces: a hand-built trace whose every figure is worked out by hand
below, and real V100/A100/MI250 traces checked against sums taken straight from their events."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from perfscope.analysis.gpu import trace_gpu_metrics
from perfscope.record import Record
from perfscope.traceimport.build import record_from_trace
from perfscope.traceimport.device import kernel_kind, uses_tensor_cores
from perfscope.traceimport.reader import read_trace

FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces"
V100 = FIXTURES / "kineto_v100_1gpu_train_5steps.json.gz"
A100_NCCL = FIXTURES / "kineto_a100_rank0_of2_nccl_3steps.json.gz"
MI250 = FIXTURES / "kineto_mi250_rocm_toy_train_3steps.json.gz"
CPU_ONLY = FIXTURES / "kineto_cpu_only_gloo_rank34_of300.json.gz"
NO_STEPS = FIXTURES / "kineto_a100_alexnet_nosteps.json.gz"


def host(cat: str, name: str, ts: float, dur: float, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": dur,
            "args": args}  # fmt: skip


def device(cat: str, name: str, ts: float, dur: float, corr: int, stream: int = 7, **args: Any):
    args = {"device": 0, "stream": stream, "correlation": corr, **args}
    return {"ph": "X", "cat": cat, "name": name, "pid": 0, "tid": stream, "ts": ts, "dur": dur,
            "args": args}  # fmt: skip


def launch(ts: float, corr: int, name: str = "cudaLaunchKernel") -> dict[str, Any]:
    return host("cuda_runtime", name, ts, 4.0, correlation=corr)


HANDBUILT = [
    host("user_annotation", "ProfilerStep#0", 0.0, 100.0),
    host("user_annotation", "ProfilerStep#1", 100.0, 100.0),
    # step 0: K1+K2 back to back [10, 40); K3 launched late (host gap [40, 55));
    # a sync ends at 70 inside the gap [65, 80) before K4 (sync gap); K4 (NCCL) and K5 overlap 5 us
    launch(1.0, 1), device("kernel", "volta_sgemm_128x64_nn", 10.0, 20.0, 1,
                           **{"blocks per SM": 0.5, "est. achieved occupancy %": 25}),
    launch(5.0, 2), device("kernel", "elementwise_kernel", 30.0, 10.0, 2),
    launch(50.0, 3), device("kernel", "cutlass_80_tensorop_s1688gemm_64x64_nn", 55.0, 10.0, 3,
                            **{"blocks per SM": 2.0, "est. achieved occupancy %": 75}),
    host("cuda_runtime", "cudaStreamSynchronize", 60.0, 10.0),
    launch(75.0, 4), device("kernel", "ncclKernel_AllReduce_RING_LL_Sum_float", 80.0, 10.0, 4, 20),
    launch(82.0, 5), device("kernel", "vectorized_elementwise_kernel", 85.0, 10.0, 5),
    # step 1: K6 launched at 101 after the device idled from 95 (host gap [95, 110));
    # K7 queued at 105 but runs at 160 (other gap [150, 160)); idle to the step's end (other)
    launch(101.0, 6), device("kernel", "volta_sgemm_64x64_nn", 110.0, 40.0, 6, grid=[40, 1, 1]),
    launch(105.0, 7), device("kernel", "reduce_kernel", 160.0, 10.0, 7),
    host("user_annotation", "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", 102, 6),
    launch(115.0, 8, "cudaMemcpyAsync"),
    device("gpu_memcpy", "Memcpy HtoD (Pageable -> Device)", 120.0, 5.0, 8, bytes=1000),
    launch(116.0, 9, "cudaMemsetAsync"),
    device("gpu_memset", "Memset (Device)", 126.0, 1.0, 9, bytes=64),
    {"ph": "i", "name": "[memory]", "ts": 130.0, "pid": 1, "tid": 1,
     "args": {"Device Type": 1, "Device Id": 0, "Total Reserved": 8 * 2**30}},
]  # fmt: skip
PROPS = [{"id": 0, "name": "Tesla V100", "computeMajor": 7, "computeMinor": 0, "numSms": 80,
          "totalGlobalMem": 32 * 2**30}]  # fmt: skip


def handbuilt_trace_record() -> Record:
    """The record of HANDBUILT (tests/unit/test_metrics.py's area_records uses it too)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hand.json"
        path.write_text(json.dumps({"deviceProperties": PROPS, "traceEvents": HANDBUILT}))
        return record_from_trace(read_trace(path))


@pytest.fixture(scope="module")
def handbuilt() -> Record:
    return handbuilt_trace_record()


def test_per_step_busy_and_idle_split_of_the_handbuilt_trace(handbuilt: Record) -> None:
    series = handbuilt.samples["trace"]["per_step"]

    assert series["dur_us"] == [100.0, 100.0]
    assert series["busy_us"] == [55.0, 50.0]  # [10,40) [55,65) [80,95) | [110,150) [160,170)
    assert series["idle_host_us"] == [20.0, 10.0]  # [40,55) [95,100) | [100,110)
    assert series["idle_sync_us"] == [15.0, 0.0]  # [65,80)
    assert series["idle_other_us"] == [10.0, 40.0]  # [0,10) | [150,160) [170,200)
    assert series["compute_us"] == [50.0, 50.0]
    assert series["comm_us"] == [10.0, 0.0]
    assert series["comm_overlap_us"] == [5.0, 0.0]  # [85,90)


def test_per_step_counts_of_the_handbuilt_trace(handbuilt: Record) -> None:
    series = handbuilt.samples["trace"]["per_step"]

    assert series["kernels"] == [5, 2]
    assert series["kernel_us"] == [60.0, 50.0]
    assert series["launches"] == [5, 2]
    assert series["launch_us"] == [20.0, 8.0]
    assert series["memcpy_us"] == [0, 5.0]
    assert series["memset_us"] == [0, 1.0]
    assert [s["data_wait_ms"] for s in handbuilt.steps] == [0.0, 0.006]


def test_kernel_tables_of_the_handbuilt_trace(handbuilt: Record) -> None:
    summary = handbuilt.samples["trace"]

    assert summary["kernel_us"] == 110.0
    assert summary["matmul_us"] == 70.0  # K1, K3, K6
    assert summary["tensor_core_us"] == 10.0  # K3
    assert summary["comm_kernel_us"] == 10.0
    assert summary["sm_efficiency"] == pytest.approx((20 * 0.5 + 10 * 1.0 + 40 * 40 / 80) / 70)
    assert summary["achieved_occupancy"] == pytest.approx((20 * 0.25 + 10 * 0.75) / 30)
    assert summary["copies"]["HtoD"] == {"count": 1, "bytes": 1000, "us": 5.0}
    assert summary["copies"]["Memset"] == {"count": 1, "bytes": 64, "us": 1.0}
    assert summary["kernels"][0] == {
        "name": "volta_sgemm_64x64_nn",
        "count": 1,
        "total_us": 40.0,
        "mean_us": 40.0,
        "kind": "matmul",
        "tensor_core": False,
    }


def test_gpu_metrics_of_the_handbuilt_trace(handbuilt: Record) -> None:
    m = trace_gpu_metrics(handbuilt)

    assert m["gpu.busy_frac"] == pytest.approx(105 / 200)
    assert m["gpu.compute_frac"] == pytest.approx(100 / 200)
    assert m["gpu.idle_host_frac"] == pytest.approx(30 / 200)
    assert m["gpu.idle_sync_frac"] == pytest.approx(15 / 200)
    assert m["gpu.idle_other_frac"] == pytest.approx(50 / 200)
    assert m["gpu.kernels_per_step"] == pytest.approx(3.5)
    assert m["gpu.kernel_us_mean"] == pytest.approx(110 / 7)
    assert m["gpu.launch_us_mean"] == pytest.approx(4.0)
    assert m["gpu.launch_overhead_frac"] == pytest.approx(28 / (28 + 110))
    assert m["gpu.matmul_frac"] == pytest.approx(70 / 110)
    assert m["gpu.tensor_core_frac"] == pytest.approx(10 / 70)
    assert m["gpu.memcpy_ms_per_step"] == pytest.approx(0.0025)
    assert m["gpu.memset_ms_per_step"] == pytest.approx(0.0005)
    assert m["gpu.compute_capability"] == 7.0
    assert m["gpu.rocm"] == 0.0
    assert m["gpu.trace_mem_reserved_peak_frac"] == pytest.approx(8 / 32)
    assert m["comm.frac"] == pytest.approx(10 / 200)
    assert m["comm.ms_per_step"] == pytest.approx(0.005)
    assert m["comm.overlap_frac"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("name", "kind", "tensor"),
    [
        ("volta_sgemm_128x64_nn", "matmul", False),
        ("ampere_sgemm_32x128_tn", "matmul", False),
        ("cudnn_infer_volta_scudnn_128x64_3dconv_fprop_medium_nn_v1", "matmul", False),
        ("cutlass::Kernel<cutlass_80_tensorop_s1688gemm_64x64_32x6_tn_align1>", "matmul", True),
        ("sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw", "matmul", True),
        ("ampere_bf16_s16816gemm_bf16_128x64_ldg8_f2f_stages_64x3_nn", "matmul", True),
        ("volta_h884gemm_64x64_ldg8_nn", "matmul", True),
        ("Cijk_Alik_Bljk_SB_Bias_AS_SAV_UserArgs_MT64x16x32_MI16x16x1_SN", "matmul", True),
        ("void cudnn::bn_fw_tr_1C11_singleread<float, 512, true, 1, 2, 0>", "other", False),
        ("ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*)", "communication", False),
        ("at::native::vectorized_elementwise_kernel<4, FillFunctor<c10::Half>>", "other", False),
    ],
)  # fmt: skip
def test_kernel_classes_by_name(name: str, kind: str, tensor: bool) -> None:
    assert kernel_kind(name) == kind
    assert uses_tensor_cores(name) is tensor


def raw_events(path: Path) -> tuple[list[dict[str, Any]], list[tuple[float, float]]]:
    events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    steps = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("cat") == "user_annotation" and str(e.get("name")).startswith("ProfilerStep#")
    )
    return events, steps


def busy_by_mask(kernels: list[dict[str, Any]], lo: float, hi: float) -> float:
    """Kernel-active time in [lo, hi), counted on a 0.1 us grid: no interval arithmetic."""
    mask = np.zeros(int((hi - lo) * 10) + 1, dtype=bool)
    for k in kernels:
        a, b = max(k["ts"], lo), min(k["ts"] + k["dur"], hi)
        if b > a:
            mask[int(round((a - lo) * 10)) : int(round((b - lo) * 10))] = True
    return mask.sum() / 10


@pytest.mark.parametrize("path", [V100, A100_NCCL], ids=["v100", "a100-nccl"])
def test_real_trace_steps_and_busy_time_match_the_events(path: Path) -> None:
    # GIVEN the raw events, read with json, and busy time counted on a grid
    events, steps = raw_events(path)
    kernels = [e for e in events if e.get("cat") == "kernel"]

    # WHEN
    record = record_from_trace(read_trace(path))
    series = record.samples["trace"]["per_step"]

    # THEN
    assert [round(s["duration_ms"], 3) for s in record.steps] == [
        round((b - a) / 1e3, 3) for a, b in steps
    ]
    for i, (lo, hi) in enumerate(steps):
        # the grid rounds each kernel's ends by up to 0.05 us
        assert series["busy_us"][i] == pytest.approx(busy_by_mask(kernels, lo, hi), rel=1e-4)
        started = [k for k in kernels if lo <= k["ts"] < hi]
        assert series["kernels"][i] == len(started)
        assert series["kernel_us"][i] == pytest.approx(sum(k["dur"] for k in started))
        parts = sum(series[k][i] for k in ("busy_us", "idle_host_us", "idle_sync_us"))
        assert parts + series["idle_other_us"][i] == pytest.approx(hi - lo, abs=0.01)


def test_nccl_kernel_time_matches_the_events() -> None:
    events, steps = raw_events(A100_NCCL)
    nccl = [e for e in events if e.get("cat") == "kernel" and e["name"].startswith("ncclKernel")]

    series = record_from_trace(read_trace(A100_NCCL)).samples["trace"]["per_step"]

    for i, (lo, hi) in enumerate(steps):
        assert series["comm_us"][i] == pytest.approx(busy_by_mask(nccl, lo, hi), rel=1e-4)
    assert sum(series["comm_us"]) > 0


def test_v100_fp32_training_uses_no_tensor_cores() -> None:
    # Every GEMM/conv kernel of this FP32 ResNet run is an `sgemm`/`scudnn`/winograd FP32 kernel.
    events, _ = raw_events(V100)
    gemms = {e["name"] for e in events if e.get("cat") == "kernel" and "gemm" in e["name"]}
    assert gemms and all("sgemm" in n or "scudnn" in n for n in gemms)

    m = trace_gpu_metrics(record_from_trace(read_trace(V100)))

    assert m["gpu.tensor_core_frac"] == 0.0
    assert m["gpu.matmul_frac"] > 0.5
    assert m["gpu.compute_capability"] == 7.0


def test_rocm_trace_counts_matrix_core_kernels_and_says_rocm() -> None:
    record = record_from_trace(read_trace(MI250))
    m = trace_gpu_metrics(record)

    assert record.collectors["trace"]["platform"] == "rocm"
    assert m["gpu.rocm"] == 1.0
    assert m["gpu.tensor_core_frac"] == 1.0  # hipBLASLt Cijk_..._MI16x16x1 (MFMA) kernels


def test_cpu_only_trace_has_steps_but_no_gpu_metrics() -> None:
    record = record_from_trace(read_trace(CPU_ONLY))

    assert record.collectors["trace"]["platform"] == "cpu"
    assert len(record.steps) == 1
    assert trace_gpu_metrics(record) == {}


def test_a_trace_without_step_markers_is_one_step() -> None:
    events, steps = raw_events(NO_STEPS)
    assert steps == []
    timed = [e for e in events if e.get("ph") == "X" and e.get("cat") != "Trace"]

    record = record_from_trace(read_trace(NO_STEPS))

    assert record.run["step_method"] == "whole_trace"
    assert len(record.steps) == 1
    span = max(e["ts"] + e.get("dur", 0) for e in timed) - min(e["ts"] for e in timed)
    assert record.steps[0]["duration_ms"] == pytest.approx(span / 1e3, rel=1e-6)
