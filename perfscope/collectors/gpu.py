"""NVIDIA GPUs through NVML, sampled by a thread in the supervisor (`collectors.gpu`).

NVML sees devices, not processes: every device is sampled, and the devices the run used are those
on which a process of the run's tree held a compute context. A query a device does not support is
left out (None), never replaced by a default.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perfscope.collectors.base import CollectorContext, CollectorResult

DEFAULT_INTERVAL_S = 0.2
MAX_POINTS = 4096  # when full, every other point is dropped and the interval doubles
# nvmlDeviceGetPcieThroughput counts bytes over 20 ms per call: two calls per device per sample
# would cost more than everything else, so PCIe is read at most this often (None in between).
PCIE_MIN_INTERVAL_S = 1.0
TREE_REFRESH_S = 1.0  # how often the run's process tree is listed again
MIB = 2**20

# The clock event ("throttle") reason bits of NVML (pynvml nvmlClocksThrottleReason*).
THROTTLE_REASONS: dict[int, str] = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}
# Reasons that mean the clocks were held down by power or heat (idle and settings are not).
SLOWDOWN_REASONS = frozenset(
    {
        "sw_power_cap",
        "hw_slowdown",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    }
)

LIBRARY_NOT_FOUND = (
    "NVML library not found: no NVIDIA driver on this machine, or the container lacks it "
    "(--gpus all / nvidia-container-toolkit)"
)
_INIT_ERRORS = {
    "NVMLError_LibraryNotFound": LIBRARY_NOT_FOUND,
    "NVMLError_DriverNotLoaded": (
        "NVIDIA driver not loaded: the library is installed but the kernel module is not running "
        "(check `nvidia-smi`; load it with `sudo modprobe nvidia` or reinstall the driver)"
    ),
    "NVMLError_NoPermission": (
        "no permission to use NVML: this user cannot open the GPU devices (/dev/nvidia*); add the "
        "user to the group that owns them, or give the container the GPU devices"
    ),
    "NVMLError_NotSupported": (
        "NVML does not support this platform (typical under WSL or in some virtual machines): "
        "GPU utilization, memory and clocks are not recorded; under WSL2 update the NVIDIA "
        "Windows driver"
    ),
    "NVMLError_Unknown": (
        "Failed to initialize NVML: Unknown Error: usually the NVIDIA driver was upgraded while "
        "the old kernel module still runs (reboot), or a container lost access to the GPU "
        "devices (restart the container)"
    ),
    "NVMLError_LibRmVersionMismatch": (
        "Failed to initialize NVML: Driver/library version mismatch: the NVIDIA library and "
        "kernel module differ, usually after a driver upgrade (reboot)"
    ),
    "NVMLError_GpuNotFound": "NVML found no GPU on this machine",
}
NO_DEVICES = "NVML works but sees no GPU (check CUDA_VISIBLE_DEVICES and the container's --gpus)"
_UNSUPPORTED = ("NVMLError_NotSupported", "NVMLError_FunctionNotFound", "NVMLLibraryMismatchError")


def explain_init_error(exc: BaseException) -> str:
    """The reason, in a user's words, that nvmlInit() raised `exc`."""
    known = _INIT_ERRORS.get(type(exc).__name__)
    return known if known is not None else f"NVML failed to start: {type(exc).__name__}: {exc}"


def decode_throttle(mask: int) -> list[str]:
    """The names of the reasons set in an NVML clock event (throttle) bit mask."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    if unknown:
        names.append(f"unknown_{unknown:#x}")
    return names


def format_cuda_version(version: int) -> str:
    """NVML's CUDA driver version integer (12040) as text ("12.4")."""
    return f"{version // 1000}.{version % 1000 // 10}"


@dataclass
class _Device:
    index: int
    handle: Any
    unsupported: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    throttle_seen: dict[str, int] = field(default_factory=dict)
    used: bool = False


# A query: name, its columns, and how to read them from one device (in the order of the columns).
Query = tuple[str, tuple[str, ...], Callable[[Any, Any], tuple[float | None, ...]]]


