"""The NVML collector: its reason when NVML cannot start (as it really fails here), the throttle
decoder, and its bounded series. No test pretends a GPU exists: values that are not read from
this machine are hand-built, and the test names say so."""

from __future__ import annotations

import re
from pathlib import Path

import pynvml
import pytest

from perfscope.analysis.memory import memory_metrics
from perfscope.collectors import gpu as gpu_module
from perfscope.collectors.gpu import (
    LIBRARY_NOT_FOUND,
    THROTTLE_REASONS,
    GpuCollector,
    decode_throttle,
    explain_init_error,
    format_cuda_version,
)
from perfscope.record import Record


def _real_nvml_failure() -> BaseException | None:
    """What nvmlInit() really raises on this machine (None when NVML works here)."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return exc
    pynvml.nvmlShutdown()
    return None


def test_unavailable_reason_is_the_real_nvml_failure_in_words() -> None:
    failure = _real_nvml_failure()
    if failure is None:
        pytest.skip("NVML works on this machine: the unavailable path cannot happen here")
    # WHEN the collector checks whether it can work
    reason = GpuCollector().available()
    # THEN it names the real failure in a user's words
    assert reason == explain_init_error(failure)
    if isinstance(failure, pynvml.NVMLError_LibraryNotFound):
        assert reason == LIBRARY_NOT_FOUND
        assert "--gpus all / nvidia-container-toolkit" in reason


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver on this machine"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "kernel module is not running"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "/dev/nvidia*"),
        (pynvml.NVML_ERROR_NOT_SUPPORTED, "WSL"),
        (pynvml.NVML_ERROR_UNKNOWN, "Failed to initialize NVML: Unknown Error"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "version mismatch"),
        (pynvml.NVML_ERROR_TIMEOUT, "NVMLError_Timeout: Timeout"),
    ],
)
def test_init_errors_explained_for_handbuilt_nvml_exceptions(code: int, words: str) -> None:
    # GIVEN pynvml's own exception class for that code, built by hand (no driver is called)
    exc = pynvml.NVMLError(code)
    assert type(exc).__name__.startswith("NVMLError_")
    # THEN the reason says what is wrong and what to do
    assert words in explain_init_error(exc)


def test_unknown_error_advises_a_reboot_after_a_driver_upgrade() -> None:
    reason = explain_init_error(pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN))
    assert "reboot" in reason


def test_throttle_bits_are_pynvmls() -> None:
    names = {
        "gpu_idle": "GpuIdle",
        "applications_clocks_setting": "ApplicationsClocksSetting",
        "sw_power_cap": "SwPowerCap",
        "hw_slowdown": "HwSlowdown",
        "sync_boost": "SyncBoost",
        "sw_thermal_slowdown": "SwThermalSlowdown",
        "hw_thermal_slowdown": "HwThermalSlowdown",
        "hw_power_brake_slowdown": "HwPowerBrakeSlowdown",
        "display_clock_setting": "DisplayClockSetting",
        "board_limit": "BoardLimit",
        "reliability": "Reliability",
    }
    for bit, name in THROTTLE_REASONS.items():
        assert getattr(pynvml, f"nvmlClocksThrottleReason{names[name]}") == bit


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (0, []),
        (0x1, ["gpu_idle"]),
        (0x4 | 0x40, ["sw_power_cap", "hw_thermal_slowdown"]),
        (0x8 | 0x80, ["hw_slowdown", "hw_power_brake_slowdown"]),
        (0x1000 | 0x20, ["sw_thermal_slowdown", "unknown_0x1000"]),
    ],
)
def test_decode_throttle_on_handbuilt_masks(mask: int, expected: list[str]) -> None:
    assert decode_throttle(mask) == expected


def test_cuda_driver_version_text_from_handbuilt_integers() -> None:
    assert format_cuda_version(12040) == "12.4"
    assert format_cuda_version(11080) == "11.8"
    assert format_cuda_version(13000) == "13.0"


def test_series_halve_when_full_on_handbuilt_rows() -> None:
    # GIVEN a collector that keeps at most 8 points (rows built by hand, no NVML)
    collector = GpuCollector(interval_s=0.2, max_points=8)
    for i in range(7):
        collector._append({"ts": float(i), "gpu0_util_frac": i / 10})
    # a column that appears late is padded for the points before it
    collector._append({"ts": 7.0, "gpu0_util_frac": 0.7, "gpu0_pcie_tx_mb_s": 5.0})
    series = collector._series
    # THEN every other point was dropped, the columns stay aligned and the interval doubled
    assert series["ts"] == [0.0, 2.0, 4.0, 6.0]
    assert series["gpu0_util_frac"] == [0.0, 0.2, 0.4, 0.6]
    assert series["gpu0_pcie_tx_mb_s"] == [None, None, None, None]
    assert collector._wait_s == pytest.approx(0.4)
    for i in range(8, 20):
        collector._append({"ts": float(i), "gpu0_util_frac": 0.0})
    series = collector._series
    assert len(series["ts"]) < 8
    assert all(len(column) == len(series["ts"]) for column in series.values())


def _handbuilt_record(collectors: dict, samples: dict, steps: list | None = None) -> Record:
    return Record(run={}, environment={}, collectors=collectors, steps=steps or [], samples=samples)


def _handbuilt_gpu_collector(used: list[int] | None) -> dict:
    devices = [
        {"index": 0, "name": "hand-built device 0", "memory_total_mb": 1000.0},
        {"index": 1, "name": "hand-built device 1", "memory_total_mb": 2000.0},
    ]
    return {"status": "ok", "reason": None, "devices": devices, "devices_used": used}


HANDBUILT_GPU_SAMPLES = {
    "ts": [0.5, 1.0, 1.5, 2.0, 2.5],
    "gpu0_util_frac": [0.0, 0.8, 0.6, None, 0.0],
    "gpu0_mem_used_mb": [10.0, 500.0, 900.0, 800.0, 10.0],
    "gpu0_throttle_mask": [0x1, 0x0, 0x4, 0x40, 0x1],
    "gpu1_util_frac": [0.9, 0.9, 0.9, 0.9, 0.9],  # another program's device
    "gpu1_mem_used_mb": [1900.0] * 5,
}
# Steps span 1.0 s to 2.0 s: samples 1.0, 1.5 and 2.0 fall inside.
HANDBUILT_STEPS = [
    {"index": 0, "start_s": 1.0, "duration_ms": 500.0, "data_wait_ms": 0.0},
    {"index": 1, "start_s": 1.5, "duration_ms": 500.0, "data_wait_ms": 0.0},
]


def test_memory_metrics_on_handbuilt_gpu_samples() -> None:
    record = _handbuilt_record(
        {"gpu": _handbuilt_gpu_collector([0])}, {"gpu": HANDBUILT_GPU_SAMPLES}, HANDBUILT_STEPS
    )
    metrics = memory_metrics(record)
    assert metrics["gpu.count_used"] == 1.0
    assert metrics["gpu.util_frac"] == pytest.approx(0.7)  # device 0 during steps, None left out
    assert metrics["gpu.mem_used_peak_frac"] == pytest.approx(0.9)
    assert metrics["gpu.slowdown_frac"] == pytest.approx(2 / 3)  # power cap, thermal; not idle
    assert not any(name.startswith("cuda.") for name in metrics)


def test_memory_metrics_without_steps_use_every_handbuilt_sample() -> None:
    record = _handbuilt_record(
        {"gpu": _handbuilt_gpu_collector([0])}, {"gpu": HANDBUILT_GPU_SAMPLES}
    )
    assert memory_metrics(record)["gpu.util_frac"] == pytest.approx(1.4 / 4)


def test_no_per_run_gpu_metrics_when_the_devices_used_are_unknown() -> None:
    record = _handbuilt_record(
        {"gpu": _handbuilt_gpu_collector(None)}, {"gpu": HANDBUILT_GPU_SAMPLES}
    )
    assert memory_metrics(record) == {}


def test_a_run_that_used_no_gpu_counts_zero_and_nothing_else() -> None:
    record = _handbuilt_record(
        {"gpu": _handbuilt_gpu_collector([])}, {"gpu": HANDBUILT_GPU_SAMPLES}
    )
    assert memory_metrics(record) == {"gpu.count_used": 0.0}


def test_an_unavailable_gpu_collector_emits_no_metric() -> None:
    reason = LIBRARY_NOT_FOUND
    record = _handbuilt_record({"gpu": {"status": "unavailable", "reason": reason}}, {})
    assert memory_metrics(record) == {}


def test_every_nvml_call_the_collector_makes_exists_in_the_installed_pynvml() -> None:
    # The sampling code cannot run without a GPU; at least its names are checked against pynvml.
    source = Path(gpu_module.__file__).read_text()
    names = set(re.findall(r"\bnvml\.((?:nvml|NVML)\w+)", source))
    assert len(names) > 15
    assert sorted(n for n in names if not hasattr(pynvml, n)) == []