def _utilization(nvml: Any, handle: Any) -> tuple[float, float]:
    rates = nvml.nvmlDeviceGetUtilizationRates(handle)
    return rates.gpu / 100.0, rates.memory / 100.0


def _memory_used(nvml: Any, handle: Any) -> tuple[float]:
    return (nvml.nvmlDeviceGetMemoryInfo(handle).used / MIB,)


def _sm_clock(nvml: Any, handle: Any) -> tuple[int]:
    return (nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),)


def _mem_clock(nvml: Any, handle: Any) -> tuple[int]:
    return (nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),)


def _power(nvml: Any, handle: Any) -> tuple[float]:
    return (nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,)  # milliwatts


def _power_limit(nvml: Any, handle: Any) -> tuple[float]:
    return (nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0,)


def _temperature(nvml: Any, handle: Any) -> tuple[int]:
    try:
        return (nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),)
    except nvml.NVMLError_FunctionNotFound:  # deprecated, to go in CUDA 14 (pynvml)
        return (nvml.nvmlDeviceGetTemperatureV(handle, nvml.NVML_TEMPERATURE_GPU),)


def _throttle(nvml: Any, handle: Any) -> tuple[int]:
    # Drivers before 535 (and nvidia-ml-py before 12.535) only know the older "throttle" name.
    newer = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if newer is not None:
        try:
            return (newer(handle),)
        except nvml.NVMLError_FunctionNotFound:
            pass
    return (nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle),)


def _pcie_tx(nvml: Any, handle: Any) -> tuple[float]:
    # KB/s (1024 bytes), counted over 20 ms: / 1024 gives MiB/s.
    return (nvml.nvmlDeviceGetPcieThroughput(handle, nvml.NVML_PCIE_UTIL_TX_BYTES) / 1024.0,)


def _pcie_rx(nvml: Any, handle: Any) -> tuple[float]:
    return (nvml.nvmlDeviceGetPcieThroughput(handle, nvml.NVML_PCIE_UTIL_RX_BYTES) / 1024.0,)


QUERIES: list[Query] = [
    ("utilization", ("util_frac", "mem_busy_frac"), _utilization),
    ("memory", ("mem_used_mb",), _memory_used),
    ("sm_clock", ("sm_clock_mhz",), _sm_clock),
    ("mem_clock", ("mem_clock_mhz",), _mem_clock),
    ("power", ("power_w",), _power),
    ("power_limit", ("power_limit_w",), _power_limit),
    ("temperature", ("temp_c",), _temperature),
    ("throttle", ("throttle_mask",), _throttle),
]
PCIE_QUERIES: list[Query] = [
    ("pcie_tx", ("pcie_tx_mb_s",), _pcie_tx),
    ("pcie_rx", ("pcie_rx_mb_s",), _pcie_rx),
]


PROCESS_COLUMNS = ("run_procs", "run_mem_mb")


class GpuCollector:
    """Samples every GPU NVML sees, and notes which of them the run's processes used."""

    name = "gpu"

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
        max_points: int = MAX_POINTS,
    ) -> None:
        self.interval_s = interval_s
        self.max_points = max_points
        self._clock = clock
        self._nvml: Any = None
        self._inits = 0
        self._devices: list[_Device] = []
        self._series: dict[str, list[Any]] = {"ts": []}
        self._static: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wait_s = interval_s
        self._origin = 0.0
        self._root: Any = None
        self._pids: set[int] = set()
        self._tree_at = float("-inf")
        self._pcie_at = float("-inf")
        self._foreign_pids = False
        self._process_query_worked = False
        self._busy_s = 0.0
        self._error: str | None = None

    def available(self) -> str | None:
        try:
            import pynvml
        except ImportError:
            return "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            return explain_init_error(exc)
        self._nvml, self._inits = pynvml, self._inits + 1
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            self._shutdown()
            return f"NVML could not count the GPUs: {explain_init_error(exc)}"
        if count == 0:
            self._shutdown()
            return NO_DEVICES
        return None

    def start(self, ctx: CollectorContext) -> None:
        import psutil

        nvml = self._nvml
        self._origin = ctx.origin
        try:
            self._root = psutil.Process(ctx.pid)
            count = nvml.nvmlDeviceGetCount()
            self._devices = [_Device(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
            self._static = self._static_facts()
        except Exception:
            self._shutdown()  # CollectorSet records the failure; NVML must not stay open
            raise
        self._thread = threading.Thread(target=self._loop, name="perfscope-gpu", daemon=True)
        self._thread.start()

    def stop(self) -> CollectorResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._shutdown()
        if self._error is not None and not self._series["ts"]:
            return CollectorResult(status="failed", reason=self._error, overhead_s=self._busy_s)
        return CollectorResult(
            status="ok",
            interval_s=self.interval_s,
            overhead_s=self._busy_s,
            samples=_drop_empty_columns(self._series),
            extra=self._extra(),
        )

    # --- static facts -------------------------------------------------------------------------

    def _static_facts(self) -> dict[str, Any]:
        nvml = self._nvml
        cuda = _read(nvml, nvml.nvmlSystemGetCudaDriverVersion)
        return {
            "driver_version": _read(nvml, nvml.nvmlSystemGetDriverVersion),
            "cuda_driver_version": format_cuda_version(cuda) if cuda is not None else None,
            "nvml_version": _read(nvml, nvml.nvmlSystemGetNVMLVersion),
            "devices": [self._device_facts(d) for d in self._devices],
        }

    def _device_facts(self, device: _Device) -> dict[str, Any]:
        nvml, handle = self._nvml, device.handle
        memory = _read(nvml, nvml.nvmlDeviceGetMemoryInfo, handle)
        capability = _read(nvml, nvml.nvmlDeviceGetCudaComputeCapability, handle)
        return {
            "index": device.index,
            "name": _read(nvml, nvml.nvmlDeviceGetName, handle),
            "uuid": _read(nvml, nvml.nvmlDeviceGetUUID, handle),
            "memory_total_mb": round(memory.total / MIB, 1) if memory is not None else None,
            "compute_capability": "{}.{}".format(*capability) if capability else None,
        }

    def _extra(self) -> dict[str, Any]:
        devices = []
        for facts, device in zip(self._static.get("devices", []), self._devices, strict=True):
            devices.append(
                {
                    **facts,
                    "unsupported": sorted(device.unsupported),
                    "errors": device.errors,
                    "throttle_seen": device.throttle_seen,
                }
            )
        extra = {**self._static, "devices": devices, **self._devices_used()}
        if self._wait_s != self.interval_s:
            extra["points_interval_s"] = self._wait_s  # the spacing left after dropping points
        return extra

    def _devices_used(self) -> dict[str, Any]:
        used = [d.index for d in self._devices if d.used]
        if used:
            return {"devices_used": used}
        if not self._process_query_worked:
            note = "NVML could not list the compute processes on any device"
            return {"devices_used": None, "devices_used_note": note}
        if self._foreign_pids:
            note = (
                "NVML listed compute processes, none of them in the run's process tree: either "
                "the run used no GPU (they are other programs'), or it runs in a container "
                "without the host's PID namespace, where NVML reports host PIDs "
                "(docker run --pid=host)"
            )
            return {"devices_used": None, "devices_used_note": note}
        return {"devices_used": []}

    # --- sampling -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            started = time.thread_time()
            try:
                self._sample()
            except Exception as exc:  # a sampler must never take the run down
                self._error = f"{type(exc).__name__}: {exc}"
            self._busy_s += time.thread_time() - started
            if self._stop.wait(self._wait_s):
                return

    def _sample(self) -> None:
        now = self._clock()
        self._refresh_tree(now)
        with_pcie = now - self._pcie_at >= PCIE_MIN_INTERVAL_S
        if with_pcie:
            self._pcie_at = now
        row: dict[str, Any] = {"ts": round(now - self._origin, 4)}
        for device in self._devices:
            row.update(self._sample_device(device, with_pcie))
        self._append(row)

    def _sample_device(self, device: _Device, with_pcie: bool) -> dict[str, Any]:
        prefix = f"gpu{device.index}_"
        values: dict[str, Any] = {}
        for name, columns, read in QUERIES + (PCIE_QUERIES if with_pcie else []):
            result = self._query(device, name, read) or (None,) * len(columns)
            values.update({prefix + c: _round(v) for c, v in zip(columns, result, strict=True)})
        mask = values.get(prefix + "throttle_mask")
        if mask is not None:
            for reason in decode_throttle(mask):
                device.throttle_seen[reason] = device.throttle_seen.get(reason, 0) + 1
        procs = self._query(device, "processes", self._run_processes)
        if procs is not None and procs[0]:
            device.used = True
        procs = procs or (None, None)
        values.update({prefix + c: _round(v) for c, v in zip(PROCESS_COLUMNS, procs, strict=True)})
        return values

    def _query(self, device: _Device, name: str, read: Callable) -> tuple | None:
        if name in device.unsupported:
            return None
        try:
            return read(self._nvml, device.handle)
        except Exception as exc:
            # AttributeError: this nvidia-ml-py predates the call; same as the driver lacking it.
            if type(exc).__name__ in _UNSUPPORTED or isinstance(exc, AttributeError):
                device.unsupported.add(name)
            elif isinstance(exc, self._nvml.NVMLError):  # GPU lost, timeout: this sample only
                device.errors.setdefault(name, f"{type(exc).__name__}: {exc}")
            else:
                raise
            return None

    def _run_processes(self, nvml: Any, handle: Any) -> tuple[int, float | None]:
        try:
            procs = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except nvml.NVMLLibraryMismatchError:  # a driver without the _v3 call
            procs = nvml.nvmlDeviceGetComputeRunningProcesses_v2(handle)
        self._process_query_worked = True
        ours = [p for p in procs if p.pid in self._pids]
        self._foreign_pids = self._foreign_pids or len(ours) < len(procs)
        # usedGpuMemory is None where the driver cannot tell (pynvml maps NVML's "not available").
        known = [p.usedGpuMemory for p in ours if p.usedGpuMemory is not None]
        return len(ours), (sum(known) / MIB if known else None)

    def _refresh_tree(self, now: float) -> None:
        if now - self._tree_at < TREE_REFRESH_S:
            return
        import psutil

        self._tree_at = now
        try:
            children = self._root.children(recursive=True)
        except psutil.Error:
            return  # the run's root is gone: keep the last tree seen
        self._pids = {self._root.pid, *(child.pid for child in children)}

    def _append(self, row: dict[str, Any]) -> None:
        series = self._series
        for key in row:
            if key not in series:  # a column that appears late: earlier points did not have it
                series[key] = [None] * len(series["ts"])
        for key, column in series.items():
            column.append(row.get(key))
        if len(series["ts"]) >= self.max_points:
            for key in series:
                series[key] = series[key][::2]
            self._wait_s *= 2

    def _shutdown(self) -> None:
        while self._inits > 0:
            self._inits -= 1
            with contextlib.suppress(Exception):  # nothing left to measure either way
                self._nvml.nvmlShutdown()


def _read(nvml: Any, query: Callable, *args: Any) -> Any:
    """A static fact, or None when the device or driver cannot tell it."""
    try:
        return query(*args)
    except (nvml.NVMLError, nvml.NVMLLibraryMismatchError):
        return None


def _round(value: float | None) -> float | None:
    if value is None or isinstance(value, int):
        return value
    return round(float(value), 4)


def _drop_empty_columns(series: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Columns no sample could fill (queries the device does not support) are left out."""
    return {k: v for k, v in series.items() if k == "ts" or any(x is not None for x in v)}
